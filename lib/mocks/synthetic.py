"""Star-particle realisations of the synthetic SDSS population (lib/galaxies), for the closure test.

A galaxy drawn by :func:`lib.galaxies.draw_galaxy` (mass, redshift, B/T, sizes, axis ratios,
observed-frame colours per component) becomes star particles that ``mock_observation.py`` reads,
so that a *perfect* simulation of that population can be observed by the mock camera and rated
against the population's own images (benchmarks/closure.py).

Geometry (all in kpc; the face-on frame has the spin axis along +z):

* bulge: a deprojected Sersic sphere of the drawn index (4 early, 1.5 late types) in the
  Prugniel & Simien (1997) form rho ~ x^-p exp(-b_n x^(1/n)), p = 1 - 0.6097/n + 0.05463/n^2
  (Lima Neto, Gerbal & Marquez 1999), whose enclosed mass is an incomplete gamma function, cut
  at 8 r_e like the population's bulge, then flattened along z (oblate, axis ratio c);
* disc: a face-on Sersic surface density of the drawn disc index (1 = exponential for early
  types, 0.7 for late types' Type II discs) with a sech^2 vertical profile whose second moment
  is ``q0`` times the in-plane one (``q0`` = relations.DISC_THICKNESS, 0.18, for late types);
* the view: the inclination that gives the drawn projected axis ratio (second moments:
  q^2 = cos^2 i + q0^2 sin^2 i), and for late-type bulges the flattening c that gives their
  drawn (rounder) axis ratio at that inclination; early types' bulge and disc share one
  flattening (:data:`Q0_EARLY`), as they share one axis ratio in the population.  Face-on
  half-mass radii are the drawn r_e / sqrt(q): the population's profiles are sheared with their
  area kept (major-axis r_e / sqrt(q)), an inclined disc keeps its face-on major axis.

Light: each component is a stellar population with the star-formation history
SFR ~ exp(gamma a / t_max) at lookback age a (0..t_max, t_max = age of the
universe at z - 0.5 Gyr; gamma > 0 old, < 0 rising) at one metallicity.  For each metallicity
of :data:`METALS` the gamma whose *observed-frame* g-r at the drawn z (the project's BPASS table,
lib/mocks/light.py, times its K-corrections, lib/mocks/kcorrection.py) equals the drawn one is
found, and the metallicity whose r-i comes closest to the drawn r-i is kept.  Each particle is one
equal share of the component's *formed* mass; its current mass is that times 1 - R(age)
(:func:`returned_fraction`), scaled so that the particles' total current mass is the drawn mass
exactly, split between bulge and disc so that the bulge carries the drawn fraction B/T of the
observed-frame r light.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from lib.mocks.kcorrection import KCorrector, KTable
from lib.mocks.light import SSPTable, star_light

METALS = (0.004, 0.006, 0.008, 0.01, 0.014, 0.02, 0.03, 0.04)
"""Metallicities tried per component (inside both the BPASS and the BC03 K-correction grids)."""
GAMMAS = np.linspace(-150.0, 40.0, 761)
"""Star-formation-history shapes tried (gamma of SFR ~ exp(gamma a / t_max) at lookback age a)."""
N_AGES = 1500  # age bins of the colour model (midpoints, equal width in age: ~9 Myr)
OLD_FRACTIONS = np.linspace(0.0, 0.98, 50)
"""Formed-mass fractions of an old population (:data:`OLD_GAMMA`) mixed in to reach the drawn M/L."""
OLD_GAMMA = 30.0  # the old population: formed within ~0.4 Gyr of t_max
FORMATION_DELAY_GYR = 0.5  # the oldest stars formed 0.5 Gyr after the Big Bang
Q0_EARLY = 0.45
"""Intrinsic (3-D) axis ratio of early types' bulge and disc: oblate, so that views at the inclinations
implied by the drawn b/a ~ N(0.75, 0.14) look like the population's (Padilla & Strauss 2008 find
ellipticals' intrinsic c/a ~ 0.4-0.6)."""
BULGE_CUT_RE = 8.0  # bulges cut at 8 r_e (the population's, like SDSS photo's deV model)
G_KPC = 4.30091727e-6  # kpc (km/s)^2 / Msun


def returned_fraction(age_gyr: np.ndarray) -> np.ndarray:
    """Fraction of a population's formed mass returned to the gas by ``age_gyr`` (rises to 0.3 within ~1 Gyr)."""
    return 0.3 * (1.0 - np.exp(-np.asarray(age_gyr, dtype=float) / 0.3))


