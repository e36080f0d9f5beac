"""Issue 22's design checks: 20 galaxies x 20 correlated views against 1000 single images, and the verdict's rule."""
import numpy as np
from scipy import stats

import pandas as pd
import pytest

from lib.rating.verdict import bh_flags, expected_false_flags, simes_p, table_verdicts, verdict
from lib.rating.permutation import permuted_labels, score_tests


def _design(rng, shift=0.0, rho=0.5):
    """20 galaxies x 20 views with intra-galaxy correlation rho, and 1000 independent single images."""
    views = rng.normal(0, np.sqrt(rho), (20, 1))[:, [0] * 20] + rng.normal(0, np.sqrt(1 - rho), (20, 20)) + shift
    return np.exp(views.ravel()), np.repeat(np.arange(20), 20), np.exp(rng.normal(0, 1, 1000))


def test_permutations_keep_the_sample_sizes():
    lab = permuted_labels(400, 1000, 50, np.random.default_rng(0))
    assert (lab.sum(1) == 400).all()  # the old group scheme gave a median of 20 images here


def test_ks_null_rejection_rate_is_the_level_in_the_papers_design():
    rng = np.random.default_rng(1)
    p = []
    for _ in range(120):
        suite, groups, ref = _design(rng)
        p.append(score_tests(suite, ref, groups, None, 200, rng)["ks_pvalue"])
    p = np.array(p)
    lo, hi = stats.binom.ppf([0.005, 0.995], 120, 0.05) / 120  # 99 % binomial interval of 5 %
    assert lo <= np.mean(p <= 0.05) <= hi
    assert stats.kstest(p, "uniform").pvalue > 0.001


def test_benjamini_hochberg_on_known_p_values():
    f = bh_flags({"ks_pvalue": 0.01, "c2st_p": 0.04, "mmd2_p": 0.03})
    assert all(f.values())  # 0.01<=0.05/3, 0.03<=0.10/3, 0.04<=0.05 (Holm stops at 0.03 > 0.05/2)
    f = bh_flags({"ks_pvalue": 0.02, "c2st_p": 0.03, "mmd2_p": 0.04})
    assert all(f.values())  # step-up: 0.04 <= 3 x 0.05/3 carries the two smaller ones (Holm flags none)
    f = bh_flags({"ks_pvalue": 0.02, "c2st_p": 0.04, "mmd2_p": 0.06})
    assert not any(f.values())  # 0.06 > 0.05, 0.04 > 0.033, 0.02 > 0.0167
    f = bh_flags({"ks_pvalue": 0.02, "c2st_p": 0.001, "mmd2_p": float("nan")})
    assert f == {"ks_pvalue": True, "c2st_p": True, "mmd2_p": False}  # two tests: 0.001<=0.025, 0.02<=0.05
    f = bh_flags({"a": 0.001, "b": 0.3, "c": 0.04, "d": 0.9})
    assert f == {"a": True, "b": False, "c": False, "d": False}  # 0.04 > 2 x 0.05/4
    assert simes_p([0.02, 0.04, 0.06]) == pytest.approx(0.06) and simes_p([0.01, 0.04, 0.03]) == pytest.approx(0.03)
    assert np.isnan(simes_p([float("nan")]))
    assert verdict({"n_images": 1, "ks_pvalue": float("nan")}) == "not tested (n=1)"


def _family_table(p_by_suite):
    """A rating table: each suite's rows (all + 3 bins) with the given (ks, c2st, mmd) p-values."""
    rows = [{"suite": "observed", "role": "reference", "mass_bin": "all", "n_images": 100, "too_few": False,
             "median_ratio": 1.0, "c2st_auroc": 0.5, "ks_pvalue": np.nan, "c2st_p": np.nan, "mmd2_p": np.nan}]
    for suite, ps in p_by_suite.items():
        for b, (ks, c2, mmd) in zip(["all", "lo", "mid", "hi"], ps):
            rows.append({"suite": suite, "role": "suite", "mass_bin": b, "n_images": 100, "too_few": False,
                         "median_ratio": 1.5, "c2st_auroc": 0.7, "ks_pvalue": ks, "c2st_p": c2, "mmd2_p": mmd})
    return pd.DataFrame(rows)


