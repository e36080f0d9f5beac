"""IllustrisTNG (and Illustris) snapshot chunks and API cutouts -> :class:`Particles`.

Layout (TNG data release, Nelson et al. 2019, "snapshot" and "group catalogue" pages):

=====================================  ===============================  =====================================
dataset                                stored unit                      here
=====================================  ===============================  =====================================
``PartType4/Coordinates`` (N, 3)       ckpc/h                           x a / h -> kpc
``PartType4/Velocities`` (N, 3)        km/s sqrt(a)                     x sqrt(a) -> km/s (peculiar)
``PartType4/Masses``                   1e10 Msun/h                      x 1e10 / h -> Msun (``mass``)
``PartType4/GFM_InitialMass``          1e10 Msun/h                      -> Msun (``massform``: the light)
``PartType4/GFM_StellarFormationTime`` scale factor of formation        age = t(a) - t(a_form), Gyr;
                                                                        <= 0: a wind particle, left out
``PartType4/GFM_Metallicity``          metal mass fraction              ``metals``
``PartType0/InternalEnergy``,          (km/s)^2, n_e / n_H              ``gas_temp`` (X_H = 0.76)
``ElectronAbundance``
=====================================  ===============================  =====================================

``Header`` gives a = ``Time``, h = ``HubbleParam``, ``Omega0``, ``OmegaLambda`` and ``BoxSize``;
``UnitLength_in_cm`` / ``UnitMass_in_g`` / ``UnitVelocity_in_cm_per_s`` in the Header (or a
``Units`` group) are honoured where present, else TNG's kpc, 1e10 Msun, km/s.  Wind particles
(GFM "stars" with formation time <= 0 are wind-phase cells) are not stars: they are dropped and
counted (``counts['wind']``).  A cutout of the TNG web API is one file holding one subhalo's
particles: one galaxy.  In a full snapshot, ``halo`` (FoF group number) or ``subhalo`` (Subfind ID,
as in the API's URLs) selects the particles that the group catalogue
(``groups_<num>/fof_subhalo_tab_<num>.<i>.hdf5``) assigns to it: snapshots are sorted by group,
then by subhalo within the group, so the subhalo's own particles are rows
``sum(GroupLenType[:g]) + sum(SubhaloLenType[GroupFirstSub[g]:s])`` onwards,
``SubhaloLenType[s]`` of them (the offsets the TNG ``offsets_<num>.hdf5`` files tabulate).
"""
from __future__ import annotations

import numpy as np

from lib.mocks import gadget
from lib.mocks.readers import MockInputError, Particles, validate

HYDROGEN_MASS_FRACTION = 0.76
STAR_FIELDS = {"pos": "Coordinates", "vel": "Velocities", "mass": "Masses", "massform": "GFM_InitialMass",
               "aform": "GFM_StellarFormationTime", "metals": "GFM_Metallicity"}
GAS_FIELDS = {"gas_pos": "Coordinates", "gas_vel": "Velocities", "gas_mass": "Masses", "u": "InternalEnergy",
              "x_e": "ElectronAbundance"}


def units(path: str, attrs: dict) -> tuple[float, float, float]:
    """(kpc, Msun, km/s) per stored length, mass and velocity unit, before the factors of a and h."""
    import h5py
    found = dict(attrs)
    with h5py.File(path, "r") as f:
        if "Units" in f:
            found.update(f["Units"].attrs)
    length = float(found.get("UnitLength_in_cm", gadget.KPC_CM))
    mass = float(found.get("UnitMass_in_g", gadget.MSUN_G * 1e10))
    vel = float(found.get("UnitVelocity_in_cm_per_s", gadget.KMS_CMS))
    return length / gadget.KPC_CM, mass / gadget.MSUN_G, vel / gadget.KMS_CMS


def _catalogue(files: list[str], label: str) -> dict:
    """The group catalogue's lengths, first subhalos and positions, joined over its chunks."""
    import h5py
    want = {"Group": ("GroupLenType", "GroupFirstSub", "GroupPos"), "Subhalo": ("SubhaloLenType", "SubhaloGrNr",
                                                                                  "SubhaloPos")}
    parts: dict[str, list] = {n: [] for names in want.values() for n in names}
    try:
        for path in files:
            with h5py.File(path, "r") as f:
                for grp, names in want.items():
                    for n in names:
                        if grp in f and n in f[grp]:
                            parts[n].append(f[grp][n][()])
    except OSError as exc:
        raise MockInputError(f"{label}: cannot read the group catalogue ({exc})") from None
    missing = [n for n in ("GroupLenType", "GroupFirstSub") if not parts[n]]
    if missing:
        raise MockInputError(f"{label}: the group catalogue {files[0]} has no Group/{missing[0]}")
    return {n: np.concatenate(v) for n, v in parts.items() if v}


