"""Where a galaxy is, which way it spins, and the directions it is seen from.

Centre, velocity centre and face-on frame follow pynbody's ``analysis.angmom.faceon``,
which the paper's driver called:

1. centre: mass-weighted shrinking sphere (Power et al. 2003): start from all particles
   with radius half their x-extent, shrink by 0.7 per step, stop when fewer than 100
   particles remain inside; taken over the star particles (pynbody >= 2 does this when a
   halo has more than 100 stars; pynbody 1.3.2 used all particles, dark matter included,
   which the particle file does not hold);
2. velocity centre: mass-weighted mean velocity of the stars within 1 kpc (gas if fewer
   than 5 stars; all stars if that fails too, where pynbody would stop);
3. spin axis: L = sum m (r x v) of the star particles within 5 kpc (``spin='stars'``, the
   default of the sdss recipe: a tilted or disturbed gas disc must not set "face-on"), or,
   as pynbody and the paper's engine, of the gas within 5 kpc if there are more than 5
   such gas particles, else of the stars (``spin='gas'``, the paper recipe's default);
4. face-on frame: z' = L/|L|, x' = (y x z') normalised (the simulation's +y is "up"),
   y' = z' x x', so the in-plane orientation matches pynbody's images pixel for pixel.

A view (THETA, PHI, PA), in degrees, turns the face-on galaxy by PHI about its spin axis,
tilts it by THETA about the image x axis (which puts the disc's line of nodes along x),
then turns the image by PA about the line of sight, counter-clockwise as displayed (+x
right, +y up): PA is the angle of the line of nodes (the major axis of a disc) from the
image x axis.  (0, 0, 0) is the paper's face-on image, (90, 0, 0) is edge-on with the
disc along the image x axis.  ``random:N`` draws N views of a uniformly random rotation:
directions uniform on the sphere (cos THETA uniform in [-1, 1], PHI uniform, so THETA >
90 means seen from below) *and* a uniform position angle PA in [0, 360), as the position
angles of SDSS galaxies are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHRINK_FACTOR = 0.7
MIN_PARTICLES = 100
VEL_RADIUS_KPC = 1.0
SPIN_RADIUS_KPC = 5.0


class OrientationError(ValueError):
    """A bad orientation spec, or a galaxy whose frame cannot be found."""


def shrinking_sphere_centre(pos: np.ndarray, mass: np.ndarray, shrink: float = SHRINK_FACTOR,
                            min_particles: int = MIN_PARTICLES) -> np.ndarray:
    """Mass-weighted shrinking-sphere centre (kpc) of ``pos`` (N, 3) with masses ``mass`` (N,)."""
    pos = np.asarray(pos, dtype=np.float64)
    mass = np.asarray(mass, dtype=np.float64)
    centre = (mass[:, None] * pos).sum(0) / mass.sum()
    radius = 0.5 * (pos[:, 0].max() - pos[:, 0].min())
    inside = np.ones(len(pos), bool)
    while radius > 0:
        inside = ((pos - centre) ** 2).sum(1) < radius**2
        if inside.sum() < min_particles:
            break
        m = mass[inside]
        centre = (m[:, None] * pos[inside]).sum(0) / m.sum()
        radius *= shrink
    return centre


def faceon_matrix(spin: np.ndarray, up: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> np.ndarray:
    """Rotation (3, 3) whose rows are the new x, y, z axes; z along ``spin`` (pynbody convention)."""
    z = np.asarray(spin, dtype=np.float64)
    norm = np.linalg.norm(z)
    if not np.isfinite(norm) or norm == 0:
        raise OrientationError("the angular momentum is zero or not finite: no face-on axis")
    z = z / norm
    x = np.cross(np.asarray(up, dtype=np.float64), z)
    if np.linalg.norm(x) < 1e-12:  # spin exactly along "up": any perpendicular x will do
        x = np.cross((1.0, 0.0, 0.0), z)
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


@dataclass(frozen=True)
class Frame:
    """A galaxy's centre (kpc), velocity centre (km/s) and face-on rotation (3, 3)."""

    centre: np.ndarray
    velocity: np.ndarray
    rotation: np.ndarray

    def apply(self, pos: np.ndarray) -> np.ndarray:
        """Positions (N, 3) in the face-on frame (kpc), centred."""
        return (np.asarray(pos, dtype=np.float64) - self.centre) @ self.rotation.T


SPIN_CHOICES = ("stars", "gas")


