"""EAGLE snapshots (Schaye et al. 2015; public release: The EAGLE team 2017, arXiv:1706.09899) -> :class:`Particles`.

EAGLE (Gadget-3 / Anarchy) writes its units on every dataset: the physical value in CGS is

    stored x a^aexp-scale-exponent x h^h-scale-exponent x CGSConversionFactor

(a = Header ``ExpansionFactor``, h = ``HubbleParam``), e.g. ``Coordinates``: cMpc/h, exponents
1 and -1, factor 3.085678e24 cm.  The attributes are read, not assumed; a dataset without them
is an error naming it.  Fields (singular names, as EAGLE spells them):

=========================================  =================================================
``PartType4/Coordinates, Velocity, Mass``  pos (kpc), vel (km/s), mass (current, Msun)
``PartType4/InitialMass``                  massform (Msun): the light scales with it
``PartType4/StellarFormationTime``         expansion factor at birth -> age (Gyr)
``PartType4/SmoothedMetallicity``          metals (kernel-smoothed, as EAGLE's own enrichment
                                           and cooling use it; ``Metallicity`` if absent)
``PartType4/SmoothingLength``              smooth = SmoothingLength / 2 (below)
``PartType0/.../Temperature``              gas_temp (K)
``GroupNumber, SubGroupNumber``            ``halo`` (FoF group, from 1) and ``subhalo``
                                           (0 = the central galaxy) select the particles
=========================================  =================================================

**Smoothing lengths.**  EAGLE's ``SmoothingLength`` H is the radius where its kernel (Wendland C2)
reaches zero: the kernel's full support.  This project's ``smooth`` is pynbody's h, the cubic
spline's half support (the kernel reaches zero at 2h).  Matching the support radius,
``smooth = H / 2``: each particle's light covers the same disc as in EAGLE (the C2 kernel is a
little more centrally concentrated than the cubic spline of the same support; the projection
here keeps the cubic spline).
"""
from __future__ import annotations

import numpy as np

from lib.mocks import gadget
from lib.mocks.readers import MockInputError, Particles, validate

STAR_FIELDS = {"pos": "Coordinates", "vel": "Velocity", "mass": "Mass", "massform": "InitialMass",
               "aform": "StellarFormationTime", "metals": "SmoothedMetallicity", "metals_particle": "Metallicity",
               "smooth": "SmoothingLength", "group": "GroupNumber", "subgroup": "SubGroupNumber"}
GAS_FIELDS = {"gas_pos": "Coordinates", "gas_vel": "Velocity", "gas_mass": "Mass", "gas_temp": "Temperature",
              "gas_smooth": "SmoothingLength", "group": "GroupNumber", "subgroup": "SubGroupNumber"}
TO_UNITS = {"pos": gadget.KPC_CM, "vel": gadget.KMS_CMS, "mass": gadget.MSUN_G, "smooth": gadget.KPC_CM,
            "temp": 1.0, "aform": 1.0, "metals": 1.0}
"""CGS value of this project's unit per field kind (kpc, km/s, Msun; the rest dimensionless or K)."""
SUPPORT_TO_SMOOTH = 0.5
"""smooth (cubic spline h, support 2h) per EAGLE SmoothingLength (support H): the same support radius."""


def physical(raw: np.ndarray, attrs: dict, a: float, h: float, kind: str, label: str, name: str) -> np.ndarray:
    """A dataset in this project's units from its EAGLE unit attributes (module docstring)."""
    try:
        cgs = float(np.asarray(attrs["CGSConversionFactor"]))
        hexp = float(np.asarray(attrs["h-scale-exponent"]))
        aexp = float(np.asarray(attrs["aexp-scale-exponent"]))
    except KeyError as exc:
        raise MockInputError(f"{label}: {name} has no {exc.args[0]} attribute (EAGLE writes the units of every "
                             "dataset as CGSConversionFactor, h-scale-exponent, aexp-scale-exponent)") from None
    return np.asarray(raw, dtype=np.float64) * (a ** aexp * h ** hexp * cgs / TO_UNITS[kind])


