"""Synthetic galaxy populations seen by the SDSS imaging model (lib/galaxies/imaging.py).

A population is a config: the ``observed`` parameters (an SDSS-like, r < 17.77
flux-limited sample of bulge + disc galaxies, 9 <= log M*/Msun <= 12, 0.02 <= z <= 0.25)
plus optional *knobs* that push one physical property away from it by a strength 1..3.
Named presets are ``observed`` and ``<knob>_<strength>`` for every knob in :data:`KNOBS`.

Determinism: image ``index`` of a run with ``seed`` uses random streams derived from
``SeedSequence([seed, index])`` only, one stream per aspect (galaxy, clumps, neighbours,
stars, conditions, noise), so a resumed run gives identical images, and a suite with the
same seed shows the *same* galaxies as ``observed`` with only its knob changed.

This module is the population model (drawing galaxies, neighbours and stars, and
:func:`make_image`); configs, knobs and presets are in config.py and writing a population
to disk (:func:`generate`) in generate.py.  ``from lib import galaxies`` (the package
facade) is the one import callers need.

Distributions (all in :func:`draw_galaxy`, with their sources):
* mass: double Schechter stellar mass function (Baldry et al. 2012, z < 0.06);
  redshift: uniform in comoving volume (Planck13); kept if the apparent r magnitude
  (Bell et al. 2003 M/L_r, approximate k-correction, disc dust) is within 14.5..17.77
  (SDSS main galaxy sample limit; targeting rejects the brightest), which gives the SDSS
  z and M* distributions (median z ~ 0.1, median log M* ~ 10.7).
* morphology: P(early) rises with mass (logistic, 50% at log M* = 10.2); bulge-to-total
  (r-band light) 0.45..0.95 for early types, Beta(1.2, 4) for late types; bulge Sersic
  n = 4 truncated at 8 r_e (as SDSS photo's deV model), exponential disc.
* sizes: Shen et al. (2003) r-band size-mass relations (early / late) with their
  log-normal scatter; early types: bulge r_e 0.75x and disc 2x the relation, late types:
  disc on the relation, bulge ~0.25x the disc; discs have an intrinsic thickness 0.18 and
  random inclination.
* colours: rest-frame g-r of bulges (red sequence) and discs (mass dependent), r-i from
  g-r, plus an approximate k-correction and inclination-dependent dust for discs.
* environment: Poisson neighbours (mean 8 per cutout down to r = 24, number counts
  ~10^(0.3 m); most are faint smudges that make the lumpy background of real cutouts),
  foreground stars (mean 0.45, r = 14.5..22) along the stellar locus, and Galactic
  extinction E(B-V) (log-normal, median 0.03; SDSS images are not corrected for it).
* colours and the number of neighbours were tuned so that benchmarks/realism.py matches
  the real cutouts in data/sdss_real (median g-r of the galaxy light ~1.0 observed-frame).
"""

from __future__ import annotations

import functools
import math

import galsim
import numpy as np

from lib.galaxies import imaging
from lib.galaxies.config import Params

R_LIMIT = 17.77
FAINT_LIMIT = 24.0  # faint neighbours make the lumpy background of real cutouts
EXTINCTION_COEFF = {"g": 3.793, "r": 2.751, "i": 2.086}  # A_b / E(B-V), Schlegel et al. 1998
TRUNC_MAX = 40.0  # arcsec; the cutout is 25 arcsec across
R_BRIGHT = 14.5  # main-sample targeting rejects brighter (fibre) magnitudes
CANVAS = imaging.CUTOUT_SIZE + 2
HALF_FIELD_ARCSEC = CANVAS * imaging.SDSS_PIXEL_SCALE / 2


