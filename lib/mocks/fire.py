"""FIRE (GIZMO) snapshots (Hopkins et al. 2018; public FIRE-2 release: Wetzel et al. 2023) -> :class:`Particles`.

GIZMO writes Gadget's layout and units: ``Coordinates`` in ckpc/h, ``Velocities`` in km/s
x sqrt(a), ``Masses`` in 1e10 Msun/h (``UnitLength_In_CGS`` etc. in the Header honoured where
present).  FIRE's own conventions:

* ``PartType4/Metallicity`` is an (N, 11) array of mass fractions (FIRE-2: total metals, He, C, N,
  O, Ne, Mg, Si, S, Ca, Fe; more columns with r-process tracers or in FIRE-3): ``metals`` is
  column 0, the total.  A 1-D ``Metallicity`` (other GIZMO runs) is taken as it is.
* ``StellarFormationTime`` is the scale factor at birth in cosmological runs
  (``ComovingIntegrationOn`` = 1, the default), else the time in code units (kpc/h / (km/s)).
* FIRE snapshots store no initial stellar mass: the light scales with the current mass (the
  particles have lost up to ~30-40% since birth, so old populations come out ~0.4 mag faint);
  each galaxy's run record says so.
* ``PartType0/SmoothingLength`` is the kernel's full support H (cubic spline in FIRE-2):
  ``gas_smooth = H / 2``, pynbody's h.  Gas temperatures use the gas's own helium fraction
  (Metallicity column 1), as gizmo_analysis does.

A FIRE zoom has one main galaxy; its snapshot holds no halo catalogue, so the whole snapshot's
stars are the galaxy (satellites included).
"""
from __future__ import annotations

import numpy as np

from lib.mocks import gadget
from lib.mocks.readers import MockInputError, Particles, validate

STAR_FIELDS = {"pos": "Coordinates", "vel": "Velocities", "mass": "Masses", "tform": "StellarFormationTime",
               "metals": "Metallicity"}
GAS_FIELDS = {"gas_pos": "Coordinates", "gas_vel": "Velocities", "gas_mass": "Masses", "u": "InternalEnergy",
              "x_e": "ElectronAbundance", "gas_smooth": "SmoothingLength", "gas_metals": "Metallicity"}
SUPPORT_TO_SMOOTH = 0.5
HELIUM_DEFAULT = 0.24
CODE_TIME_GYR = gadget.KPC_CM / gadget.KMS_CMS / 3.15576e16
"""GIZMO's time unit (kpc / (km/s)) in Gyr (0.978): formation times of non-cosmological runs."""


def units(attrs: dict) -> tuple[float, float, float]:
    """(kpc, Msun, km/s) per stored unit from GIZMO's Header unit attributes, else Gadget's defaults."""
    def get(*names: str, default: float) -> float:
        return next((float(np.asarray(attrs[n])) for n in names if n in attrs), default)
    return (get("UnitLength_In_CGS", "UnitLength_in_cm", default=gadget.KPC_CM) / gadget.KPC_CM,
            get("UnitMass_In_CGS", "UnitMass_in_g", default=1e10 * gadget.MSUN_G) / gadget.MSUN_G,
            get("UnitVelocity_In_CGS", "UnitVelocity_in_cm_per_s", default=gadget.KMS_CMS) / gadget.KMS_CMS)


def total_metals(z: np.ndarray, label: str, what: str) -> np.ndarray:
    """Column 0 (total metal mass fraction) of FIRE's (N, k) metallicity array; a 1-D one as it is."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 2 and z.shape[1] >= 1:
        return z[:, 0]
    if z.ndim == 1:
        return z
    raise MockInputError(f"{label}: {what} has shape {z.shape}; expected (N,) or (N, 11)")


def read_fire(path: str, name: str, label: str, whole: bool = False, halo: int | None = None,
              subhalo: int | None = None) -> Particles:
    """One FIRE / GIZMO snapshot (``whole``: all chunks of ``path``) as one galaxy (module docstring)."""
    if halo is not None or subhalo is not None:
        raise MockInputError(f"{label}: a FIRE snapshot carries no halo catalogue: --halo/--subhalo do not apply "
                             "(the zoom's stars are the galaxy)")
    files = gadget.chunk_files(path) if whole else [path]
    hdr = gadget.header_attrs(files[0])
    cosmological = int(np.asarray(hdr.get("ComovingIntegrationOn", 1))) != 0
    if cosmological:
        a, h, cos = gadget.cosmology(hdr, label)
    else:  # physical coordinates, time in code units
        a, h, cos = 1.0, gadget.header_value(hdr, ("HubbleParam",), label, default=1.0), None
    kpc, msun, kms = units(hdr)
    box = gadget.header_value(hdr, ("BoxSize",), label, default=0.0) if cosmological else 0.0
    stars = gadget.read_type(files, 4, STAR_FIELDS, label)
    if "pos" not in stars or len(stars["pos"]) == 0:
        raise MockInputError(f"{label}: no star particles")
    if cosmological:
        age = gadget.ages_from_scale_factor(stars["tform"], a, cos)
    else:
        now = gadget.header_value(hdr, ("Time",), label)
        age = np.clip((now - np.asarray(stars["tform"], np.float64)) * CODE_TIME_GYR / h, 0.0, None)
    ref = np.asarray(stars["pos"][0], dtype=np.float64)
    out = {"pos": gadget.unwrap(np.asarray(stars["pos"], np.float64), box, ref) * kpc * a / h,
           "vel": np.asarray(stars["vel"], np.float64) * kms * np.sqrt(a),
           "mass": np.asarray(stars["mass"], np.float64) * msun / h, "age": age,
           "metals": total_metals(stars["metals"], label, "PartType4/Metallicity")}
    gas = gadget.read_type(files, 0, GAS_FIELDS, label, optional=tuple(GAS_FIELDS))
    if all(k in gas for k in ("gas_pos", "gas_vel", "gas_mass", "u", "x_e")) and len(gas["gas_pos"]):
        zg = np.asarray(gas.get("gas_metals", np.zeros(0)), dtype=np.float64)
        helium = zg[:, 1] if zg.ndim == 2 and zg.shape[1] > 1 else HELIUM_DEFAULT
        out.update(gas_pos=gadget.unwrap(np.asarray(gas["gas_pos"], np.float64), box, ref) * kpc * a / h,
                   gas_vel=np.asarray(gas["gas_vel"], np.float64) * kms * np.sqrt(a),
                   gas_mass=np.asarray(gas["gas_mass"], np.float64) * msun / h,
                   gas_temp=gadget.gas_temperature(gas["u"] * kms ** 2, gas["x_e"], helium))
        if "gas_smooth" in gas:
            out["gas_smooth"] = np.asarray(gas["gas_smooth"], np.float64) * kpc * a / h * SUPPORT_TO_SMOOTH
    p = validate(out, name, label)
    p.notes.append(f"{label}: FIRE stores no initial stellar mass: the light scales with the current mass")
    return p
