"""Particle readers: the documented particle file (NPZ, HDF5) and pynbody snapshots.

Every reader returns a :class:`Particles` in pynbody's units, whatever the source:

==============  ========  =============================================================
field           shape     meaning (unit)
==============  ========  =============================================================
``pos``         (N, 3)    star positions (kpc)
``vel``         (N, 3)    star velocities (km/s)
``mass``        (N,)      current star particle mass (Msun)
``massform``    (N,)      initial (formation) mass (Msun); optional, else ``mass``
``age``         (N,)      stellar age (Gyr)
``metals``      (N,)      metal mass fraction Z
``smooth``      (N,)      smoothing length (kpc, kernel support 2h); optional
``gas_pos``     (Ng, 3)   gas positions (kpc); the gas fields are optional (dust only)
``gas_vel``     (Ng, 3)   gas velocities (km/s)
``gas_mass``    (Ng,)     gas mass (Msun)
``gas_temp``    (Ng,)     gas temperature (K)
``gas_smooth``  (Ng,)     gas smoothing length (kpc); optional
==============  ========  =============================================================

One galaxy per NPZ file (named after the file), one group per galaxy in an HDF5 file
(named after the group, datasets named as above).  Bad input raises
:class:`MockInputError` with one line naming the file and the problem.
"""
from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field

import numpy as np

STAR_FIELDS = ("pos", "vel", "mass", "age", "metals")
OPTIONAL_STAR = ("massform", "smooth")
GAS_FIELDS = ("gas_pos", "gas_vel", "gas_mass", "gas_temp")
OPTIONAL_GAS = ("gas_smooth",)
PARTICLE_EXTS = (".npz", ".h5", ".hdf5")


class MockInputError(ValueError):
    """Unusable input for one galaxy (the message names the file and the problem)."""


@dataclass
class Particles:
    """Star (and optional gas) particles of one galaxy, in kpc, km/s, Msun, Gyr, K."""

    name: str
    label: str
    arrays: dict = field(repr=False)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def get(self, key: str):
        return self.arrays.get(key)

    @property
    def n_star(self) -> int:
        return len(self.arrays["pos"])

    @property
    def n_gas(self) -> int:
        return len(self.arrays["gas_pos"]) if "gas_pos" in self.arrays else 0

    def seed_key(self) -> int:
        """A stable integer from the galaxy name: per-galaxy random streams do not depend on file order."""
        return zlib.crc32(self.name.encode("utf-8"))


