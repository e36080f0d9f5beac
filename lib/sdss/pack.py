"""Writing packed datasets: an image folder -> one memory-mappable uint8 array (``SDSS_cutouts/pack.py``).

A packed dataset is a folder holding ``pack.npy`` (uint8 (N, H, W, C), pixels after the
folder loader's ``Resize(isize)`` + ``CenterCrop(isize)``, a no-op for 64x64 cutouts),
``index.csv`` (``index, filename, label, class``; filename relative to the source folder,
label from :func:`lib.data.class_label`, -1 for a flat folder) and ``pack.json`` (source,
counts, package versions).  The reader is :class:`lib.data.PackedImages`.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from lib.data import IMG_EXTENSIONS, PackError, find_samples, load_image, resize_center_crop
from lib.fileio import RUN_RECORDS, run_record, write_run_record, write_table

__all__ = ["PackError", "pack_folder"]

BLOCK = 2048  # images decoded per block (bounds the in-flight futures at 600k files)


def _list_sources(src: str) -> tuple[list[tuple[str, int]], list[str]]:
    if not os.path.isdir(src):
        raise PackError(f"image folder not found: {src}")
    has_classes = any(e.is_dir() and not e.name.startswith(".") for e in os.scandir(src))
    if has_classes:  # ImageFolder layout: train/0.normal/...
        return find_samples(src)
    names = sorted(e.name for e in os.scandir(src) if e.is_file() and e.name.lower().endswith(IMG_EXTENSIONS))
    return [(os.path.join(src, n), -1) for n in names], []


def _decode(path: str, isize: int, nc: int) -> tuple[np.ndarray | None, str]:
    try:
        img = load_image(path, nc)
        if img.size != (isize, isize):  # the folder transform's geometry, so packed == folder pixels
            img = resize_center_crop(img, isize)
        arr = np.asarray(img, dtype=np.uint8)
        return (arr[..., None] if arr.ndim == 2 else arr), ""
    except Exception as exc:  # any unreadable file: reported and skipped
        return None, f"{type(exc).__name__}: {exc}"


def pack_folder(src: str, out_dir: str, isize: int = 64, nc: int = 3, workers: int = 2,
                progress: bool = True) -> dict:
    """Pack an image folder (flat, or ImageFolder classes) into ``out_dir/pack.npy`` + ``index.csv``.

    Parameters
    ----------
    src : str
        Folder of images, or a folder of class folders (``0.normal``, ...).
    out_dir : str
        Output folder; an existing pack there is replaced atomically.
    isize, nc : int
        Image side (px) and channels (3 = RGB, 1 = grey), as the training options.
    workers : int
        Decoding threads.

    Returns
    -------
    dict
        Counts (``n_images``, ``n_skipped``), ``skipped`` [(file, reason)], shape.
    """
    from tqdm import tqdm

    samples, classes = _list_sources(src)
    if not samples:
        raise PackError(f"no image files in {src}")
    os.makedirs(out_dir, exist_ok=True)
    final = os.path.join(out_dir, "pack.npy")
    tmp = os.path.join(out_dir, f".pack.{os.getpid()}.tmp.npy")
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(samples), isize, isize, nc))
    kept, skipped = [], []
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
                tqdm(total=len(samples), unit="img", disable=not progress, desc="pack") as bar:
            for start in range(0, len(samples), BLOCK):
                block = samples[start:start + BLOCK]
                for (path, label), (img, reason) in zip(block, pool.map(lambda s: _decode(s[0], isize, nc), block)):
                    if img is None:
                        skipped.append((os.path.relpath(path, src), reason))
                    else:
                        arr[len(kept)] = img
                        kept.append((os.path.relpath(path, src), label))
                bar.update(len(block))
        arr.flush()
        if not kept:
            raise PackError(f"none of the {len(samples)} files in {src} could be read")
        if len(kept) < len(samples):  # drop the unused tail rows: copy into an array of the right length
            tmp2 = tmp.replace(".tmp.npy", ".tmp2.npy")
            small = np.lib.format.open_memmap(tmp2, mode="w+", dtype=np.uint8, shape=(len(kept), isize, isize, nc))
            for s in range(0, len(kept), 8 * BLOCK):
                e = min(s + 8 * BLOCK, len(kept))
                small[s:e] = arr[s:e]
            small.flush()
            del small
            os.replace(tmp2, tmp)
        del arr
        index = pd.DataFrame({"index": np.arange(len(kept)), "filename": [k[0] for k in kept],
                              "label": [k[1] for k in kept],
                              "class": [classes[k[1]] if k[1] >= 0 else "" for k in kept]})
        os.replace(tmp, final)
        write_table(os.path.join(out_dir, "index.csv"), index)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    info = {"source": os.path.abspath(src), "n_images": len(kept), "n_skipped": len(skipped),
            "shape": [len(kept), isize, isize, nc], "classes": classes, "skipped": skipped}
    write_run_record(os.path.join(out_dir, RUN_RECORDS["pack"]), run_record(**info))
    return info
