"""Compare simulation suites with each other on one reference: which is closest to the observed images, how sure.

Every suite is rated against the same observed reference, so two suites' ratings are correlated through it:
the reference's sampling noise moves both.  A *paired* bootstrap resamples the reference once per replicate
and uses that one resample for every suite, so the noise cancels from the difference of two ratings.

One replicate (:func:`bin_replicates`), for the suites of one mass bin:

* the reference's galaxies are drawn with replacement once (multiplicities ``(B, G_ref)``), shared by all suites;
* each suite's galaxies are drawn independently of the other suites' (simulations are independent samples),
  except that suites with the *same set* of galaxy names in the bin (e.g. NIHAO NoAGN and AGN: the same
  haloes run twice) share one draw, which keeps their pairing (for unrelated samples whose names happen to
  coincide this changes nothing on average: their images are independent given the names);
* the C2ST AUROC is **refitted**: the ridge classifier of :mod:`lib.rating.latent` is refitted on every fold's
  weighted training images (a galaxy drawn k times weighs k times; folds are the original folds, so a galaxy
  never sits in a training and a test fold at once) and the AUROC is that of the replicate's out-of-fold
  scores over within-fold pairs, weighted by the multiplicities.  A ridge refit is a d x d solve per fold,
  built from per-fold sums ``sum w``, ``sum w z``, ``sum w z z^T`` (one pass over the images per replicate),
  so the refit costs about as much as forming the Gram matrices: about 0.2 s for 200 replicates of
  250 vs 250 images at d = 128.  What it ignores: the standardisation and the fold assignment are those of
  the original sample (fixed), and the classifier is always ridge (``--classifier logistic`` is not refitted);
* the A-based rating is the paper's overlap of the replicate's (weighted) score histograms.

Each replicate value ``t*`` is reflected about the estimate, ``2 t - t*`` (the basic bootstrap: the refitted
AUROC and the histogram overlap are biased in replicates, which duplicate galaxies); differences, intervals,
p-values and ranks are computed from the reflected values, so a two-sided p-value is below 1 - level exactly
when the interval of the difference excludes 0.  ``P(rank = k)`` is the fraction of replicates in which a
suite takes place k (1 = lowest AUROC / highest overlap = closest to the observed images).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from lib.rating.latent import standardise
from lib.rating.stats import PAPER_OVERLAP_BINS, bin_index, group_index, stable_rng

#: The two ratings compared: statistic -> True when lower is closer to the reference.
STATISTICS = {"c2st_auroc": True, "overlap": False}


@dataclass(frozen=True)
class CompareConfig:
    """Settings of the comparison (written to rating_run.json).

    Attributes
    ----------
    n_boot : int
        Paired bootstrap replicates.
    seed : int
        Seeds the folds (as the rating's C2ST) and the replicates.
    n_folds : int
        Cross-validation folds of the C2ST (fewer when a sample has fewer galaxies).
    ridge : float
        Ridge penalty per (weighted) training image on standardised latents, as the rating's C2ST.
    level : float
        Central probability of the intervals.
    min_images, min_groups : int
        A suite with fewer images or galaxies in a bin is left out of that bin's comparison.
    chunk : int
        Replicates refitted at once (memory: chunk x d x d floats per fold).
    """
    n_boot: int = 200
    seed: int = 0
    n_folds: int = 5
    ridge: float = 0.1
    level: float = 0.95
    min_images: int = 20
    min_groups: int = 5
    chunk: int = 50

    def record(self) -> dict:
        """The configuration as written to the run JSON."""
        return {**asdict(self), "replicate": "paired bootstrap over galaxies: one reference resample shared by "
                "every suite; ridge C2ST refitted per replicate on the original folds; paper overlap of the "
                "weighted histograms; basic (reflected) bootstrap"}


# --------------------------------------------------------------------------- one suite's replicates
def _folds(lab: np.ndarray, code: np.ndarray, n_folds: int, seed: int, grouped: bool) -> list[np.ndarray]:
    """The rating's C2ST folds (same splitter, same seed): sorted test indices per fold."""
    if grouped:
        split = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(lab, lab, code)
    else:
        split = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(lab, lab)
    return [np.sort(test) for _, test in split]


def _weighted_auroc_rows(s: np.ndarray, wp: np.ndarray, wn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of the weighted AUROC of each row of scores ``s`` (B, n).

    Continuous decision values: ties between a positive and a negative have probability zero and are not
    split (an image drawn twice is one element with weight 2, not a tie).
    """
    order = np.argsort(s, axis=1, kind="stable")
    p = np.take_along_axis(wp, order, 1)
    n = np.take_along_axis(wn, order, 1)
    below = np.cumsum(n, axis=1) - n  # negative weight strictly below each element
    return (p * below).sum(1), p.sum(1) * n.sum(1)


def refit_auroc(x: np.ndarray, y: np.ndarray, gx: np.ndarray, gy: np.ndarray, cx: np.ndarray, cy: np.ndarray,
                config: CompareConfig, grouped: bool) -> np.ndarray:
    """C2ST AUROC of suite ``x`` against reference ``y`` for each row of galaxy multiplicities, refitted.

    Parameters
    ----------
    x, y : array_like, shape (N, d), (M, d)
        Latent features of the suite and of the reference (raw: standardised over the pooled sample).
    gx, gy : numpy.ndarray of int, shape (N,), (M,)
        Galaxy index of each image (0..G-1 within its sample).
    cx, cy : numpy.ndarray, shape (B, G_x), (B, G_y)
        Multiplicity of each galaxy per replicate; a row of ones gives the estimate (equal to
        :func:`lib.rating.latent.c2st`'s with the ridge classifier and the same folds and seed).
    config : CompareConfig
    grouped : bool
        Folds grouped by galaxy (False: every image its own galaxy, plain stratified folds).

    Returns
    -------
    numpy.ndarray, shape (B,)
        Out-of-fold AUROC over within-fold (suite, reference) pairs; NaN where undefined.
    """
    n_folds = min(config.n_folds, int(gx.max()) + 1, int(gy.max()) + 1)
    if n_folds < 2:
        return np.full(len(cx), np.nan)
    xs, ys = standardise(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    z = np.vstack([xs, ys])  # (N + M, d)
    lab = np.r_[np.ones(len(xs)), np.zeros(len(ys))]
    code = np.r_[gx, gy + int(gx.max()) + 1]
    folds = _folds(lab.astype(int), code, n_folds, config.seed, grouped)
    d = z.shape[1]
    out = np.empty(len(cx))
    for start in range(0, len(cx), config.chunk):
        w = np.hstack([cx[start:start + config.chunk][:, gx], cy[start:start + config.chunk][:, gy]]).astype(float)
        # per-fold weighted sums: s0 (B,), s1 (B, d), s2 (B, d, d), t0 = sum w y (B,), t1 = sum w y z (B, d)
        parts = []
        for idx in folds:
            wk, zk, yk = w[:, idx], z[idx], lab[idx]
            parts.append((wk.sum(1), wk @ zk, np.matmul((wk[:, :, None] * zk).transpose(0, 2, 1), zk),
                          wk @ yk, (wk * yk) @ zk))
        tot = [sum(p[i] for p in parts) for i in range(5)]
        num = np.zeros(len(w))
        den = np.zeros(len(w))
        for idx, part in zip(folds, parts):
            s0, s1, s2, t0, t1 = (tot[i] - part[i] for i in range(5))  # the training folds' sums
            s0 = np.maximum(s0, 1e-12)
            m = s1 / s0[:, None]  # weighted training mean (B, d)
            gram = s2 - s1[:, :, None] * m[:, None, :] + config.ridge * s0[:, None, None] * np.eye(d)
            rhs = t1 - m * t0[:, None]  # sum w (z - m) y
            beta = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]  # (B, d)
            scores = z[idx] @ beta.T - (m * beta).sum(1)  # (n_k, B): test decision values
            wk = w[:, idx]
            nk, dk = _weighted_auroc_rows(scores.T, wk * lab[idx], wk * (1 - lab[idx]))
            num += nk
            den += dk
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start:start + len(w)] = np.where(den > 0, num / den, np.nan)
    return out


def overlap_replicates(s: np.ndarray, r: np.ndarray, ws: np.ndarray, wr: np.ndarray,
                       bins: np.ndarray = PAPER_OVERLAP_BINS) -> np.ndarray:
    """The paper's overlap of weighted score histograms, one per row of image weights ``ws`` (B, N), ``wr`` (B, M)."""
    width = np.diff(bins)

    def hist(x, w):
        b = bin_index(np.asarray(x, dtype=float), bins)
        onehot = np.zeros((len(x), len(width)))
        onehot[np.flatnonzero(b >= 0), b[b >= 0]] = 1.0
        c = w @ onehot  # (B, bins)
        tot = c.sum(1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return c / tot / width, tot[:, 0]

    hs, ts = hist(s, ws)
    hr, tr = hist(r, wr)
    with np.errstate(divide="ignore", invalid="ignore"):
        ov = np.minimum(hs, hr).sum(1) / hs.sum(1)
    return np.where((ts > 0) & (tr > 0), ov, np.nan)


def _counts(n_groups: int, config: CompareConfig, rng: np.random.Generator) -> np.ndarray:
    """Galaxy multiplicities: row 0 all ones (the estimate), then ``n_boot`` multinomial draws."""
    draws = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=config.n_boot)
    return np.vstack([np.ones((1, n_groups), dtype=np.int64), draws])


def bin_replicates(reference: Mapping, suites: Mapping[str, Mapping], config: CompareConfig,
                   key: Sequence[str] = ()) -> dict[str, dict[str, np.ndarray]]:
    """Reflected paired-bootstrap replicates of both ratings for every suite of one mass bin.

    Parameters
    ----------
    reference, suites : mapping
        ``{'score': (N,), 'group': (N,) or None, 'latent': (N, d) or None}`` of the reference and of
        each suite (images of this bin only).
    config : CompareConfig
    key : sequence of str
        Seed material (the mass bin), so that a bin's replicates do not depend on the other bins.

    Returns
    -------
    dict
        ``{suite: {'c2st_auroc': (B + 1,), 'overlap': (B + 1,)}}``: element 0 is the estimate (the
        AUROC as fitted; the overlap bias-corrected, ``2 est - mean(replicates)``), elements 1..B the
        reflected replicates ``2 est - t*``.  NaN arrays for a statistic a suite cannot have (no latents,
        no score in the overlap's range); suites with too few images or galaxies are left out.
    """
    r_gi, r_ng = group_index(reference["group"], len(reference["score"]))
    if len(reference["score"]) < config.min_images or r_ng < 2:
        return {}
    cy = _counts(r_ng, config, stable_rng(config.seed, "compare", "reference", *key))
    shared: dict[tuple, np.ndarray] = {}
    out = {}
    with threadpool_limits(limits=1):  # small matrices: one BLAS thread, and a shared machine stays usable
        for name, s in suites.items():
            gi, ng = group_index(s["group"], len(s["score"]))
            if len(s["score"]) < config.min_images or (s["group"] is not None and ng < config.min_groups):
                continue
            labels = None if s["group"] is None else tuple(sorted(set(map(str, s["group"]))))
            if labels is not None and labels in shared:
                cx = shared[labels]  # the same galaxies as an earlier suite: the same draw keeps them paired
            else:
                seed_key = name if labels is None else f"galaxies:{'|'.join(labels)}"
                cx = _counts(ng, config, stable_rng(config.seed, "compare", seed_key, *key))
                if labels is not None:
                    shared[labels] = cx
            res = {}
            if s["latent"] is not None and reference["latent"] is not None:
                grouped = s["group"] is not None or reference["group"] is not None
                t = refit_auroc(s["latent"], reference["latent"], gi, r_gi, cx, cy, config, grouped)
                res["c2st_auroc"] = np.r_[t[0], 2 * t[0] - t[1:]]
            else:
                res["c2st_auroc"] = np.full(config.n_boot + 1, np.nan)
            t = overlap_replicates(s["score"], reference["score"], cx[:, gi], cy[:, r_gi])
            est = 2 * t[0] - np.nanmean(t[1:]) if np.isfinite(t[1:]).any() else t[0]
            res["overlap"] = np.r_[np.clip(est, 0, 1), 2 * t[0] - t[1:]]
            out[name] = res
    return out


# --------------------------------------------------------------------------- differences and ranks
def _interval(v: np.ndarray, level: float) -> tuple[float, float]:
    v = v[np.isfinite(v)]
    if not v.size:
        return np.nan, np.nan
    a = 100 * (1 - level) / 2
    lo, hi = np.percentile(v, [a, 100 - a])
    return float(lo), float(hi)


def paired_difference(ta: np.ndarray, tb: np.ndarray, level: float = 0.95) -> dict[str, float]:
    """Difference a - b of two suites' ratings from their reflected replicates (element 0: the estimates).

    Returns ``diff``, ``lo``, ``hi`` (percentiles of the reflected differences) and ``p``: two-sided,
    ``min(1, 2 (1 + #{D* on the far side of 0}) / (1 + B))``, below 1 - level iff the interval excludes 0.
    """
    d = ta[1:] - tb[1:]
    d = d[np.isfinite(d)]
    est = float(ta[0] - tb[0])
    if not d.size or not np.isfinite(est):
        return {"diff": est, "lo": np.nan, "hi": np.nan, "p": np.nan}
    lo, hi = _interval(d, level)
    far = min(np.sum(d <= 0), np.sum(d >= 0))
    return {"diff": est, "lo": lo, "hi": hi, "p": float(min(1.0, 2 * (1 + far) / (1 + d.size)))}


def rank_probabilities(values: np.ndarray, ascending: bool = True) -> np.ndarray:
    """P(rank = k) of each suite from replicate values (S, B); rank 1 = smallest when ``ascending``.

    Ordinal ranks per replicate (ties, of probability zero for continuous values, go to the earlier suite),
    so every replicate is a permutation: each row and each column of the result sums to 1.
    Replicates with a NaN are dropped.
    """
    v = np.asarray(values, dtype=float)
    v = v[:, np.isfinite(v).all(0)]
    n_s = len(v)
    if not v.size:
        return np.full((n_s, n_s), np.nan)
    ranks = rankdata(v if ascending else -v, axis=0, method="ordinal").astype(int) - 1  # (S, B) 0-based
    prob = np.zeros((n_s, n_s))
    for k in range(n_s):
        prob[:, k] = (ranks == k).mean(1)
    return prob


def compare_bin(reps: Mapping[str, Mapping[str, np.ndarray]], config: CompareConfig,
                mass_bin: str = "all") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ranking and pairwise rows of one mass bin from :func:`bin_replicates`.

    Returns
    -------
    ranking : pandas.DataFrame
        One row per (statistic, suite) with a value: ``mass_bin, statistic, suite, estimate, lo, hi,
        rank`` (of the estimate), ``expected_rank``, ``p_closest`` (= ``p_rank_1``) and ``p_rank_1..S``.
    pairwise : pandas.DataFrame
        One row per (statistic, suite a, suite b), a before b in the given order: ``diff`` (a - b),
        ``lo, hi, p`` and ``closer`` (the suite the difference favours, '' when the interval covers 0).
    """
    rank_rows, pair_rows = [], []
    n_max = len(reps)
    for stat, ascending in STATISTICS.items():
        names = [n for n, r in reps.items() if np.isfinite(r[stat][0])]
        if not names:
            continue
        vals = np.array([reps[n][stat] for n in names])  # (S, B + 1)
        prob = rank_probabilities(vals[:, 1:], ascending)
        est_rank = rankdata(vals[:, 0] if ascending else -vals[:, 0], method="ordinal")
        for i, n in enumerate(names):
            lo, hi = _interval(vals[i, 1:], config.level)
            row = {"mass_bin": mass_bin, "statistic": stat, "suite": n, "estimate": float(vals[i, 0]), "lo": lo,
                   "hi": hi, "rank": int(est_rank[i]),
                   "expected_rank": float(np.dot(prob[i], np.arange(1, len(names) + 1))),
                   "p_closest": float(prob[i, 0])}
            row.update({f"p_rank_{k + 1}": (float(prob[i, k]) if k < len(names) else np.nan) for k in range(n_max)})
            rank_rows.append(row)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                r = paired_difference(reps[a][stat], reps[b][stat], config.level)
                closer = ""
                if np.isfinite(r["lo"]) and (r["lo"] > 0 or r["hi"] < 0):
                    a_lower = r["hi"] < 0
                    closer = a if a_lower == ascending else b
                pair_rows.append({"mass_bin": mass_bin, "statistic": stat, "suite_a": a, "suite_b": b, **r,
                                  "closer": closer})
    return pd.DataFrame(rank_rows), pd.DataFrame(pair_rows)


def compare_suites(reference: Mapping, suites: Mapping[str, Mapping], config: CompareConfig,
                   bins: Sequence[tuple[str, int | None]] = (("all", None),)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`compare_bin` over mass bins; tables as from :func:`lib.rating.inputs.extract_table` plus ``latent``.

    ``bins``: (label, bin index or None for all masses); a bin selects the images whose ``bin`` equals it.
    """
    def pick(d, b):
        sel = slice(None) if b is None else (d["bin"] == b)
        return {k: (None if d.get(k) is None else d[k][sel]) for k in ("score", "group", "latent")}

    ranks, pairs = [], []
    for label, b in bins:
        reps = bin_replicates(pick(reference, b), {n: pick(s, b) for n, s in suites.items()}, config, key=(label,))
        r, p = compare_bin(reps, config, label)
        ranks.append(r)
        pairs.append(p)
    return pd.concat(ranks, ignore_index=True), pd.concat(pairs, ignore_index=True)


#: Rating-table column holding each statistic's null-band edge on the "differs" side (lib/rating/table.py).
NULL_EDGE = {"c2st_auroc": "c2st_auroc_null_q975", "overlap": "overlap_paper_null_q025"}


def mark_separable(ranking: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Add the misspecification check to ranking rows: ``separable`` = the suite's estimate lies beyond its own
    permutation null band in the rating table (C2ST AUROC above ``c2st_auroc_null_q975``; paper overlap below
    ``overlap_paper_null_q025``), i.e. the suite is distinguishable from the observed images at its sample size.
    ``null_edge`` is that band edge; both are missing where the table has no band for the row."""
    out = ranking.copy()
    if out.empty or "statistic" not in out:
        return out
    rows = table.drop_duplicates(["suite", "mass_bin"]).set_index(["suite", "mass_bin"])
    edges = [rows[NULL_EDGE[s]].get((n, b), np.nan) if NULL_EDGE.get(s) in rows else np.nan
             for s, n, b in zip(out["statistic"], out["suite"], out["mass_bin"])]
    out["null_edge"] = np.asarray(edges, dtype=float)
    beyond = np.where(out["statistic"] == "c2st_auroc", out["estimate"] > out["null_edge"],
                      out["estimate"] < out["null_edge"])
    out["separable"] = pd.Series(beyond, index=out.index).where(np.isfinite(out["null_edge"]))
    return out


def ranking_paragraph(ranking: pd.DataFrame, config: CompareConfig) -> str:
    """A short Markdown paragraph per mass bin: the order by C2ST AUROC with P(closest) and, when the ranking
    carries :func:`mark_separable`'s check, whether even the closest suite is separable from the observations."""
    lines = [f"\n## Ranking (paired bootstrap, {config.n_boot} replicates, reference resampled once for all suites; "
             "ranking.csv, pairwise.csv)\n"]
    if ranking.empty or "statistic" not in ranking:  # e.g. one suite only, or no latents: nothing to order
        return "\n".join(lines) + "\n* nothing to rank (a ranking needs two suites with scores or latents)\n"
    for label, rows in ranking[ranking["statistic"] == "c2st_auroc"].groupby("mass_bin", sort=False):
        rows = rows.sort_values("rank")
        top = "; ".join(f"{r.suite} {r.estimate:.2f} [{r.lo:.2f}, {r.hi:.2f}] P(closest) {r.p_closest:.2f}"
                        for r in rows.head(3).itertuples())
        lines.append(f"* {label}: closest by C2ST AUROC: {top}{_misspecification(rows)}")
    return "\n".join(lines) + "\n"


def _misspecification(rows: pd.DataFrame) -> str:
    """'' without the check; else whether the closest suite, and how many suites, are inside their null bands."""
    if "separable" not in rows or not rows["separable"].notna().any():
        return ""
    best, checked = rows.iloc[0], rows[rows["separable"].notna()]
    inside = int((~checked["separable"].astype(bool)).sum())
    if pd.notna(best["separable"]) and bool(best["separable"]):
        return (f". Misspecification check: even the closest is separable from the observations (AUROC above its "
                f"null band's {best['null_edge']:.2f}): every suite differs, the order says which is least wrong")
    return f". {inside} of {len(checked)} suites inside their C2ST null band (indistinguishable at this sample size)"
