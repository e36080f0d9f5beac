"""Rating statistics (lib/rating/), the rate.py command line, and the paper's correlation table."""
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import rate
from lib.rating import morphology as M
from lib import rating as R

ROOT = Path(__file__).resolve().parents[1]
AGN_CSV = ROOT / "data" / "paper" / "statmorph_AGN_i.csv"


# --------------------------------------------------------------------------- overlap
def test_overlap_matches_hand_computation():
    bins = np.array([0.0, 0.5, 1.0])  # two bins of width 0.5
    suite = np.array([0.1, 0.2, 0.3, 0.7])  # 3 left, 1 right: densities 1.5, 0.5
    ref = np.array([0.1, 0.6, 0.7, 0.8])  # 1 left, 3 right: densities 0.5, 1.5
    # sum(min) / sum(h_suite) = (0.5 + 0.5) / (1.5 + 0.5)
    assert R.overlap(suite, ref, bins) == pytest.approx(0.5)
    assert R.overlap(ref, suite, bins) == pytest.approx(0.5)


def test_overlap_paper_bins_hand_computation():
    # bin width 0.1/99; suite: 2 in bin 0, 2 in bin 10; reference: 1 in bin 0, 3 in bin 20
    w = 0.1 / 99
    suite = np.array([0.2, 0.5, 10.5, 10.6]) * w
    ref = np.array([0.3, 20.5, 20.5, 20.5]) * w
    h_s0 = 2 / 4 / w
    h_r0 = 1 / 4 / w
    expected = min(h_s0, h_r0) / (4 / 4 / w)
    assert R.overlap(suite, ref) == pytest.approx(expected) == pytest.approx(0.25)


def test_overlap_identical_is_one_and_disjoint_is_zero():
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 0.1, 500)
    assert R.overlap(s, s) == pytest.approx(1.0)
    assert R.overlap(s * 0.4, s * 0.4 + 0.06) == 0.0
    assert R.overlap_full(s, s) == pytest.approx(1.0)
    assert R.overlap_full(s * 0.4, s * 0.4 + 0.06) == 0.0


def test_scores_above_0_1_are_ignored_by_overlap_but_not_overlap_full():
    rng = np.random.default_rng(1)
    ref = rng.uniform(0.0, 0.1, 2000)
    suite = ref.copy()
    suite[:1000] = rng.uniform(0.2, 0.5, 1000)  # half the suite far out in the tail
    paper = R.overlap(suite, ref)
    full = R.overlap_full(suite, ref)
    # the paper's overlap only sees the in-range half, which is the reference's own values
    assert paper > 0.8
    assert full < 0.55
    assert R.frac_above(suite, 0.1) == pytest.approx(0.5)
    # only out-of-range scores in the suite: the paper's overlap is undefined, not a number
    assert np.isnan(R.overlap(np.array([0.3, 0.4]), ref))


def test_two_sample_statistics_are_scipy_values():
    rng = np.random.default_rng(2)
    a, b = rng.lognormal(-4, 0.5, 300), rng.lognormal(-3.8, 0.5, 500)
    out = R.two_sample(a, b)
    ks = stats.ks_2samp(a, b, method="asymp")  # 300 x 500 > 10,000 pairs: the asymptotic distribution
    assert out["ks_stat"] == pytest.approx(ks.statistic)
    assert "ks_pvalue" not in out  # scipy's image-level p-value is gone: the test is a permutation (score_tests)
    assert out["wasserstein"] == pytest.approx(stats.wasserstein_distance(a, b))
    # W1 of a pure shift is the shift
    assert R.two_sample(a + 0.01, a)["wasserstein"] == pytest.approx(0.01)


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_reproducible_with_seed_and_sensitive_to_it():
    rng = np.random.default_rng(3)
    s, r = rng.lognormal(-4, 0.6, 400), rng.lognormal(-4, 0.6, 3000)
    a = R.bootstrap(s, r, n_boot=200, seed=7, key=("x",))
    b = R.bootstrap(s, r, n_boot=200, seed=7, key=("x",))
    c = R.bootstrap(s, r, n_boot=200, seed=8, key=("x",))
    assert a == b
    assert a != c
    assert a["mean_lo"] < s.mean() < a["mean_hi"]
    assert a["median_lo"] < np.median(s) < a["median_hi"]
    # the mean interval is close to the normal approximation
    se = s.std(ddof=1) / np.sqrt(s.size)
    assert a["mean_hi"] - a["mean_lo"] == pytest.approx(2 * 1.96 * se, rel=0.25)


