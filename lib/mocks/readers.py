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
    counts: dict = field(default_factory=dict)  # particles left out by the reader, e.g. {'wind': 12}
    notes: list = field(default_factory=list)  # one line each: what the reader could not do (e.g. no initial mass)

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

    @property
    def n_wind(self) -> int:
        return int(self.counts.get("wind", 0))

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
    return validate(arrays, os.path.splitext(os.path.basename(path))[0], path)


def read_hdf5(path: str, group: str) -> Particles:
    """One galaxy from a group of an HDF5 file (datasets named as the NPZ fields)."""
    import h5py
    label = f"{path} (group {group})"
    try:
        with h5py.File(path, "r") as f:
            if group not in f:
                raise MockInputError(f"{label}: no such group")
            arrays = {k: v[()] for k, v in f[group].items() if isinstance(v, h5py.Dataset)}
    except OSError as exc:
        raise MockInputError(f"{label}: cannot read the HDF5 file ({exc})") from None
    return validate(arrays, safe_name(group), label)


def require_pynbody():
    """pynbody, or a one-line MockInputError saying how to install it."""
    try:
        import pynbody
    except ImportError:
        raise MockInputError("--snapshot needs pynbody: pip install pynbody") from None
    return pynbody


def read_snapshot(path: str, halo: int | None = None, name: str | None = None, label: str | None = None) -> Particles:
    """Stars (and gas) of a snapshot pynbody reads, or of halo ``halo`` of its catalogue.

    Units are converted with pynbody (``physical_units``): kpc, km/s, Msun, Gyr, K.
    Stellar smoothing lengths are not taken from pynbody (they are computed here, as for
    the particle files); gas smoothing lengths are used when the snapshot stores them.
    """
    pynbody = require_pynbody()
    label = label or (path if halo is None else f"{path} (halo {halo})")
    if name is None:
        root, ext = os.path.splitext(os.path.basename(os.path.normpath(path)))
        stem = root if ext.lower() in (".hdf5", ".h5", ".hdf") else root + ext
        name = stem if halo is None else f"{stem}-h{halo}"
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
            raise MockInputError(f"{label}: no star particles")
        arrays["pos"] = np.asarray(stars["pos"].in_units("kpc"))
        arrays["vel"] = np.asarray(stars["vel"].in_units("km s^-1"))
        arrays["mass"] = np.asarray(stars["mass"].in_units("Msol"))
        arrays["age"] = np.asarray(stars["age"].in_units("Gyr"))
        arrays["metals"] = np.asarray(stars["metals"])
    except MockInputError:
        raise
    except Exception as exc:
        raise MockInputError(f"{label}: cannot get the star fields from the snapshot "
                             f"({type(exc).__name__}: {exc})") from None
    optional = {"massform": (stars, "massform", "Msol"), "gas_pos": (gal.g, "pos", "kpc"),
                "gas_vel": (gal.g, "vel", "km s^-1"), "gas_mass": (gal.g, "mass", "Msol"),
                "gas_temp": (gal.g, "temp", "K")}
    for key, (fam, field_name, unit) in optional.items():
        if len(fam) == 0:
            continue
        try:  # loadable or derivable (e.g. Gadget's temperature from internal energy); else left out
            arrays[key] = np.asarray(fam[field_name].in_units(unit))
        except Exception:
            arrays.pop(key, None)
    if len(gal.g) and "gas_pos" in arrays and "smooth" in gal.g.loadable_keys():
        arrays["gas_smooth"] = np.asarray(gal.g["smooth"].in_units("kpc"))
    if any(k not in arrays for k in GAS_FIELDS):  # gas only with every field (e.g. no temperature: no gas)
        for k in (*GAS_FIELDS, *OPTIONAL_GAS):
            arrays.pop(k, None)
    return validate(arrays, name, label)


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
