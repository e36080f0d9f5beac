"""Images on disk -> normalised tensors, the way the original GANomaly loader does it.

Layout (as the paper's repository): ``<dataroot>/{train,test}/<class>/<image>``,
classes sorted by name (``0.normal``, ``1.abnormal``), files sorted by name
inside each class (Python string order, as torchvision's ImageFolder).

Transform (identical to the original): ``Resize(isize)`` (short side, PIL
bilinear) -> ``CenterCrop(isize)`` -> ``ToTensor`` -> ``Normalize(0.5, 0.5)``,
so pixels end up in [-1, 1]. Images are opened with PIL, which sniffs the
content, so the paper's JPEG bytes saved under ``.png`` names load fine; RGBA
and greyscale are converted with ``.convert("RGB")`` for nc=3 (as the
original) and ``.convert("L")`` for nc=1.

Packed datasets (``SDSS_cutouts/pack.py`` writes them, :mod:`lib.sdss.pack`): one
memory-mappable uint8 array instead of 600k JPEG files, a folder holding ``pack.npy``
(uint8 (N, H, W, C), pixels after ``Resize + CenterCrop``), ``index.csv`` (``index,
filename, label, class``) and ``pack.json``.  :class:`PackedImages` accepts the folder or
the ``.npy`` file; its items are normalised exactly as the folder transform.

:func:`open_images` is the one entrance for train.py and test.py: a class-folder tree, any
folder (searched recursively), an image file, a glob or a packed dataset, checked once
against the network's (isize, isize, nc). Its batches come from :mod:`lib.loaders` (decoding
threads, prefetching, uint8 batches normalised on the network's device).

Labels: 0 for images under a folder named ``0.normal``, 1 under ``1.abnormal`` in every
layout; other class folders get their sorted index (ImageFolder); -1 = unknown.

Deviations from the original (docs/deviations.md): empty class folders are allowed;
an unreadable image is skipped, counted and reported instead of stopping an
epoch; images can also come from any folder tree or glob (``list_images``)
and from packed uint8 arrays; ``1.abnormal`` alone is label 1, not class index 0.
"""
from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

# the batch loaders live in lib/loaders.py: import them from there (this module only uses them)
from lib.loaders import PackedLoader, iter_image_batches, make_loader, normalize_uint8

__all__ = ["IMG_EXTENSIONS", "build_transform", "resize_center_crop", "to_normalized_tensor", "load_image",
           "find_samples", "list_images", "class_label", "ImageList", "BadFiles", "DatasetLayoutError", "PackError",
           "is_packed", "resolve_packed", "to_float", "PackedImages", "ImageSource", "open_images"]

# torchvision's ImageFolder extensions (case-insensitive), plus FITS-free image types PIL reads
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
LAYOUT_HELP = "expected <dataroot>/train/<class>/<images> (e.g. data/SDSS/train/0.normal/123.jpg)"
KNOWN_CLASSES = {"0.normal": 0, "1.abnormal": 1}  # the paper's folder names carry the label


class DatasetLayoutError(ValueError):
    """A dataset folder is missing or holds no images (a user error, reported in one line)."""


def resize_center_crop(img: Image.Image, isize: int) -> Image.Image:
    """torchvision's ``Resize(isize)`` then ``CenterCrop(isize)`` on a PIL image, without importing torchvision.

    The short side becomes isize (PIL bilinear, antialiased; the long side is
    ``int(isize * long / short)``), then the central isize x isize square is
    cut (offsets rounded as torchvision does). A 64x64 cutout at isize 64 is
    returned unchanged. ``tests/test_data.py`` checks equality with torchvision.
    """
    w, h = img.size
    if (w, h) != (isize, isize):
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(isize * long / short)
        size = (isize, new_long) if w <= h else (new_long, isize)
        if size != (w, h):
            img = img.resize(size, Image.BILINEAR)
        w, h = img.size
        top, left = int(round((h - isize) / 2.0)), int(round((w - isize) / 2.0))
        img = img.crop((left, top, left + isize, top + isize))
    return img


def to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    """uint8 (H, W[, C]) image -> uint8 tensor (C, H, W), not yet normalised."""
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.reshape(arr.shape[0], arr.shape[1], -1).copy()).permute(2, 0, 1)


def to_normalized_tensor(img: Image.Image) -> torch.Tensor:
    """``ToTensor`` + ``Normalize(0.5, 0.5)``: uint8 (H, W[, C]) -> float32 (C, H, W) in [-1, 1], same operations."""
    return normalize_uint8(to_uint8_tensor(img).contiguous())


