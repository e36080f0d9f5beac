"""Latent two-sample statistics (lib/rating/latent.py): C2ST and MMD, their calibration and their use in rate()."""
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from lib import rating as R
from lib.rating import latent as L

FAST = L.LatentConfig(n_boot=100, n_perm=100)


def test_weighted_auroc_equals_sklearn_with_ties():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 6, 80).astype(float)  # many ties
    y = rng.integers(0, 2, 80)
    assert L.weighted_auroc(s, y, 1 - y)[0] == pytest.approx(roc_auc_score(y, s))
    # integer weights = repeated elements
    w = rng.integers(0, 3, 80)
    rep = np.repeat(np.arange(80), w)
    assert L.weighted_auroc(s, w * y, w * (1 - y))[0] == pytest.approx(roc_auc_score(y[rep], s[rep]))


def test_c2st_is_one_half_for_one_distribution_and_one_for_separated_samples():
    rng = np.random.default_rng(1)
    same = L.c2st(rng.normal(size=(250, 32)), rng.normal(size=(250, 32)), config=FAST)
    assert same["c2st_auroc"] == pytest.approx(0.5, abs=0.07)
    assert same["c2st_p"] > 0.05
    assert same["c2st_auroc_null_q025"] < same["c2st_auroc"] < same["c2st_auroc_null_q975"]
    far = L.c2st(rng.normal(size=(250, 32)) + 1.5, rng.normal(size=(250, 32)), config=FAST)
    assert far["c2st_auroc"] > 0.98 and far["c2st_p"] == pytest.approx(1 / 101)
    for r in (same, far):
        assert r["c2st_auroc_lo"] <= r["c2st_auroc"] <= r["c2st_auroc_hi"]


def test_c2st_permutation_p_value_is_uniform_under_the_null():
    rng = np.random.default_rng(2)
    cfg = L.LatentConfig(n_boot=0, n_perm=200, mmd=False)
    p = np.array([L.c2st(rng.normal(size=(40, 3)), rng.normal(size=(40, 3)), config=L.LatentConfig(
        n_boot=0, n_perm=200, seed=i))["c2st_p"] for i in range(150)])
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.02 <= np.mean(p < 0.1) <= 0.2
    assert cfg.classifier == "ridge"


def test_mmd_permutation_p_value_and_detection():
    rng = np.random.default_rng(3)
    cfg = L.LatentConfig(n_perm=100, seed=0)
    p = [L.mmd(rng.normal(size=(40, 3)), rng.normal(size=(40, 3)), config=L.LatentConfig(n_perm=100, seed=i))["mmd2_p"]
         for i in range(60)]
    assert stats.kstest(p, "uniform").pvalue > 0.01
    far = L.mmd(rng.normal(size=(100, 8)) + 1.0, rng.normal(size=(100, 8)), config=cfg)
    assert far["mmd2"] > far["mmd2_null_q975"] and far["mmd2_p"] < 0.02


def test_same_seed_same_numbers_other_seed_other_folds():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(120, 16)) + 0.2, rng.normal(size=(150, 16))
    g = np.repeat(np.arange(30), 4)
    a = L.latent_stats(x, y, g, None, L.LatentConfig(seed=5), key=("s", "all"))
    assert a == L.latent_stats(x, y, g, None, L.LatentConfig(seed=5), key=("s", "all"))
    assert a != L.latent_stats(x, y, g, None, L.LatentConfig(seed=6), key=("s", "all"))


def test_one_view_per_galaxy_keeps_exactly_one_image_of_each():
    from lib.rating.permutation import one_view_per_group
    groups = np.r_[np.repeat(np.arange(20), 5), np.arange(20, 45)]  # 20 galaxies x 5 views, 25 singles
    idx = one_view_per_group(groups, len(groups), np.random.default_rng(5))
    assert len(idx) == 45 and sorted(groups[idx].tolist()) == list(range(45))
    assert (one_view_per_group(None, 7, np.random.default_rng(0)) == np.arange(7)).all()


def test_ridge_permutations_are_exact_refits():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(60, 5))
    y = np.r_[np.ones(30, int), np.zeros(30, int)]
    perm = np.zeros((2, 60), dtype=bool)
    perm[0, rng.permutation(60)[:30]] = True
    perm[1, :30] = True
    cfg = L.LatentConfig()
    folds = L.cv_folds(y, 5, 0)
    _, null = L.out_of_fold_scores(x, y, folds, cfg, perm=perm)
    refit, _ = L.out_of_fold_scores(x, y, folds, cfg)
    assert null[1] == pytest.approx(refit)  # the identity relabelling reproduces the fit itself
    yp = perm[0].astype(float)
    for test in folds:  # a relabelling equals an explicit ridge fit on those labels with the same folds
        train = np.setdiff1d(np.arange(60), test)
        m = x[train].mean(0)
        w = np.linalg.solve((x[train] - m).T @ (x[train] - m) + cfg.ridge * len(train) * np.eye(5),
                            (x[train] - m).T @ (yp[train] - yp[train].mean()))
        assert null[0, test] == pytest.approx((x[test] - m) @ w)


def test_one_250_vs_250_comparison_is_fast():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(250, 128)), rng.normal(size=(250, 128))
    L.latent_stats(x, y)  # warm up imports and caches
    t = time.perf_counter()
    L.latent_stats(x, y)
    assert time.perf_counter() - t < 3.0  # ~0.1 s here; generous so a busy CI machine does not flake


