"""Observed-frame SDSS light (lib/mocks/kcorrection.py, data/ssp/kcorr_sdss2010_bc03.npz), the redshift
draw that uses it, and the plausibility checks: each against an answer known in advance."""
import importlib.util
import json
import os

import numpy as np
import pytest

import mock_observation
from lib import mocks
from lib.mocks import recipes, redshift
from lib.mocks.light import load_ssp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Chilingarian, Melchior & Zolotukhin (2010, MNRAS 405, 1409), extended in Chilingarian & Zolotukhin (2012,
# MNRAS 419, 1727): K(z, c) = sum_xy a_xy z^x c^y with c the *observed* g - r; the published SDSS g and r
# coefficients (K-corrections calculator, kcor.sai.msu.ru), used here only as the independent reference.
CHIL_G_GR = [[0, 0, 0, 0], [-2.45204, 4.10188, 10.5258, -13.5889], [56.7969, -140.913, 144.572, 57.2155],
             [-466.949, 222.789, -917.46, -78.0591], [2906.77, 1500.8, 1689.97, 30.889],
             [-10453.7, -4419.56, -1011.01, 0], [17568, 3236.68, 0, 0], [-10820.7, 0, 0, 0]]
CHIL_R_GR = [[0, 0, 0, 0], [1.83285, -2.71446, 4.97336, -3.66864], [-19.7595, 10.5033, 18.8196, 6.07785],
             [33.6059, -120.713, -49.299, 0], [144.371, 216.453, 0, 0], [-295.39, 0, 0, 0]]


def chilingarian(coeffs, z, colour):
    c = np.asarray(coeffs, dtype=float)
    return float(sum(c[x, y] * z**x * colour**y for x in range(c.shape[0]) for y in range(c.shape[1])))


def chilingarian_gr_shift(rest_gr, z):
    """Observed minus rest g - r by the published calibration (self-consistent in the observed colour)."""
    obs = rest_gr
    for _ in range(50):
        obs = rest_gr + chilingarian(CHIL_G_GR, z, obs) - chilingarian(CHIL_R_GR, z, obs)
    return obs - rest_gr


def load_tool():
    spec = importlib.util.spec_from_file_location("build_kcorr_table", os.path.join(ROOT, "tools", "build_kcorr_table.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_tools_k_correction_of_power_laws_is_the_analytic_one():
    """f_nu ~ nu^alpha has K = -2.5 (1 + alpha) log10(1 + z) in every band: the integral of the table's recipe."""
    pytest.importorskip("speclite")
    tool = load_tool()
    wave = np.linspace(1000.0, 20000.0, 40001)
    alphas = np.array([0.0, -1.0, -2.0, 1.5])
    flam = np.stack([wave ** (-2.0 - a) for a in alphas])
    z = np.array([0.0, 0.05, 0.15, 0.3])
    k = tool.k_corrections(wave, flam, z, tool.sdss_filters())  # (4 spectra, 3 bands, 4 z)
    expected = -2.5 * (1 + alphas)[:, None, None] * np.log10(1 + z)[None, None, :]
    np.testing.assert_allclose(k, np.broadcast_to(expected, k.shape), atol=2e-4)


def test_table_gives_an_old_population_the_published_reddening_with_redshift():
    """An old (10 Gyr, solar) population is redder in observed g - r at z = 0.15 than at z = 0.03 by what the
    published K-corrections say (Chilingarian et al. 2010: ~0.29 mag), not 0.08 mag bluer as before."""
    t = mocks.load_kcorr()
    n = 200
    age, met = np.full(n, 10.0), np.full(n, 0.02)
    kc = mocks.KCorrector(t, age, met)
    light = mocks.star_light(load_ssp(), np.ones(n), age, met)
    gr = {z: float(kc.total_k(light.lum["g"], "g", [z])[0] - kc.total_k(light.lum["r"], "r", [z])[0])
          for z in (0.03, 0.15)}
    shift = gr[0.15] - gr[0.03]
    published = chilingarian_gr_shift(0.80, 0.15) - chilingarian_gr_shift(0.80, 0.03)
    assert 0.2 < published < 0.35
    # BC03's 10 Gyr SSP is ~0.08 mag redder here than the calibration on real galaxies (docs/mock_observations.md)
    assert shift == pytest.approx(published, abs=0.1), (shift, published)
    # a star-forming population (constant star formation over 10 Gyr) is reddened less, as published
    ages = np.linspace(0.001, 10.0, 2000)
    csf = mocks.KCorrector(t, ages, np.full(ages.size, 0.02))
    lcsf = mocks.star_light(load_ssp(), np.ones(ages.size), ages, np.full(ages.size, 0.02))
    rest = lcsf.abs_mag("g") - lcsf.abs_mag("r")
    csf_shift = float(csf.total_k(lcsf.lum["g"], "g", [0.15])[0] - csf.total_k(lcsf.lum["r"], "r", [0.15])[0])
    assert csf_shift < shift - 0.1
    assert csf_shift == pytest.approx(chilingarian_gr_shift(rest, 0.15), abs=0.05)
    # K = 0 at z = 0 exactly, and z beyond the table is an error naming the table
    assert kc.factors("g", 0.0) == pytest.approx(np.ones(n), abs=1e-7)
    with pytest.raises(mocks.SSPError, match="kcorr_sdss2010_bc03.npz"):
        kc.factors("r", 1.5)


def test_images_and_the_redshift_draw_see_the_same_observed_frame_light():
    rng = np.random.default_rng(2)
    p = mocks.validate(mocks.make_galaxy(11.1, 0.9, 4.0, 0.0, n_star=6000, rng=rng), "spheroid", "spheroid")
    prep = recipes.prepare(p, load_ssp(), with_dust=False)
    kc = mocks.KCorrector(mocks.load_kcorr(), p["age"], p["metals"])
    colours = {}
    for z in (0.03, 0.15):
        obs = recipes.observed_frame(prep, kc, z)
        maps, *_ = recipes.sdss_maps(obs, 0.0, 0.0, z)
        rest, *_ = recipes.sdss_maps(prep, 0.0, 0.0, z)
        colours[z] = -2.5 * np.log10(maps["g"].sum() / maps["r"].sum())
        colours[(z, "rest")] = -2.5 * np.log10(rest["g"].sum() / rest["r"].sum())
        # the galaxy's K in r (what the redshift draw adds) is that of the light the images are made of
        k_light = -2.5 * np.log10(obs.light.lum["r"].sum() / prep.light.lum["r"].sum())
        assert k_light == pytest.approx(kc.total_k(prep.light.lum["r"], "r", [z])[0], abs=1e-9)
        assert k_light > 0.0
    # redder with redshift, measured on the maps, as the particles' K-corrections say (the field holds most light)
    k_gr = {z: float(kc.total_k(prep.light.lum["g"], "g", [z])[0] - kc.total_k(prep.light.lum["r"], "r", [z])[0])
            for z in (0.03, 0.15)}
    assert colours[0.15] - colours[0.03] > 0.1
    # at z = 0.15 the 64-pixel field (70 kpc) holds the whole galaxy: the maps' colour change is its K
    assert colours[0.15] - colours[(0.15, "rest")] == pytest.approx(k_gr[0.15], abs=0.01)
    # without K (the old engine) the galaxy came out *bluer* at z = 0.15: only its red centre fits at 0.03
    assert colours[(0.15, "rest")] < colours[(0.03, "rest")]
    # the redshift draw: observed-frame r is fainter, so the galaxy leaves the sample at a lower z
    m_r = prep.light.abs_mag("r")
    k_r = lambda zz: kc.total_k(prep.light.lum["r"], "r", zz)  # noqa: E731
    z_k = [redshift.sample_redshift(m_r, np.random.default_rng([s]), k_r) for s in range(300)]
    z_0 = [redshift.sample_redshift(m_r, np.random.default_rng([s])) for s in range(300)]
    zz, dm, _ = redshift._z_table()
    z_edge = zz[m_r + dm + k_r(zz) <= redshift.R_FAINT].max()
    assert max(z_k) <= z_edge + 1e-3 < max(z_0) and np.median(z_k) < np.median(z_0)


def test_z_floor_is_warned_and_counted(tmp_path, capsys):
    rng = np.random.default_rng(3)
    dwarf = mocks.make_galaxy(7.3, 0.05, 0.5, 0.0, n_star=2000, rng=rng)  # M_r ~ -13: fainter than r = 17.77 at 0.02
    mocks.write_npz(str(tmp_path / "p" / "dwarf.npz"), dwarf)
    out = tmp_path / "out"
    assert mock_observation.main(["--particles", str(tmp_path / "p"), "--out", str(out), "--orientations",
                                  "faceon"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mock_observation.py: warning: ") and "dwarf.npz" in err[0]
    assert "placed at z = 0.02" in err[0]
    record = json.loads((out / "mock_observation_run.json").read_text())
    assert record["n_z_floor"] == 1 and record["n_z_ceiling"] == 0 and len(record["warnings"]) == 1
    row = open(out / "metadata.csv").read().splitlines()[1].split(",")
    header = open(out / "metadata.csv").read().splitlines()[0].split(",")
    assert dict(zip(header, row))["z_flag"] == "floor" and float(dict(zip(header, row))["redshift"]) == 0.02


def unit_mistakes(folder):
    good = mocks.make_galaxy(10.4, 0.2, 2.5, 0.0, n_star=3000, rng=np.random.default_rng(4))
    cases = {
        "pc": (dict(good, pos=good["pos"] * 1e3), "pos: stellar half-mass radius", "positions look like pc"),
        "mpc": (dict(good, pos=good["pos"] / 1e3), "pos: stellar half-mass radius", "positions look like Mpc"),
        "e10msun": (dict(good, mass=good["mass"] / 1e10, massform=good["massform"] / 1e10), "mass: total stellar",
                    "units of 1e10 Msun"),
        "years": (dict(good, age=good["age"] * 1e9), "age: oldest star", "ages look like yr"),
        "solar": (dict(good, metals=good["metals"] / 0.0142), "metals: largest metallicity", "Z/Zsun"),
        "ms": (dict(good, vel=good["vel"] * 1e3), "vel: median star speed", "m/s"),
        "spread": (dict(good, pos=good["pos"] * 60), "a blank cutout", "view 00"),  # r_half ~ 150 kpc
    }
    for name, (arrays, _, _) in cases.items():
        mocks.write_npz(os.path.join(folder, f"{name}.npz"), arrays)
    mocks.write_npz(os.path.join(folder, "good.npz"), good)
    return {k: v[1:] for k, v in cases.items()}


def test_unit_mistakes_stop_with_one_line_naming_file_field_and_cause(tmp_path, capsys):
    expected = unit_mistakes(str(tmp_path / "p"))
    out = tmp_path / "out"
    args = ["--particles", str(tmp_path / "p"), "--out", str(out), "--orientations", "faceon", "--redshift", "0.03"]
    assert mock_observation.main(args) == 2
    err = [e for e in capsys.readouterr().err.splitlines() if e.strip()]
    assert len(err) == len(expected)
    for name, (field, cause) in expected.items():
        line = next(e for e in err if f"{os.sep}{name}.npz" in e)
        assert line.startswith("mock_observation.py: error: ") and field in line and cause in line, line
        assert "--force" in line
    assert sorted(f for f in os.listdir(out) if f.endswith(".jpg")) == ["out_good_00.jpg"]
    # --force: every galaxy with any star in its field is written, each problem a warning line, all recorded
    capsys.readouterr()
    assert mock_observation.main([*args, "--force", "--out", str(tmp_path / "forced")]) == 2
    err = capsys.readouterr().err.splitlines()
    warned = [e for e in err if e.startswith("mock_observation.py: warning: ")]
    failed = [e for e in err if e.startswith("mock_observation.py: error: ")]
    assert len(failed) == 1 and f"{os.sep}pc.npz" in failed[0] and "no star particles in the 64-pixel" in failed[0]
    assert {n for n in expected if any(f"{os.sep}{n}.npz" in w for w in warned)} == set(expected) - {"pc"}
    assert len([f for f in os.listdir(tmp_path / "forced") if f.endswith(".jpg")]) == len(expected)
    record = json.loads((tmp_path / "forced" / "mock_observation_run.json").read_text())
    assert record["options"]["force"] is True and len(record["warnings"]) == len(warned)


def test_errors_of_degenerate_galaxies_name_their_file(tmp_path, capsys):
    one = {"pos": np.zeros((1, 3)), "vel": np.zeros((1, 3)), "mass": np.ones(1) * 1e8, "age": np.ones(1),
           "metals": np.full(1, 0.02)}
    same = {k: np.repeat(v, 50, axis=0) for k, v in one.items()}
    for name, arrays in (("single", one), ("coincident", same)):
        mocks.write_npz(str(tmp_path / "p" / f"{name}.npz"), arrays)
    assert mock_observation.main(["--particles", str(tmp_path / "p"), "--out", str(tmp_path / "o"),
                                  "--orientations", "faceon"]) == 2
    err = [e for e in capsys.readouterr().err.splitlines() if e.startswith("mock_observation.py: error: ")]
    assert len(err) == 2 and any("single.npz" in e for e in err) and any("coincident.npz" in e for e in err)