def testweighted_median_equals_numpy_median_of_expanded_sample():
    rng = np.random.default_rng(4)
    for _ in range(50):
        x = np.sort(rng.normal(size=rng.integers(1, 9)))
        w = rng.integers(0, 4, x.size)
        if w.sum() == 0:
            continue
        assert R.weighted_median(x, w) == pytest.approx(np.median(np.repeat(x, w)))


def test_group_resampling_widens_intervals_for_clustered_data():
    rng = np.random.default_rng(5)
    galaxy_means = rng.lognormal(-4, 0.8, 20)
    s = np.repeat(galaxy_means, 20) * rng.lognormal(0, 0.05, 400)  # 20 nearly identical views per galaxy
    groups = np.repeat(np.arange(20), 20)
    r = rng.lognormal(-4, 0.8, 5000)
    by_image = R.bootstrap(s, r, n_boot=300, seed=0)
    by_galaxy = R.bootstrap(s, r, groups=groups, n_boot=300, seed=0)
    # 20 independent galaxies, not 400 images: the interval is about sqrt(20) wider
    w_img = by_image["mean_hi"] - by_image["mean_lo"]
    w_gal = by_galaxy["mean_hi"] - by_galaxy["mean_lo"]
    assert w_gal > 3 * w_img
    # with one image per group, group resampling is image resampling (same stream, same numbers)
    same = R.bootstrap(s, r, groups=np.arange(400), n_boot=100, seed=1)
    assert same == R.bootstrap(s, r, n_boot=100, seed=1)


def test_relative_overlap_reads_one_for_one_distribution_at_every_n():
    rng = np.random.default_rng(6)
    r = rng.lognormal(np.log(0.02), 0.6, 20000)
    small = R.rate_row(rng.lognormal(np.log(0.02), 0.6, 100), r, n_boot=200)
    large = R.rate_row(rng.lognormal(np.log(0.02), 0.6, 5000), r, n_boot=200)
    assert small["overlap_ceiling"] < large["overlap_ceiling"] < 1  # the raw overlap's small-sample bias
    assert small["overlap_paper"] < large["overlap_paper"]  # ... which the raw number carries
    for row in (small, large):  # relative to its ceiling it does not depend on n
        assert row["overlap"] == pytest.approx(1.0, abs=0.08)
        assert row["overlap_lo"] <= row["overlap"] <= row["overlap_hi"]


# --------------------------------------------------------------------------- masses
def test_mass_bins_half_open_with_paper_edges():
    e = R.PAPER_MASS_EDGES
    m = np.array([8.999, 9.0, e[1] - 1e-12, e[1], e[2], 12.4999, 12.5, np.nan])
    assert R.assign_mass_bins(m).tolist() == [-1, 0, 0, 1, 2, 2, -1, -1]
    assert R.mass_bin_labels(e) == ["9.00-10.29", "10.29-11.39", "11.39-12.50"]
    assert e[1] == np.linspace(9, 12.5, 20)[7] and e[2] == np.linspace(9, 12.5, 20)[13]


def test_mass_scales_and_unit_errors():
    assert R.to_log_mass(np.array([1e10, 1e11]), "linear") == pytest.approx([10, 11])
    assert R.to_log_mass(np.array([10.5]), "log") == pytest.approx([10.5])
    with pytest.raises(R.RatingError, match="linear"):
        R.to_log_mass(np.array([3e10]), "log")
    with pytest.raises(R.RatingError, match="log"):
        R.to_log_mass(np.array([10.5]), "linear")
    with pytest.raises(R.RatingError, match="unknown mass scale"):
        R.to_log_mass(np.array([10.5]), "dex")


