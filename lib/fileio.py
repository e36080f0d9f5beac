"""Atomic file writing and run records, shared by every part of the project that writes results.

A file is written under a hidden temporary name in its own folder
(``.<name>.<random>.part``: never mistaken for an image or a table by a reader
or a resumed run) and renamed over the final name only when complete, so a
crash or ``kill -9`` leaves either the old file or the whole new one.  The file gets
the mode an ordinary ``open()`` would give it (0666 less the umask, so 0644 under the
usual umask 022), not the owner-only 0600 of :func:`tempfile.mkstemp`: collaborators on a
shared machine can read a run.

:func:`package_versions` and :func:`run_record` are the one place that says which
package versions shaped a result; every run JSON, ``opt.txt`` sibling and checkpoint
carries them.  :func:`write_run_record` writes every run's record; :data:`RUN_RECORDS` names the file of
each kind of run (docs/overview.md lists them).
"""
from __future__ import annotations

import csv
import json
import os
import platform
import sys
import tempfile
import time
from typing import Any, Callable, Iterable, Sequence

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "write_json", "write_csv", "write_table",
           "package_versions", "run_record", "write_run_record", "RUN_RECORDS", "RECORD_SUFFIX", "record_beside", "cpu_features", "CPU_FEATURES",
           "JpegError", "read_jpeg"]

# Packages whose versions can change the numbers a run produces.  Read from the installed
# metadata, not by importing them: importing torchvision or galsim costs seconds.
VERSIONED_PACKAGES = ("numpy", "torch", "torchvision", "pillow", "scipy", "pandas", "astropy", "galsim",
                      "scikit-learn", "matplotlib")


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; restored at once
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` to produce the file, then rename it onto ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".part")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
    atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (unknown types as strings) atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a small table (header + rows, properly quoted) atomically."""
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            csv.writer(fh).writerows([header, *rows])
    atomic_write(path, write)


class JpegError(ValueError):
    """Bytes or a file that are not a complete, decodable JPEG (the message says why)."""


def read_jpeg(source: bytes | str | os.PathLike, size: tuple[int, int] | None = None):
    """The decoded image (a loaded PIL image) of a complete JPEG: the one validity rule of the project.

    ``source`` is the bytes of a file (a server's answer) or a path. Valid means: starts with the SOI and
    ends with the EOI marker, Pillow reads it as JPEG and decodes every scan (a truncated scan raises),
    and, if ``size`` (width, height) is given, has that size. Raises :class:`JpegError` with the reason
    (OSError where a path cannot be read).
    """
    import io

    from PIL import Image

    if not isinstance(source, bytes):
        with open(source, "rb") as fh:
            source = fh.read()
    if not source.startswith(b"\xff\xd8") or not source.endswith(b"\xff\xd9"):
        raise JpegError(f"not a complete JPEG ({len(source)} bytes, SOI/EOI marker missing)")
    try:
        img = Image.open(io.BytesIO(source))
        if img.format != "JPEG":
            raise JpegError(f"not a JPEG ({img.format})")
        img.load()  # full decode: a truncated scan raises here
    except JpegError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for corrupt data
        raise JpegError(f"JPEG does not decode: {exc}") from None
    if size is not None and img.size != tuple(size):
        raise JpegError(f"image is {img.size[0]}x{img.size[1]}, requested {size[0]}x{size[1]}")
    return img


def write_table(path: str | os.PathLike, df) -> None:
    """Write a pandas DataFrame as CSV (no index column, pandas' quoting) atomically."""
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def package_versions(*extra: str) -> dict[str, str]:
    """Python and the versions of :data:`VERSIONED_PACKAGES` plus ``extra`` ("not installed" if absent)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in (*VERSIONED_PACKAGES, *extra):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


#: CPU features that change a figure (vector width, bf16 arithmetic, AMX tiles): /proc/cpuinfo flag names
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")


def cpu_features(names: Sequence[str] = CPU_FEATURES, cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """Which of ``names`` this CPU has, from the first ``flags`` line of ``cpuinfo``; empty where unknown
    (no /proc/cpuinfo, e.g. macOS)."""
    try:
        with open(cpuinfo) as fh:
            line = next((ln for ln in fh if ln.startswith("flags")), "")
    except OSError:
        return set()
    flags = set(line.partition(":")[2].split())
    return {n for n in names if n in flags}


#: The record of a run that writes one table ``<stem>.csv`` is ``<stem>_run.json`` beside it (record_beside).
RECORD_SUFFIX = "_run.json"

#: The record file of each kind of run (one name per kind; the scripts' and modules' constants point here).
RUN_RECORDS = {
    "train": "run_info.json",                 # train.py: <outf>/<name>/train/
    "score": "<stem>" + RECORD_SUFFIX,        # test.py: beside the score table <stem>.csv (lib/evaluate.py)
    "morphology": "<stem>" + RECORD_SUFFIX,   # morphology.py: beside its table
    "generate": "generation.json",            # make_galaxies.py: beside the images (lib/galaxies/generate.py)
    "rate": "rating_run.json",                # rate.py: in --out (lib/rating/report.py)
    "mock": "mock_observation_run.json",      # mock_observation.py: in --out (lib/mocks/pipeline.py)
    "catalog": "catalog_counts.json",         # SDSS_cutouts/read_catalog.py
    "download": "download_run.json",          # SDSS_cutouts/download_cutouts.py
    "split": "split.json",                    # SDSS_cutouts/split_train_test.py
    "pack": "pack.json",                      # SDSS_cutouts/pack.py (lib/sdss/pack.py)
}


def record_beside(table: str | os.PathLike) -> str:
    """``<stem>_run.json``, the run record beside the table ``<stem>.csv`` that the run wrote."""
    return os.path.splitext(os.fspath(table))[0] + RECORD_SUFFIX


def write_run_record(path: str | os.PathLike, fields: dict, *, indent: int = 2, end: str = "\n") -> dict:
    """Write a run's record ``fields`` + ``versions`` (package_versions(), unless present) as JSON, atomically.

    ``indent`` and ``end`` keep the layout each record has always had (generation.json: 1 and no final
    newline; rating_run.json: 1), so that a record reads byte for byte as before. Returns the record.
    """
    record = fields if "versions" in fields else {**fields, "versions": package_versions()}
    atomic_write_text(path, json.dumps(record, indent=indent, default=str) + end)
    return record


def run_record(**fields: Any) -> dict:
    """A run's record: time, command line, ``fields`` (options, counts, ...) and package versions."""
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv, **fields,
            "versions": package_versions()}