# ---------------------------------------------------------------- population model
@functools.lru_cache(maxsize=1)
def _tables():
    """Cosmology and mass-function look-up tables (Planck13, z in [0.02, 0.25])."""
    from astropy.cosmology import Planck13
    z = np.linspace(0.02, 0.25, 400)
    dl = Planck13.luminosity_distance(z).to_value("Mpc")
    kpc_per_arcsec = Planck13.kpc_proper_per_arcmin(z).to_value("kpc/arcmin") / 60.0
    dv = Planck13.differential_comoving_volume(z).value
    cdf_z = np.concatenate([[0], np.cumsum(0.5 * (dv[1:] + dv[:-1]) * np.diff(z))])
    logm = np.linspace(9.0, 12.0, 600)
    m = 10 ** (logm - 10.66)  # Baldry+2012 double Schechter, per dex
    phi = np.log(10) * np.exp(-m) * (3.96e-3 * m ** (1 - 0.35) + 0.79e-3 * m ** (1 - 1.47))
    cdf_m = np.concatenate([[0], np.cumsum(0.5 * (phi[1:] + phi[:-1]) * np.diff(logm))])
    return z, dl, kpc_per_arcsec, cdf_z / cdf_z[-1], logm, cdf_m / cdf_m[-1]


def _shen_size(logm: float, early: bool) -> tuple[float, float]:
    """Shen et al. (2003) median r-band half-light radius (kpc) and ln-scatter."""
    m = 10.0**logm
    if early:
        return 2.88e-6 * m**0.56, 0.30
    sigma = 0.34 + (0.47 - 0.34) / (1 + (m / 3.98e10) ** 2)
    return 0.1 * m**0.14 * (1 + m / 3.98e10) ** (0.39 - 0.14), sigma


def _mag_to_nmgy(mag: float) -> float:
    return 10 ** (-0.4 * (mag - 22.5))


def draw_galaxy(rng: np.random.Generator) -> dict:
    """Draw the intrinsic properties of one main galaxy of the observed population.

    Returns a dict: logmstar, z, early, bt (r-band light fraction), component sizes
    (kpc and arcsec), axis ratios, PA (deg), observed-frame g-r and r-i per component,
    dust dimming and apparent r magnitude.
    """
    z_grid, dl, kpa, cdf_z, logm_grid, cdf_m = _tables()
    for _ in range(100000):
        logm = float(np.interp(rng.uniform(), cdf_m, logm_grid))
        z = float(np.interp(rng.uniform(), cdf_z, z_grid))
        early = bool(rng.uniform() < 1 / (1 + math.exp(-(logm - 10.2) / 0.3)))
        bt = float(rng.uniform(0.45, 0.95) if early else rng.beta(1.2, 4.0))
        gr_b = 0.84 + 0.05 * (logm - 10.5) + rng.normal(0, 0.03)
        gr_d = (0.58 + rng.normal(0, 0.05)) if early else float(np.clip(
            0.45 + 0.15 * (logm - 10.0) + rng.normal(0, 0.08), 0.2, 0.85))
        cos_i = rng.uniform()
        q_d = math.sqrt((1 - 0.18**2) * cos_i**2 + 0.18**2)
        dust_r = (1 - bt) * 0.8 * math.log10(1 / q_d)  # edge-on discs are dimmer, redder
        gr_tot = bt * gr_b + (1 - bt) * gr_d
        ml = 10 ** (-0.306 + 1.097 * gr_tot - 0.1)    # Bell+03 r band, Chabrier-like
        abs_r = 4.65 - 2.5 * math.log10(10**logm / ml)
        k_r = z * (2.0 * gr_tot - 0.3)
        d_l = float(np.interp(z, z_grid, dl))
        r_mag = abs_r + 5 * math.log10(d_l * 1e5) + k_r + dust_r
        if R_BRIGHT <= r_mag <= R_LIMIT:
            break
    scale = float(np.interp(z, z_grid, kpa))
    re_main, sig = _shen_size(logm, early)
    re_main *= math.exp(rng.normal(0, sig))
    if early:
        re_b, re_d = 0.75 * re_main, 2.0 * re_main
    else:
        re_d, re_b = re_main, re_main * 0.25 * math.exp(rng.normal(0, 0.2))
    q_b = float(np.clip(rng.normal(0.75, 0.15), 0.35, 1.0)) if early else max(q_d, float(rng.uniform(0.6, 0.95)))

    def observed(gr0: float, dust: float) -> tuple[float, float]:
        gr = gr0 + z * (4.3 * gr0 - 0.85) + 0.3 * dust
        ri = 0.05 + 0.4 * gr0 + 0.6 * z + 0.15 * dust
        return gr, ri

    gr_bo, ri_bo = observed(gr_b, 0.0)
    gr_do, ri_do = observed(gr_d, dust_r / max(1 - bt, 1e-3))
    return dict(logmstar=logm, z=z, early=early, bt=bt, r_mag=r_mag, kpc_per_arcsec=scale,
                bulge_re_kpc=re_b, disc_re_kpc=re_d, bulge_re_arcsec=re_b / scale,
                disc_re_arcsec=re_d / scale, bulge_q=q_b, disc_q=q_d,
                pa_deg=float(rng.uniform(0, 180)), gr_bulge=gr_bo, ri_bulge=ri_bo,
                gr_disc=gr_do, ri_disc=ri_do, dust_r=dust_r)


