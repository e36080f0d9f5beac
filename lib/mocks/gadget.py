"""What the Gadget-HDF5 family of snapshot layouts shares (IllustrisTNG, EAGLE, FIRE / GIZMO).

These codes write one ``Header`` group (attributes: ``Time`` = scale factor a, ``HubbleParam`` h,
``Omega0``, ``OmegaLambda``, ``BoxSize``, ``NumPart_ThisFile`` (6,), ``NumFilesPerSnapshot``) and
one ``PartType<N>`` group per particle type (0 gas, 4 stars), a snapshot split into chunks
``<base>.0.hdf5``, ``<base>.1.hdf5``, ... .  Stored values are comoving and carry h:
positions in ckpc/h (TNG, FIRE) or cMpc/h (EAGLE), masses in 1e10 Msun/h, velocities in
km/s x sqrt(a).  Each code's module (tng.py, eagle.py, fire.py) names its fields and units;
this one reads chunks, detects the code, and converts times, periodic positions and gas
temperatures the same way for all.
"""
from __future__ import annotations

import glob
import os
import re

import numpy as np

from lib.mocks.readers import MockInputError

KPC_CM = 3.085678e21
"""The kpc of these codes' unit attributes (UnitLength_in_cm = 3.085678e21: 1 kpc)."""
MSUN_G = 1.989e33
"""Their solar mass (UnitMass_in_g = 1.989e43: 1e10 Msun), so that their 1e10 Msun is exactly 1e10 here."""
KMS_CMS = 1e5
PROTON_G = 1.67262178e-24
BOLTZMANN_ERG_K = 1.38065e-16
GAMMA = 5.0 / 3.0
CODES = ("tng", "eagle", "fire")


def is_gadget_layout(path: str) -> bool:
    """True for an HDF5 file with a ``Header`` group and ``PartType<N>`` groups (a snapshot chunk or cutout)."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            return "Header" in f and any(re.fullmatch(r"PartType\d", k) for k in f)
    except OSError:
        return False


def detect_code(path: str) -> str | None:
    """'tng', 'eagle' or 'fire' from the star fields of a Gadget-HDF5 file; None if it has none of them.

    TNG writes ``GFM_StellarFormationTime``; EAGLE writes ``StellarFormationTime`` and ``InitialMass``
    with ``CGSConversionFactor`` attributes on every dataset; FIRE (GIZMO) writes
    ``StellarFormationTime`` without either.
    """
    import h5py
    with h5py.File(path, "r") as f:
        stars = f.get("PartType4")
        if stars is None:
            return None
        if "GFM_StellarFormationTime" in stars:
            return "tng"
        if "StellarFormationTime" in stars:
            coords = stars.get("Coordinates")
            eagle = "InitialMass" in stars or (coords is not None and "CGSConversionFactor" in coords.attrs)
            return "eagle" if eagle else "fire"
    return None


def chunk_files(path: str) -> list[str]:
    """Every chunk of the snapshot that ``path`` (one chunk) belongs to, in chunk order.

    ``snap_099.3.hdf5`` -> ``snap_099.0.hdf5`` ... ``snap_099.<N-1>.hdf5`` with N the header's
    ``NumFilesPerSnapshot``; a file without a chunk number is the whole snapshot.
    """
    m = re.fullmatch(r"(.*)\.(\d+)\.(hdf5|h5)", path)
    if not m:
        return [path]
    n = int(np.asarray(header_attrs(path).get("NumFilesPerSnapshot", 1)))
    files = [f"{m.group(1)}.{i}.{m.group(3)}" for i in range(n)]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise MockInputError(f"{path}: chunk {os.path.basename(missing[0])} of {n} is missing "
                             f"({len(missing)} missing; NumFilesPerSnapshot = {n})")
    return files


def snapshot_stem(path: str, whole: bool) -> str:
    """The galaxy name's stem: the file name without extension (and without the chunk number for a snapshot)."""
    stem = os.path.basename(path)
    stem = re.sub(r"\.(hdf5|h5)$", "", stem)
    return re.sub(r"\.\d+$", "", stem) if whole else stem


def header_attrs(path: str) -> dict:
    """The ``Header`` group's attributes."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            if "Header" not in f:
                raise MockInputError(f"{path}: no Header group (not a Gadget-HDF5 snapshot)")
            return dict(f["Header"].attrs)
    except OSError as exc:
        raise MockInputError(f"{path}: cannot read the HDF5 file ({exc})") from None


def header_value(attrs: dict, names: tuple[str, ...], label: str, default: float | None = None) -> float:
    """The first of ``names`` in the header (codes spell some differently: Omega0 / Omega_Matter)."""
    for n in names:
        if n in attrs:
            return float(np.asarray(attrs[n]).ravel()[0])
    if default is not None:
        return default
    raise MockInputError(f"{label}: the Header has no {' / '.join(names)} attribute")


def cosmology(attrs: dict, label: str):
    """(a, h, astropy cosmology without radiation) of the snapshot's header."""
    from astropy.cosmology import FlatLambdaCDM, LambdaCDM
    a = header_value(attrs, ("Time", "ExpansionFactor"), label)
    h = header_value(attrs, ("HubbleParam",), label)
    om = header_value(attrs, ("Omega0", "Omega_Matter"), label)
    ol = header_value(attrs, ("OmegaLambda", "Omega_Lambda"), label)
    if not (0 < a <= 1.0000001 and 0 < h < 2):
        raise MockInputError(f"{label}: Header Time (scale factor) {a:g} / HubbleParam {h:g} out of range")
    # Tcmb0 = 0: these codes integrate a matter + Lambda background (no radiation); flat: analytic age
    cos = (FlatLambdaCDM(H0=100 * h, Om0=om, Tcmb0=0) if abs(om + ol - 1) < 1e-5
           else LambdaCDM(H0=100 * h, Om0=om, Ode0=ol, Tcmb0=0))
    return a, h, cos


