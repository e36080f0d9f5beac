"""Pack an image folder into one memory-mappable uint8 array for fast training and scoring.

Reads a flat image folder or an ImageFolder tree (e.g. ``data/SDSS/train``
with ``0.normal/``). Writes ``<out>/pack.npy`` (uint8, N x isize x isize x nc),
``<out>/index.csv`` (index, filename, label, class) and ``<out>/pack.json``.
Unreadable files are reported and left out. ``train.py``/``test.py`` take the
``<out>`` folder (or ``<out>/pack.npy``) wherever they take an image folder.

    python SDSS_cutouts/pack.py data/SDSS/train data/SDSS_packed/train
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root, for lib/

from options import one_line_warnings  # noqa: E402
from lib.sdss import PackError, pack_folder  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("src", help="image folder (flat, or with class folders such as 0.normal/)")
    p.add_argument("out", help="output folder for pack.npy, index.csv, pack.json")
    p.add_argument("--isize", type=int, default=64, help="image side in px (Resize + CenterCrop as the loader)")
    p.add_argument("--nc", type=int, default=3, choices=(1, 3), help="channels: 3 = RGB, 1 = grey")
    p.add_argument("--workers", type=int, default=2, help="decoding threads")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None) -> int:
    opt = parse_args(argv)
    try:
        if opt.isize < 1:
            raise PackError(f"--isize must be positive, got {opt.isize}")
        if os.path.abspath(opt.out).startswith(os.path.abspath(opt.src) + os.sep):
            raise PackError(f"output {opt.out} is inside the input folder {opt.src}")
        info = pack_folder(opt.src, opt.out, opt.isize, opt.nc, opt.workers, opt.progress)
    except (PackError, OSError) as exc:
        print(f"pack: error: {exc}", file=sys.stderr)
        return 2
    for name, reason in info["skipped"][:10]:
        print(f"pack: skipped {name}: {reason}", file=sys.stderr)
    print(f"pack: {info['n_images']:,} images -> {opt.out}/pack.npy {tuple(info['shape'])} uint8, "
          f"{info['n_skipped']:,} unreadable file(s) skipped")
    return 0


if __name__ == "__main__":
    one_line_warnings()
    sys.exit(main())