def _band_fluxes(r_flux: float, gr: float, ri: float) -> dict[str, float]:
    return {"g": r_flux * 10 ** (-0.4 * gr), "r": r_flux, "i": r_flux * 10 ** (0.4 * ri)}


def draw_neighbours(rng: np.random.Generator, rate: float) -> list[dict]:
    """Neighbouring (mostly background) galaxies: position, mag, size, shape, colour."""
    out = []
    for _ in range(rng.poisson(rate)):
        # number counts ~10^(0.3 m) between r = 16 and FAINT_LIMIT (inverse CDF)
        a = 0.3 * math.log(10)
        u = rng.uniform()
        mag = math.log(math.exp(a * 16) + u * (math.exp(a * FAINT_LIMIT) - math.exp(a * 16))) / a
        while True:
            x, y = rng.uniform(-HALF_FIELD_ARCSEC, HALF_FIELD_ARCSEC, 2)
            if math.hypot(x, y) > 3.0:  # the cutout is centred on the main galaxy
                break
        gr = float(rng.uniform(0.3, 1.7))
        out.append(dict(x=float(x), y=float(y), r_mag=mag,
                        re=float(1.8 * 10 ** (-0.12 * (mag - 18)) * math.exp(rng.normal(0, 0.3))),
                        n=float(rng.choice([1.0, 1.5, 2.5, 4.0])), q=float(rng.uniform(0.3, 1.0)),
                        pa=float(rng.uniform(0, 180)), gr=gr,
                        ri=float(0.15 + 0.4 * (gr - 0.3) + rng.normal(0, 0.08))))
    return out


def draw_stars(rng: np.random.Generator, rate: float) -> list[dict]:
    """Foreground stars (r = 14.5..22, counts ~10^(0.15 m)) along the stellar locus."""
    out = []
    a = 0.15 * math.log(10)
    for _ in range(rng.poisson(rate)):
        u = rng.uniform()
        mag = math.log(math.exp(a * 14.5) + u * (math.exp(a * 22) - math.exp(a * 14.5))) / a
        gr = float(np.clip(rng.normal(0.9, 0.4), 0.15, 1.6))
        ri = 0.1 + 0.25 * gr + (0.9 * (gr - 1.3) if gr > 1.3 else 0.0)
        x, y = rng.uniform(-HALF_FIELD_ARCSEC, HALF_FIELD_ARCSEC, 2)
        out.append(dict(x=float(x), y=float(y), r_mag=mag, gr=gr, ri=float(ri)))
    return out


