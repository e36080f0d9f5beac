"""Everything rate.py reads beside a score CSV: the CSV itself, its latents and its images' metadata.

For a score table ``scores/NAME.csv`` written by ``test.py --out_csv scores/NAME.csv``:

* ``scores/NAME_latents.npz`` (``test.py --save_latents``; arrays ``filenames``, ``latent_i``,
  ``latent_o``, ``ascore``): the latent vectors of the same images, matched to the CSV's rows by
  file name (:func:`read_latents`);
* the images' ``metadata.csv`` (make_galaxies.py, mock_observation.py: columns ``file``, relative
  to the image folder, and ``galaxy``, ``logmstar`` ...), given as ``--metadata NAME=CSV`` or found
  through ``scores/NAME_run.json``, where test.py recorded the image folder it scored
  (``options.images``) (:func:`find_metadata`), joined to the scores by file name
  (:func:`attach_metadata`).

Every problem is a one-line :class:`lib.rating.RatingError` naming the file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from lib.evaluate import LATENTS, RUN, side_file
from lib.rating.inputs import RatingError

METADATA_NAME = "metadata.csv"


def parse_named(spec: str) -> tuple[str, Path]:
    """Split ``NAME=path.csv`` (or a bare path, named after its stem) into (name, path)."""
    if "=" in spec:
        name, path = spec.split("=", 1)
    else:
        name, path = Path(spec).stem, spec
    if not name or not path:
        raise RatingError(f"expected NAME=CSV, got {spec!r}")
    return name, Path(path)


def read_scores(path: Path, name: str) -> pd.DataFrame:
    """Read one score CSV, turning every reading problem into a one-line :class:`RatingError`."""
    if not path.is_file():
        raise RatingError(f"{name}: no such file {str(path)!r}")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RatingError(f"{name}: cannot read {str(path)!r} as CSV ({str(exc).splitlines()[0]})") from None
    return df


def latents_path(csv_path: Path) -> Path:
    """``<csv stem>_latents.npz`` beside the CSV (what ``test.py --save_latents`` writes)."""
    return Path(side_file(csv_path, LATENTS))


def read_latents(csv_path: Path, df: pd.DataFrame, name: str,
                 filename_col: str = "filename") -> dict[str, np.ndarray] | None:
    """The latents beside a score CSV, reordered to the CSV's rows; None when there is no file.

    Returns
    -------
    dict or None
        ``latent_i`` (N, nz) and ``latent_o`` (N, nz) in the CSV's row order.

    Raises
    ------
    RatingError
        Unreadable file, missing arrays, or rows that do not match the CSV's file names.
    """
    path = latents_path(csv_path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise RatingError(f"{name}: cannot read latents {str(path)!r} ({str(exc).splitlines()[0]})") from None
    missing = [k for k in ("filenames", "latent_i", "latent_o") if k not in arrays]
    if missing:
        raise RatingError(f"{name}: latents {str(path)!r} lack {', '.join(missing)}")
    if filename_col not in df.columns:
        raise RatingError(f"{name}: {str(csv_path)!r} has no {filename_col!r} column to match latents {str(path)!r}")
    files = pd.Index(arrays["filenames"].astype(str))
    wanted = df[filename_col].astype(str)
    pos = files.get_indexer(wanted)
    if len(files) != len(wanted) or files.has_duplicates or (pos < 0).any():
        raise RatingError(f"{name}: latents {str(path)!r} do not match the rows of {str(csv_path)!r} "
                          f"({len(files)} latent rows, {len(wanted)} CSV rows, {int((pos < 0).sum())} CSV files "
                          "without latents); re-run test.py --save_latents")
    n = len(files)
    return {k: np.asarray(arrays[k]).reshape(n, -1)[pos] for k in ("latent_i", "latent_o")}


def find_metadata(csv_path: Path, name: str,
                  explicit: Path | None = None) -> tuple[pd.DataFrame, Path | None, str] | None:
    """The images' metadata of one score table: ``(metadata, image folder or None, where it came from)``.

    ``explicit`` (``--metadata NAME=CSV``) wins; otherwise the folder that test.py scored, read from
    ``<csv stem>_run.json`` (``options.images``), if it holds ``metadata.csv``.  None when neither exists.
    """
    if explicit is not None:
        if not explicit.is_file():
            raise RatingError(f"{name}: no such metadata file {str(explicit)!r}")
        return _read_meta(explicit, name), None, f"--metadata {explicit}"
    run = Path(side_file(csv_path, RUN))
    if not run.is_file():
        return None
    try:
        images = json.loads(run.read_text()).get("options", {}).get("images") or ""
    except (OSError, ValueError, AttributeError):
        raise RatingError(f"{name}: cannot read {str(run)!r} as a test.py run record") from None
    folder = Path(images)
    if not folder.is_dir():
        folder = folder.parent
    meta = folder / METADATA_NAME
    if not images or not meta.is_file():
        return None
    return _read_meta(meta, name), folder, f"{meta} (image folder recorded in {run.name})"


def _read_meta(path: Path, name: str) -> pd.DataFrame:
    try:
        meta = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RatingError(f"{name}: cannot read metadata {str(path)!r} ({str(exc).splitlines()[0]})") from None
    if "file" not in meta.columns:
        raise RatingError(f"{name}: metadata {str(path)!r} has no 'file' column")
    return meta


def _norm(p: str) -> str:
    return os.path.normpath(str(p)).replace(os.sep, "/")


def attach_metadata(df: pd.DataFrame, meta: pd.DataFrame, images: Path | None, name: str,
                    source: str = "metadata", filename_col: str = "filename") -> pd.DataFrame:
    """The score table with the metadata columns it lacks, matched by file name.

    A score row matches the metadata row whose ``file`` equals the row's path relative to the image
    folder; failing that, the same base name (when base names are unique in the metadata).

    Raises
    ------
    RatingError
        No filename column, or score rows without a metadata row.
    """
    if filename_col not in df.columns:
        raise RatingError(f"{name}: the score table has no {filename_col!r} column to join {source}")
    meta_files = meta["file"].astype(str).map(_norm)
    by_rel = pd.Series(np.arange(len(meta)), index=meta_files)
    base = meta_files.map(lambda f: f.rsplit("/", 1)[-1])
    by_base = pd.Series(np.arange(len(meta)), index=base) if base.is_unique else pd.Series(dtype=int)
    root = _norm(os.path.abspath(images)) if images is not None else None
    rows = []
    for f in df[filename_col].astype(str):
        key = _norm(os.path.abspath(f))
        rel = key[len(root) + 1:] if root and key.startswith(root + "/") else None
        if rel is not None and rel in by_rel.index:
            rows.append(int(by_rel[rel]))
        elif _norm(f) in by_rel.index:
            rows.append(int(by_rel[_norm(f)]))
        else:
            b = key.rsplit("/", 1)[-1]
            rows.append(int(by_base[b]) if b in by_base.index else -1)
    rows = np.array(rows)
    if (rows < 0).any():
        raise RatingError(f"{name}: {int((rows < 0).sum())} of {len(rows)} scored images are not in {source} "
                          f"(e.g. {df[filename_col].iloc[int(np.argmax(rows < 0))]!r})")
    extra = [c for c in meta.columns if c not in df.columns and c != "file"]
    out = df.copy()
    for c in extra:
        out[c] = meta[c].to_numpy()[rows]
    return out
