"""Placing a galaxy at a redshift for the ``sdss`` recipe: distances, fluxes, z sampling.

Cosmology: astropy ``Planck13`` (H0 = 67.77, Omega_m = 0.307; NIHAO used Planck 2013
parameters, and lib/galaxies' SDSS-like population uses the same cosmology).

* Angular size: physical kpc per SDSS pixel = D_A x 0.396127 arcsec.
* Flux: m_AB = M_AB + 5 log10(D_L / 10 pc) + K per band, f = 10^(-0.4 (m - 22.5))
  nanomaggies.  Since D_L = (1+z)^2 D_A, surface brightness falls as (1+z)^-4 (the
  bolometric dimming); the K-correction of each particle's population
  (lib/mocks/kcorrection.py) adds the shift of its spectrum through the SDSS filters.
  Ignored: evolution, Galactic extinction, intergalactic absorption.
* ``--redshift sample``: z drawn per galaxy (seeded) as the SDSS main galaxy sample would
  have seen that galaxy: uniform in comoving volume over 0.02 <= z <= 0.25 where its
  apparent, observed-frame r magnitude (K-corrected, the same light as its images) lies in
  the sample's 14.5 <= r <= 17.77 (median z ~ 0.1).  A galaxy too faint for the sample even
  at z = 0.02 is placed at 0.02 and one still too bright at 0.25 at 0.25: both are reported
  (:func:`redshift_window`), warned about and counted in the run record.
"""
from __future__ import annotations

import functools

import numpy as np

Z_MIN, Z_MAX = 0.02, 0.25
R_BRIGHT, R_FAINT = 14.5, 17.77
ARCSEC_RAD = np.pi / (180.0 * 3600.0)
COSMOLOGY_NAME = "Planck13"


@functools.lru_cache(maxsize=1)
def _cosmology():
    from astropy.cosmology import Planck13
    return Planck13


def distances_mpc(z: float) -> tuple[float, float]:
    """Angular-diameter and luminosity distance (Mpc) at redshift ``z`` > 0."""
    if not z > 0:
        raise ValueError(f"redshift must be > 0, got {z}")
    c = _cosmology()
    return float(c.angular_diameter_distance(z).to_value("Mpc")), float(c.luminosity_distance(z).to_value("Mpc"))


def kpc_per_arcsec(z: float) -> float:
    """Physical kpc per arcsec at ``z``."""
    d_a, _ = distances_mpc(z)
    return d_a * 1e3 * ARCSEC_RAD


def nmgy_per_unit_luminosity(d_l_mpc: float) -> float:
    """Flux in nanomaggies of a source of absolute magnitude 0 (L = 1) at luminosity distance ``d_l_mpc``."""
    distance_modulus = 5.0 * np.log10(d_l_mpc * 1e5)  # D_L / 10 pc
    return float(10.0 ** (-0.4 * (distance_modulus - 22.5)))


@functools.lru_cache(maxsize=1)
def _z_table():
    c = _cosmology()
    z = np.linspace(Z_MIN, Z_MAX, 461)
    dm = 5.0 * np.log10(c.luminosity_distance(z).to_value("Mpc") * 1e5)
    dv = c.differential_comoving_volume(z).value
    return z, dm, dv


def redshift_window(abs_mag_r: float, k_r=None) -> str:
    """Where the sample's magnitude window lies for this galaxy: 'ok', 'too faint' or 'too bright'.

    ``k_r``: a function z (M,) -> K_r (M,) of the galaxy's summed light, or None (no K).
    """
    z, dm, _ = _z_table()
    r = abs_mag_r + dm + (k_r(z) if k_r is not None else 0.0)
    ok = (r >= R_BRIGHT) & (r <= R_FAINT)
    if ok.any():
        return "ok"
    return "too faint" if r[0] > R_FAINT else "too bright"


def sample_redshift(abs_mag_r: float, rng: np.random.Generator, k_r=None) -> float:
    """Draw z for a galaxy of absolute (rest-frame) r magnitude ``abs_mag_r`` (module docstring).

    ``k_r``: a function z (M,) -> K_r (M,) giving the observed-frame r magnitude
    ``abs_mag_r + DM(z) + K_r(z)``; None treats the rest-frame magnitude as observed.
    """
    z, dm, dv = _z_table()
    r = abs_mag_r + dm + (k_r(z) if k_r is not None else 0.0)
    ok = (r >= R_BRIGHT) & (r <= R_FAINT)
    if not ok.any():
        return Z_MIN if r[0] > R_FAINT else Z_MAX
    w = np.where(ok, dv, 0.0)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(z))])
    return float(np.interp(rng.uniform() * cdf[-1], cdf, z))
