"""Synthetic galaxy populations seen by the SDSS imaging model (lib/imaging.py).

A population is a config: the ``observed`` parameters (an SDSS-like, r < 17.77
flux-limited sample of bulge + disc galaxies, 9 <= log M*/Msun <= 12, 0.02 <= z <= 0.25)
plus optional *knobs* that push one physical property away from it by a strength 1..3.
Named presets are ``observed`` and ``<knob>_<strength>`` for every knob in :data:`KNOBS`.

Determinism: image ``index`` of a run with ``seed`` uses random streams derived from
``SeedSequence([seed, index])`` only, one stream per aspect (galaxy, clumps, neighbours,
stars, conditions, noise), so a resumed run gives identical images, and a suite with the
same seed shows the *same* galaxies as ``observed`` with only its knob changed.

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

import copy
import functools
import json
import math
import os
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

import galsim
import numpy as np
import yaml

from lib import imaging

R_LIMIT = 17.77
FAINT_LIMIT = 24.0  # faint neighbours make the lumpy background of real cutouts
EXTINCTION_COEFF = {"g": 3.793, "r": 2.751, "i": 2.086}  # A_b / E(B-V), Schlegel et al. 1998
TRUNC_MAX = 40.0  # arcsec; the cutout is 25 arcsec across
R_BRIGHT = 14.5  # main-sample targeting rejects brighter (fibre) magnitudes
CANVAS = imaging.CUTOUT_SIZE + 2
HALF_FIELD_ARCSEC = CANVAS * imaging.SDSS_PIXEL_SCALE / 2


class ConfigError(ValueError):
    """An invalid population config; the message is one line naming the field."""


@dataclass(frozen=True)
class Params:
    """Population parameters; defaults are the ``observed`` (SDSS-like) population."""

    size_scale: float = 1.0         # multiplies the size-mass relation (both components)
    bulge_n: float = 4.0            # bulge Sersic index (GalSim allows 0.3..6.2)
    bulge_size_scale: float = 1.0   # extra factor on bulge r_e only
    bulge_fraction_shift: float = 0.0  # added to B/T (clipped to 0..1)
    bulge_flux_scale: float = 1.0   # multiplies the bulge light (extra central stars, disc unchanged)
    clump_fraction: float = 0.0     # fraction of disc light in star-forming knots
    n_clumps: int = 25              # knots per disc
    colour_shift_gr: float = 0.0    # added to observed g-r of the main galaxy (mag)
    colour_shift_ri: float = 0.0    # added to observed r-i of the main galaxy (mag)
    psf_scale: float = 1.0          # multiplies the PSF FWHM; 0 = no PSF
    noise_scale: float = 1.0        # multiplies the noise; 0 = noiseless
    neighbour_rate: float = 8.0     # mean number of neighbouring galaxies per cutout
    star_rate: float = 0.45         # mean number of foreground stars per cutout
    display_gain: float = imaging.DISPLAY_GAIN

    def check(self) -> None:
        """Raise ConfigError naming the first bad field."""
        positive = ("size_scale", "bulge_size_scale", "bulge_flux_scale", "display_gain")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"params.{name}: must be > 0, got {getattr(self, name)}")
        nonneg = ("psf_scale", "noise_scale", "neighbour_rate", "star_rate")
        for name in nonneg:
            if not getattr(self, name) >= 0:
                raise ConfigError(f"params.{name}: must be >= 0, got {getattr(self, name)}")
        if not 0.3 <= self.bulge_n <= 6.2:
            raise ConfigError(f"params.bulge_n: must be in [0.3, 6.2] (GalSim Sersic), got {self.bulge_n}")
        if not 0 <= self.clump_fraction < 1:
            raise ConfigError(f"params.clump_fraction: must be in [0, 1), got {self.clump_fraction}")
        if not 1 <= self.n_clumps <= 500:
            raise ConfigError(f"params.n_clumps: must be in [1, 500], got {self.n_clumps}")
        if not -1 <= self.bulge_fraction_shift <= 1:
            raise ConfigError(f"params.bulge_fraction_shift: must be in [-1, 1], got {self.bulge_fraction_shift}")
        for name in ("colour_shift_gr", "colour_shift_ri"):
            if abs(getattr(self, name)) > 2:
                raise ConfigError(f"params.{name}: must be within +-2 mag, got {getattr(self, name)}")


# Each knob: strength 1, 2, 3 -> parameter overrides. Strength 0 = observed.
KNOBS: dict[str, tuple[dict[str, float], ...]] = {
    "large_sizes": ({"size_scale": 1.4}, {"size_scale": 1.9}, {"size_scale": 2.6}),
    "concentrated_bulges": ({"bulge_n": 5.0, "bulge_flux_scale": 1.5}, {"bulge_n": 5.6, "bulge_flux_scale": 2.2},
                            {"bulge_n": 6.2, "bulge_flux_scale": 3.2}),
    "clumpy_discs": ({"clump_fraction": 0.3, "n_clumps": 12}, {"clump_fraction": 0.55, "n_clumps": 10},
                     {"clump_fraction": 0.8, "n_clumps": 8}),
    "blue_colours": ({"colour_shift_gr": -0.2, "colour_shift_ri": -0.07},
                     {"colour_shift_gr": -0.4, "colour_shift_ri": -0.13},
                     {"colour_shift_gr": -0.65, "colour_shift_ri": -0.2}),
    "too_clean": ({"noise_scale": 0.5}, {"noise_scale": 0.2}, {"noise_scale": 0.0}),
}
KNOB_DOC = {
    "large_sizes": "galaxies larger than the size-mass relation: sizes x1.4 / x1.9 / x2.6",
    "concentrated_bulges": "over-massive, concentrated bulges (overcooling): bulge n 5 / 5.6 / 6.2, "
                           "bulge stars x1.5 / 2.2 / 3.2",
    "clumpy_discs": "30% / 55% / 80% of the disc light in 12 / 10 / 8 bright blue knots",
    "blue_colours": "galaxy colours too blue: g-r -0.2 / -0.4 / -0.65 mag, r-i -0.07 / -0.13 / -0.2",
    "too_clean": "too little noise: noise x0.5 / x0.2 / none (PSF kept)",
}
CONFIG_KEYS = {"name", "description", "knobs", "params"}


def presets() -> dict[str, dict]:
    """All named presets: ``observed`` and ``<knob>_<strength>``."""
    out = {"observed": {"name": "observed", "description": "SDSS-like reference population",
                        "knobs": {}, "params": {}}}
    for knob in KNOBS:
        for s in (1, 2, 3):
            out[f"{knob}_{s}"] = {"name": f"{knob}_{s}", "description": f"{KNOB_DOC[knob]}: strength {s}",
                                  "knobs": {knob: s}, "params": {}}
    return out


def validate_config(cfg: Any) -> tuple[dict, Params]:
    """Check a config dict; return it (normalised) and the resulting Params.

    A config is ``{"name": str, "knobs": {knob: 1..3}, "params": {Params field: value}}``;
    knobs are applied first, then explicit params.  Raises ConfigError (one line, naming
    the field) before anything is generated.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError("config: must be a mapping with keys name, knobs, params")
    extra = set(cfg) - CONFIG_KEYS
    if extra:
        raise ConfigError(f"{sorted(extra)[0]}: unknown config field; allowed: {sorted(CONFIG_KEYS)}")
    name = cfg.get("name", "custom")
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ \t\n"):
        raise ConfigError(f"name: must be a non-empty string without slashes or spaces, got {name!r}")
    knobs = cfg.get("knobs") or {}
    if not isinstance(knobs, Mapping):
        raise ConfigError("knobs: must be a mapping knob -> strength")
    values: dict[str, Any] = {}
    for knob, strength in knobs.items():
        if knob not in KNOBS:
            raise ConfigError(f"knobs.{knob}: unknown knob; known: {', '.join(KNOBS)}")
        if isinstance(strength, bool) or not isinstance(strength, (int, np.integer)) or not 0 <= strength <= 3:
            raise ConfigError(f"knobs.{knob}: strength must be an integer 0..3, got {strength!r}")
        if strength:
            values.update(KNOBS[knob][strength - 1])
    params = cfg.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError("params: must be a mapping field -> value")
    known = {f.name: f.type for f in fields(Params)}
    for key, val in params.items():
        if key not in known:
            raise ConfigError(f"params.{key}: unknown parameter; known: {', '.join(known)}")
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise ConfigError(f"params.{key}: must be a finite number, got {val!r}")
        if key == "n_clumps" and int(val) != val:
            raise ConfigError(f"params.n_clumps: must be an integer, got {val!r}")
        values[key] = int(val) if key == "n_clumps" else float(val)
    p = replace(Params(), **values)
    p.check()
    norm = {"name": name, "description": str(cfg.get("description", "")),
            "knobs": {k: int(v) for k, v in knobs.items()}, "params": dict(params)}
    return norm, p