def test_low_variance_shift_is_seen_by_c2st_and_not_by_a():
    """A suite that differs only in a low-variance latent direction: the A statistics see nothing."""
    rng = np.random.default_rng(8)
    scale = np.r_[np.full(15, 3.0), 0.2]  # 15 loud directions and one quiet one

    def sample(n, shift):
        z = rng.normal(size=(n, 16)) * scale
        z[:, 15] += shift
        a = 0.01 * (1 + 0.05 * np.abs(z[:, 0]))  # A does not depend on the quiet direction
        return pd.DataFrame({"ascore": a}), z

    ref, z_ref = sample(300, 0.0)
    sim, z_sim = sample(300, 0.3)  # 1.5 sigma of the quiet direction
    t = R.rate(ref, {"sim": sim}, reference_name="obs", mass_edges=None, n_boot=100,
               latents={"obs": z_ref, "sim": z_sim}, latent_config=FAST)
    row = t[t.suite == "sim"].iloc[0]
    assert row.c2st_auroc > 0.75 and row.c2st_p < 0.02 and row.c2st_auroc > row.c2st_auroc_null_q975
    assert row.ks_stat < row.ks_stat_null_q975 and row.ks_pvalue > 0.05
    assert row.overlap_paper_null_q025 <= row.overlap_paper <= row.overlap_paper_null_q975
    assert row.verdict == "separable in latent space (AUROC %.2f)" % row.c2st_auroc
    null = t[t.role == "half_vs_half"].iloc[0]
    assert null.verdict == "no difference detected"
    assert null.c2st_auroc_null_q025 <= null.c2st_auroc <= null.c2st_auroc_null_q975


def test_few_images_use_fewer_folds_and_one_galaxy_gives_nan():
    rng = np.random.default_rng(9)
    r = L.c2st(rng.normal(size=(3, 4)) + 3, rng.normal(size=(4, 4)), config=FAST)
    assert np.isfinite(r["c2st_auroc"])  # 3 folds instead of 5
    one = L.c2st(rng.normal(size=(5, 4)), rng.normal(size=(6, 4)), groups_x=np.zeros(5), config=FAST)
    assert all(np.isnan(v) for v in one.values())


def test_strength_orders_and_null_check_on_a_made_up_table():
    from lib.rating.ladder import null_check, strength_orders

    rows = [{"suite": "base_0", "mass_bin": "all", "role": "suite", "mean": 1.0, "c2st_auroc": 0.5, "too_few": False}]
    for s, (m, c) in enumerate([(0.9, 0.6), (0.8, 0.7), (0.7, 0.8)], start=1):
        rows.append({"suite": f"blue_{s}", "mass_bin": "all", "role": "suite", "mean": m, "c2st_auroc": c,
                     "too_few": False})
    rows.append({"suite": "obs: half vs half", "mass_bin": "all", "role": "half_vs_half", "c2st_auroc": 0.45,
                 "c2st_auroc_null_q025": 0.4, "c2st_auroc_null_q975": 0.6, "too_few": False})
    t = pd.DataFrame(rows)
    o = strength_orders(t, ["blue"], "base_0").iloc[0]
    assert o.rho_mean == pytest.approx(-1) and o.rho_c2st_auroc == pytest.approx(1)
    assert o.ordered_by == "c2st_auroc"
    n = null_check(t)
    assert n.statistic.tolist() == ["c2st_auroc"] and n.inside.all()


def test_summary_table_puts_both_ratings_with_intervals_beside_the_verdict():
    rng = np.random.default_rng(10)
    ref = pd.DataFrame({"ascore": rng.lognormal(-4, 0.4, 200)})
    sim = pd.DataFrame({"ascore": rng.lognormal(-3.6, 0.4, 200)})
    z_ref, z_sim = rng.normal(size=(200, 8)), rng.normal(size=(200, 8)) + 0.6
    t = R.rate(ref, {"sim": sim}, reference_name="obs", mass_edges=None, n_boot=50,
               latents={"obs": z_ref, "sim": z_sim}, latent_config=FAST)
    s = R.summary_table(t)
    assert s["suite"].tolist() == ["obs: half vs half", "sim"]
    row = s.iloc[1]
    assert row["verdict"].startswith("harder to reconstruct (median A x1.") and "separable in latent space" in row["verdict"]
    assert row["A: overlap [95%]"].count("[") == 1 and row["latent: C2ST AUROC [95%]"].count("[") == 1
    md = R.summary_markdown(s)
    assert md.split("\n")[0].endswith("| suite | mass_bin | n | A: overlap [95%] | A: paper overlap (null band) | latent: C2ST AUROC [95%] | C2ST AUROC null band | p: KS / C2ST / MMD | verdict |") and md.count("\n") == 6  # 4 table lines, blank, the rule
    assert "Benjamini-Hochberg" in md and "suite_p" in md


def test_few_galaxies_of_many_images_warn_nothing():
    import warnings
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(12, 6)), rng.normal(size=(40, 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # relabelling 3 galaxies can leave fewer than 2 images a side
        r = L.latent_stats(x, y, np.repeat([0, 1, 2], 4), None, FAST)
    assert np.isfinite(r["mmd2"]) and np.isfinite(r["c2st_auroc"])
