"""Packed image datasets: one memory-mappable uint8 array instead of 600k JPEG files.

On disk, a packed dataset is a folder holding

- ``pack.npy``: uint8 array (N, H, W, C), pixels after the folder loader's
  ``Resize(isize)`` + ``CenterCrop(isize)`` (a no-op for 64x64 cutouts);
- ``index.csv``: ``index, filename, label, class`` (filename relative to the
  packed folder; label = ImageFolder class index, -1 for a flat folder);
- ``pack.json``: source, counts, options, package versions.

``PackedImages(path)`` accepts the folder, or the ``.npy`` file itself (its
index is ``<stem>.csv`` if present, else ``index.csv`` beside it). Items are
normalised exactly as the folder transform (ToTensor, Normalize(0.5, 0.5)):
x / 255, then (x - 0.5) / 0.5, float32, CHW, in [-1, 1].
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from lib.data import IMG_EXTENSIONS, find_samples, load_image, resize_center_crop
from lib.fileio import atomic_write, write_json
from lib.sdss_catalog import run_record

__all__ = ["PackError", "is_packed", "resolve_packed", "pack_folder", "PackedImages", "PackedLoader", "to_float"]

BLOCK = 2048  # images decoded per block (bounds the in-flight futures at 600k files)


class PackError(ValueError):
    """Bad input to pack, or a packed dataset that is missing or inconsistent."""


def resolve_packed(path: str) -> tuple[str, str]:
    """``(npy_path, index_csv_path)`` of a packed dataset given as a folder or an ``.npy`` file."""
    if os.path.isdir(path):
        npy, index = os.path.join(path, "pack.npy"), os.path.join(path, "index.csv")
    elif path.endswith(".npy"):
        npy, stem_csv = path, path[:-4] + ".csv"
        index = stem_csv if os.path.exists(stem_csv) else os.path.join(os.path.dirname(path), "index.csv")
    else:
        raise PackError(f"{path} is neither a packed-dataset folder nor an .npy file")
    for p in (npy, index):
        if not os.path.isfile(p):
            raise PackError(f"packed dataset {path}: {p} not found")
    return npy, index


def is_packed(path: str) -> bool:
    """True for a folder with pack.npy + index.csv, or an .npy file with its index beside it."""
    try:
        resolve_packed(path)
        return True
    except PackError:
        return False


def to_float(x: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, C) or (H, W, C) -> float32 (B, C, H, W) or (C, H, W), same ops as ToTensor + Normalize."""
    if not x.flags.writeable:  # a memmap row: torch wants memory it may write
        x = np.array(x)
    t = torch.from_numpy(np.ascontiguousarray(x))
    t = t.permute(0, 3, 1, 2) if t.ndim == 4 else t.permute(2, 0, 1)
    return t.contiguous().to(torch.float32).div_(255).sub_(0.5).div_(0.5)


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
        atomic_write(os.path.join(out_dir, "index.csv"), lambda t: index.to_csv(t, index=False))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    info = {"source": os.path.abspath(src), "n_images": len(kept), "n_skipped": len(skipped),
            "shape": [len(kept), isize, isize, nc], "classes": classes, "skipped": skipped}
    write_json(os.path.join(out_dir, "pack.json"), run_record(**info))
    return info



class PackedImages(Dataset):
    """A packed dataset as a torch Dataset: ``(tensor (C, H, W) float32 in [-1, 1], label)``.

    Parameters
    ----------
    path : str
        Packed folder (``pack.npy`` + ``index.csv``) or the ``.npy`` file.

    Attributes
    ----------
    filenames : list of str
        Source file per row (relative to the packed folder), as written in scores CSVs.
    labels : numpy.ndarray
        int64 (N,), ImageFolder class index or -1.
    classes : list of str
        Class folder names (empty for a flat folder).

    Notes
    -----
    The array is memory-mapped and re-opened lazily in each DataLoader worker
    (the object pickles without it). ``batch(indices)`` reads many rows in one
    call, which is what a training loop should use.
    """

    def __init__(self, path: str) -> None:
        self.npy, self.index_path = resolve_packed(path)
        index = pd.read_csv(self.index_path)
        self._arr = None
        arr = self.array
        if arr.ndim != 4 or arr.dtype != np.uint8:
            raise PackError(f"{self.npy}: expected uint8 (N, H, W, C), found {arr.dtype} {arr.shape}")
        if len(index) != len(arr):
            raise PackError(f"{self.npy} has {len(arr)} images but {self.index_path} lists {len(index)}")
        self.filenames = index["filename"].astype(str).tolist()
        self.labels = index["label"].to_numpy(np.int64) if "label" in index else np.full(len(arr), -1, np.int64)
        self.classes = sorted(c for c in index.get("class", pd.Series(dtype=str)).dropna().unique() if c)

    @property
    def array(self) -> np.ndarray:
        """The memory-mapped uint8 array (N, H, W, C)."""
        if self._arr is None:
            self._arr = np.load(self.npy, mmap_mode="r")
        return self._arr

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return tuple(self.array.shape)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_arr"] = None  # workers map the file themselves
        return state

    def __len__(self) -> int:
        return len(self.filenames)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return to_float(self.array[i]), int(self.labels[i])

    def batch(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Images ``indices`` as float32 (B, C, H, W), normalised like ``__getitem__``."""
        idx = np.asarray(indices, dtype=np.int64)
        return to_float(self.array[idx])

    def iter_batches(self, batch_size: int, shuffle: bool = False, drop_last: bool = False,
                     generator: torch.Generator | None = None
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        """Yield ``(images (B, C, H, W), labels (B,), indices (B,))``; shuffled with ``generator`` if asked."""
        n = len(self)
        order = torch.randperm(n, generator=generator).numpy() if shuffle else np.arange(n)
        stop = n - n % batch_size if drop_last else n
        for s in range(0, stop, batch_size):
            idx = order[s:s + batch_size]
            yield self.batch(idx), torch.from_numpy(self.labels[idx]), idx


class PackedLoader:
    """Batches of a ``PackedImages`` in the form of ``lib.data.make_loader``: ``(x, labels, filenames, bad=[])``.

    Used by train.py and test.py wherever an image folder is accepted; the
    shuffle order comes from ``generator`` (re-seeded per epoch by the
    training loop, as for folders).
    """

    def __init__(self, dataset: PackedImages, batchsize: int, shuffle: bool = False, drop_last: bool = False,
                 generator: torch.Generator | None = None) -> None:
        self.dataset, self.batchsize, self.shuffle, self.drop_last = dataset, batchsize, shuffle, drop_last
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batchsize if self.drop_last else -(-n // self.batchsize)

    def __iter__(self):
        from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

        # the same samplers as a DataLoader over the image folder: same seed, same batches
        sampler = RandomSampler(self.dataset, generator=self.generator) if self.shuffle else SequentialSampler(self.dataset)
        names = self.dataset.filenames
        for idx in BatchSampler(sampler, self.batchsize, self.drop_last):
            yield self.dataset.batch(idx), torch.from_numpy(self.dataset.labels[idx]), [names[i] for i in idx], []
