"""Where galaxies come from: the inputs of a run listed as :class:`Source` s, and each read by its reader.

=============  =========================================================  ============================
kind           input                                                      reader
=============  =========================================================  ============================
``npz``        the documented particle file, one galaxy                   readers.read_npz
``hdf5``       the documented particle file, one group per galaxy         readers.read_hdf5
``tng``        IllustrisTNG snapshot (chunks) or web-API cutout           tng.read_tng
``eagle``      EAGLE snapshot (chunks)                                    eagle.read_eagle
``fire``       FIRE / GIZMO snapshot (chunks)                             fire.read_fire
``pynbody``    any other snapshot pynbody reads (NIHAO Tipsy, RAMSES...)  readers.read_snapshot
=============  =========================================================  ============================

An HDF5 file in the Gadget layout (a ``Header`` and ``PartType<N>`` groups) is one galaxy of the
code that wrote it (detected from its star fields, gadget.detect_code), whether given to
``--particles`` (a cutout: that file alone) or ``--snapshot`` (``whole``: every chunk of the
snapshot, or the particles of ``--halo`` / ``--subhalo``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from lib.mocks import eagle, fire, gadget, tng
from lib.mocks.readers import MockInputError, Particles, read_hdf5, read_npz, read_snapshot, safe_name

PARTICLE_EXTS = (".npz", ".h5", ".hdf5")
CODE_READERS = {"tng": tng.read_tng, "eagle": eagle.read_eagle, "fire": fire.read_fire}


@dataclass(frozen=True)
class Source:
    """One galaxy's input: ``kind`` (module docstring), the path, and a group / halo / subhalo."""

    kind: str
    path: str
    key: str | int | None = None  # hdf5: the group; pynbody and codes: the halo (FoF group)
    subhalo: int | None = None
    whole: bool = False  # codes: every chunk of the snapshot (--snapshot), not this file alone (a cutout)
    groupcat: str | None = None  # tng: the group catalogue (a chunk or folder) if not beside the snapshot

    @property
    def label(self) -> str:
        if self.kind == "hdf5":
            return f"{self.path} (group {self.key})"
        parts = [f"halo {self.key}"] if self.key is not None else []
        parts += [f"subhalo {self.subhalo}"] if self.subhalo is not None else []
        return f"{self.path} ({', '.join(parts)})" if parts else self.path

    @property
    def name(self) -> str:
        stem = os.path.basename(os.path.normpath(self.path))
        if self.kind == "npz":
            return safe_name(os.path.splitext(stem)[0])
        if self.kind == "hdf5":
            return safe_name(str(self.key))
        if self.kind in CODE_READERS:
            stem = gadget.snapshot_stem(self.path, self.whole)
        else:
            root, ext = os.path.splitext(stem)  # Gadget/SWIFT HDF5 snapshots: drop the extension only
            stem = root if ext.lower() in (".hdf5", ".h5", ".hdf") else stem  # (Tipsy 'g8.26e11.01024' keeps dots)
        suffix = (f"-h{self.key}" if self.key is not None else "") + (
            f"-s{self.subhalo}" if self.subhalo is not None else "")
        return safe_name(stem + suffix)


def _hdf5_groups(path: str) -> list[str]:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return sorted(k for k, v in f.items() if isinstance(v, h5py.Group))
    except OSError as exc:
        raise MockInputError(f"{path}: cannot read the HDF5 file ({exc})") from None


def code_of(path: str) -> str:
    """The code that wrote a Gadget-layout HDF5 file, or a one-line error."""
    code = gadget.detect_code(path)
    if code is None:
        raise MockInputError(f"{path}: a Gadget-HDF5 file without PartType4 star formation times (not IllustrisTNG, "
                             "EAGLE or FIRE): give it to --snapshot for pynbody, or convert it to a particle file")
    return code


def snapshot_source(path: str, halo: int | None = None, subhalo: int | None = None,
                    groupcat: str | None = None) -> Source:
    """``--snapshot PATH``: a Gadget-layout file of TNG / EAGLE / FIRE to its reader, anything else to pynbody."""
    if path.lower().endswith((".hdf5", ".h5")) and os.path.isfile(path) and gadget.is_gadget_layout(path):
        code = gadget.detect_code(path)
        if code is not None:
            return Source(code, path, halo, subhalo, whole=True, groupcat=groupcat)
    if subhalo is not None:
        raise MockInputError(f"{path}: --subhalo needs an IllustrisTNG or EAGLE snapshot (pynbody halos: --halo)")
    return Source("pynbody", path, halo)


def list_sources(paths: list[str]) -> tuple[list[Source], list[str]]:
    """Galaxies in the given NPZ / HDF5 files or folders (searched recursively, sorted).

    Returns the sources and one-line problems (missing path, unreadable HDF5 file, no
    particle files in a folder) for the caller to report; the other galaxies still run.
    """
    files, problems = [], []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs
                           if f.lower().endswith(PARTICLE_EXTS) and not f.startswith("."))
            if not found:
                problems.append(f"{p}: no particle files (*.npz, *.h5, *.hdf5) in this folder")
            files += found
        elif os.path.isfile(p):
            files.append(p)
        else:
            problems.append(f"{p}: no such file or folder")
    sources = []
    for f in files:
        if f.lower().endswith(".npz"):
            sources.append(Source("npz", f))
        elif f.lower().endswith((".h5", ".hdf5")):
            try:
                if gadget.is_gadget_layout(f):  # a cutout: one galaxy of the code that wrote it
                    sources.append(Source(code_of(f), f))
                    continue
                groups = _hdf5_groups(f)
            except MockInputError as exc:
                problems.append(str(exc))
                continue
            if not groups:
                problems.append(f"{f}: no groups (one group per galaxy expected)")
            sources += [Source("hdf5", f, g) for g in groups]
        else:
            problems.append(f"{f}: not a particle file (expected .npz, .h5 or .hdf5)")
    return sources, problems


def read_source(src: Source) -> Particles:
    """Read the galaxy of ``src``."""
    if src.kind == "npz":
        return read_npz(src.path)
    if src.kind == "hdf5":
        return read_hdf5(src.path, str(src.key))
    if src.kind == "tng":
        return tng.read_tng(src.path, src.name, src.label, whole=src.whole, halo=src.key, subhalo=src.subhalo,
                            groupcat=src.groupcat)
    if src.kind in CODE_READERS:
        return CODE_READERS[src.kind](src.path, src.name, src.label, whole=src.whole, halo=src.key,
                                      subhalo=src.subhalo)
    return read_snapshot(src.path, src.key, name=src.name, label=src.label)