def find_frame(star_pos: np.ndarray, star_vel: np.ndarray, star_mass: np.ndarray,
               gas_pos: np.ndarray | None = None, gas_vel: np.ndarray | None = None,
               gas_mass: np.ndarray | None = None, spin: str = "stars") -> Frame:
    """Centre, velocity centre and face-on frame (module docstring).

    ``spin``: 'stars' takes the spin axis from the star particles within 5 kpc; 'gas' from
    the gas within 5 kpc where there are more than 5 such gas particles (pynbody's
    ``angmom.faceon``, which the paper's engine used), else from the stars.

    Where pynbody would give up (fewer than 5 particles within 1 kpc, or none within
    5 kpc) all star particles are used instead, so that a sparse or badly-centred galaxy
    reaches the field check and is reported as such.

    Raises
    ------
    OrientationError
        The angular momentum is zero (no spin axis).
    """
    centre = shrinking_sphere_centre(star_pos, star_mass)
    rs = np.linalg.norm(star_pos - centre, axis=1)
    has_gas = gas_pos is not None and len(gas_pos) > 0
    rg = np.linalg.norm(gas_pos - centre, axis=1) if has_gas else np.zeros(0)
    if (rs < VEL_RADIUS_KPC).sum() >= 5:
        sel = rs < VEL_RADIUS_KPC
        vel, m = star_vel[sel], star_mass[sel]
    elif (rg < VEL_RADIUS_KPC).sum() >= 5:
        sel = rg < VEL_RADIUS_KPC
        vel, m = gas_vel[sel], gas_mass[sel]
    else:
        vel, m = star_vel, star_mass
    vcen = (m[:, None] * vel).sum(0) / m.sum()
    if spin not in SPIN_CHOICES:
        raise OrientationError(f"spin axis from {spin!r}: use one of {', '.join(SPIN_CHOICES)}")
    if spin == "gas" and (rg < SPIN_RADIUS_KPC).sum() > 5:
        sel = rg < SPIN_RADIUS_KPC
        p, v, m = gas_pos[sel] - centre, gas_vel[sel] - vcen, gas_mass[sel]
    else:
        sel = rs < SPIN_RADIUS_KPC if (rs < SPIN_RADIUS_KPC).sum() > 5 else slice(None)
        p, v, m = star_pos[sel] - centre, star_vel[sel] - vcen, star_mass[sel]
    spin = (m[:, None] * np.cross(p, v)).sum(0)
    return Frame(centre=centre, velocity=vcen, rotation=faceon_matrix(spin))


def _rz(angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def view_matrix(theta_deg: float, phi_deg: float, pa_deg: float = 0.0) -> np.ndarray:
    """Rotation (3, 3) from the face-on frame to the image frame (x, y on the sky, z towards us).

    z-x-z Euler angles: PHI about the spin axis, THETA about the image x axis, PA about the
    line of sight (module docstring).
    """
    t = np.radians(theta_deg)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(t), -np.sin(t)], [0.0, np.sin(t), np.cos(t)]])
    return _rz(pa_deg) @ rx @ _rz(phi_deg)  # PA = 0: an exact identity, the two-angle matrix of before


def random_directions(n: int, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """``n`` views (THETA, PHI, PA) in degrees of a uniformly random rotation.

    cos THETA uniform in [-1, 1], PHI and PA uniform in [0, 360).  PA is drawn after the
    directions, so a seed gives the same (THETA, PHI) as it did before PA existed.
    """
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 360.0, n)
    pa = rng.uniform(0.0, 360.0, n)
    return [(float(np.degrees(np.arccos(c))), float(f), float(a)) for c, f, a in zip(cos_t, phi, pa)]


def parse_orientations(spec: str) -> tuple[str, int | None, tuple[float, float, float] | None]:
    """Check an orientation spec; return (kind, n, angles).

    ``faceon`` -> ('faceon', 1, (0, 0, 0)); ``edgeon`` -> ('edgeon', 1, (90, 0, 0));
    ``random:N`` -> ('random', N, None); ``THETA,PHI[,PA]`` -> ('fixed', 1, (THETA, PHI, PA)),
    PA 0 when not given.
    """
    s = spec.strip().lower()
    if s == "faceon":
        return "faceon", 1, (0.0, 0.0, 0.0)
    if s == "edgeon":
        return "edgeon", 1, (90.0, 0.0, 0.0)
    if s.startswith("random:"):
        try:
            n = int(s.split(":", 1)[1])
        except ValueError:
            n = 0
        if not 1 <= n <= 100000:
            raise OrientationError(f"--orientations {spec!r}: N in random:N must be an integer 1..100000")
        return "random", n, None
    try:
        angles = [float(t) for t in s.split(",")]
        if len(angles) not in (2, 3):
            raise ValueError
    except ValueError:
        raise OrientationError(f"--orientations {spec!r}: use faceon, edgeon, random:N or THETA,PHI[,PA] "
                               "(degrees)") from None
    theta, phi, pa = (*angles, 0.0) if len(angles) == 2 else angles
    if not (0.0 <= theta <= 180.0 and np.isfinite(phi) and np.isfinite(pa)):
        raise OrientationError(f"--orientations {spec!r}: THETA must be in [0, 180] degrees, PHI and PA finite")
    return "fixed", 1, (theta, phi, pa)


def directions(spec: str, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """The (THETA, PHI, PA) list of a spec, in image order NN = 00, 01, ... (``rng`` only for random)."""
    kind, n, angles = parse_orientations(spec)
    return random_directions(n, rng) if kind == "random" else [angles]
