"""Plausibility of a galaxy's particles and of its images: unit mistakes stop, they do not pass.

``readers.validate`` checks structure (fields, shapes, NaN, signs).  A file can pass it and
still be in the wrong units: positions in pc or Mpc, masses in 1e10 Msun, ages in yr,
metallicities in solar units.  Each such case gives an image that looks like a galaxy to
nobody (empty, a point, every particle clipped to the SSP grid's edge) and would be scored
and rated as the simulation's fault.  :func:`check_particles` stops with one line naming
the file, the field, the value and the likely cause; :func:`check_field` does the same for
a view whose field holds almost none of the stars (a blank cutout).  ``force=True`` (the
command line's ``--force``) turns each stop into a warning and goes on.

The limits are wide on purpose: they catch a factor of 1e3 or more (a unit), never a
galaxy that is merely unusual.
"""
from __future__ import annotations

import numpy as np

from lib.mocks.readers import MockInputError, Particles

R_HALF_MAX_KPC = 300.0
"""A stellar half-mass radius above this is no galaxy (the largest cD envelopes have ~100 kpc)."""
R_HALF_MIN_KPC = 0.02
LOGM_MIN, LOGM_MAX = 5.0, 13.0
"""Total star particle mass (log10 Msun): below, masses look like 1e10 Msun units; above, like grams."""
AGE_MAX_GYR = 14.5
METALS_MAX = 0.2
"""A metal mass fraction above this (10 x solar) is no stellar population: Z/Zsun or per cent."""
SPEED_MAX_KMS = 1e4
FIELD_MASS_MIN = 0.05
"""A view whose field holds less than this fraction of the stellar mass is a blank cutout."""


def _half_mass_radius(pos: np.ndarray, mass: np.ndarray) -> float:
    """3-D radius (pos units) holding half the mass, about the mass-weighted median point."""
    centre = np.array([np.median(pos[:, k]) for k in range(3)])
    r = np.linalg.norm(pos - centre, axis=1)
    order = np.argsort(r)
    cum = np.cumsum(mass[order])
    return float(r[order][np.searchsorted(cum, 0.5 * cum[-1])])


def _problems(p: Particles) -> list[str]:
    pos, mass = p["pos"], p["mass"]
    out = []
    if len(pos) >= 10:
        r_half = _half_mass_radius(pos, mass)
        if r_half > R_HALF_MAX_KPC:
            out.append(f"pos: stellar half-mass radius {r_half:.4g} kpc: positions look like pc (or a whole box "
                       "rather than one galaxy was given)")
        elif 0 < r_half < R_HALF_MIN_KPC:
            out.append(f"pos: stellar half-mass radius {r_half:.3g} kpc: positions look like Mpc")
    logm = float(np.log10(mass.sum()))
    if logm < LOGM_MIN:
        out.append(f"mass: total stellar mass 10^{logm:.2f} Msun: masses look like units of 1e10 Msun (give Msun)")
    elif logm > LOGM_MAX:
        out.append(f"mass: total stellar mass 10^{logm:.2f} Msun: masses look like grams or a whole box")
    age_max = float(p["age"].max())
    if age_max > AGE_MAX_GYR:
        out.append(f"age: oldest star {age_max:.4g} Gyr, older than the Universe: ages look like yr or Myr "
                   "(give Gyr)")
    z_max = float(p["metals"].max())
    if z_max > METALS_MAX:
        out.append(f"metals: largest metallicity {z_max:.4g}: looks like Z/Zsun or per cent (give the metal mass "
                   "fraction, solar ~0.014-0.02)")
    speed = float(np.median(np.linalg.norm(p["vel"], axis=1)))
    if speed > SPEED_MAX_KMS:
        out.append(f"vel: median star speed {speed:.4g} km/s: velocities look like m/s or cm/s (give km/s)")
    return out


def check_particles(p: Particles, force: bool = False) -> list[str]:
    """Unit and range checks of one galaxy; raise :class:`MockInputError` (one line), or with ``force`` return warnings."""
    problems = _problems(p)
    if problems and not force:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise MockInputError(f"{p.label}: {problems[0]}{more}; --force to go on anyway")
    return [f"{p.label}: {msg} (--force: going on)" for msg in problems]


def check_field(label: str, mass_field: float, mass_total: float, what: str, force: bool = False) -> list[str]:
    """A view whose field holds almost no stellar mass is a blank cutout: an error, or with ``force`` a warning."""
    frac = mass_field / mass_total
    if frac >= FIELD_MASS_MIN:
        return []
    msg = (f"pos: only {100 * frac:.3g}% of the stellar mass lies in the {what} field (log M* {np.log10(mass_field):.2f} "
           f"of {np.log10(mass_total):.2f}): a blank cutout; positions in the wrong unit, or the file not centred on "
           "one galaxy?")
    if not force:
        raise MockInputError(f"{label}: {msg}; --force to write it anyway")
    return [f"{label}: {msg} (--force: written)"]