def load_config(preset: str | None = None, path: str | os.PathLike | None = None) -> tuple[dict, Params]:
    """Config from a preset name or a YAML/JSON file (exactly one of them)."""
    if (preset is None) == (path is None):
        raise ConfigError("config: give exactly one of a preset name or a config file")
    if preset is not None:
        table = presets()
        if preset not in table:
            raise ConfigError(f"preset: unknown preset {preset!r}; see --list-presets")
        return validate_config(copy.deepcopy(table[preset]))
    try:
        with open(path, encoding="utf-8") as fh:
            cfg = yaml.safe_load(fh)  # YAML is a superset of JSON
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if isinstance(cfg, Mapping) and "name" not in cfg:
        cfg = {**cfg, "name": os.path.splitext(os.path.basename(path))[0]}
    return validate_config(cfg)


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


# ---------------------------------------------------------------- writing a set
METADATA = "metadata.csv"
RUN_INFO = "generation.json"


def resolve(spec: str | Mapping | None = None, config_path: str | os.PathLike | None = None) -> tuple[dict, Params]:
    """A preset name, a config file path, or a config dict -> (config, Params)."""
    if isinstance(spec, Mapping):
        return validate_config(copy.deepcopy(dict(spec)))
    if config_path is not None:
        if spec is not None:
            raise ConfigError("config: give either a preset or a config file, not both")
        return load_config(path=config_path)
    if isinstance(spec, str) and spec not in presets() and os.path.isfile(spec):
        return load_config(path=spec)
    return load_config(preset=spec if spec is not None else "observed")