def particle_rows(cat: dict, halo: int | None, subhalo: int | None, ptype: int, label: str):
    """(start, count) of type ``ptype`` rows of FoF group ``halo`` or subhalo ``subhalo``, and its centre (stored units)."""
    glen = np.asarray(cat["GroupLenType"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(glen[:, ptype])])
    if subhalo is not None:
        if "SubhaloLenType" not in cat:
            raise MockInputError(f"{label}: the group catalogue has no Subhalo/SubhaloLenType (no Subfind)")
        n_sub = len(cat["SubhaloLenType"])
        if not 0 <= subhalo < n_sub:
            raise MockInputError(f"{label}: subhalo {subhalo} does not exist ({n_sub} subhalos)")
        g = int(cat["SubhaloGrNr"][subhalo])
        if halo is not None and g != halo:
            raise MockInputError(f"{label}: subhalo {subhalo} belongs to halo {g}, not to --halo {halo}")
        first = int(cat["GroupFirstSub"][g])
        slen = np.asarray(cat["SubhaloLenType"], dtype=np.int64)
        start = offsets[g] + slen[first:subhalo, ptype].sum()
        return int(start), int(slen[subhalo, ptype]), np.asarray(cat["SubhaloPos"][subhalo], dtype=np.float64)
    if not 0 <= halo < len(glen):
        raise MockInputError(f"{label}: halo {halo} does not exist ({len(glen)} FoF groups)")
    centre = np.asarray(cat["GroupPos"][halo], dtype=np.float64) if "GroupPos" in cat else None
    return int(offsets[halo]), int(glen[halo, ptype]), centre


def read_tng(path: str, name: str, label: str, whole: bool = False, halo: int | None = None,
             subhalo: int | None = None, groupcat: str | None = None) -> Particles:
    """One galaxy of an IllustrisTNG snapshot (``whole``: all chunks of ``path``) or API cutout (module docstring)."""
    files = gadget.chunk_files(path) if whole else [path]
    attrs = gadget.header_attrs(files[0])
    a, h, cos = gadget.cosmology(attrs, label)
    kpc, msun, kms = units(files[0], attrs)
    box = gadget.header_value(attrs, ("BoxSize",), label, default=0.0)
    rows = {4: None, 0: None}
    centre = None
    if halo is not None or subhalo is not None:
        cat = _catalogue(gadget.catalogue_files(path, groupcat, "fof_subhalo_tab_{num}.*.hdf5"), label)
        for ptype in rows:
            start, count, centre = particle_rows(cat, halo, subhalo, ptype, label)
            rows[ptype] = (start, count)
    stars = gadget.read_type(files, 4, STAR_FIELDS, label, optional=("massform",), rows=rows[4])
    if "pos" not in stars:
        raise MockInputError(f"{label}: no star particles")
    aform = stars.pop("aform")
    wind = aform <= 0
    n_wind = int(wind.sum())
    if n_wind == len(aform):
        raise MockInputError(f"{label}: all {n_wind} PartType4 particles are wind particles "
                             "(GFM_StellarFormationTime <= 0): no stars")
    stars = {k: v[~wind] for k, v in stars.items()}
    gas = gadget.read_type(files, 0, GAS_FIELDS, label, optional=tuple(GAS_FIELDS), rows=rows[0])
    ref = centre if centre is not None else np.asarray(stars["pos"][0], dtype=np.float64)
    out = {"pos": gadget.unwrap(np.asarray(stars["pos"], np.float64), box, ref) * kpc * a / h,
           "vel": np.asarray(stars["vel"], np.float64) * kms * np.sqrt(a),
           "mass": np.asarray(stars["mass"], np.float64) * msun / h,
           "age": gadget.ages_from_scale_factor(aform[~wind], a, cos),
           "metals": np.asarray(stars["metals"], np.float64)}
    notes = []
    if "massform" in stars:
        out["massform"] = np.asarray(stars["massform"], np.float64) * msun / h
    else:
        notes.append(f"{label}: no PartType4/GFM_InitialMass: the light scales with the current mass (Masses), "
                     "too faint by the mass lost since formation")
    if len(gas) == len(GAS_FIELDS):
        out.update(gas_pos=gadget.unwrap(np.asarray(gas["gas_pos"], np.float64), box, ref) * kpc * a / h,
                   gas_vel=np.asarray(gas["gas_vel"], np.float64) * kms * np.sqrt(a),
                   gas_mass=np.asarray(gas["gas_mass"], np.float64) * msun / h,
                   gas_temp=gadget.gas_temperature(gas["u"] * kms ** 2, gas["x_e"], 1 - HYDROGEN_MASS_FRACTION))
    p = validate(out, name, label)
    p.counts["wind"] = n_wind
    p.notes += notes
    return p