def build_transform(isize: int, nc: int = 3, raw: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    """The original's transform: PIL image -> float tensor (nc, isize, isize) in [-1, 1] (uint8 if ``raw``).

    Same result as ``Compose([Resize(isize), CenterCrop(isize), ToTensor(),
    Normalize((0.5,)*nc, (0.5,)*nc)])``; written out so that scoring starts
    without importing torchvision (about a second). ``raw`` leaves the normalisation to the consumer's
    device (:func:`lib.loaders.normalize_uint8`: the same numbers, computed where the network runs).
    """
    def transform(img: Image.Image) -> torch.Tensor:
        img = resize_center_crop(img, isize)
        return to_uint8_tensor(img) if raw else to_normalized_tensor(img)
    return transform


def load_image(path: str, nc: int = 3) -> Image.Image:
    """Open an image fully (decode now, so a truncated file fails here) in the mode for ``nc``."""
    if nc not in (1, 3):
        raise ValueError(f"image files give 1 or 3 channels, not nc={nc}; use a packed dataset for other band counts")
    with Image.open(path) as img:
        img.load()
        return img.convert("RGB" if nc == 3 else "L")


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS)


def class_label(name: str, index: int) -> int:
    """Label of a class folder: 0 for ``0.normal``, 1 for ``1.abnormal``, else its sorted ``index``.

    The original used the sorted index alone, so a test folder holding only ``1.abnormal``
    labelled its images 0 (normal); the folder name is what users mean.
    """
    return KNOWN_CLASSES.get(name, index)


def find_samples(root: str) -> tuple[list[tuple[str, int]], list[str]]:
    """ImageFolder order: classes sorted, then ``os.walk`` sorted inside each class.

    Returns ``(samples, classes)`` with samples ``(path, label)``, the label from
    :func:`class_label`. Empty class folders are allowed (the original's torchvision
    rejected them).
    """
    if not os.path.isdir(root):
        raise DatasetLayoutError(f"dataset folder not found: {root} ({LAYOUT_HELP})")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    samples = []
    for idx, cls in enumerate(classes):
        for dirpath, _, fnames in sorted(os.walk(os.path.join(root, cls), followlinks=True)):
            samples += [(os.path.join(dirpath, f), class_label(cls, idx)) for f in sorted(fnames) if _is_image(f)]
    return samples, classes


def list_images(spec: str, extensions: Sequence[str] = IMG_EXTENSIONS) -> list[tuple[str, int]]:
    """Images from a folder (searched recursively, symbolic links followed) or a glob, sorted by path.

    The one listing rule of the project (lib/rating/morphology.py passes its FITS-aware ``extensions``;
    case-insensitive). Labels: 0 under a folder named ``0.normal``, 1 under ``1.abnormal``, -1
    otherwise (unknown).
    """
    extensions = tuple(extensions)
    if any(ch in spec for ch in "*?["):
        paths = [p for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
    elif os.path.isdir(spec):
        paths = [os.path.join(d, f) for d, _, fs in os.walk(spec, followlinks=True) for f in fs
                 if f.lower().endswith(extensions)]
    elif os.path.isfile(spec):
        paths = [spec]
    else:
        raise DatasetLayoutError(f"no such image folder, file or glob: {spec}")
    out = []
    for p in sorted(paths):
        parts = os.path.normpath(p).split(os.sep)
        label = next((KNOWN_CLASSES[c] for c in reversed(parts) if c in KNOWN_CLASSES), -1)
        out.append((p, label))
    return out


@dataclass
class BadFiles:
    """Files that could not be read, with the reason; filled while loading."""
    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, batch_bad: Sequence[tuple[str, str]]) -> None:
        for path, reason in batch_bad:
            if len(self.items) < 100 or len(self.items) % 1000 == 0:
                warnings.warn(f"skipped unreadable image {path}: {reason}", stacklevel=2)
            self.items.append((path, reason))


class ImageList(Dataset):
    """(path, label) pairs -> (tensor, label, path); unreadable files yield an error marker.

    ``__getitem__`` never raises for a bad file: it returns ``(None, label,
    path, reason)`` so that ``lib.loaders.collate_skip_bad`` can drop it and report it.
    """

    def __init__(self, samples: Sequence[tuple[str, int]], isize: int, nc: int = 3, raw: bool = False) -> None:
        self.samples = list(samples)
        self.nc = nc
        self.transform = build_transform(isize, nc, raw)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        try:
            return self.transform(load_image(path, self.nc)), label, path, None
        except Exception as exc:  # any decoding problem: report, never stop the epoch
            return None, label, path, f"{type(exc).__name__}: {exc}"


