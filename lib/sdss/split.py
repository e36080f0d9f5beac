"""Seeded train/test split of a cutout folder into the GANomaly layout.

``<dataroot>/<name>/{train,test}/0.normal/<galcount>.jpg``, made of hard links
to the downloaded files (copies only where the filesystem refuses links), plus
``manifest.csv`` (galcount, filename, split, catalogue columns such as
logmstar) so the split can be rebuilt and the rating can bin test galaxies by
stellar mass.

The test set is the first ``ceil(N * test_frac)`` galaxies of a seeded
permutation of the files sorted by galcount (the original: an unseeded
``np.random.shuffle`` and ``i < N * 0.1``). 643,663 files -> 64,367 test,
579,296 train.
"""
from __future__ import annotations

import errno
import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lib.data import IMG_EXTENSIONS
from lib.fileio import JpegError, read_jpeg

__all__ = ["SplitError", "scan_jpegs", "plan_split", "link_split", "build_manifest", "SplitCounts"]

SPLITS = ("train", "test")
CLASS_DIR = "0.normal"  # every SDSS galaxy is "normal" for GANomaly; no empty 1.abnormal (torchvision rejects it)


class SplitError(ValueError):
    """Bad input or an output folder holding another split (one-line message)."""


def _check_jpeg_file(path: str) -> str | None:
    """None if ``path`` is a complete JPEG (lib.fileio.read_jpeg, the project's one rule), else the reason."""
    try:
        read_jpeg(path)
    except JpegError as exc:
        return str(exc)
    except OSError as exc:
        return f"unreadable: {exc}"
    return None


def _sort_key(name: str):
    stem = os.path.splitext(name)[0]
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def scan_jpegs(folder: str, workers: int = 2) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """List the usable JPEG cutouts of ``folder`` (not recursive).

    Returns
    -------
    good : list of str
        File names, sorted by galcount (numeric stem), then by name.
    rejected : list of (str, str)
        Files with an image extension that are not complete JPEGs, with the reason.
    ignored : list of str
        Files without an image extension (status files, CSVs).
    """
    if not os.path.isdir(folder):
        raise SplitError(f"image folder not found: {folder}")
    names = sorted((e.name for e in os.scandir(folder) if e.is_file()), key=_sort_key)
    candidates = [n for n in names if n.lower().endswith(IMG_EXTENSIONS)]
    ignored = [n for n in names if not n.lower().endswith(IMG_EXTENSIONS)]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # Pillow decodes without the GIL
        reasons = list(pool.map(_check_jpeg_file, (os.path.join(folder, n) for n in candidates), chunksize=256))
    good = [n for n, r in zip(candidates, reasons) if r is None]
    rejected = [(n, r) for n, r in zip(candidates, reasons) if r is not None]
    return good, rejected, ignored


def plan_split(names: list[str], test_frac: float = 0.10, seed: int = 0) -> dict[str, list[str]]:
    """Assign each file to train or test; the same names, fraction and seed give the same split."""
    if not 0 <= test_frac < 1:
        raise SplitError(f"test fraction must be in [0, 1), got {test_frac}")
    order = sorted(names, key=_sort_key)  # independent of directory listing order
    n = len(order)
    perm = np.random.default_rng(seed).permutation(n)
    # the original's `i < num * 0.1` = ceil(N * frac); rounding first keeps 30 * 0.1 = 3.0000000000000004 at 3
    n_test = math.ceil(round(n * test_frac, 9))
    test = set(perm[:n_test].tolist())
    return {"test": [order[i] for i in sorted(test)],
            "train": [order[i] for i in range(n) if i not in test]}


@dataclass
class SplitCounts:
    linked: int = 0
    copied: int = 0
    present: int = 0
    errors: list = field(default_factory=list)


def _place(src: str, dst: str, use_copy: bool) -> str:
    """Hard-link (or copy, atomically) ``src`` to ``dst``; returns 'linked', 'copied' or 'present'."""
    if os.path.exists(dst):
        if os.path.samefile(src, dst) or os.path.getsize(src) == os.path.getsize(dst):
            return "present"
        raise SplitError(f"{dst} exists and differs from {src}")
    if not use_copy:
        try:
            os.link(src, dst)
            return "linked"
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
    tmp = f"{dst}.{os.getpid()}.tmp"
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return "copied"


def link_split(src_dir: str, out_dir: str, assignment: dict[str, list[str]], copy: bool = False) -> SplitCounts:
    """Materialise ``assignment`` under ``out_dir/{train,test}/0.normal``; resumable and idempotent.

    Refuses (SplitError) when the output already holds files of another split,
    so two splits are never mixed.
    """
    where = {n: s for s in SPLITS for n in assignment.get(s, [])}
    for split in SPLITS:
        d = os.path.join(out_dir, split, CLASS_DIR)
        os.makedirs(d, exist_ok=True)
        wrong = [n for n in os.listdir(d) if n.lower().endswith(IMG_EXTENSIONS) and where.get(n) != split]
        if wrong:
            raise SplitError(f"{d} holds {len(wrong)} file(s) of another split (e.g. {wrong[:3]}); "
                             "remove the folder or choose another --name")
    counts = SplitCounts()
    use_copy = copy
    for name, split in where.items():
        result = _place(os.path.join(src_dir, name), os.path.join(out_dir, split, CLASS_DIR, name), use_copy)
        use_copy = use_copy or result == "copied"  # one refusal means this filesystem pair cannot link
        setattr(counts, result, getattr(counts, result) + 1)
    return counts


def build_manifest(assignment: dict[str, list[str]], catalog: pd.DataFrame | None) -> pd.DataFrame:
    """One row per image: galcount (Int64, empty for non-numeric names), filename, split, catalogue columns."""
    rows = [(n, s) for s in SPLITS for n in assignment.get(s, [])]
    df = pd.DataFrame(rows, columns=["filename", "split"])
    stems = df["filename"].str.rsplit(".", n=1).str[0]
    df.insert(0, "galcount", pd.to_numeric(stems.where(stems.str.isdigit()), errors="coerce").astype("Int64"))
    if catalog is not None:
        cat = catalog.copy()
        cat["galcount"] = cat["galcount"].astype("Int64")
        df = df.merge(cat, on="galcount", how="left", validate="many_to_one")
    return df.sort_values(["galcount", "filename"], na_position="last").reset_index(drop=True)


