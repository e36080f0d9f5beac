"""The observed population reproduces its published inputs per paper mass bin (no images drawn).

Reference: data/anchors/literature_sdss.csv (16/50/84 % per mass bin of the SDSS main-sample relations
the generator is built from).  Tolerances are stated per statistic below; with N = 5000 galaxies the
sampling error of a median is ~1-3 % (high bin: ~250 galaxies, ~5 %).  N was 2000 (high bin ~100
galaxies: binomial SE of its early fraction 0.04, SE of its z median 0.007); it was raised when the
early-type centre was refitted (issue 14 follow-up), because at N = 2000 the high-bin cells moved by
their sampling noise alone (z 0.168 -> 0.178, early fraction 0.83 -> 0.91 for centres 10.50 / 10.55,
against 0.172 -> 0.177 and 0.87 -> 0.84 at N = 10000).
"""

import math
import os

import numpy as np
import pandas as pd
import pytest

from lib.galaxies import population, relations

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 5000
# statistic -> (column of the drawn population, absolute tolerance or None, relative tolerance or None)
TOLERANCE = {
    "z": ("z", 0.02, None),                 # redshift median within 0.02
    "r50_kpc": ("r50_kpc", None, 0.15),      # Shen et al. 2003 Petrosian R50 within 15 % (high bin: 25 %)
    "g_r": ("g_r", 0.05, None),              # observed g-r median within 0.05 mag
    "q": ("q", 0.05, None),                  # axis ratio median within 0.05
    "bt_r": ("bt", 0.12, None),              # r-band B/T median within 0.12
}


@pytest.fixture(scope="module")
def drawn():
    rng = np.random.default_rng(2024)
    rows = []
    for _ in range(N):
        g = population.draw_galaxy(rng)
        fb, fd = g["bt"], 1 - g["bt"]  # r-band fluxes; total g-r from the component colours
        g_r = -2.5 * math.log10(fb * 10 ** (-0.4 * g["gr_bulge"]) + fd * 10 ** (-0.4 * g["gr_disc"]))
        rows.append({**g, "g_r": g_r})
    df = pd.DataFrame(rows)
    df["mass_bin"] = pd.cut(df["logmstar"], [b[0] for b in relations.MASS_BINS.values()] + [12.5],
                            labels=list(relations.MASS_BINS), right=False)
    return df


@pytest.fixture(scope="module")
def literature():
    return pd.read_csv(os.path.join(ROOT, "data", "anchors", "literature_sdss.csv")).set_index(["stat", "mass_bin"])


@pytest.mark.parametrize("mass_bin", ["low", "mid", "high", "all"])
@pytest.mark.parametrize("stat", list(TOLERANCE))
def test_medians_per_mass_bin(drawn, literature, stat, mass_bin):
    col, atol, rtol = TOLERANCE[stat]
    d = drawn if mass_bin == "all" else drawn[drawn["mass_bin"] == mass_bin]
    want = literature.loc[(stat, mass_bin), "median"]
    got = float(d[col].median())
    if stat == "r50_kpc" and mass_bin == "high":  # ~250 galaxies, early fraction ~0.07 above the table's
        rtol = 0.25
    assert got == pytest.approx(want, abs=atol, rel=rtol), f"{stat} {mass_bin}: {got:.3f} vs {want:.3f}"


@pytest.mark.parametrize("mass_bin", ["low", "mid", "high", "all"])
def test_early_fraction_per_mass_bin(drawn, literature, mass_bin):
    d = drawn if mass_bin == "all" else drawn[drawn["mass_bin"] == mass_bin]
    want = literature.loc[("early_fraction", mass_bin), "median"]
    assert float(d["early"].mean()) == pytest.approx(want, abs=0.12)  # fraction within 0.12


def test_bin_fractions_and_redshift_moments(drawn):
    # the paper's test set: 12,793 / 45,976 / 5,572 galaxies; SDSS main sample z mean/std 0.110 / 0.051
    frac = drawn["mass_bin"].value_counts(normalize=True)
    assert frac["low"] == pytest.approx(0.20, abs=0.05)
    assert frac["mid"] == pytest.approx(0.72, abs=0.08)
    assert frac["high"] == pytest.approx(0.08, abs=0.04)
    assert drawn["z"].mean() == pytest.approx(0.110, abs=0.01)
    assert drawn["z"].std() == pytest.approx(0.051, abs=0.01)
    assert (drawn["r_mag"] <= relations.R_LIMIT).all() and (drawn["r_mag"] >= relations.R_BRIGHT).all()
    assert (drawn["logmstar"] >= 9.0).all()


def test_concentration_separates_types(drawn):
    # Strateva et al. 2001: r90/r50 = 2.6 separates late (~2.3) from early (~3) types; the model's
    # Petrosian r90/r50 (no seeing) is 2.29 for a pure exponential and 3.42 for a pure de Vaucouleurs
    early = drawn["early"].astype(bool)
    assert drawn.loc[~early, "c90_model"].median() < 2.6 < drawn.loc[early, "c90_model"].median()
    assert relations.petrosian_radii(0.0, 1.0, 4.0)[2] / relations.petrosian_radii(0.0, 1.0, 4.0)[1] == \
        pytest.approx(2.29, abs=0.02)
    _, r50, r90 = relations.petrosian_radii(1.0, 1.0, 4.0)
    assert r90 / r50 == pytest.approx(3.42, abs=0.03) and r50 == pytest.approx(0.73, abs=0.01)


def test_late_type_discs_are_flatter_than_exponential():
    # relations.DISC_N: Sersic n = 0.7 for late-type discs (Type II), exponential for early types; the
    # Petrosian r90/r50 of a pure n = 0.7 disc from direct integration of its surface brightness
    from scipy import integrate
    b = relations.sersic_b(0.7)

    def enclosed(x):
        return integrate.quad(lambda r: 2 * math.pi * r * math.exp(-b * r ** (1 / 0.7)), 0, x)[0]
    r_p, r50, r90 = relations.petrosian_radii(0.0, 1.0, 4.0, 0.7)
    mean_inside = enclosed(r_p) / (math.pi * r_p**2)
    assert math.exp(-b * r_p ** (1 / 0.7)) / mean_inside == pytest.approx(relations.PETRO_ETA, rel=1e-4)
    assert enclosed(r50) / enclosed(2 * r_p) == pytest.approx(0.5, rel=1e-4)
    assert r90 / r50 == pytest.approx(2.02, abs=0.01)
    from lib import galaxies
    rows = [galaxies.make_image(galaxies.load_config("observed")[1], 3, k, render=False)[1] for k in range(40)]
    assert {r["disc_n"] for r in rows if r["type"] == "late"} == {0.7}
    assert {r["disc_n"] for r in rows if r["type"] == "early"} == {1.0}


def test_shen_relations_documented_values():
    # Shen et al. 2003: late R = 0.1 M^0.14 (1 + M/3.98e10)^0.25 kpc; early R = 2.88e-6 M^0.56 kpc
    r_late, s_late = relations.shen_size(10.6, early=False)
    assert r_late == pytest.approx(0.1 * 10**(10.6 * 0.14) * (1 + 10**10.6 / 3.98e10) ** 0.25)
    assert relations.shen_size(11.0, early=True)[0] == pytest.approx(2.88e-6 * 10**(11 * 0.56))
    assert relations.shen_size(9.0, early=False)[1] == pytest.approx(0.47, abs=0.005)
    assert relations.shen_size(12.0, early=True)[1] == pytest.approx(0.27, abs=0.005)
    assert relations.early_fraction(relations.EARLY_CENTRE) == pytest.approx(0.5)
