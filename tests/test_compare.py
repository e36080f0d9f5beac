"""Suites compared with each other (lib/rating/compare.py): known orderings, nulls, probabilities, pairing."""
from __future__ import annotations

import numpy as np

from lib.rating.compare import (CompareConfig, bin_replicates, compare_bin, paired_difference, rank_probabilities,
                                refit_auroc)
from lib.rating.latent import LatentConfig, c2st

D = 8


def _sample(rng, n, shift):
    z = rng.normal(size=(n, D))
    z[:, 0] += shift
    a = np.exp(rng.normal(-3.0 + 0.3 * shift, 0.3, size=n))  # scores A inside the paper's [0, 0.1] mostly
    return {"score": a, "group": None, "latent": z}


def test_refit_estimate_equals_the_ratings_c2st():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, D)) + 0.5, rng.normal(size=(70, D))
    ones = lambda n: np.ones((1, n), dtype=int)  # noqa: E731
    est = refit_auroc(x, y, np.arange(60), np.arange(70), ones(60), ones(70), CompareConfig(), grouped=False)[0]
    assert abs(est - c2st(x, y, config=LatentConfig(n_boot=0, n_perm=0))["c2st_auroc"]) < 1e-9


def test_known_ordering_is_ranked_with_concentrated_probabilities():
    rng = np.random.default_rng(1)
    ref = _sample(rng, 200, 0.0)
    suites = {"far": _sample(rng, 200, 1.0), "near": _sample(rng, 200, 0.0), "mid": _sample(rng, 200, 0.3)}
    cfg = CompareConfig(n_boot=100)
    ranking, pairwise = compare_bin(bin_replicates(ref, suites, cfg), cfg)
    auc = ranking[ranking["statistic"] == "c2st_auroc"].set_index("suite")
    assert list(auc.sort_values("rank").index) == ["near", "mid", "far"]
    assert auc.loc["near", "p_closest"] > 0.8 and auc.loc["far", "p_rank_3"] > 0.95
    probs = auc[[f"p_rank_{k}" for k in (1, 2, 3)]].to_numpy()
    assert np.allclose(probs.sum(0), 1) and np.allclose(probs.sum(1), 1)
    far_near = pairwise[(pairwise["statistic"] == "c2st_auroc") & (pairwise["suite_a"] == "far")
                        & (pairwise["suite_b"] == "near")].iloc[0]
    assert far_near["lo"] > 0 and far_near["p"] < 0.05 and far_near["closer"] == "near"


def test_two_draws_of_one_population_stay_null():
    rng = np.random.default_rng(2)
    cfg = CompareConfig(n_boot=60)
    p, covers = [], []
    for _ in range(30):
        ref = _sample(rng, 80, 0.0)
        _, pw = compare_bin(bin_replicates(ref, {"a": _sample(rng, 80, 0.5), "b": _sample(rng, 80, 0.5)}, cfg), cfg)
        r = pw[pw["statistic"] == "c2st_auroc"].iloc[0]
        p.append(r["p"])
        covers.append(r["lo"] <= 0 <= r["hi"])
    # 30 replicates at the 5 % level: at most 5 rejections is the binomial 99 % bound
    assert sum(pv < 0.05 for pv in p) <= 5 and np.mean(covers) >= 0.83
    assert 0.3 < np.median(p) < 0.8  # roughly uniform, not piled up at 0 or 1


def test_shared_reference_resample_reduces_the_variance_of_differences():
    rng = np.random.default_rng(3)
    ref = {"score": np.exp(rng.normal(-3, 0.5, 40)), "group": None, "latent": rng.normal(size=(40, D))}
    s = {"score": np.exp(rng.normal(-2.8, 0.5, 1500)), "group": None, "latent": rng.normal(size=(1500, D)) + 0.4}
    cfg = CompareConfig(n_boot=150)
    reps = bin_replicates(ref, {"a": s, "b": dict(s)}, cfg)  # the same suite twice: only the reference differs
    paired = np.std(reps["a"]["overlap"][1:] - reps["b"]["overlap"][1:])
    # independent reference resamples for the two suites: a second bin key gives another reference draw
    other = bin_replicates(ref, {"b": dict(s)}, cfg, key=("other",))
    indep = np.std(reps["a"]["overlap"][1:] - other["b"]["overlap"][1:])
    assert paired < 0.5 * indep


def test_rank_probabilities_sum_to_one():
    v = np.random.default_rng(4).normal(size=(4, 50))
    prob = rank_probabilities(v)
    assert np.allclose(prob.sum(0), 1) and np.allclose(prob.sum(1), 1)
    assert paired_difference(np.r_[0.2, np.full(20, 0.3)], np.r_[0.1, np.full(20, 0.1)])["p"] < 0.1


def test_misspecification_check_marks_suites_beyond_their_null_band():
    """near (same population) stays inside its C2ST null band, far (1 sd shift) is separable; with every suite
    shifted the paragraph says that even the closest differs, which a ranking alone cannot say."""
    import pandas as pd

    from lib.rating.compare import mark_separable, ranking_paragraph

    rng = np.random.default_rng(4)
    cfg = CompareConfig(n_boot=50)
    ref = _sample(rng, 200, 0.0)

    def ranked(shifts: dict) -> pd.DataFrame:
        ranking, _ = compare_bin(bin_replicates(ref, {n: _sample(rng, 200, s) for n, s in shifts.items()}, cfg), cfg)
        # each suite's null band edge at its sample size, as lib/rating/table.py writes it (200 vs 200: ~0.56)
        table = pd.DataFrame({"suite": list(shifts), "mass_bin": "all", "c2st_auroc_null_q975": 0.56,
                              "overlap_paper_null_q025": 0.55})
        return mark_separable(ranking, table)

    mixed = ranked({"near": 0.0, "far": 1.0, "mid": 0.6})
    auc = mixed[mixed["statistic"] == "c2st_auroc"].set_index("suite")
    assert not auc.loc["near", "separable"] and auc.loc["far", "separable"] and auc.loc["mid", "separable"]
    assert auc.loc["far", "null_edge"] == 0.56
    text = ranking_paragraph(mixed, cfg)
    assert "closest by C2ST AUROC: near" in text and "1 of 3 suites inside their C2ST null band" in text
    assert "even the closest" not in text

    bad = ranked({"a": 0.8, "b": 1.2})
    text = ranking_paragraph(bad, cfg)
    assert "even the closest is separable" in text and "closest by C2ST AUROC: a" in text
    # a suite the table has no band for is left unchecked, not called inside
    unchecked = mark_separable(bad.assign(suite=bad["suite"].replace("b", "c")),
                               pd.DataFrame({"suite": ["a"], "mass_bin": "all", "c2st_auroc_null_q975": 0.56,
                                             "overlap_paper_null_q025": 0.55}))
    assert unchecked.set_index(["statistic", "suite"])["separable"].isna().loc[("c2st_auroc", "c")]