def _select(arrays: dict, halo: int | None, subhalo: int | None, label: str, what: str) -> dict:
    if halo is None:
        return arrays
    if "group" not in arrays or (subhalo is not None and "subgroup" not in arrays):
        raise MockInputError(f"{label}: {what} without GroupNumber/SubGroupNumber: --halo needs the snapshot's "
                             "group membership")
    sel = arrays["group"] == halo
    if subhalo is not None:
        sel &= arrays["subgroup"] == subhalo
    return {k: v[sel] for k, v in arrays.items()}


def read_eagle(path: str, name: str, label: str, whole: bool = False, halo: int | None = None,
               subhalo: int | None = None) -> Particles:
    """One galaxy of an EAGLE snapshot (``whole``: all chunks of ``path``), or FoF group ``halo`` / its ``subhalo``."""
    if subhalo is not None and halo is None:
        raise MockInputError(f"{label}: EAGLE subhalos are numbered within their group: give --halo G --subhalo S")
    files = gadget.chunk_files(path) if whole else [path]
    hdr = gadget.header_attrs(files[0])
    a, h, cos = gadget.cosmology(hdr, label)
    box = gadget.header_value(hdr, ("BoxSize",), label, default=0.0)  # cMpc/h, as the stored Coordinates
    optional = ("massform", "metals", "metals_particle", "smooth", "group", "subgroup")
    stars, sattrs = gadget.read_type(files, 4, STAR_FIELDS, label, optional=optional, with_attrs=True)
    gas, gattrs = gadget.read_type(files, 0, GAS_FIELDS, label, optional=tuple(GAS_FIELDS), with_attrs=True)
    stars = _select(stars, halo, subhalo, label, "PartType4")
    gas = _select(gas, halo, subhalo, label, "PartType0") if gas else gas
    if "pos" not in stars or len(stars["pos"]) == 0:
        where = "" if halo is None else f" in halo {halo}" + ("" if subhalo is None else f" subhalo {subhalo}")
        raise MockInputError(f"{label}: no star particles{where}")
    if "metals" not in stars:
        if "metals_particle" not in stars:
            raise MockInputError(f"{label}: PartType4 has neither SmoothedMetallicity nor Metallicity")
        stars["metals"], sattrs["metals"] = stars["metals_particle"], sattrs["metals_particle"]

    def conv(arrays: dict, attrs: dict, key: str, kind: str, group: str) -> np.ndarray:
        return physical(arrays[key], attrs[key], a, h, kind, label, f"{group}/{STAR_FIELDS.get(key, key)}")

    ref = np.asarray(stars["pos"][0], dtype=np.float64)
    stars["pos"] = gadget.unwrap(np.asarray(stars["pos"], np.float64), box, ref)
    aform = conv(stars, sattrs, "aform", "aform", "PartType4")
    out = {"pos": conv(stars, sattrs, "pos", "pos", "PartType4"), "vel": conv(stars, sattrs, "vel", "vel", "PartType4"),
           "mass": conv(stars, sattrs, "mass", "mass", "PartType4"),
           "age": gadget.ages_from_scale_factor(aform, a, cos),
           "metals": conv(stars, sattrs, "metals", "metals", "PartType4")}
    notes = []
    if "massform" in stars:
        out["massform"] = conv(stars, sattrs, "massform", "mass", "PartType4")
    else:
        notes.append(f"{label}: no PartType4/InitialMass: the light scales with the current mass")
    if "smooth" in stars:
        out["smooth"] = conv(stars, sattrs, "smooth", "smooth", "PartType4") * SUPPORT_TO_SMOOTH
    if all(k in gas for k in ("gas_pos", "gas_vel", "gas_mass", "gas_temp")) and len(gas["gas_pos"]):
        gas["gas_pos"] = gadget.unwrap(np.asarray(gas["gas_pos"], np.float64), box, ref)
        gconv = {"gas_pos": "pos", "gas_vel": "vel", "gas_mass": "mass", "gas_temp": "temp", "gas_smooth": "smooth"}
        for key, kind in gconv.items():
            if key in gas:
                out[key] = physical(gas[key], gattrs[key], a, h, kind, label, f"PartType0/{GAS_FIELDS[key]}")
        if "gas_smooth" in out:
            out["gas_smooth"] *= SUPPORT_TO_SMOOTH
    p = validate(out, name, label)
    p.notes += notes
    return p
