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

Distributions (in :func:`draw_galaxy`; every relation and its reference is in relations.py, the
values in docs/synthetic_galaxies.md):
* mass from the Baldry et al. (2008) double-Schechter mass function, redshift uniform in comoving
  volume (Planck18), type (logistic early fraction), observed g-r (red / blue sequence); kept if
  14.5 <= r <= 17.77 (Bell et al. 2003 M/L, linear k-correction) and the catalogue mass
  (GSMF mass + 0.10 dex + 0.15 dex scatter, what the paper bins by) is >= 10^9 Msun;
* B/T, axis ratio, Shen et al. (2003) Petrosian R50 with its scatter; bulge (n = 4 early, 1.5 late)
  and disc (Sersic n = 1 early, 0.7 late: Type II discs) radii are solved so that the model's
  Petrosian R50 equals the drawn size;
  bulges are redder than discs; colours, sizes and types reproduce data/anchors/literature_sdss.csv
  per mass bin (tests/test_population.py).
* environment: Poisson neighbours (mean 8 per cutout down to r = 24, number counts
  ~10^(0.3 m)), foreground stars (mean 0.45, r = 14.5..22) along the stellar locus, and Galactic
  extinction E(B-V) (log-normal, median 0.03; SDSS images are not corrected for it).  The
  neighbour rate and the imaging model's display constants were calibrated on data/sdss_real
  before issue 14 and are kept (docs/synthetic_galaxies.md lists them).