# ------------------------------------------------------------------ packed datasets
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
    return normalize_uint8(t.contiguous())


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
        import pandas as pd  # imported here: pandas costs half a second of start-up

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


# ------------------------------------------------------------------ one entrance
@dataclass
class ImageSource:
    """An opened image source: image files (``samples``) or a packed dataset (``packed``)."""
    where: str
    isize: int
    nc: int
    samples: list[tuple[str, int]] = field(default_factory=list)
    packed: PackedImages | None = None

    def __len__(self) -> int:
        return len(self.packed) if self.packed is not None else len(self.samples)

    @property
    def with_label(self) -> bool:
        """True when at least one image has a known label (0 or 1)."""
        labels = self.packed.labels if self.packed is not None else [label for _, label in self.samples]
        return bool((np.asarray(labels) >= 0).any())

    def scoring_batches(self, batchsize: int, start: int = 0, stop: int | None = None, *, workers: int = 1,
                        raw: bool = False, pin: bool = False):
        """Batches ``(x, labels, paths, bad)`` of items ``start:stop`` in file order, for scoring (``raw``:
        uint8 x, normalised by the consumer; ``pin``: page-locked, for CUDA)."""
        stop = len(self) if stop is None else stop
        if self.packed is not None:
            rows = list(range(start, stop))
            chunks = [rows[i:i + batchsize] for i in range(0, len(rows), batchsize)]
            return PackedLoader(self.packed, batchsize, batch_sampler=chunks, raw=raw, pin=pin)
        isize, nc, transform = self.isize, self.nc, build_transform(self.isize, self.nc)

        def decode(path: str):  # raw: uint8 (H, W, C) numpy, normalised later on the network's device
            img = resize_center_crop(load_image(path, nc), isize)
            return np.asarray(img, dtype=np.uint8).reshape(isize, isize, nc) if raw else transform(img)
        return iter_image_batches(self.samples[start:stop], decode, batchsize, workers, pin)

    def training_loader(self, batchsize: int, *, drop_last: bool, generator: torch.Generator, workers: int = 0,
                        pin_memory: bool = False, world=None, raw: bool = False):
        """The shuffled training loader; its epochs are ordered by ``generator``. Under torchrun (``world``,
        lib.distributed.World) each rank gets its slice of every global batch of ``batchsize``."""
        sampler = None
        if world is not None and world.distributed:
            from lib.distributed import ShardedBatchSampler
            sampler = ShardedBatchSampler(len(self), batchsize, world, drop_last=drop_last, generator=generator)
        if self.packed is not None:
            return PackedLoader(self.packed, batchsize, shuffle=True, drop_last=drop_last, generator=generator,
                                batch_sampler=sampler, raw=raw, pin=pin_memory)
        return make_loader(ImageList(self.samples, self.isize, self.nc, raw), batchsize, shuffle=True,
                           drop_last=drop_last, workers=workers, generator=generator, pin_memory=pin_memory,
                           batch_sampler=sampler)


def open_images(where: str, isize: int, nc: int, *, classes: bool = False, what: str = "images") -> ImageSource:
    """Open ``where`` and check it once against the network's (isize, isize, nc).

    ``where`` is a packed dataset (folder with pack.npy + index.csv, or the .npy file),
    or, with ``classes=True``, a class-folder root ``<root>/<class>/<images>`` (ImageFolder
    order, as the original), otherwise a folder searched recursively, an image file or a
    glob.  Raises :class:`DatasetLayoutError` (one line for the user, naming ``what`` was
    looked for) when nothing usable is there.
    """
    if is_packed(where) or where.endswith(".npy"):
        try:
            ds = PackedImages(where)
        except PackError as exc:
            raise DatasetLayoutError(str(exc)) from None
        if ds.shape[1:] != (isize, isize, nc):
            raise DatasetLayoutError(f"packed dataset {where} holds {ds.shape[1:]} images (H, W, C); the network "
                                     f"expects ({isize}, {isize}, {nc}): set --isize and --nc")
        return ImageSource(where, isize, nc, packed=ds)
    if nc not in (1, 3):
        raise DatasetLayoutError(f"--nc {nc}: image files give 1 or 3 channels; pack other band counts into a "
                                 "uint8 (N, H, W, C) array (see SDSS_cutouts/pack.py)")
    samples = find_samples(where)[0] if classes else list_images(where)
    if not samples:
        raise DatasetLayoutError(f"no {what} in {where}" + (f" ({LAYOUT_HELP})" if classes else ""))
    return ImageSource(where, isize, nc, samples=samples)
