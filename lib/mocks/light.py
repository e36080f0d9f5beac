"""Starlight of each star particle from a simple-stellar-population (SSP) table.

The table (``data/ssp/*.npz``, format in ``data/ssp/README.md``) gives absolute AB
magnitudes per 1 Msun *formed* on a grid of metallicity Z (linear mass fraction) and
age (yr).  As in the paper's engine, the magnitude is interpolated bilinearly in
(Z, log10 age) -- linear in Z, not in log Z -- and then shifted by the formation mass:

    M_band = M_band,1Msun(Z, log10 age) - 2.5 log10(massform / Msun)
    L_band = 10^(-0.4 M_band)          (luminosity in units of a 0-magnitude source)

Unlike the paper's engine, ages and metallicities outside the grid are clipped to its
edges *and counted* (:class:`Light` carries the counts), and nothing is modified in
place.  Any other SSP table with the same keys (FSPS, Bruzual & Charlot, ...) can be
dropped in with ``--ssp``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data")
DEFAULT_SSP = os.path.join(DATA_DIR, "ssp", "bpass_ugriz_sin_imf135_300.npz")
"""BPASS v2 single-star table, IMF slope 1.35, upper mass 300 Msun (the paper's table)."""
MAP_BANDS = ("g", "r", "i")
"""Bands rendered into maps: i, r, g become R, G, B in both recipes."""


class SSPError(ValueError):
    """An SSP table that cannot be used (one-line message naming the file)."""


@dataclass(frozen=True)
class SSPTable:
    """A magnitude grid: ``mags[band]`` has shape (len(mets), len(ages)).

    Attributes
    ----------
    mets : ndarray, shape (NZ,)
        Metallicity nodes, linear mass fraction, strictly increasing.
    log_ages : ndarray, shape (NA,)
        log10(age / yr) nodes, strictly increasing.
    mags : dict band -> ndarray (NZ, NA)
        Absolute AB magnitude of 1 Msun formed.
    path : str
        Where the table was read from.
    """

    mets: np.ndarray
    log_ages: np.ndarray
    mags: dict
    path: str


def load_ssp(path: str = DEFAULT_SSP, bands: tuple[str, ...] = MAP_BANDS) -> SSPTable:
    """Read and check an SSP table (NPZ with ``ages`` [yr], ``mets`` and one (NZ, NA) array per band)."""
    try:
        with np.load(path) as f:
            ages = np.asarray(f["ages"], dtype=np.float64)
            mets = np.asarray(f["mets"], dtype=np.float64)
            mags = {b: np.asarray(f[b], dtype=np.float64) for b in bands}
    except KeyError as exc:
        raise SSPError(f"{path}: SSP table lacks the array {exc.args[0]!r} (needs ages, mets, {', '.join(bands)})") from None
    except (OSError, ValueError) as exc:
        raise SSPError(f"{path}: cannot read the SSP table ({exc})") from None
    if ages.ndim != 1 or mets.ndim != 1 or (ages <= 0).any() or np.any(np.diff(ages) <= 0) or np.any(np.diff(mets) <= 0):
        raise SSPError(f"{path}: 'ages' (yr, > 0) and 'mets' must be strictly increasing 1-D arrays")
    for b, m in mags.items():
        if m.shape != (mets.size, ages.size) or not np.isfinite(m).all():
            raise SSPError(f"{path}: band {b!r} must be a finite array of shape (len(mets), len(ages)) = "
                           f"({mets.size}, {ages.size}), got {m.shape}")
    return SSPTable(mets=mets, log_ages=np.log10(ages), mags=mags, path=os.fspath(path))


def _bracket(nodes: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower node index and fractional position of each (already clipped) ``x``."""
    k = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, nodes.size - 2)
    t = (x - nodes[k]) / (nodes[k + 1] - nodes[k])
    return k, t


@dataclass
class Light:
    """Per-particle luminosities and the clipping bookkeeping of one galaxy.

    ``lum[band]`` has shape (N,), in units of a 0-magnitude source (10^(-0.4 M)).
    """

    lum: dict
    n_clipped_age: int
    n_clipped_metals: int

    def abs_mag(self, band: str) -> float:
        """Total absolute AB magnitude of the particles in ``band``."""
        return float(-2.5 * np.log10(self.lum[band].sum()))


def ssp_magnitudes(table: SSPTable, age_gyr: np.ndarray, metals: np.ndarray) -> tuple[dict, int, int]:
    """Magnitudes per 1 Msun formed, bilinear in (Z, log10 age), with clip counts.

    Parameters
    ----------
    age_gyr : ndarray, shape (N,)
        Stellar ages in Gyr (>= 0; 0 means younger than the grid's first node).
    metals : ndarray, shape (N,)
        Metal mass fractions.

    Returns
    -------
    mags : dict band -> ndarray (N,)
    n_clipped_age, n_clipped_metals : int
        Particles whose age or metallicity lay outside the grid and took the edge value.
    """
    with np.errstate(divide="ignore"):
        log_age = np.log10(np.asarray(age_gyr, dtype=np.float64) * 1e9)  # age 0 -> -inf -> first node
    z = np.asarray(metals, dtype=np.float64)
    la, za = table.log_ages, table.mets
    clipped_age = (log_age < la[0]) | (log_age > la[-1])
    clipped_z = (z < za[0]) | (z > za[-1])
    ka, ta = _bracket(la, np.clip(log_age, la[0], la[-1]))
    kz, tz = _bracket(za, np.clip(z, za[0], za[-1]))
    out = {}
    for band, grid in table.mags.items():
        # bilinear on the rectilinear grid; exact at nodes (t = 0 or 1)
        m00, m01 = grid[kz, ka], grid[kz, ka + 1]
        m10, m11 = grid[kz + 1, ka], grid[kz + 1, ka + 1]
        out[band] = (1 - tz) * ((1 - ta) * m00 + ta * m01) + tz * ((1 - ta) * m10 + ta * m11)
    return out, int(clipped_age.sum()), int(clipped_z.sum())


def star_light(table: SSPTable, massform: np.ndarray, age_gyr: np.ndarray, metals: np.ndarray) -> Light:
    """Luminosity of every star particle in each band of ``table`` (0-mag units).

    ``massform`` (N,) is the formation mass in Msun (the paper's engine used ``massform``,
    falling back to the current mass only when absent; the readers do the same).
    """
    mags, n_age, n_z = ssp_magnitudes(table, age_gyr, metals)
    mf = np.asarray(massform, dtype=np.float64)
    # 10^(-0.4 (M1 - 2.5 log10 mf)) = mf * 10^(-0.4 M1): no log of the mass needed
    lum = {b: mf * 10.0 ** (-0.4 * m) for b, m in mags.items()}
    return Light(lum=lum, n_clipped_age=n_age, n_clipped_metals=n_z)