def _streams(seed: int, index: int) -> dict[str, np.random.Generator]:
    names = ("galaxy", "clumps", "neighbours", "stars", "conditions", "noise")
    kids = np.random.SeedSequence([int(seed), int(index)]).spawn(len(names))
    return {n: np.random.default_rng(k) for n, k in zip(names, kids)}


def _render(params: Params, cond: imaging.Conditions, bulge, disc, knots, neigh: list, stars: list,
            shift: tuple[float, float], fb: dict, fd: dict, fk: dict, ebv: float,
            noise_rng: np.random.Generator) -> np.ndarray:
    """Draw the scene in g, r, i through the PSF, add noise, apply the colour recipe."""
    dx, dy = shift
    # One GalSim draw per band for the whole scene: a single FFT is much faster than
    # one per source.
    images = {}
    for b in imaging.BANDS:
        parts = [bulge.withFlux(fb[b]), disc.withFlux(fd[b])]
        if knots is not None:
            parts.append(knots.withFlux(fk[b]))
        scene = [galsim.Sum(parts).shift(dx, dy)]
        for nb in neigh:
            f = _band_fluxes(_mag_to_nmgy(nb["r_mag"]), nb["gr"], nb["ri"])[b]
            if nb["r_mag"] > 22.0:  # barely resolved: a Gaussian is indistinguishable and fast
                prof = galsim.Gaussian(half_light_radius=nb["re"], flux=f, gsparams=imaging.GSPARAMS)
            else:
                prof = galsim.Sersic(n=nb["n"], half_light_radius=nb["re"], trunc=6 * nb["re"], flux=f,
                                     gsparams=imaging.GSPARAMS)
            scene.append(prof.shear(q=nb["q"], beta=nb["pa"] * galsim.degrees).shift(nb["x"], nb["y"]))
        for st in stars:
            f = _band_fluxes(_mag_to_nmgy(st["r_mag"]), st["gr"], st["ri"])[b]
            scene.append(galsim.DeltaFunction(flux=f, gsparams=imaging.GSPARAMS).shift(st["x"], st["y"]))
        images[b] = imaging.render_profile(galsim.Sum(scene), cond.fwhm(b) * params.psf_scale, size=CANVAS)
    for b in imaging.BANDS:  # Galactic extinction (images are not corrected for it)
        images[b] *= 10 ** (-0.4 * EXTINCTION_COEFF[b] * ebv)
    if params.noise_scale > 0:
        for b in imaging.BANDS:
            noisy = imaging.add_noise(images[b], b, cond, noise_rng)
            images[b] = images[b] + params.noise_scale * (noisy - images[b])
    return imaging.finish(images, noise_rng, cond, noise=False, display_gain=params.display_gain)