def default_class_dir(name: str) -> str:
    """ImageFolder class folder: ``0.normal`` for observed, ``1.abnormal`` for the rest."""
    return "0.normal" if name == "observed" else "1.abnormal"


def _valid_jpeg(path: str) -> bool:
    from PIL import Image
    try:
        with Image.open(path) as im:
            im.load()
            return im.size == (imaging.CUTOUT_SIZE, imaging.CUTOUT_SIZE)
    except Exception:  # noqa: BLE001 - any unreadable file is simply redone
        return False


def _work(args: tuple) -> tuple[list[dict], list[dict], int]:
    """Render (or, for existing valid files, only describe) a chunk of indices."""
    params, seed, indices, out_dir, rel_fmt = args
    rows, failures, made = [], [], 0
    for idx in indices:
        rel = rel_fmt.format(idx)
        path = os.path.join(out_dir, rel)
        try:
            done = _valid_jpeg(path)
            rgb, row = make_image(params, seed, idx, render=not done)
            if not done:
                imaging.save_jpeg(rgb, path)
                made += 1
            rows.append({"file": rel, "index": idx, **row})
        except Exception as exc:  # noqa: BLE001 - record and go on with the next image
            failures.append({"index": idx, "file": rel, "error": f"{type(exc).__name__}: {exc}"})
    return rows, failures, made


def _versions() -> dict:
    import platform
    import PIL
    import astropy
    return {"python": platform.python_version(), "numpy": np.__version__, "galsim": galsim.__version__,
            "astropy": astropy.__version__, "pillow": PIL.__version__}


