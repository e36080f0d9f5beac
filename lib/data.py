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

Deviations from the original (see README): empty class folders are allowed;
an unreadable image is skipped, counted and reported instead of stopping an
epoch; images can also come from any folder tree or glob (``list_images``)
and from packed uint8 arrays (``lib.packed``).
"""
from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

__all__ = ["IMG_EXTENSIONS", "build_transform", "resize_center_crop", "to_normalized_tensor", "load_image", "find_samples", "list_images",
           "ImageList", "BadFiles", "collate_skip_bad", "make_loader", "DatasetLayoutError"]

# torchvision's ImageFolder extensions (case-insensitive), plus FITS-free image types PIL reads
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
LAYOUT_HELP = "expected <dataroot>/train/<class>/<images> (e.g. data/SDSS/train/0.normal/123.jpg)"


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


def to_normalized_tensor(img: Image.Image) -> torch.Tensor:
    """``ToTensor`` + ``Normalize(0.5, 0.5)``: uint8 (H, W[, C]) -> float32 (C, H, W) in [-1, 1], same operations."""
    arr = np.asarray(img, dtype=np.uint8)
    t = torch.from_numpy(arr.reshape(arr.shape[0], arr.shape[1], -1).copy()).permute(2, 0, 1).contiguous()
    return t.float().div(255).sub_(0.5).div_(0.5)


def build_transform(isize: int, nc: int = 3) -> Callable[[Image.Image], torch.Tensor]:
    """The original's transform: PIL image -> float tensor (nc, isize, isize) in [-1, 1].

    Same result as ``Compose([Resize(isize), CenterCrop(isize), ToTensor(),
    Normalize((0.5,)*nc, (0.5,)*nc)])``; written out so that scoring starts
    without importing torchvision (about a second).
    """
    def transform(img: Image.Image) -> torch.Tensor:
        return to_normalized_tensor(resize_center_crop(img, isize))
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


def find_samples(root: str) -> tuple[list[tuple[str, int]], list[str]]:
    """ImageFolder order: classes sorted, then ``os.walk`` sorted inside each class.

    Returns ``(samples, classes)`` with samples ``(path, class_index)``. Empty
    class folders are allowed (the original's torchvision rejected them).
    """
    if not os.path.isdir(root):
        raise DatasetLayoutError(f"dataset folder not found: {root} ({LAYOUT_HELP})")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir())
    samples = []
    for idx, cls in enumerate(classes):
        for dirpath, _, fnames in sorted(os.walk(os.path.join(root, cls), followlinks=True)):
            samples += [(os.path.join(dirpath, f), idx) for f in sorted(fnames) if _is_image(f)]
    return samples, classes


def list_images(spec: str) -> list[tuple[str, int]]:
    """Images from a folder (searched recursively) or a glob, sorted by path.

    Labels: 0 under a folder named ``0.normal``, 1 under ``1.abnormal``, -1
    otherwise (unknown).
    """
    if any(ch in spec for ch in "*?["):
        paths = [p for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
    elif os.path.isdir(spec):
        paths = [os.path.join(d, f) for d, _, fs in os.walk(spec, followlinks=True) for f in fs if _is_image(f)]
    elif os.path.isfile(spec):
        paths = [spec]
    else:
        raise DatasetLayoutError(f"no such image folder, file or glob: {spec}")
    out = []
    for p in sorted(paths):
        parts = os.path.normpath(p).split(os.sep)
        label = 0 if "0.normal" in parts else 1 if "1.abnormal" in parts else -1
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
    path, reason)`` so that ``collate_skip_bad`` can drop it and report it.
    """

    def __init__(self, samples: Sequence[tuple[str, int]], isize: int, nc: int = 3) -> None:
        self.samples = list(samples)
        self.nc = nc
        self.transform = build_transform(isize, nc)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, label = self.samples[i]
        try:
            return self.transform(load_image(path, self.nc)), label, path, None
        except Exception as exc:  # any decoding problem: report, never stop the epoch
            return None, label, path, f"{type(exc).__name__}: {exc}"


def collate_skip_bad(items):
    """Stack good items; return ``(images (B,C,H,W), labels (B,), paths, bad)``."""
    good = [it for it in items if it[0] is not None]
    bad = [(it[2], it[3]) for it in items if it[0] is None]
    if not good:
        return None, None, [], bad
    x = torch.stack([it[0] for it in good])
    y = torch.tensor([it[1] for it in good], dtype=torch.long)
    return x, y, [it[2] for it in good], bad


def make_loader(dataset: Dataset, batchsize: int, *, shuffle: bool, drop_last: bool, workers: int,
                generator: torch.Generator | None = None, pin_memory: bool = False) -> DataLoader:
    """A DataLoader yielding ``collate_skip_bad`` batches."""
    return DataLoader(dataset, batch_size=batchsize, shuffle=shuffle, drop_last=drop_last,
                      num_workers=workers, collate_fn=collate_skip_bad, generator=generator,
                      pin_memory=pin_memory, persistent_workers=workers > 0)
