"""Packed uint8 array vs decoding JPEG files: images per second for one loader worker.

Makes N 64x64 JPEG cutouts in a temporary folder (from the real SDSS tiles in
data/sdss_real when present, flipped/rotated and re-encoded at quality 75 like
SkyServer; synthetic galaxies otherwise), packs them with SDSS_cutouts/pack.py's
code and times, on one thread:

- jpeg:          the folder loader (open, decode, Resize/CenterCrop, ToTensor,
                 Normalize) per image, stacked into batches of 64;
- packed item:   PackedImages[i] per image through a DataLoader (num_workers=0);
- packed batch:  PackedImages.batch(random indices), 64 at a time (what train.py should use).

    python benchmarks/bench_data.py --n 4000
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lib.data import ImageList, PackedImages  # noqa: E402
from lib.loaders import collate_skip_bad  # noqa: E402
from lib.sdss import pack_folder  # noqa: E402


def make_jpegs(folder: str, n: int, seed: int = 0) -> str:
    tiles = sorted(glob.glob(os.path.join(ROOT, "data", "sdss_real", "*.png")))
    rng = np.random.default_rng(seed)
    base = [np.asarray(Image.open(t).convert("RGB")) for t in tiles]
    for i in range(n):
        if base:
            arr = np.rot90(base[i % len(base)], k=int(rng.integers(4)))
            arr = arr[:, ::-1] if rng.integers(2) else arr
        else:  # synthetic galaxy: Gaussian blob on noise
            yy, xx = np.mgrid[0:64, 0:64]
            blob = 220 * np.exp(-((xx - 32) ** 2 + (yy - 32) ** 2) / (2 * rng.uniform(3, 9) ** 2))
            arr = np.clip(blob[..., None] + rng.normal(15, 6, (64, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(np.ascontiguousarray(arr)).save(os.path.join(folder, f"{i + 1}.jpg"), quality=75)
    return f"{len(tiles)} real SDSS tiles" if base else "synthetic galaxies"


def timed(fn, min_seconds: float) -> float:
    """Images per second of ``fn()`` (returns the number of images), repeated for at least ``min_seconds``."""
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds:
        n += fn()
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=4000, help="number of JPEG cutouts to make")
    p.add_argument("--batch", type=int, default=64, help="batch size (paper: 64)")
    p.add_argument("--seconds", type=float, default=5.0, help="minimum time per measurement")
    opt = p.parse_args(argv)
    torch.set_num_threads(1)  # one loader worker = one core
    with tempfile.TemporaryDirectory() as tmp:
        src, packed = os.path.join(tmp, "jpeg"), os.path.join(tmp, "packed")
        os.makedirs(src)
        what = make_jpegs(src, opt.n)
        t0 = time.perf_counter()
        pack_folder(src, packed, workers=1, progress=False)
        pack_rate = opt.n / (time.perf_counter() - t0)

        files = ImageList([(os.path.join(src, f"{i + 1}.jpg"), 0) for i in range(opt.n)], isize=64)
        rng = np.random.default_rng(0)

        def jpeg_batch() -> int:
            idx = rng.integers(0, opt.n, opt.batch)
            x = collate_skip_bad([files[i] for i in idx])[0]
            return len(x)

        ds = PackedImages(packed)
        loader = torch.utils.data.DataLoader(ds, batch_size=opt.batch, shuffle=True, num_workers=0)

        def packed_items() -> int:
            return sum(len(x) for x, _ in loader)

        def packed_batch() -> int:
            return len(ds.batch(np.sort(rng.integers(0, len(ds), opt.batch))))

        r_jpeg = timed(jpeg_batch, opt.seconds)
        r_item = timed(packed_items, opt.seconds)
        r_batch = timed(packed_batch, opt.seconds)
    print(f"bench_data: {opt.n} JPEG cutouts 64x64 from {what}; batch {opt.batch}; 1 thread per loader worker")
    print(f"  pack (one-off, 1 thread):        {pack_rate:10,.0f} images/s")
    print(f"  JPEG decode + transform:         {r_jpeg:10,.0f} images/s per worker")
    print(f"  packed, per item (DataLoader):   {r_item:10,.0f} images/s per worker ({r_item / r_jpeg:.1f}x)")
    print(f"  packed, batch(indices):          {r_batch:10,.0f} images/s per worker ({r_batch / r_jpeg:.1f}x)")
    print(f"  one paper epoch (579,296 train images): JPEG {579296 / r_jpeg / 60:.1f} min, "
          f"packed batch {579296 / r_batch:.0f} s per worker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