def make_image(params: Params, seed: int, index: int, render: bool = True) -> tuple[np.ndarray | None, dict]:
    """Draw and observe image ``index`` of a population: (uint8 (64, 64, 3), metadata row).

    With ``render=False`` only the parameters are drawn (image None): the row is the same.
    """
    s = _streams(seed, index)
    gal = draw_galaxy(s["galaxy"])
    cond = imaging.draw_conditions(s["conditions"])
    ebv = float(np.clip(math.exp(s["conditions"].normal(math.log(0.03), 0.6)), 0.005, 0.25))
    dx, dy = s["galaxy"].normal(0, 0.4, 2) * imaging.SDSS_PIXEL_SCALE
    bt = float(np.clip(gal["bt"] + params.bulge_fraction_shift, 0.0, 1.0))
    re_b = gal["bulge_re_arcsec"] * params.size_scale * params.bulge_size_scale
    re_d = gal["disc_re_arcsec"] * params.size_scale
    gr_b, ri_b = gal["gr_bulge"] + params.colour_shift_gr, gal["ri_bulge"] + params.colour_shift_ri
    gr_d, ri_d = gal["gr_disc"] + params.colour_shift_gr, gal["ri_disc"] + params.colour_shift_ri
    r_flux = _mag_to_nmgy(gal["r_mag"])
    fb = _band_fluxes(r_flux * bt * params.bulge_flux_scale, gr_b, ri_b)
    cf = params.clump_fraction if not gal["early"] else 0.0  # star-forming knots: late-type discs only
    fd = _band_fluxes(r_flux * (1 - bt) * (1 - cf), gr_d, ri_d)
    fk = _band_fluxes(r_flux * (1 - bt) * cf, gr_d - 0.35, ri_d - 0.1)
    pa = gal["pa_deg"] * galsim.degrees
    # Bulges truncated at 8 r_e like SDSS photo's deV model; both components are also cut
    # at TRUNC_MAX, far outside the cutout, keeping the untruncated profile inside (this
    # only bounds the FFT size for very large galaxies).
    bulge = galsim.Sersic(n=params.bulge_n, half_light_radius=re_b, trunc=min(8 * re_b, TRUNC_MAX),
                          flux_untruncated=True, gsparams=imaging.GSPARAMS).shear(q=gal["bulge_q"], beta=pa)
    disc_shape = (galsim.Exponential(half_light_radius=re_d, gsparams=imaging.GSPARAMS) if 8 * re_d < TRUNC_MAX
                  else galsim.Sersic(n=1.0, half_light_radius=re_d, trunc=TRUNC_MAX, flux_untruncated=True,
                                     gsparams=imaging.GSPARAMS))
    disc = disc_shape.shear(q=gal["disc_q"], beta=pa)
    knots = None
    if cf > 0 and bt < 1:
        # knots follow the disc light, cut at 3 r_e so that none floats far outside the galaxy
        knot_profile = galsim.Sersic(n=1.0, half_light_radius=re_d, trunc=3 * re_d, flux_untruncated=True,
                                     gsparams=imaging.GSPARAMS)
        knots = galsim.RandomKnots(npoints=params.n_clumps, profile=knot_profile,
                                   rng=galsim.BaseDeviate(int(s["clumps"].integers(1, 2**31 - 1))),
                                   gsparams=imaging.GSPARAMS).shear(q=gal["disc_q"], beta=pa)
    neigh = draw_neighbours(s["neighbours"], params.neighbour_rate)
    stars = draw_stars(s["stars"], params.star_rate)
    rgb = _render(params, cond, bulge, disc, knots, neigh, stars, (dx, dy), fb, fd, fk, ebv,
                  s["noise"]) if render else None
    # extra bulge stars (bulge_flux_scale) add stellar mass: the bulge's share of the mass is
    # approximated by its share of the r-band light
    logm = gal["logmstar"] + math.log10(1 + gal["bt"] * (params.bulge_flux_scale - 1))
    r_tot = fb["r"] + fd["r"] + fk["r"]
    row = dict(logmstar=logm, z=gal["z"], early_type=gal["early"], bt=fb["r"] / r_tot,
               r_mag=22.5 - 2.5 * math.log10(r_tot), g_r=-2.5 * math.log10((fb["g"] + fd["g"] + fk["g"]) / (fb["r"] + fd["r"] + fk["r"])),
               r_i=-2.5 * math.log10((fb["r"] + fd["r"] + fk["r"]) / (fb["i"] + fd["i"] + fk["i"])),
               bulge_n=params.bulge_n, bulge_re_arcsec=re_b, bulge_q=gal["bulge_q"],
               disc_re_arcsec=re_d, disc_q=gal["disc_q"], pa_deg=gal["pa_deg"],
               kpc_per_arcsec=gal["kpc_per_arcsec"], dust_r=gal["dust_r"],
               clump_fraction=cf if knots is not None else 0.0,
               dx_arcsec=float(dx), dy_arcsec=float(dy), n_neighbours=len(neigh), n_stars=len(stars),
               seeing=cond.seeing * params.psf_scale, sky_mag_r=cond.sky_mag_r, camcol=cond.camcol,
               noise_scale=params.noise_scale, ebv=ebv, logmstar_population=gal["logmstar"])
    return rgb, row
