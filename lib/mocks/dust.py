"""The paper's dust screen, as its formula states, vectorised (``--dust paper``).

Per pixel of the map (original_mock_engine.md section 6):

1. gas with |z| < 50 kpc along the line of sight, split at T = 3e4 K: warm (T > 3e4 K)
   counts fully, cool (T < 3e4 K) with the paper's 0.25 "fudge factor" (T exactly 3e4 K
   counts in neither, as in the engine);
2. column Sigma = sum m W / h^2 by the same orthographic line-of-sight projection as the
   starlight (the engine used a perspective camera at z = 50 kpc that, in pynbody 1.3.2,
   projected the kernel twice and made A_V 1.39x the formula's value; not reproduced);
3. N_H = Sigma / 1.67e-27 kg [cm^-2];  A_V = 0.5 N_H 2e-21 [mag];
4. A_band = A_V k(lambda) / R_V with Calzetti et al. (2000) k(lambda) and R_V = 3.1 in
   place of Calzetti's 4.05 (the engine called ``extinction.calzetti00(..., r_v=3.1)``),
   at g 4718.87, r 6185.19, i 7499.70 A: A/A_V = 1.2207, 0.8393, 0.5966;
5. I_band -> I_band 10^(-0.4 A_band), one vector operation (the engine looped over the
   500 x 500 pixels in Python, one ``calzetti00`` call each).

The paper's published mocks were dust-free (its driver passed only the stars to the
renderer), so both recipes default to ``--dust none``.
"""
from __future__ import annotations

import numpy as np

from lib.mocks.projection import Grid, project

WAVELENGTH_A = {"u": 3561.79, "g": 4718.87, "r": 6185.19, "i": 7499.70, "z": 8961.49}
"""Band wavelengths of the paper's engine (Angstrom)."""
R_V = 3.1
T_SPLIT_K = 3e4
COOL_WEIGHT = 0.25
Z_RANGE_KPC = 50.0
M_H_KG = 1.67e-27
AV_PER_NH = 0.5 * 2e-21  # mag cm^2: half-way screen times 2e-21
MSUN_KG = 1.98847e30
KPC_CM = 3.0856775814913673e21


def calzetti_k(wavelength_a: float, r_v: float = R_V) -> float:
    """Calzetti et al. (2000) k(lambda) with R_V = ``r_v`` (valid 0.12-2.2 micron)."""
    x = 1e4 / wavelength_a  # inverse micron
    if wavelength_a >= 6300.0:
        return 2.659 * (-1.857 + 1.040 * x) + r_v
    return 2.659 * (-2.156 + 1.509 * x - 0.198 * x**2 + 0.011 * x**3) + r_v


def band_ratio(band: str, r_v: float = R_V) -> float:
    """A_band / A_V of the paper's law in ``band``."""
    return calzetti_k(WAVELENGTH_A[band], r_v) / r_v


def column_weights(gas_mass: np.ndarray, gas_temp: np.ndarray) -> np.ndarray:
    """Effective column mass (Msun) per gas particle: warm x1, cool x0.25, T == 3e4 K x0."""
    warm = gas_temp > T_SPLIT_K
    cool = gas_temp < T_SPLIT_K
    return gas_mass * (warm + COOL_WEIGHT * cool)


def av_map(gas_xyz: np.ndarray, gas_h: np.ndarray, weights: np.ndarray, grid: Grid) -> np.ndarray:
    """A_V (mag) per pixel, shape (npix, npix), from gas in the image frame (kpc).

    ``weights`` are the :func:`column_weights` (Msun).
    """
    sel = np.abs(gas_xyz[:, 2]) < Z_RANGE_KPC
    if not sel.any():
        return np.zeros((grid.npix, grid.npix))
    mass_per_pixel = project(gas_xyz[sel, 0], gas_xyz[sel, 1], gas_h[sel], weights[sel], grid)  # Msun
    sigma_kg_cm2 = mass_per_pixel * MSUN_KG / (grid.pixel * KPC_CM) ** 2
    return AV_PER_NH * sigma_kg_cm2 / M_H_KG


def attenuate(maps: dict, a_v: np.ndarray) -> dict:
    """Apply the screen: each band map (npix, npix) times 10^(-0.4 A_V A_band/A_V)."""
    return {b: m * 10.0 ** (-0.4 * a_v * band_ratio(b)) for b, m in maps.items()}