def t_max_gyr(z: float) -> float:
    """Age (Gyr) of the oldest stars at redshift ``z``: the Planck13 age of the universe minus 0.5 Gyr."""
    from astropy.cosmology import Planck13
    return float(Planck13.age(z).to_value("Gyr")) - FORMATION_DELAY_GYR


def _age_weights(gamma: np.ndarray, t_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Bin midpoints (N_AGES,) in Gyr and formed-mass weights (len(gamma), N_AGES), rows summing to 1."""
    ages = (np.arange(N_AGES) + 0.5) * t_max / N_AGES
    x = np.outer(np.asarray(gamma, dtype=float), ages / t_max - 1.0)
    w = np.exp(x - x.max(axis=1, keepdims=True))  # scaled per row: no overflow for any gamma
    return ages, w / w.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Population:
    """One component's stars: a fraction ``f_old`` of the formed mass in the old population, the rest with
    history ``gamma``, all at ``metals``; ``t_max`` (Gyr); what they give at ``z``: observed-frame ``gr``,
    ``ri`` and ``ml_r`` = current mass per unit observed r light (Msun per 0-magnitude source at 10 pc)."""

    gamma: float
    f_old: float
    metals: float
    t_max: float
    z: float
    gr: float
    ri: float
    ml_r: float


class ColourModel:
    """Observed-frame colours and M/L of every (metallicity, old fraction, gamma) history at one redshift.

    Arrays ``gr``, ``ri``, ``ml_r`` have shape (len(METALS), len(OLD_FRACTIONS), len(GAMMAS)).
    """

    def __init__(self, ssp: SSPTable, ktable: KTable, z: float, t_max: float | None = None):
        self.z = float(z)
        self.t_max = t_max_gyr(z) if t_max is None else float(t_max)
        ages, w = _age_weights(GAMMAS, self.t_max)  # (NG, NA)
        _, w_old = _age_weights(np.array([OLD_GAMMA]), self.t_max)  # (1, NA)
        age_all = np.tile(ages, len(METALS))  # every age bin at every metallicity, (NZ * NA,)
        met_all = np.repeat(np.asarray(METALS, dtype=float), ages.size)
        light = star_light(ssp, np.ones_like(age_all), age_all, met_all)  # per Msun formed
        kc = KCorrector(ktable, age_all, met_all)
        f = OLD_FRACTIONS[None, :, None]
        tot = {}
        for b in ("g", "r", "i"):
            lum = (light.lum[b] * kc.factors(b, self.z)).reshape(len(METALS), ages.size)  # (NZ, NA)
            tot[b] = (1 - f) * (lum @ w.T)[:, None, :] + f * (lum @ w_old.T)[:, None, :]  # (NZ, NF, NG)
        keep = 1.0 - returned_fraction(ages)
        mass = (1 - f) * (w @ keep)[None, None, :] + f * float((w_old @ keep)[0])  # current per formed mass
        self.gr = -2.5 * np.log10(tot["g"] / tot["r"])
        self.ri = -2.5 * np.log10(tot["r"] / tot["i"])
        self.ml_r = mass / tot["r"]

    def solve(self, gr: float, ri: float, ml_r: float | None = None) -> Population:
        """The history whose observed g-r is ``gr`` (exact where reachable), whose M/L is closest to ``ml_r``
        (0.05 mag counts as much as 0.03 mag of r-i; without ``ml_r``: no old population) and whose r-i is
        closest to ``ri``."""
        n_f = 1 if ml_r is None else OLD_FRACTIONS.size
        g = self.gr[:, :n_f]  # (NZ, NF, NG)
        d = g - gr
        # first gamma interval where g-r crosses the target, per (metallicity, old fraction)
        cross = (np.sign(d[..., :-1]) != np.sign(d[..., 1:])) | (d[..., :-1] == 0)
        has = cross.any(axis=-1)
        i = np.where(has, cross.argmax(axis=-1), np.where(np.abs(d[..., 0]) < np.abs(d[..., -1]), 0, GAMMAS.size - 2))
        lo = np.take_along_axis(d, i[..., None], -1)[..., 0]
        hi = np.take_along_axis(d, i[..., None] + 1, -1)[..., 0]
        t = np.where(has, lo / np.where(lo - hi == 0, 1.0, lo - hi), np.where(i == 0, 0.0, 1.0))
        t = np.clip(t, 0.0, 1.0)  # out of reach: the nearest end, penalised below by its g-r miss

        def at(a: np.ndarray) -> np.ndarray:
            a = a[:, :n_f]
            return ((1 - t) * np.take_along_axis(a, i[..., None], -1)[..., 0]
                    + t * np.take_along_axis(a, i[..., None] + 1, -1)[..., 0])
        gr_k, ri_k, ml_k = at(self.gr), at(self.ri), at(self.ml_r)
        cost = 10.0 * (np.abs(gr_k - gr) > 1e-3) + np.abs(gr_k - gr) / 0.01 + np.abs(ri_k - ri) / 0.03
        if ml_r is not None:
            cost = cost + np.abs(2.5 * np.log10(ml_k / ml_r)) / 0.05
        k, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
        gamma = float((1 - t[k, j]) * GAMMAS[i[k, j]] + t[k, j] * GAMMAS[i[k, j] + 1])
        return Population(gamma, float(OLD_FRACTIONS[j]), float(METALS[k]), self.t_max, self.z,
                          float(gr_k[k, j]), float(ri_k[k, j]), float(ml_k[k, j]))


def draw_ages(pop: Population, n: int, rng: np.random.Generator) -> np.ndarray:
    """Ages (Gyr) of ``n`` equal formed-mass shares of ``pop``: the colour model's age bins (midpoints), drawn
    with its weights, so that the particles' summed light is the model's up to sampling noise (a continuous
    draw inside the youngest ~9 Myr bin would be brighter than its midpoint)."""
    ages, w = _age_weights(np.array([pop.gamma]), pop.t_max)
    _, w_old = _age_weights(np.array([OLD_GAMMA]), pop.t_max)
    p = (1.0 - pop.f_old) * w[0] + pop.f_old * w_old[0]
    return ages[rng.choice(ages.size, size=n, p=p / p.sum())]


def sersic_b(n: float) -> float:
    return float(special.gammaincinv(2 * n, 0.5))


def bulge_positions(n: int, sersic_n: float, re: float, c: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) kpc: a deprojected Sersic (Prugniel-Simien) sphere of projected r_e ``re``, flattened by ``c`` along z."""
    b = sersic_b(sersic_n)
    p = 1.0 - 0.6097 / sersic_n + 0.05463 / sersic_n**2
    a = (3.0 - p) * sersic_n  # M(<r) / M = P(a, b x^(1/n)), x = r / r_e
    u = rng.uniform(0.0, special.gammainc(a, b * BULGE_CUT_RE ** (1.0 / sersic_n)), n)
    r = re * (special.gammaincinv(a, u) / b) ** sersic_n
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    sin_t = np.sqrt(1.0 - cos_t**2)
    return r[:, None] * np.column_stack([sin_t * np.cos(phi), sin_t * np.sin(phi), c * cos_t])


def disc_positions(n: int, sersic_n: float, re: float, q0: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) kpc: face-on Sersic surface density (half-mass radius ``re``), sech^2 vertical profile whose
    rms height is ``q0`` times the in-plane rms sqrt(<R^2> / 2)."""
    b = sersic_b(sersic_n)
    rad = re * (special.gammaincinv(2 * sersic_n, rng.uniform(size=n)) / b) ** sersic_n
    phi = rng.uniform(0.0, 2 * np.pi, n)
    r2 = re**2 * math.exp(special.gammaln(4 * sersic_n) - special.gammaln(2 * sersic_n)) / b ** (2 * sersic_n)
    z0 = q0 * math.sqrt(r2 / 2.0) / (math.pi / (2.0 * math.sqrt(3.0)))  # rms of sech^2(z/z0) = pi z0 / (2 sqrt 3)
    z = z0 * np.arctanh(rng.uniform(-1.0, 1.0, n) * (1 - 1e-12))
    return np.column_stack([rad * np.cos(phi), rad * np.sin(phi), z])


def _velocities(pos: np.ndarray, mass: float, scale: float, rot: float, sigma: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """Rotation about +z (``rot`` x a rising-then-flat curve, km/s) plus isotropic dispersion ``sigma``."""
    rad = np.hypot(pos[:, 0], pos[:, 1])
    vc = rot * (G_KPC * mass / (2.2 * scale)) ** 0.5 * (1.0 - np.exp(-rad / (0.5 * scale)))
    safe = np.maximum(rad, 1e-9)
    v = np.column_stack([-vc * pos[:, 1] / safe, vc * pos[:, 0] / safe, np.zeros(len(pos))])
    return v + rng.normal(0.0, 1.0, pos.shape) * np.broadcast_to(sigma, (len(pos),))[:, None]


def r_luminosity(r_mag: float, z: float) -> float:
    """Observed-frame r light (0-magnitude sources at 10 pc) of apparent magnitude ``r_mag`` at ``z`` (Planck13)."""
    from lib.mocks.redshift import distances_mpc, nmgy_per_unit_luminosity
    return 10.0 ** (-0.4 * (r_mag - 22.5)) / nmgy_per_unit_luminosity(distances_mpc(z)[1])


def view_angles(gal: dict) -> dict:
    """Inclination (deg) and the components' intrinsic flattenings that give the drawn axis ratios."""
    q = float(gal["disc_q"])
    q0 = min(Q0_EARLY, q) if gal["early"] else min(0.18, q)
    cos2 = (q**2 - q0**2) / (1.0 - q0**2) if q0 < 1 else 1.0
    incl = math.degrees(math.acos(math.sqrt(min(max(cos2, 0.0), 1.0))))
    if gal["early"]:
        c_bulge = q0
    else:
        sin2 = 1.0 - cos2
        c_bulge = math.sqrt(min(max((gal["bulge_q"] ** 2 - cos2) / sin2, 0.05**2), 1.0)) if sin2 > 1e-9 else 1.0
    return {"incl_deg": incl, "q0_disc": q0, "c_bulge": c_bulge}


def realise(gal: dict, model: ColourModel, n_star: int, rng: np.random.Generator, kpc_per_arcsec: float,
            bulge_n: float, disc_n: float, match_flux: bool = True) -> tuple[dict, dict]:
    """Star particles of one drawn galaxy: (fields for lib/mocks/readers.py write_npz, what was chosen).

    ``gal``: a :func:`lib.galaxies.draw_galaxy` dict; ``model``: colours at its z; ``kpc_per_arcsec``:
    the mock camera's scale at z (the drawn angular sizes are kept); total current mass 10^logmstar;
    ``match_flux``: M/L chosen (old fraction) so that the observed r magnitude is the drawn one.
    """
    mstar = 10.0 ** gal["logmstar"]
    angles = view_angles(gal)
    ml = mstar / r_luminosity(gal["r_mag"], gal["z"]) if match_flux else None
    pops = {c: model.solve(gal[f"gr_{c}"], gal[f"ri_{c}"], ml) for c in ("bulge", "disc")}
    bt = float(gal["bt"])
    # masses so that the bulge gives the fraction bt of the observed r light: m_c ~ f_c * (M/L)_c
    share = {"bulge": bt * pops["bulge"].ml_r, "disc": (1.0 - bt) * pops["disc"].ml_r}
    total = share["bulge"] + share["disc"]
    mass_c = {c: mstar * s / total for c, s in share.items()}
    n_c = {"bulge": int(round(n_star * mass_c["bulge"] / mstar)) if bt > 0 else 0}
    n_c["disc"] = n_star - n_c["bulge"] if bt < 1 else 0
    q_used = {"bulge": gal["bulge_q"], "disc": gal["disc_q"]}
    re_face = {c: gal[f"{c}_re_arcsec"] * kpc_per_arcsec / math.sqrt(q_used[c]) for c in ("bulge", "disc")}
    parts = []
    for comp in ("bulge", "disc"):
        n = n_c[comp]
        if n == 0:
            continue
        if comp == "bulge":
            pos = bulge_positions(n, bulge_n, re_face["bulge"], angles["c_bulge"], rng)
            r3 = np.linalg.norm(pos, axis=1)
            sigma = np.sqrt(G_KPC * mass_c[comp] / (6.0 * (r3 + re_face["bulge"] / 1.8)))
            vel = _velocities(pos, mass_c[comp], re_face["bulge"], 0.3, sigma, rng)  # slow rotators spin too
        else:
            pos = disc_positions(n, disc_n, re_face["disc"], angles["q0_disc"], rng)
            vel = _velocities(pos, mstar, re_face["disc"] / 1.678, 1.3, np.asarray(25.0), rng)
        age = draw_ages(pops[comp], n, rng)
        kept = 1.0 - returned_fraction(age)
        massform = np.full(n, mass_c[comp] / kept.sum())  # equal formed-mass shares ...
        mass = massform * kept  # ... whose current masses sum to the component's mass exactly
        parts.append((pos, vel, mass, massform, age, np.full(n, pops[comp].metals)))
    fields = {k: np.concatenate([p[i] for p in parts]) for i, k in
              enumerate(("pos", "vel", "mass", "massform", "age", "metals"))}
    info = {"incl_deg": angles["incl_deg"], "q0_disc": angles["q0_disc"], "c_bulge": angles["c_bulge"],
            "mass_bulge": mass_c["bulge"], "mass_disc": mass_c["disc"], "n_bulge": n_c["bulge"], "n_disc": n_c["disc"],
            "re_face_bulge_kpc": re_face["bulge"], "re_face_disc_kpc": re_face["disc"],
            **{f"{k}_{c}": getattr(pops[c], k) for c in pops for k in ("gamma", "f_old", "metals", "gr", "ri", "ml_r")}}
    return fields, info
