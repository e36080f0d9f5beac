"""Atomic file writing, shared by every part of the project that writes results.

A file is written under a hidden temporary name in its own folder
(``.<name>.<random>.part``: never mistaken for an image or a table by a reader
or a resumed run) and renamed over the final name only when complete, so a
crash or ``kill -9`` leaves either the old file or the whole new one.
"""
from __future__ import annotations

import csv
import json
import os
import tempfile
from typing import Any, Callable, Iterable, Sequence

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "write_json", "write_csv"]


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` to produce the file, then rename it onto ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".part")
    os.close(fd)
    try:
        write(tmp)
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