def test_the_family_is_the_suite():
    null = [(0.5, 0.5, 0.5)] * 4
    table = _family_table({
        "one_strong": [(0.5, 0.5, 0.5), (0.003, 0.5, 0.5), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)],
        "one_weak": [(0.5, 0.5, 0.5), (0.005, 0.07, 0.05), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)],  # Holm per row: flagged
        "null": null,
        "two_bins": [(0.5, 0.5, 0.5), (0.5, 0.008, 0.5), (0.5, 0.5, 0.5), (0.5, 0.008, 0.5)],
    })
    verdicts, suite_p = table_verdicts(table)
    t = table.assign(verdict=verdicts, suite_p=suite_p).set_index(["suite", "mass_bin"])
    # 12 tests a suite: one alone flags only at p <= 0.05/12 = 0.00417
    assert t.loc[("one_strong", "lo"), "verdict"] == "harder to reconstruct (median A x1.5)"
    assert (t.loc["one_strong"].drop("lo")["verdict"] == "no difference detected").all()
    assert (t.loc["one_weak", "verdict"] == "no difference detected").all()
    assert t.loc[("one_weak", "lo"), "suite_p"] == pytest.approx(0.06)  # 12 x 0.005
    assert (t.loc["null", "verdict"] == "no difference detected").all()
    # two p = 0.008 of 12: 0.008 <= 2 x 0.05/12 = 0.0083, both flag
    assert t.loc[("two_bins", "lo"), "verdict"] == t.loc[("two_bins", "hi"), "verdict"] == \
        "separable in latent space (AUROC 0.70)"
    assert t.loc[("observed", "all"), "verdict"] == "" and np.isnan(t.loc[("observed", "all"), "suite_p"])
    assert expected_false_flags(table) == (4, pytest.approx(0.2))


def test_summary_groups_suites_by_model_prefix():
    from lib.rating.verdict import model_of, summary_table
    assert model_of(["NIHAO_noAGN_1", "TNG", "NIHAO_noAGN_2", "NIHAO_AGN_1"]) == {
        "NIHAO_noAGN_1": "NIHAO_noAGN", "NIHAO_noAGN_2": "NIHAO_noAGN", "TNG": "TNG", "NIHAO_AGN_1": "NIHAO_AGN_1"}
    import pandas as pd
    nan = float("nan")
    cols = ["n_groups", "overlap_paper", "overlap_paper_null_q025", "overlap_paper_null_q975", "c2st_auroc_null_q025",
            "c2st_auroc_null_q975", "ks_pvalue", "c2st_p", "mmd2_p", "overlap", "overlap_lo", "overlap_hi",
            "c2st_auroc", "c2st_auroc_lo", "c2st_auroc_hi"]
    rows = [dict(suite=s, role="suite", mass_bin="all", n_images=10, too_few=False, verdict="v", **{c: nan for c in cols})
            for s in ["NIHAO_noAGN_1", "TNG", "NIHAO_noAGN_2"]]
    out = summary_table(pd.DataFrame(rows))
    assert list(out["suite"]) == ["NIHAO_noAGN_1", "NIHAO_noAGN_2", "TNG"]  # one model's rows together
    assert list(out["model"]) == ["NIHAO_noAGN", "NIHAO_noAGN", "TNG"]


def _latent_design(rng, shift=0.0, rho=0.5, d=8):
    """Latents: 20 galaxies x 20 views (a galaxy term shared by its views) against 1000 single images."""
    gal = np.repeat(np.arange(20), 20)
    x = np.sqrt(rho) * rng.normal(size=(20, d))[gal] + np.sqrt(1 - rho) * rng.normal(size=(400, d)) + shift
    return x, gal, rng.normal(size=(1000, d))


def test_c2st_in_the_papers_design_null_rate_band_width_and_power():
    from lib.rating.latent import LatentConfig, c2st
    rng = np.random.default_rng(7)
    cfg = LatentConfig(n_perm=100, n_boot=0, n_folds=5)
    p, auc, lo, hi = [], [], [], []
    for i in range(60):
        x, gal, y = _latent_design(rng)
        r = c2st(x, y, groups_x=gal, config=cfg, key=(str(i),))
        p.append(r["c2st_p"]), auc.append(r["c2st_auroc"])
        lo.append(r["c2st_auroc_null_q025"]), hi.append(r["c2st_auroc_null_q975"])
    p, auc = np.array(p), np.array(auc)
    # null rejection rate within the 99 % binomial interval of 5 %
    assert np.mean(p <= 0.05) <= stats.binom.ppf(0.995, 60, 0.05) / 60
    # the permutation band is as wide as the Monte Carlo spread of the AUROC under H0 (the old group
    # permutation gave [0.265, 0.728] against a Monte Carlo [0.36, 0.64] in the design)
    mc_lo, mc_hi = np.quantile(auc, [0.025, 0.975])
    assert abs(np.median(hi) - np.median(lo) - (mc_hi - mc_lo)) < 0.35 * (mc_hi - mc_lo)
    # power at a small shift (0.2 sd in each of 8 coordinates, on one view of each of 20 galaxies): reported, and above the level
    power = np.mean([c2st(*(lambda t: (t[0], t[2]))(_latent_design(rng, shift=0.2)), groups_x=np.repeat(np.arange(20), 20),
                          config=cfg, key=("s", str(i)))["c2st_p"] <= 0.05 for i in range(30)])
    print(f"C2ST power at 0.2 sd, 20 galaxies x 20 views vs 1000 singles: {power:.2f}")
    assert power > stats.binom.ppf(0.995, 30, 0.05) / 30  # above what the level alone gives (0.33 measured)