def safe_name(text: str) -> str:
    """A galaxy name usable in file names: characters other than letters, digits, '.', '-', '_' become '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "galaxy"


def validate(arrays: dict, name: str, label: str) -> Particles:
    """Check fields, shapes, finiteness and signs; return float64 :class:`Particles`."""
    missing = [k for k in STAR_FIELDS if k not in arrays]
    if missing:
        raise MockInputError(f"{label}: missing field(s) {', '.join(missing)} (needs {', '.join(STAR_FIELDS)})")
    gas_given = [k for k in GAS_FIELDS if k in arrays]
    if gas_given and len(gas_given) < len(GAS_FIELDS):
        lacking = [k for k in GAS_FIELDS if k not in arrays]
        raise MockInputError(f"{label}: gas fields are all or none; missing {', '.join(lacking)}")
    out = {}
    keys = [k for k in (*STAR_FIELDS, *OPTIONAL_STAR, *GAS_FIELDS, *OPTIONAL_GAS) if k in arrays]
    for k in keys:
        try:
            a = np.asarray(arrays[k], dtype=np.float64)
        except (TypeError, ValueError):
            raise MockInputError(f"{label}: field {k!r} is not numeric") from None
        ref = "gas_pos" if k.startswith("gas_") else "pos"  # validated first: same row count for the rest
        vector = k in ("pos", "vel", "gas_pos", "gas_vel")
        if (vector and (a.ndim != 2 or a.shape[1] != 3)) or (not vector and a.ndim != 1):
            raise MockInputError(f"{label}: field {k!r} has shape {a.shape}; expected {'(N, 3)' if vector else '(N,)'}")
        if ref in out and len(a) != len(out[ref]):
            raise MockInputError(f"{label}: field {k!r} has {len(a)} rows, {ref!r} has {len(out[ref])}")
        bad = ~np.isfinite(a)
        if bad.any():
            raise MockInputError(f"{label}: field {k!r} has {int(bad.any(axis=-1).sum() if vector else bad.sum())} "
                                 "NaN or infinite values")
        out[k] = a
    if len(out["pos"]) == 0:
        raise MockInputError(f"{label}: no star particles")
    for k in ("mass", "massform", "age", "gas_mass", "gas_temp", "smooth", "gas_smooth"):
        if k in out and (out[k] < 0).any():
            raise MockInputError(f"{label}: {int((out[k] < 0).sum())} negative value(s) in {k!r} "
                                 f"(min {out[k].min():.4g})")
    if out["mass"].sum() <= 0:
        raise MockInputError(f"{label}: the star particles have zero total mass")
    if "massform" not in out:
        out["massform"] = out["mass"]
    return Particles(name=safe_name(name), label=label, arrays=out)


# ----------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class Source:
    """Where one galaxy comes from: ``kind`` npz | hdf5 | pynbody, the path, and a group or halo."""

    kind: str
    path: str
    key: str | int | None = None

    @property
    def label(self) -> str:
        if self.kind == "hdf5":
            return f"{self.path} (group {self.key})"
        if self.kind == "pynbody" and self.key is not None:
            return f"{self.path} (halo {self.key})"
        return self.path

    @property
    def name(self) -> str:
        stem = os.path.basename(os.path.normpath(self.path))
        if self.kind == "npz":
            return safe_name(os.path.splitext(stem)[0])
        if self.kind == "hdf5":
            return safe_name(str(self.key))
        root, ext = os.path.splitext(stem)  # Gadget/SWIFT HDF5 snapshots: drop the extension only
        stem = root if ext.lower() in (".hdf5", ".h5", ".hdf") else stem  # (Tipsy's 'g8.26e11.01024' keeps its dots)
        return safe_name(stem if self.key is None else f"{stem}-h{self.key}")


def _hdf5_groups(path: str) -> list[str]:
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return sorted(k for k, v in f.items() if isinstance(v, h5py.Group))
    except OSError as exc:
        raise MockInputError(f"{path}: cannot read the HDF5 file ({exc})") from None


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


# ----------------------------------------------------------------------------- readers
def read_npz(path: str) -> Particles:
    """One galaxy from an NPZ file (fields in the module docstring)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        raise MockInputError(f"{path}: not an NPZ file (not a zip archive of .npy arrays)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as exc:
        raise MockInputError(f"{path}: cannot read the NPZ file ({exc})") from None
    return validate(arrays, Source("npz", path).name, path)


def read_hdf5(path: str, group: str) -> Particles:
    """One galaxy from a group of an HDF5 file (datasets named as the NPZ fields)."""
    import h5py
    src = Source("hdf5", path, group)
    try:
        with h5py.File(path, "r") as f:
            if group not in f:
                raise MockInputError(f"{src.label}: no such group")
            arrays = {k: v[()] for k, v in f[group].items() if isinstance(v, h5py.Dataset)}
    except OSError as exc:
        raise MockInputError(f"{src.label}: cannot read the HDF5 file ({exc})") from None
    return validate(arrays, src.name, src.label)


def require_pynbody():
    """pynbody, or a one-line MockInputError saying how to install it."""
    try:
        import pynbody
    except ImportError:
        raise MockInputError("--snapshot needs pynbody: pip install pynbody") from None
    return pynbody


def read_snapshot(path: str, halo: int | None = None) -> Particles:
    """Stars (and gas) of a snapshot pynbody reads, or of halo ``halo`` of its catalogue.

    Units are converted with pynbody (``physical_units``): kpc, km/s, Msun, Gyr, K.
    Stellar smoothing lengths are not taken from pynbody (they are computed here, as for
    the particle files); gas smoothing lengths are used when the snapshot stores them.
    """
    pynbody = require_pynbody()
    src = Source("pynbody", path, halo)
    if not os.path.exists(path):
        raise MockInputError(f"{path}: no such snapshot")
    try:
        sim = pynbody.load(path)
        sim.physical_units()
    except Exception as exc:  # pynbody raises many types for unknown formats
        raise MockInputError(f"{path}: pynbody cannot read this snapshot ({type(exc).__name__}: {exc})") from None
    gal = sim
    if halo is not None:
        try:
            cat = sim.halos()
        except Exception as exc:
            raise MockInputError(f"{path}: no halo catalogue for --halo {halo} ({type(exc).__name__}: {exc})") from None
        try:
            gal = cat[halo]
        except (KeyError, IndexError, ValueError):
            raise MockInputError(f"{path}: halo {halo} does not exist in the halo catalogue "
                                 f"({len(cat)} halos)") from None
    arrays: dict = {}
    try:
        stars = gal.s
        if len(stars) == 0:
            raise MockInputError(f"{src.label}: no star particles")
        arrays["pos"] = np.asarray(stars["pos"].in_units("kpc"))
        arrays["vel"] = np.asarray(stars["vel"].in_units("km s^-1"))
        arrays["mass"] = np.asarray(stars["mass"].in_units("Msol"))
        arrays["age"] = np.asarray(stars["age"].in_units("Gyr"))
        arrays["metals"] = np.asarray(stars["metals"])
    except MockInputError:
        raise
    except Exception as exc:
        raise MockInputError(f"{src.label}: cannot get the star fields from the snapshot "
                             f"({type(exc).__name__}: {exc})") from None
    optional = {"massform": (stars, "massform", "Msol"), "gas_pos": (gal.g, "pos", "kpc"),
                "gas_vel": (gal.g, "vel", "km s^-1"), "gas_mass": (gal.g, "mass", "Msol"),
                "gas_temp": (gal.g, "temp", "K")}
    for key, (fam, name, unit) in optional.items():
        if len(fam) == 0:
            continue
        try:  # loadable or derivable (e.g. Gadget's temperature from internal energy); else left out
            arrays[key] = np.asarray(fam[name].in_units(unit))
        except Exception:
            arrays.pop(key, None)
    if len(gal.g) and "gas_pos" in arrays and "smooth" in gal.g.loadable_keys():
        arrays["gas_smooth"] = np.asarray(gal.g["smooth"].in_units("kpc"))
    if any(k not in arrays for k in GAS_FIELDS):  # gas only with every field (e.g. no temperature: no gas)
        for k in (*GAS_FIELDS, *OPTIONAL_GAS):
            arrays.pop(k, None)
    return validate(arrays, src.name, src.label)


def read_source(src: Source) -> Particles:
    """Read the galaxy of ``src``."""
    if src.kind == "npz":
        return read_npz(src.path)
    if src.kind == "hdf5":
        return read_hdf5(src.path, str(src.key))
    return read_snapshot(src.path, src.key)


def write_npz(path: str, arrays: dict) -> None:
    """Write one galaxy's fields as a particle NPZ (atomically)."""
    from lib.fileio import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    atomic_write(path, write)


def write_hdf5(path: str, galaxies: dict) -> None:
    """Write ``{name: arrays}`` as a particle HDF5 file, one group per galaxy (atomically)."""
    import h5py
    from lib.fileio import atomic_write

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            for name, arrays in galaxies.items():
                g = f.create_group(name)
                for k, v in arrays.items():
                    g.create_dataset(k, data=np.asarray(v))
    atomic_write(path, write)
