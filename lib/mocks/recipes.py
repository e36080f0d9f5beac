"""The two recipes: the paper's mocks (``paper``) and SDSS-like cutouts (``sdss``).

Per galaxy, :func:`prepare` does the orientation-independent work once: face-on frame,
smoothing lengths (stars among stars, gas among gas), SSP light.  Then, per view:

``paper``  (:func:`paper_view`): 50 kpc field, 500 x 500 pixels of 0.1 kpc, maps of
           10^(-0.4 M) per pc^2 in g, r, i, optional dust screen, astropy
           ``make_lupton_rgb(i, r, g, minimum=0, Q=20, stretch=0.1)``, rows flipped as
           ``plt.imsave(origin='lower')`` did, RGBA with alpha 255 (the paper's PNGs).
           No PSF, no noise, no redshift.
``sdss``   (:func:`sdss_view`): the galaxy at redshift z (lib/mocks/redshift.py), its light
           in the observed frame (:func:`observed_frame`, lib/mocks/kcorrection.py), rendered
           2x finer than the SDSS pixel on a 66 x 66 pixel canvas and summed into SDSS
           pixels (nanomaggies per 0.396127 arcsec pixel), optional dust, then this
           project's SDSS imaging model (lib/galaxies/imaging.py: Moffat PSF, sky and
           detector noise, SDSS colour JPEG recipe, 64 x 64).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lib.mocks import dust as dustlib
from lib.mocks.kcorrection import KCorrector
from lib.mocks.light import Light, SSPTable, star_light
from lib.mocks.orientation import find_frame, view_matrix
from lib.mocks.projection import Grid, project, smoothing_lengths
from lib.mocks.readers import MockInputError, Particles
from lib.mocks.redshift import distances_mpc, nmgy_per_unit_luminosity

PAPER_WIDTH_KPC = 50.0
PAPER_NPIX = 500
PC2_PER_KPC2 = 1e6
LUPTON_Q, LUPTON_STRETCH = 20.0, 0.1
SDSS_OVERSAMPLE = 2
"""Render at 1/2 of an SDSS pixel, then sum 2 x 2 blocks: flux-exact rebinning (the PSF, 3.5
SDSS pixels FWHM, hides anything finer)."""


@dataclass
class Prepared:
    """One galaxy, ready to be seen from any direction.

    ``star_xyz`` (N, 3) and ``gas_xyz`` (Ng, 3) are face-on-frame positions (kpc);
    ``star_h``, ``gas_h`` smoothing lengths (kpc); ``gas_w`` the dust column weights (Msun).
    """

    particles: Particles
    star_xyz: np.ndarray
    star_h: np.ndarray
    light: Light
    gas_xyz: np.ndarray | None
    gas_h: np.ndarray | None
    gas_w: np.ndarray | None

    @property
    def logmstar(self) -> float:
        """log10 of the current stellar mass of all star particles (Msun)."""
        return float(np.log10(self.particles["mass"].sum()))


def prepare(p: Particles, ssp: SSPTable, with_dust: bool, workers: int = -1, spin: str = "stars") -> Prepared:
    """Frame, smoothing lengths and light of galaxy ``p`` (shared by all its views).

    ``spin``: the face-on axis from the inner 'stars' or (the paper's engine) the 'gas'.
    """
    frame = find_frame(p["pos"], p["vel"], p["mass"], p.get("gas_pos"), p.get("gas_vel"), p.get("gas_mass"),
                       spin=spin)
    star_xyz = frame.apply(p["pos"])
    star_h = p["smooth"] if p.get("smooth") is not None else smoothing_lengths(p["pos"], workers=workers)
    light = star_light(ssp, p["massform"], p["age"], p["metals"])
    gas_xyz = gas_h = gas_w = None
    if with_dust and p.n_gas > 0:
        gas_xyz = frame.apply(p["gas_pos"])
        gas_h = p["gas_smooth"] if p.get("gas_smooth") is not None else smoothing_lengths(p["gas_pos"], workers=workers)
        gas_w = dustlib.column_weights(p["gas_mass"], p["gas_temp"])
    return Prepared(p, star_xyz, star_h, light, gas_xyz, gas_h, gas_w)


def observed_frame(prep: Prepared, kc: KCorrector, z: float) -> Prepared:
    """The galaxy with each particle's g, r, i light as seen through the SDSS filters at ``z``.

    Rest-frame luminosity x 10^(-0.4 K(Z, age, z)) per particle (lib/mocks/kcorrection.py);
    everything else (frame, smoothing lengths, gas) shared with ``prep``.
    """
    lum = {b: l * kc.factors(b, z) for b, l in prep.light.lum.items()}
    light = Light(lum=lum, n_clipped_age=prep.light.n_clipped_age, n_clipped_metals=prep.light.n_clipped_metals)
    return replace(prep, light=light)


@dataclass
class View:
    """One image of a galaxy.

    ``maps``: band -> (npix, npix) float64 with row 0 at the bottom (-y), in ``bunit``;
    ``image``: uint8 (H, W, 3 or 4) in display order (row 0 = top);
    ``n_field``, ``mass_field``: star particles (and their current mass, Msun) in the field.
    """

    theta: float
    phi: float
    pa: float
    redshift: float | None
    maps: dict
    image: np.ndarray
    n_field: int
    mass_field: float
    bunit: str
    pixscale: float
    pixunit: str


def _turn(xyz: np.ndarray, rot: np.ndarray) -> np.ndarray:
    # (3, 3) @ (3, N) is a large BLAS product; (N, 3) @ (3, 3) is a slow small-matrix loop
    return (rot @ xyz.T).T


def _rotated(prep: Prepared, theta: float, phi: float, pa: float) -> tuple[np.ndarray, np.ndarray | None]:
    rot = view_matrix(theta, phi, pa)
    gas = _turn(prep.gas_xyz, rot) if prep.gas_xyz is not None else None
    return _turn(prep.star_xyz, rot), gas


def _field_stars(prep: Prepared, xyz: np.ndarray, half_width: float, what: str) -> tuple[int, float]:
    inside = (np.abs(xyz[:, 0]) < half_width) & (np.abs(xyz[:, 1]) < half_width)
    n = int(inside.sum())
    if n == 0:
        raise MockInputError(f"{prep.particles.label}: no star particles in the {what} field "
                             "(positions in kpc?)")
    return n, float(prep.particles["mass"][inside].sum())


def _starlight_maps(prep: Prepared, xyz: np.ndarray, grid: Grid, scale: float, gas: np.ndarray | None) -> dict:
    """Projected light per pixel (times ``scale``) in g, r, i, after the dust screen if any."""
    bands = ("g", "r", "i")
    lum = np.stack([prep.light.lum[b] for b in bands])  # (3, N)
    cube = project(xyz[:, 0], xyz[:, 1], prep.star_h, lum, grid) * scale
    maps = dict(zip(bands, cube))
    if gas is not None:
        maps = dustlib.attenuate(maps, dustlib.av_map(gas, prep.gas_h, prep.gas_w, grid))
    return maps


def lupton_paper(i: np.ndarray, r: np.ndarray, g: np.ndarray) -> np.ndarray:
    """astropy ``make_lupton_rgb(i, r, g, minimum=0, Q=20, stretch=0.1)`` -> uint8 (H, W, 3)."""
    from astropy.visualization import make_lupton_rgb
    with np.errstate(invalid="ignore", divide="ignore"):  # empty pixels: astropy divides 0 by 0, then zeroes them
        try:  # astropy >= 7: minimum is deprecated in favour of an interval
            from astropy.visualization import LuptonAsinhStretch, ManualInterval
            return make_lupton_rgb(i, r, g, interval=ManualInterval(vmin=0, vmax=None),
                                   stretch_object=LuptonAsinhStretch(stretch=LUPTON_STRETCH, Q=LUPTON_Q))
        except (ImportError, TypeError):
            return make_lupton_rgb(i, r, g, minimum=0, Q=LUPTON_Q, stretch=LUPTON_STRETCH)


def paper_view(prep: Prepared, theta: float, phi: float, pa: float = 0.0) -> View:
    """The paper's 500 x 500 PNG of one view (maps in 10^(-0.4 M) per pc^2)."""
    xyz, gas = _rotated(prep, theta, phi, pa)
    n_field, m_field = _field_stars(prep, xyz, PAPER_WIDTH_KPC / 2, f"{PAPER_WIDTH_KPC:g} kpc")
    grid = Grid(PAPER_NPIX, PAPER_WIDTH_KPC)
    per_pc2 = 1.0 / (grid.pixel**2 * PC2_PER_KPC2)  # 0.1 kpc pixels = 1e4 pc^2
    maps = _starlight_maps(prep, xyz, grid, per_pc2, gas)
    rgb = lupton_paper(maps["i"], maps["r"], maps["g"])[::-1]  # PNG row 0 = +y (origin='lower')
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return View(theta, phi, pa, None, maps, np.ascontiguousarray(rgba), n_field, m_field,
                "10**(-0.4*M_AB) pc**-2", grid.pixel, "kpc")


def sdss_maps(prep: Prepared, theta: float, phi: float, z: float, pa: float = 0.0) -> tuple[dict, int, float, float]:
    """Noiseless, PSF-free g, r, i maps on the 66 x 66 SDSS canvas (nanomaggies per pixel).

    Returns (maps, n_field, mass_field, kpc per SDSS pixel); maps have row 0 at -y.
    """
    from lib.galaxies import imaging

    d_a, d_l = distances_mpc(z)
    kpc_px = d_a * 1e3 * imaging.SDSS_PIXEL_SCALE * np.pi / (180.0 * 3600.0)
    canvas = imaging.CUTOUT_SIZE + 2  # the imaging model's room for the server's sub-pixel shift
    xyz, gas = _rotated(prep, theta, phi, pa)
    n_field, m_field = _field_stars(prep, xyz, imaging.CUTOUT_SIZE / 2 * kpc_px,
                                    f"{imaging.CUTOUT_SIZE}-pixel SDSS (z = {z:.3f})")
    grid = Grid(canvas * SDSS_OVERSAMPLE, canvas * kpc_px)
    fine = _starlight_maps(prep, xyz, grid, nmgy_per_unit_luminosity(d_l), gas)
    k = SDSS_OVERSAMPLE
    maps = {b: m.reshape(canvas, k, canvas, k).sum(axis=(1, 3)) for b, m in fine.items()}
    return maps, n_field, m_field, kpc_px


def sdss_view(prep: Prepared, theta: float, phi: float, z: float, rng: np.random.Generator,
              pa: float = 0.0, field_sources: bool = False, galactic_extinction: bool = False) -> View:
    """An SDSS-like 64 x 64 colour cutout of one view at redshift ``z`` (JPEG-ready).

    ``field_sources``: also draw the sky's other sources as the synthetic ``observed`` population has them
    (background galaxies and foreground stars, lib/galaxies/population.py), seen through the same PSF, so
    that the cutout is not emptier than a real SDSS one; off, the cutout shows the particles alone.
    ``galactic_extinction``: dim the whole scene by a Milky Way E(B-V) drawn as over the SDSS footprint
    (SDSS images are not corrected for it; the ``observed`` population is dimmed the same way)."""
    from lib.galaxies import imaging, population

    maps, n_field, m_field, _ = sdss_maps(prep, theta, phi, z, pa)
    cond, add = None, None
    if field_sources:  # conditions first: the field's sources need this view's PSF
        cond = imaging.draw_conditions(rng)
        add = population.field_images(rng, cond)[0]
    # imaging keeps row order; flip so that +y is up in the JPEG, as in the paper's PNGs
    scene = {b: m[::-1] for b, m in maps.items()}
    if galactic_extinction:  # foreground dust dims the galaxy and the field's sources alike
        ebv = population.draw_ebv(rng)
        scene = {b: m * population.extinction_factor(b, ebv) for b, m in scene.items()}
        if add is not None:
            add = {b: m * population.extinction_factor(b, ebv) for b, m in add.items()}
    rgb = imaging.observe(scene, imaging.SDSS_PIXEL_SCALE, rng, conditions=cond, add=add)
    crop = {b: m[1:-1, 1:-1] for b, m in maps.items()}  # the 64 x 64 field
    return View(theta, phi, pa, z, crop, rgb, n_field, m_field, "nanomaggy", imaging.SDSS_PIXEL_SCALE, "arcsec")