"""

from __future__ import annotations

import math

import galsim
import numpy as np

from lib.galaxies import imaging, relations
from lib.galaxies.config import Params

R_LIMIT = relations.R_LIMIT
FAINT_LIMIT = 24.0  # faint neighbours make the lumpy background of real cutouts
EXTINCTION_COEFF = {"g": 3.793, "r": 2.751, "i": 2.086}  # A_b / E(B-V), Schlegel et al. 1998
TRUNC_MAX = 40.0  # arcsec; the cutout is 25 arcsec across
CANVAS = imaging.CUTOUT_SIZE + 2
HALF_FIELD_ARCSEC = CANVAS * imaging.SDSS_PIXEL_SCALE / 2


# ---------------------------------------------------------------- population model
BULGE_DISC_GR = {True: 0.10, False: 0.25}
"""Bulge minus disc g-r (mag): bulges are redder, most in disc galaxies (Lackner & Gunn 2012)."""


def _mag_to_nmgy(mag: float) -> float:
    return 10 ** (-0.4 * (mag - 22.5))


def apparent_r(logm, z, gr_obs):
    """Apparent r magnitude (arrays allowed): M/L from rest-frame g-r, distance modulus, k-correction."""
    z_grid, dl = relations.tables()[:2]
    gr0 = relations.rest_gr(gr_obs, relations.Z_COLOUR)
    abs_r = relations.M_SUN_R - 2.5 * (logm - np.log10(relations.mass_to_light_r(gr0)))
    return abs_r + 5 * np.log10(np.interp(z, z_grid, dl) * 1e5) + relations.k_correction_r(gr0, z)


CANDIDATES = 64  # galaxies drawn per batch of the flux-limit rejection (vectorised; deterministic)


def draw_galaxy(rng: np.random.Generator) -> dict:
    """Draw the intrinsic properties of one main galaxy of the observed population.

    Mass from the stellar mass function and redshift uniform in comoving volume, with type and
    colour, kept when the apparent r magnitude is inside the main-sample limits and the catalogue
    mass is >= 10^9 Msun; then axis ratio, B/T and size from the relations of relations.py.
    Returns a dict: logmstar (catalogue mass), logm_true, z, early, bt (r-band light fraction), q,
    gr (whole galaxy, observed), r50 (Petrosian R50, kpc and arcsec), c90_model (Petrosian
    r90/r50 without seeing), component sizes (kpc and arcsec), axis ratios, PA (deg),
    observed-frame g-r and r-i per component, and the apparent r magnitude.
    """
    z_grid, _, kpa, cdf_z, logm_grid, cdf_m = relations.tables()
    for _ in range(100000):
        u = rng.uniform(size=(4, CANDIDATES))
        logm_all = np.interp(u[0], cdf_m, logm_grid)
        z_all = np.interp(u[1], cdf_z, z_grid)
        early_all = u[2] < relations.early_fraction(logm_all)
        gr_all = relations.observed_gr(early_all, rng)
        cat_all = logm_all + relations.MASS_OFFSET + relations.MASS_SCATTER * rng.normal(size=CANDIDATES)
        r_all = apparent_r(logm_all, z_all, gr_all)
        ok = np.flatnonzero((r_all >= relations.R_BRIGHT) & (r_all <= relations.R_LIMIT)
                            & (cat_all >= relations.LOGM_CATALOGUE_MIN))
        if ok.size:
            k = ok[0]
            break
    logm, z, early, gr = float(logm_all[k]), float(z_all[k]), bool(early_all[k]), float(gr_all[k])
    r_mag, logm_cat = float(r_all[k]), float(cat_all[k])
    q = relations.axis_ratio(early, rng)
    scale = float(np.interp(z, z_grid, kpa))
    bt = relations.bulge_to_total(early, rng)
    ratio = relations.BULGE_DISC_RATIO[early]
    r50_med, sig = relations.shen_size(logm, early)
    r50 = r50_med * math.exp(rng.normal(0, sig))  # Petrosian R50, kpc
    _, x50, x90 = relations.petrosian_radii(bt, ratio, relations.BULGE_N[early], relations.DISC_N[early])
    re_d = r50 / x50
    re_b = ratio * re_d * (1.0 if early else math.exp(rng.normal(0, 0.2)))
    if early:
        q_b = q_d = q
    else:
        q_d, q_b = q, max(q, float(rng.uniform(0.6, 0.95)))  # bulges of inclined discs are rounder
    d_gr = BULGE_DISC_GR[early]
    gr_b, gr_d = gr + d_gr * (1 - bt), gr - d_gr * bt
    e_ri = float(rng.normal(0, relations.RI_SCATTER))
    return dict(logmstar=logm_cat, logm_true=logm, z=z, early=early, bt=bt, q=q, gr=gr, r_mag=r_mag, kpc_per_arcsec=scale,
                r50_kpc=r50, r50_arcsec=r50 / scale, c90_model=x90 / x50,
                bulge_re_kpc=re_b, disc_re_kpc=re_d, bulge_re_arcsec=re_b / scale,
                disc_re_arcsec=re_d / scale, bulge_q=q_b, disc_q=q_d,
                pa_deg=float(rng.uniform(0, 180)), gr_bulge=gr_b, ri_bulge=float(relations.ri_locus(gr_b)) + e_ri,
                gr_disc=gr_d, ri_disc=float(relations.ri_locus(gr_d)) + e_ri)


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


def draw_ebv(rng: np.random.Generator) -> float:
    """Milky Way foreground E(B-V) of a cutout (mag): log-normal, median 0.03, clipped to [0.005, 0.25], as over
    the SDSS footprint (Schlegel et al. 1998 maps); SDSS images are not corrected for it."""
    return float(np.clip(math.exp(rng.normal(math.log(0.03), 0.6)), 0.005, 0.25))


def extinction_factor(band: str, ebv: float) -> float:
    """Flux factor 10^(-0.4 A_band) of Galactic extinction E(B-V) = ``ebv`` (:data:`EXTINCTION_COEFF`)."""
    return 10 ** (-0.4 * EXTINCTION_COEFF[band] * ebv)


def field_profiles(neigh: list[dict], stars: list[dict], band: str) -> list[galsim.GSObject]:
    """The other sources of a cutout (:func:`draw_neighbours`, :func:`draw_stars`) as GalSim profiles in one band:
    flux in nMgy, positions in arcsec from the cutout centre, before the PSF."""
    out = []
    for nb in neigh:
        f = _band_fluxes(_mag_to_nmgy(nb["r_mag"]), nb["gr"], nb["ri"])[band]
        if nb["r_mag"] > 22.0:  # barely resolved: a Gaussian is indistinguishable and fast
            prof = galsim.Gaussian(half_light_radius=nb["re"], flux=f, gsparams=imaging.GSPARAMS)
        else:
            prof = galsim.Sersic(n=nb["n"], half_light_radius=nb["re"], trunc=6 * nb["re"], flux=f,
                                 gsparams=imaging.GSPARAMS)
        out.append(prof.shear(q=nb["q"], beta=nb["pa"] * galsim.degrees).shift(nb["x"], nb["y"]))
    for st in stars:
        f = _band_fluxes(_mag_to_nmgy(st["r_mag"]), st["gr"], st["ri"])[band]
        out.append(galsim.DeltaFunction(flux=f, gsparams=imaging.GSPARAMS).shift(st["x"], st["y"]))
    return out


def field_images(rng: np.random.Generator, cond: imaging.Conditions, neighbour_rate: float = Params.neighbour_rate,
                 star_rate: float = Params.star_rate) -> tuple[dict[str, np.ndarray], int, int]:
    """Draw a cutout's neighbours and foreground stars as the ``observed`` population has them and render them
    through ``cond``'s PSF: ``({band: (CANVAS, CANVAS) nMgy/pixel}, n_neighbours, n_stars)``, to be added to a
    PSF-convolved scene of the same canvas (mock_observation.py --field-sources)."""
    neigh, stars = draw_neighbours(rng, neighbour_rate), draw_stars(rng, star_rate)
    images = {}
    for b in imaging.BANDS:
        profiles = field_profiles(neigh, stars, b)
        images[b] = (imaging.render_profile(galsim.Sum(profiles), cond.fwhm(b), size=CANVAS) if profiles
                     else np.zeros((CANVAS, CANVAS)))
    return images, len(neigh), len(stars)


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
        scene = [galsim.Sum(parts).shift(dx, dy)] + field_profiles(neigh, stars, b)
        images[b] = imaging.render_profile(galsim.Sum(scene), cond.fwhm(b) * params.psf_scale, size=CANVAS)
    for b in imaging.BANDS:  # Galactic extinction (images are not corrected for it)
        images[b] *= extinction_factor(b, ebv)
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
    ebv = draw_ebv(s["conditions"])
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
    # params.bulge_n (4) is the classical bulge of early types; knobs shift late-type bulges by the same amount
    n_b = float(np.clip(params.bulge_n + relations.BULGE_N[gal["early"]] - relations.BULGE_N[True], 0.5, 6.2))
    bulge = galsim.Sersic(n=n_b, half_light_radius=re_b, trunc=min(8 * re_b, TRUNC_MAX),
                          flux_untruncated=True, gsparams=imaging.GSPARAMS).shear(q=gal["bulge_q"], beta=pa)
    n_d = relations.DISC_N[gal["early"]]
    disc_shape = (galsim.Sersic(n=n_d, half_light_radius=re_d, gsparams=imaging.GSPARAMS) if 8 * re_d < TRUNC_MAX
                  else galsim.Sersic(n=n_d, half_light_radius=re_d, trunc=TRUNC_MAX, flux_untruncated=True,
                                     gsparams=imaging.GSPARAMS))
    disc = disc_shape.shear(q=gal["disc_q"], beta=pa)
    knots = None
    if cf > 0 and bt < 1:
        # knots follow the disc light, cut at 3 r_e so that none floats far outside the galaxy
        knot_profile = galsim.Sersic(n=n_d, half_light_radius=re_d, trunc=3 * re_d, flux_untruncated=True,
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
    mass_bin = next((k for k, (lo, hi) in relations.MASS_BINS.items() if lo <= logm < hi), "out")
    row = dict(logmstar=logm, z=gal["z"], type="early" if gal["early"] else "late", mass_bin=mass_bin,
               early_type=gal["early"], bt=fb["r"] / r_tot,
               r50_kpc=gal["r50_kpc"] * params.size_scale, r50_arcsec=gal["r50_arcsec"] * params.size_scale,
               q=gal["q"], c90_model=gal["c90_model"],
               r_mag=22.5 - 2.5 * math.log10(r_tot), g_r=-2.5 * math.log10((fb["g"] + fd["g"] + fk["g"]) / r_tot),
               r_i=-2.5 * math.log10(r_tot / (fb["i"] + fd["i"] + fk["i"])),
               bulge_n=n_b, disc_n=n_d, bulge_re_arcsec=re_b, bulge_q=gal["bulge_q"],
               disc_re_arcsec=re_d, disc_q=gal["disc_q"], pa_deg=gal["pa_deg"],
               kpc_per_arcsec=gal["kpc_per_arcsec"], logm_true=gal["logm_true"],
               clump_fraction=cf if knots is not None else 0.0,
               dx_arcsec=float(dx), dy_arcsec=float(dy), n_neighbours=len(neigh), n_stars=len(stars),
               seeing=cond.seeing * params.psf_scale, sky_mag_r=cond.sky_mag_r, camcol=cond.camcol,
               noise_scale=params.noise_scale, ebv=ebv, logmstar_population=gal["logmstar"])
    return rgb, row
