"""Embedded example: particle realisations of a few galaxies, made here, seeded.

Each galaxy is an exponential disc (rotating, with a sech^2-like vertical profile, ages
younger and metallicities lower outwards) plus a Hernquist bulge (old, metal-rich,
pressure supported), and a gas disc (for ``--dust paper``).  They are toy models with
plausible numbers, not simulations: enough for a newcomer to run particles -> mocks ->
scores -> rating with nothing downloaded, and for the tests to know the right answer.

``python mock_observation.py --make-example DIR`` writes them as particle NPZ files.
"""
from __future__ import annotations

import os

import numpy as np

from lib.mocks.readers import write_npz

G_KPC = 4.30091727e-6  # gravitational constant, kpc (km/s)^2 / Msun

# name: log10 M*/Msun, bulge fraction, disc scale length (kpc), gas fraction
EXAMPLES = {
    "disc-small": (9.6, 0.05, 1.6, 0.30),
    "disc-mw": (10.6, 0.20, 3.0, 0.12),
    "disc-bulgy": (10.8, 0.45, 3.2, 0.08),
    "spheroid": (11.1, 0.90, 4.0, 0.02),
}


def exponential_radii(n: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Radii of an exponential surface density exp(-R/scale): Gamma(2, scale) distributed."""
    return rng.gamma(2.0, scale, n)


def disc(n: int, mass: float, scale: float, height: float, v_flat: float, rng: np.random.Generator,
         sigma: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """Positions (n, 3) kpc and velocities (n, 3) km/s of a rotating exponential disc in the x-y plane.

    The rotation (counter-clockwise seen from +z) gives angular momentum along +z.
    """
    r = exponential_radii(n, scale, rng)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    z = height * np.arctanh(rng.uniform(-1.0, 1.0, n) * 0.999)  # sech^2 profile of scale height
    pos = np.column_stack([r * np.cos(phi), r * np.sin(phi), z])
    vc = v_flat * (1.0 - np.exp(-r / (0.5 * scale)))  # rises, then flat
    vel = np.column_stack([-vc * np.sin(phi), vc * np.cos(phi), np.zeros(n)]) + rng.normal(0.0, sigma, (n, 3))
    return pos, vel


def hernquist(n: int, mass: float, a: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An isotropic Hernquist sphere (scale ``a`` kpc), cut at 20 a; velocities ~ local sigma."""
    u = rng.uniform(0.0, (20 / 21) ** 2, n)  # M(<r)/M = r^2/(r+a)^2, truncated at r = 20 a
    r = a * np.sqrt(u) / (1.0 - np.sqrt(u))
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    sin_t = np.sqrt(1 - cos_t**2)
    pos = r[:, None] * np.column_stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t])
    sigma = np.sqrt(G_KPC * mass / (6.0 * (r + a)))  # rough local dispersion, km/s
    return pos, rng.normal(0.0, 1.0, (n, 3)) * sigma[:, None]


def make_galaxy(logmstar: float, bulge_fraction: float, scale: float, gas_fraction: float,
                n_star: int, rng: np.random.Generator, n_gas: int | None = None) -> dict:
    """Particle fields of one example galaxy (units of lib/mocks/readers.py)."""
    mstar = 10.0**logmstar
    n_bulge = int(round(n_star * bulge_fraction))
    n_disc = n_star - n_bulge
    v_flat = 0.8 * (G_KPC * mstar / (2.2 * scale)) ** 0.5 * 1.6  # km/s, MW-like at 10^10.6
    pd, vd = disc(n_disc, mstar * (1 - bulge_fraction), scale, 0.1 * scale, v_flat, rng)
    pb, vb = hernquist(n_bulge, mstar * bulge_fraction, 0.25 * scale, rng)
    pos, vel = np.vstack([pd, pb]), np.vstack([vd, vb])
    rd = np.hypot(pd[:, 0], pd[:, 1]) / scale
    # inside-out: disc ages up to ~11 Gyr in the centre, younger outwards; bulge 8-12.5 Gyr
    age_d = rng.uniform(0.0, 1.0, n_disc) * np.clip(11.0 - 2.0 * rd, 1.0, None) + 0.001
    age_b = rng.uniform(8.0, 12.5, n_bulge)
    z0 = 0.018 * 10 ** (0.25 * (logmstar - 10.6))  # mass-metallicity (linear Z)
    met_d = z0 * 10 ** (-0.08 * rd * scale / 3.0 + rng.normal(0, 0.1, n_disc))  # -0.08 dex per 3 kpc-ish
    met_b = 1.1 * z0 * 10 ** rng.normal(0, 0.1, n_bulge)
    age, metals = np.concatenate([age_d, age_b]), np.concatenate([met_d, met_b])
    mass = np.full(n_star, mstar / n_star)
    returned = 0.3 * (1.0 - np.exp(-age / 0.3))  # fraction of the initial mass returned to the gas
    out = {"pos": pos, "vel": vel, "mass": mass, "massform": mass / (1.0 - returned), "age": age, "metals": metals}
    n_gas = n_gas if n_gas is not None else max(64, n_star // 4)
    if gas_fraction > 0:
        pg, vg = disc(n_gas, gas_fraction * mstar, 1.7 * scale, 0.05 * scale, v_flat, rng, sigma=10.0)
        out.update(gas_pos=pg, gas_vel=vg, gas_mass=np.full(n_gas, gas_fraction * mstar / n_gas),
                   gas_temp=10 ** rng.uniform(3.5, 6.0, n_gas))
    return out


def write_examples(folder: str, n_star: int = 20000, seed: int = 0) -> list[str]:
    """Write every galaxy of :data:`EXAMPLES` as ``folder/<name>.npz``; return the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for k, (name, params) in enumerate(EXAMPLES.items()):
        rng = np.random.default_rng([seed, k])
        path = os.path.join(folder, f"{name}.npz")
        write_npz(path, make_galaxy(*params, n_star=n_star, rng=rng))
        paths.append(path)
    return paths