def _atomic_write_text(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.part"
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


def generate(spec: str | Mapping | None, n: int, seed: int, out_dir: str | os.PathLike,
             workers: int = 1, class_dir: str | None = None, config_path: str | os.PathLike | None = None,
             verbose: bool = True):
    """Generate ``n`` cutouts of a population into ``out_dir`` (ImageFolder layout).

    Writes ``out_dir/<class_dir>/<name>_<index:06d>.jpg`` (class_dir defaults to
    ``0.normal`` for ``observed`` and ``1.abnormal`` otherwise), ``out_dir/metadata.csv``
    (one row per image: file, index, every drawn parameter incl. logmstar, z, seeing) and
    ``out_dir/generation.json`` (config, seed, package versions).  Re-running after an
    interruption keeps the valid images already written (images are written atomically
    and are identical on re-render) and completes the set; a different config or seed in
    the same folder is refused.  Per-image failures are recorded in ``failures.csv``.

    Returns
    -------
    pandas.DataFrame
        The metadata rows, sorted by index (also in ``metadata.csv``).
    """
    import pandas as pd

    cfg, params = resolve(spec, config_path)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n: must be a positive integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: must be a non-negative integer, got {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ConfigError(f"workers: must be a positive integer, got {workers!r}")
    out_dir = os.fspath(out_dir)
    class_dir = class_dir or default_class_dir(cfg["name"])
    if os.path.isfile(out_dir):
        raise ConfigError(f"out: {out_dir} is a file, not a folder")
    info_path = os.path.join(out_dir, RUN_INFO)
    record = {"config": cfg, "seed": int(seed), "class_dir": class_dir}
    if os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as fh:
            old = json.load(fh)
        differs = [k for k, v in json.loads(json.dumps(record)).items() if old.get(k) != v]
        if differs:
            raise ConfigError(f"out: {out_dir} already holds population {old.get('config', {}).get('name')!r} "
                              f"seed {old.get('seed')} class_dir {old.get('class_dir')!r} (differs in "
                              f"{', '.join(differs)}); use another folder")
    target = os.path.join(out_dir, class_dir)
    os.makedirs(target, exist_ok=True)
    for leftover in os.listdir(target):  # temporary files of an interrupted run
        if leftover.startswith(".") and leftover.endswith(".part"):
            os.unlink(os.path.join(target, leftover))
    _atomic_write_text(info_path, json.dumps({**record, "n": int(n), "params": params.__dict__,
                                              "versions": _versions()}, indent=1))
    prefix = f"{cfg['name']}_"
    existing = {int(f[len(prefix):-4]) for f in os.listdir(target)
                if f.startswith(prefix) and f.endswith(".jpg") and f[len(prefix):-4].isdigit()}
    indices = sorted(set(range(n)) | existing)  # describe earlier, larger runs too
    rel_fmt = os.path.join(class_dir, prefix + "{:06d}.jpg").replace(os.sep, "/")
    chunks = [indices[k::max(1, workers * 4)] for k in range(max(1, workers * 4))] if workers > 1 else [indices]
    jobs = [(params, int(seed), c, out_dir, rel_fmt) for c in chunks if c]
    rows, failures, made = [], [], 0
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_work, jobs))
    else:
        results = [_work(j) for j in jobs]
    for r, f, m in results:
        rows += r
        failures += f
        made += m
    knobs = ";".join(f"{k}={v}" for k, v in cfg["knobs"].items() if v)
    df = pd.DataFrame(rows).sort_values("index").reset_index(drop=True)
    df.insert(1, "population", cfg["name"])
    df.insert(2, "knobs", knobs)
    df.insert(3, "seed", int(seed))
    _atomic_write_text(os.path.join(out_dir, METADATA), df.to_csv(index=False))
    fail_path = os.path.join(out_dir, "failures.csv")
    if failures:
        _atomic_write_text(fail_path, pd.DataFrame(failures).to_csv(index=False))
    elif os.path.exists(fail_path):
        os.unlink(fail_path)
    if verbose:
        print(f"{cfg['name']}: {len(df)} images in {target} ({made} generated, {len(df) - made} already there, "
              f"{len(failures)} failed); metadata: {os.path.join(out_dir, METADATA)}")
    df.attrs["failures"] = failures
    return df