def test_rate_table_rows_and_warnings():
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"ascore": rng.lognormal(-4, 0.5, 3000), "m": rng.uniform(9, 12.4, 3000)})
    a = pd.DataFrame({"ascore": rng.lognormal(-3.5, 0.5, 60), "m": np.repeat([9.5, 10.8, 11.9], 20),
                      "gal": np.repeat(["g1", "g2", "g3"], 20)})
    high = pd.DataFrame({"ascore": rng.lognormal(-4, 0.5, 40), "m": np.full(40, 13.0)})
    t = R.rate(ref, {"A": a, "out": high}, reference_name="SDSS", mass_col="m", group_col="gal", n_boot=20)
    assert list(t.columns) == R.RATING_COLUMNS
    assert t["mass_bin"].tolist()[:4] == ["all"] * 4
    assert t["suite"].tolist()[:4] == ["SDSS", "SDSS: half vs half", "A", "out"]
    assert t["role"].tolist()[:4] == ["reference", "half_vs_half", "suite", "suite"]
    assert len(t) == 4 * 4
    row = t[(t.suite == "A") & (t.mass_bin == "10.29-11.39")].iloc[0]
    assert row.n_images == 20 and row.n_groups == 1
    assert row["mean"] == pytest.approx(a["ascore"][20:40].mean())
    assert row.n_reference == int(((ref.m >= R.PAPER_MASS_EDGES[1]) & (ref.m < R.PAPER_MASS_EDGES[2])).sum())
    out_all = t[(t.suite == "out") & (t.mass_bin == "all")].iloc[0]
    assert "all 40 masses fall outside every mass bin" in out_all.warnings
    assert "no group column" in out_all.warnings
    assert (t[(t.suite == "out") & (t.mass_bin != "all")]["warnings"] == "no images in this mass bin").all()
    assert row.too_few and "too few images" in row.warnings and row.verdict.startswith("too few images (n=20)")
    assert np.isnan(t[(t.suite == "out") & (t.mass_bin != "all")]["mean"]).all()


def test_rate_suites_for_the_demo():
    rng = np.random.default_rng(8)
    obs = rng.lognormal(-4, 0.5, 500)
    t = R.rate_suites(obs, {"noise_0.5": obs * 1.5, "noise_0.0": obs.copy()}, n_boot=50)
    assert list(t.columns[:5]) == ["suite", "n_images", "mean", "median", "overlap"]
    assert t["suite"].tolist() == ["observed", "noise_0.5", "noise_0.0"]
    # an exact copy overlaps fully (raw 1), i.e. more than an independent draw of one distribution would
    assert t.loc[2, "overlap_paper"] == pytest.approx(1.0) and t.loc[2, "overlap"] > 1 > 0.9 > t.loc[1, "overlap"]
    assert t.loc[1, "median"] == pytest.approx(1.5 * np.median(obs))


@pytest.mark.parametrize("scores, message", [
    ([], "no rows"),
    ([0.1, np.nan], "NaN"),
    ([0.1, -0.01], "negative"),
    (["0.1", "abc"], "not numbers"),
])
def test_bad_scores_raise_one_line_errors(scores, message):
    ref = pd.DataFrame({"ascore": [0.01, 0.02, 0.03]})
    with pytest.raises(R.RatingError, match=message) as info:
        R.rate(ref, {"bad": pd.DataFrame({"ascore": scores})}, n_boot=0)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- the paper's numbers
def test_agn_table_reproduces_paper_bin_counts_and_correlations():
    agn = pd.read_csv(AGN_CSV)
    agn = agn.join(R.galaxy_and_orientation(agn["name"]))
    counts = R.bin_counts(np.log10(agn["m"].to_numpy()), agn["galaxy"].to_numpy())
    assert counts["n_images"].tolist() == [520, 620, 400, 0]
    assert counts["n_groups"].tolist() == [26, 31, 20, 0]
    cut = M.quality_cuts(agn)
    assert len(cut) == 1519
    r = M.correlate_with_score(cut, "score")
    published = M.PAPER_PEARSON
    assert [round(v, 2) for v in r[list(published)]] == pytest.approx(list(published.values()), abs=1e-9)
    assert M.compare_with_paper(r)["agrees_to_2_decimals"].all()


# --------------------------------------------------------------------------- command line
def _write(tmp_path, name, df):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