def ages_from_scale_factor(a_form: np.ndarray, a_snap: float, cos) -> np.ndarray:
    """Stellar ages (Gyr) = t(a_snap) - t(a_form) in the snapshot's cosmology; a_form (N,) > 0."""
    t_form = cos.age(1.0 / np.asarray(a_form, dtype=np.float64) - 1.0).to_value("Gyr")
    t_snap = float(cos.age(1.0 / a_snap - 1.0).to_value("Gyr"))
    return np.clip(t_snap - t_form, 0.0, None)  # a_form = a_snap to rounding: age 0, not -1e-16


def unwrap(pos: np.ndarray, box: float, ref: np.ndarray) -> np.ndarray:
    """Periodic positions (N, 3) moved to the image of the box nearest ``ref`` (same units as ``box``)."""
    if not box > 0:
        return pos
    return ref + np.mod(pos - ref + 0.5 * box, box) - 0.5 * box


def gas_temperature(u_kms2: np.ndarray, x_e: np.ndarray, helium_mass_fraction: np.ndarray | float) -> np.ndarray:
    """Temperature (K) from the specific internal energy u ((km/s)^2) and the electron abundance x_e = n_e / n_H.

    T = (gamma - 1) u mu m_p / k_B with mu = (1 + 4 y) / (1 + y + x_e), y = Y / (4 (1 - Y)) helium
    atoms per hydrogen atom (metals neglected): the TNG data documentation's formula with Y = 0.24
    (X_H = 0.76), and GIZMO's with the particle's own helium fraction.
    """
    y = np.asarray(helium_mass_fraction, dtype=np.float64) / (4.0 * (1.0 - np.asarray(helium_mass_fraction)))
    mu = (1.0 + 4.0 * y) / (1.0 + y + np.asarray(x_e, dtype=np.float64))
    return (GAMMA - 1.0) * np.asarray(u_kms2, dtype=np.float64) * KMS_CMS ** 2 * mu * PROTON_G / BOLTZMANN_ERG_K


def read_type(files: list[str], ptype: int, fields: dict[str, str], label: str, optional: tuple[str, ...] = (),
              rows: tuple[int, int] | None = None, with_attrs: bool = False):
    """``{key: array}`` of datasets ``fields[key]`` of PartType<ptype>, joined over ``files``.

    ``rows = (start, count)``: only those rows of the snapshot-wide order (chunk after chunk), as a
    group catalogue's offsets give them.  Keys in ``optional`` may be missing (left out of the
    result); the others give one line naming the field.  ``with_attrs``: also ``{key: attributes}``
    of the first chunk holding the dataset (EAGLE's units live there).
    """
    import h5py
    parts: dict[str, list] = {k: [] for k in fields}
    attrs: dict[str, dict] = {}
    start = 0
    lo, hi = (rows[0], rows[0] + rows[1]) if rows else (0, None)
    try:
        for path in files:
            with h5py.File(path, "r") as f:
                n_this = int(np.asarray(f["Header"].attrs.get("NumPart_ThisFile", np.zeros(6)))[ptype]) \
                    if "Header" in f else 0
                grp = f.get(f"PartType{ptype}")
                if grp is None or n_this == 0:
                    start += n_this
                    continue
                a, b = max(lo - start, 0), n_this if hi is None else min(hi - start, n_this)
                start += n_this
                if b <= a:
                    continue
                for key, name in fields.items():
                    if name not in grp:
                        if key in optional:
                            continue
                        raise MockInputError(f"{label}: PartType{ptype}/{name} missing in {os.path.basename(path)}")
                    parts[key].append(grp[name][a:b])
                    if with_attrs and key not in attrs:
                        attrs[key] = dict(grp[name].attrs)
    except OSError as exc:
        raise MockInputError(f"{label}: cannot read the HDF5 file ({exc})") from None
    out = {k: np.concatenate(v) for k, v in parts.items() if v}
    return (out, attrs) if with_attrs else out


def catalogue_files(snapshot: str, given: str | None, pattern: str) -> list[str]:
    """Chunks of a group catalogue: ``given`` (one chunk or a folder), else found beside the snapshot.

    ``pattern`` names the chunks with ``{num}`` for the snapshot number, e.g.
    ``fof_subhalo_tab_{num}.*.hdf5``; the places searched are the snapshot's folder, and
    ``../groups_<num>/`` beside ``snapdir_<num>/`` (the TNG and EAGLE trees).
    """
    m = re.search(r"_(\d{3})", os.path.basename(snapshot))
    num = m.group(1) if m else "*"
    name = pattern.format(num=num)
    if given and os.path.isfile(given):
        m = re.fullmatch(r"(.*)\.\d+\.(hdf5|h5)", given)
        if not m:
            return [given]
        name, given = os.path.basename(m.group(1)) + ".*." + m.group(2), os.path.dirname(os.path.abspath(given))
    places = [given] if given else [os.path.dirname(os.path.abspath(snapshot)),
                                    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(snapshot))),
                                                 f"groups_{num}")]
    for place in places:
        found = sorted(glob.glob(os.path.join(glob.escape(place), name)),
                       key=lambda f: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", f)])
        if found:
            return found
    raise MockInputError(f"{snapshot}: no group catalogue {name} in {' or '.join(places)} (give --groupcat PATH)")
