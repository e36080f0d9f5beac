"""The closure test's particle realisation (lib/mocks/synthetic.py), reduced: known answers, no network.

A drawn galaxy's particles must carry the drawn stellar mass exactly, have the profiles and shapes they were
built with (exponential disc: half-mass radius 1.678 h; Sersic bulge deprojected: projected r_e; sech^2
thickness; the inclination that gives the drawn axis ratio), and their summed light through the project's
own SSP + K-correction code must give the drawn observed-frame g-r at z = 0.05 and 0.15 for a red and a blue
galaxy; the mock camera (mock_observation.py) must see that colour too.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

from lib import galaxies, mocks
from lib.galaxies import population
from lib.galaxies.relations import BULGE_N, DISC_N
from lib.mocks import synthetic
from lib.mocks.kcorrection import KCorrector
from lib.mocks.light import star_light
from lib.mocks.orientation import view_matrix
from lib.mocks.readers import write_npz
from lib.mocks.redshift import kpc_per_arcsec

N_STAR = 20000


@pytest.fixture(scope="module")
def tables():
    return mocks.load_ssp(), mocks.load_kcorr()


def first_draw(early: bool) -> dict:
    """The first galaxy of the observed population of that type (seeded)."""
    for k in range(200):
        rng = np.random.default_rng(np.random.SeedSequence([3, k]).spawn(6)[0])
        gal = galaxies.draw_galaxy(rng)
        if gal["early"] == early and 0.1 < gal["bt"] < 0.9:
            return gal
    raise AssertionError("no draw of that type")


def at_redshift(gal: dict, z: float) -> dict:
    """The same galaxy placed at ``z``: its r magnitude as the population would give it there."""
    out = dict(gal, z=z)
    out["r_mag"] = float(population.apparent_r(gal["logm_true"], z, gal["gr"]))
    return out


def realise(gal: dict, tabs, seed: int = 0):
    model = synthetic.ColourModel(*tabs, gal["z"])
    return synthetic.realise(gal, model, N_STAR, np.random.default_rng(seed), kpc_per_arcsec(gal["z"]),
                             BULGE_N[gal["early"]], DISC_N[gal["early"]])


def observed_mags(fields: dict, tabs, z: float) -> dict:
    """Apparent-frame absolute magnitudes of the summed particle light (SSP table x K-correction at z)."""
    ssp, ktab = tabs
    light = star_light(ssp, fields["massform"], fields["age"], fields["metals"])
    kc = KCorrector(ktab, fields["age"], fields["metals"])
    return {b: -2.5 * math.log10((light.lum[b] * kc.factors(b, z)).sum()) for b in ("g", "r", "i")}


def drawn_gr(gal: dict) -> float:
    """The whole galaxy's observed g-r from its components' drawn colours and r-light fractions."""
    bt = gal["bt"]
    return -2.5 * math.log10(bt * 10 ** (-0.4 * gal["gr_bulge"]) + (1 - bt) * 10 ** (-0.4 * gal["gr_disc"]))


@pytest.mark.parametrize("early", [True, False], ids=["red", "blue"])
@pytest.mark.parametrize("z", [0.05, 0.15])
def test_mass_and_observed_colour(tables, early, z):
    gal = at_redshift(first_draw(early), z)
    fields, info = realise(gal, tables)
    assert fields["mass"].sum() == pytest.approx(10 ** gal["logmstar"], rel=1e-10)
    assert len(fields["mass"]) == N_STAR and info["n_bulge"] > 0 and info["n_disc"] > 0
    mags = observed_mags(fields, tables, z)
    assert abs((mags["g"] - mags["r"]) - drawn_gr(gal)) < 0.05
    # the model's own prediction per component is exact where reachable; r-i follows the SSPs (within 0.15)
    assert abs(info["gr_bulge"] - gal["gr_bulge"]) < 1e-3 and abs(info["gr_disc"] - gal["gr_disc"]) < 1e-3
    assert abs((mags["r"] - mags["i"]) - gal["ri_disc"]) < 0.15
    # the M/L was chosen so that the observed r magnitude is the drawn one
    r_app = mags["r"] + 5 * math.log10(mocks.redshift.distances_mpc(z)[1] * 1e5)
    assert abs(r_app - gal["r_mag"]) < 0.15
    assert fields["age"].min() >= 1e-3 and fields["age"].max() <= synthetic.t_max_gyr(z) + 1e-9


def test_profiles_and_thickness(tables):
    red = at_redshift(first_draw(True), 0.1)
    fields, info = realise(red, tables)
    disc = slice(info["n_bulge"], None)  # bulge particles first, then disc
    rad = np.hypot(fields["pos"][disc, 0], fields["pos"][disc, 1])
    w = fields["mass"][disc]
    order = np.argsort(rad)
    half = rad[order][np.searchsorted(np.cumsum(w[order]), 0.5 * w.sum())]
    h = np.average(rad, weights=w) / 2.0  # an exponential disc's mean radius is 2 h
    assert half == pytest.approx(1.678 * h, rel=0.03)  # the exponential's half-mass radius, 1.678 h
    assert half == pytest.approx(info["re_face_disc_kpc"], rel=0.03)
    # sech^2 thickness: rms height q0 times the in-plane rms
    sig_z = np.sqrt(np.average(fields["pos"][disc, 2] ** 2, weights=w))
    sig_x = np.sqrt(np.average(rad**2, weights=w) / 2)
    assert sig_z / sig_x == pytest.approx(info["q0_disc"], rel=0.05)

    blue = at_redshift(first_draw(False), 0.1)
    fields, info = realise(blue, tables, seed=1)
    bulge = slice(0, info["n_bulge"])  # deprojected n = 1.5 Sersic: face-on projected half-mass radius = r_e
    rad_b = np.hypot(fields["pos"][bulge, 0], fields["pos"][bulge, 1])
    wb = fields["mass"][bulge]
    o = np.argsort(rad_b)
    assert rad_b[o][np.searchsorted(np.cumsum(wb[o]), 0.5 * wb.sum())] == pytest.approx(info["re_face_bulge_kpc"],
                                                                                         rel=0.04)
    # seen at the chosen inclination, the disc's projected second moments give the drawn axis ratio
    xy = (view_matrix(info["incl_deg"], 0.0, 0.0) @ fields["pos"][info["n_bulge"]:].T)[:2]
    ev = np.linalg.eigvalsh(np.cov(xy, aweights=fields["mass"][info["n_bulge"]:]))
    assert math.sqrt(ev[0] / ev[1]) == pytest.approx(blue["disc_q"], abs=0.03)


def test_mock_camera_sees_the_drawn_colour(tables, tmp_path):
    """mock_observation.py on a realised blue galaxy at z = 0.15: the FITS maps' g-r is the drawn one."""
    from astropy.io import fits

    import mock_observation

    gal = at_redshift(first_draw(False), 0.15)
    fields, info = realise(gal, tables)
    write_npz(str(tmp_path / "g0.npz"), fields)
    out = tmp_path / "mocks"
    assert mock_observation.main(["--particles", str(tmp_path / "g0.npz"), "--out", str(out), "--redshift", "0.15",
                                  "--orientations", f"{info['incl_deg']},0,30", "--save-maps"]) == 0
    fits_files = os.listdir(out / "maps")
    with fits.open(out / "maps" / fits_files[0]) as hdus:
        g, r = hdus["G"].data.sum(), hdus["R"].data.sum()
    assert abs(-2.5 * math.log10(g / r) - drawn_gr(gal)) < 0.05
    assert abs(22.5 - 2.5 * math.log10(r) - gal["r_mag"]) < 0.2  # nearly all the light is in the 64-pixel field