@pytest.fixture
def score_csvs(tmp_path):
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"filename": [f"s{i}.png" for i in range(800)], "ascore": rng.lognormal(-4, 0.5, 800),
                        "mstar": 10 ** rng.uniform(9, 12.4, 800)})
    gal = np.repeat([f"g{i}" for i in range(12)], 5)
    mass = np.repeat(10 ** np.linspace(9.2, 12.2, 12), 5)
    a = pd.DataFrame({"filename": [f"a{i}.png" for i in range(60)], "ascore": rng.lognormal(-3.6, 0.6, 60),
                      "mstar": mass, "galaxy": gal})
    b = a.assign(ascore=rng.lognormal(-4, 0.5, 60))
    return {"ref": _write(tmp_path, "sdss.csv", ref), "a": _write(tmp_path, "agn.csv", a),
            "b": _write(tmp_path, "noagn.csv", b)}


def test_cli_end_to_end_writes_table_markdown_and_figures(tmp_path, score_csvs, capsys):
    out = tmp_path / "rating"
    argv = ["--reference", f"SDSS={score_csvs['ref']}", "--suite", f"AGN={score_csvs['a']}",
            "--suite", f"NoAGN={score_csvs['b']}", "--mass-col", "mstar", "--mass-scale", "linear",
            "--group-col", "galaxy", "--out", str(out), "--n-boot", "50", "--seed", "3"]
    assert rate.main(argv) == 0
    printed = capsys.readouterr().out
    assert "AGN" in printed and "note: SDSS: no latents beside" in printed and "A statistics only" in printed
    t = pd.read_csv(out / "rating.csv")
    assert t["mass_bin"].tolist() == ["all"] * 4 + ["9.00-10.29"] * 4 + ["10.29-11.39"] * 4 + ["11.39-12.50"] * 4
    for c in ["suite", "mass_bin", "n_images", "n_groups", "mean", "median", "std", "q16", "q84", "overlap",
              "overlap_full", "frac_above_ref_p99", "ks_stat", "ks_pvalue", "wasserstein", "overlap_lo", "overlap_hi"]:
        assert c in t.columns
    agn = pd.read_csv(score_csvs["a"])
    row = t[(t.suite == "AGN") & (t.mass_bin == "all")].iloc[0]
    ref = pd.read_csv(score_csvs["ref"])
    assert row["overlap_paper"] == pytest.approx(R.overlap(agn["ascore"], ref["ascore"]))
    # the bias-corrected overlap sits inside its own interval, the paper's raw value beside it
    assert (t.overlap_lo <= t.overlap + 1e-12).all() or t.overlap_lo.isna().any()
    rows = t[t.role != "reference"]
    assert ((rows.overlap_lo <= rows.overlap + 1e-12) & (rows.overlap <= rows.overlap_hi + 1e-12)).all()
    assert row["overlap"] == pytest.approx(row["overlap_paper"] / row["overlap_ceiling"])
    assert row["n_groups"] == 12 and row["n_images"] == 60
    assert row["median"] == pytest.approx(agn["ascore"].median())
    md = (out / "rating.md").read_text()
    assert md.startswith("| suite | mass_bin |") and md.count("\n") == 2 + len(t)
    assert (out / "summary.md").read_text().split("\n")[0].endswith("| suite | mass_bin | n | A: overlap [95%] | A: paper overlap (null band) | latent: C2ST AUROC [95%] | C2ST AUROC null band | p: KS / C2ST / MMD | verdict |")
    ranking = pd.read_csv(out / "ranking.csv")
    # grouped suites have no A null band here: the misspecification check is left empty, never guessed
    assert {"separable", "null_edge"} <= set(ranking.columns) and ranking["separable"].isna().all()
    assert set(ranking["mass_bin"]) == {"all", "10.29-11.39"}  # the other bins hold fewer than 5 galaxies
    for fig in ["score_ecdf_all.png", "score_ecdf_9.00-10.29.png", "score_vs_mass.png", "ranking.png",
                "rank_probabilities.png", "rank_probabilities_10.29-11.39.png"]:
        assert (out / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # no temp files left
    # identical inputs give identical outputs, byte for byte
    out2 = tmp_path / "rating2"
    assert rate.main(argv[:-5] + [str(out2), "--n-boot", "50", "--seed", "3"]) == 0
    for f in ["rating.csv", "rating.md", "rating_run.json", "ranking.png", "score_vs_mass.png"]:
        assert (out / f).read_bytes() == (out2 / f).read_bytes(), f


@pytest.mark.parametrize("args, message", [
    (["--suite", "X={a}", "--score-col", "nope"], "no column 'nope'"),
    (["--suite", "X={missing}"], "no such file"),
    (["--suite", "X={a}", "--mass-col", "mstar"], "use --mass-scale linear"),
    (["--suite", "X={a}", "--mass-col", "mass"], "no mass column 'mass'"),
    (["--suite", "SDSS={a}"], "duplicate names"),
    (["--suite", "X={a}", "--mass-col", "mstar", "--mass-scale", "linear", "--mass-bins", "10", "9"],
     "increasing"),
    ([], "at least one --suite"),
])
def test_cli_bad_input_one_line_error_nothing_written(tmp_path, score_csvs, capsys, args, message):
    out = tmp_path / "never"
    args = [a.format(a=score_csvs["a"], missing=tmp_path / "missing.csv") for a in args]
    code = rate.main(["--reference", f"SDSS={score_csvs['ref']}", *args, "--out", str(out), "--n-boot", "5"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and err.startswith("rate.py: error:")
    assert not out.exists()


def test_cli_rejects_nan_and_negative_scores(tmp_path, score_csvs, capsys):
    bad = pd.read_csv(score_csvs["a"])
    bad.loc[3, "ascore"] = np.nan
    p = _write(tmp_path, "nan.csv", bad)
    assert rate.main(["--reference", f"S={score_csvs['ref']}", "--suite", f"X={p}", "--out", str(tmp_path / "o")]) == 2
    assert "1 of 60 scores are NaN" in capsys.readouterr().err
    bad.loc[3, "ascore"] = -0.5
    p = _write(tmp_path, "neg.csv", bad)
    assert rate.main(["--reference", f"S={score_csvs['ref']}", "--suite", f"X={p}", "--out", str(tmp_path / "o")]) == 2
    assert "negative" in capsys.readouterr().err


def test_histogram_figures_warn_nothing_when_no_score_is_in_the_paper_range(tmp_path):
    import warnings

    from lib.rating import plots as P
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value encountered in divide" would fail here
        P.figure_histograms(np.full(10, 0.5), {"a": np.full(5, 0.3), "b": np.linspace(0, 0.05, 20)},
                            tmp_path / "h.png")
        P.figure_histograms_massbins([("9-10", np.full(10, 0.5), {"a": np.full(5, 0.3)})], tmp_path / "m.png")
    assert (tmp_path / "h.png").stat().st_size > 1000 and (tmp_path / "m.png").stat().st_size > 1000


def test_small_multiples_take_21_suites_and_mark_small_bins(tmp_path):
    from lib.rating import panels
    rng = np.random.default_rng(11)
    suites = {f"knob_{i}": rng.lognormal(-2.3, 0.5, 7 if i == 3 else 60) for i in range(21)}
    fig = panels.figure_ecdf_grid(rng.lognormal(-2.3, 0.5, 300), suites, tmp_path / "e.png",
                                  few={"knob_3": True}, notes={"knob_0": "overlap 0.70"})
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 21
    assert any("too few images" in t.get_text() for t in axes[3].texts)
    assert not any("too few images" in t.get_text() for t in axes[4].texts)
    points = {k: pd.DataFrame({"mass": rng.uniform(9, 12, v.size), "score": v}) for k, v in suites.items()}
    panels.figure_score_vs_mass_grid(rng.uniform(9, 12, 300), rng.lognormal(-2.3, 0.5, 300), points,
                                     tmp_path / "m.png", mass_edges=list(R.PAPER_MASS_EDGES))
    z = {k: rng.normal(size=(v.size, 8)) for k, v in suites.items()}
    panels.figure_latent_pca(rng.normal(size=(300, 8)), z, tmp_path / "p.png")
    for f in ("e.png", "m.png", "p.png"):
        assert (tmp_path / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
