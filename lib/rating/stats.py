"""Statistics that compare a suite's anomaly scores A with the reference's.

The paper's overlap of the two score histograms on [0, 0.1] (:func:`overlap`),
an overlap on bins that cover every score (:func:`overlap_full`), the
fraction of high scores, two-sample KS and Wasserstein statistics,
bootstrap intervals of the mean, median and overlap (:func:`bootstrap`), and
the overlap relative to its ceiling (:func:`relative_overlap`).  The permutation
tests (KS, the overlap's null band) are in ``permutation.py``.

``lib/rating/table.py`` builds the rating table from these; ``lib/rating/__init__.py``
re-exports the public names (``from lib.rating import overlap`` works).
Everything takes numpy arrays of non-negative scores.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: The paper's histogram edges for the overlap: 100 edges, 99 bins on [0, 0.1].
PAPER_OVERLAP_BINS: np.ndarray = np.linspace(0.0, 0.1, 100)
#: Number of log-spaced bins used by :func:`overlap_full`.
FULL_OVERLAP_NBINS = 100


def overlap(suite: np.ndarray, reference: np.ndarray, bins: np.ndarray = PAPER_OVERLAP_BINS) -> float:
    """The paper's overlap of two score distributions.

    ``sum(min(h_suite, h_ref)) / sum(h_suite)`` with ``h = np.histogram(s, bins,
    density=True)``.  On uniform bins this is the area shared by the two
    normalised histograms: 1 for identical histograms, 0 for disjoint ones.

    Parameters
    ----------
    suite, reference : array_like, shape (N,), (M,)
        Scores A.
    bins : array_like, shape (K+1,)
        Histogram edges; the paper's ``linspace(0, 0.1, 100)`` by default.

    Returns
    -------
    float
        The overlap in [0, 1]; NaN when either sample has no score inside the
        bins (the histogram cannot be normalised).

    Notes
    -----
    Faithful to the original, scores outside ``[bins[0], bins[-1]]`` are
    dropped and each histogram is re-normalised over what remains: the high-A
    tail is ignored.  See :func:`overlap_full` for a version that is not blind.
    """
    suite = np.asarray(suite, dtype=float)
    reference = np.asarray(reference, dtype=float)
    bins = np.asarray(bins, dtype=float)
    h_s = _density(suite, bins)
    h_r = _density(reference, bins)
    if h_s is None or h_r is None:
        return float("nan")
    return float(np.minimum(h_s, h_r).sum() / h_s.sum())


def _density(x: np.ndarray, bins: np.ndarray) -> np.ndarray | None:
    """``np.histogram(x, bins, density=True)[0]`` or None if nothing falls in the bins."""
    counts, _ = np.histogram(x, bins)
    if counts.sum() == 0:
        return None
    return counts / counts.sum() / np.diff(bins)


def full_bins(*samples: np.ndarray, n_bins: int = FULL_OVERLAP_NBINS) -> np.ndarray:
    """Log-spaced edges that cover every score of every sample.

    Parameters
    ----------
    *samples : array_like
        Score arrays (non-negative).
    n_bins : int
        Number of bins.

    Returns
    -------
    numpy.ndarray, shape (n_bins+1,)
        Edges from the smallest positive score to the largest score, geometric
        spacing.  Zero scores are counted in the first bin by :func:`overlap_full`.
    """
    allx = np.concatenate([np.asarray(s, dtype=float).ravel() for s in samples])
    pos = allx[allx > 0]
    if pos.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = pos.min(), pos.max()
    if hi <= lo:  # a single distinct value: give it a bin of its own
        lo, hi = lo / 1.01, hi * 1.01
    return np.geomspace(lo, hi, n_bins + 1)


def overlap_full(suite: np.ndarray, reference: np.ndarray, n_bins: int = FULL_OVERLAP_NBINS) -> float:
    """Overlap of the two score distributions on bins covering every score.

    ``sum_k min(p_suite_k, p_ref_k)`` where ``p_k`` is the fraction of the
    sample in bin k of :func:`full_bins`; this is the shared area of the two
    densities of log A.  Unlike :func:`overlap` no score is dropped: a suite
    whose high-A tail the reference lacks is penalised for it.

    Parameters
    ----------
    suite, reference : array_like, shape (N,), (M,)
        Non-negative scores.
    n_bins : int
        Number of log-spaced bins.

    Returns
    -------
    float
        Shared fraction in [0, 1]; NaN if either sample is empty.
    """
    suite = np.asarray(suite, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if suite.size == 0 or reference.size == 0:
        return float("nan")
    edges = full_bins(suite, reference, n_bins=n_bins)
    # clip so that zeros land in the first bin and the maximum in the last one
    p_s = np.histogram(np.clip(suite, edges[0], edges[-1]), edges)[0] / suite.size
    p_r = np.histogram(np.clip(reference, edges[0], edges[-1]), edges)[0] / reference.size
    return float(np.minimum(p_s, p_r).sum())


def frac_above(suite: np.ndarray, threshold: float) -> float:
    """Fraction of ``suite`` strictly above ``threshold`` (NaN if empty)."""
    suite = np.asarray(suite, dtype=float)
    return float(np.mean(suite > threshold)) if suite.size else float("nan")


def two_sample(suite: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Two-sample statistics of ``suite`` against ``reference`` on every image.

    Returns
    -------
    dict
        ``ks_stat`` (two-sided Kolmogorov-Smirnov distance of the ECDFs) and ``wasserstein``
        (Wasserstein-1 distance in units of A, :func:`scipy.stats.wasserstein_distance`).  NaN
        when a sample is empty.  The KS *test* (permutation p-value, one image per galaxy) is
        :func:`lib.rating.permutation.score_tests`; scipy's KS p-value treats the 20 views of a
        galaxy as independent and is not used.
    """
    suite = np.asarray(suite, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if suite.size == 0 or reference.size == 0:
        return {"ks_stat": np.nan, "wasserstein": np.nan}
    return {"ks_stat": float(stats.ks_2samp(suite, reference, method="asymp").statistic),
            "wasserstein": float(stats.wasserstein_distance(suite, reference))}


def stable_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the keys (not on call order)."""
    return np.random.default_rng([int(seed)] + [zlib.crc32(str(k).encode()) for k in keys])


def weighted_median(x_sorted: np.ndarray, w_sorted: np.ndarray) -> float:
    """Median of the sample where ``x_sorted[i]`` appears ``w_sorted[i]`` times (integer weights).

    Equals ``np.median`` of the expanded sample (mean of the two middle values
    for an even count).
    """
    cum = np.cumsum(w_sorted)
    total = int(cum[-1])
    lo = x_sorted[np.searchsorted(cum, (total - 1) // 2, side="right")]
    hi = x_sorted[np.searchsorted(cum, total // 2, side="right")]
    return 0.5 * (lo + hi)


def bootstrap(suite: np.ndarray, reference: np.ndarray, groups: np.ndarray | None = None,
              reference_groups: np.ndarray | None = None, n_boot: int = 1000, seed: int = 0,
              level: float = 0.95, bins: np.ndarray = PAPER_OVERLAP_BINS,
              key: Sequence[str] = ()) -> dict[str, float]:
    """Bootstrap intervals of the suite's mean, median and overlap, and the overlap's ceiling.

    Each replicate resamples the suite with replacement (whole groups, e.g.
    all orientations of one galaxy, when ``groups`` is given, because images of
    one galaxy are not independent) and, for the overlap, the reference too.

    Parameters
    ----------
    suite : array_like, shape (N,)
        Suite scores.
    reference : array_like, shape (M,)
        Reference scores.
    groups, reference_groups : array_like, shape (N,) / (M,), optional
        Group labels; resampling draws groups instead of images.
    n_boot : int
        Number of replicates (0 gives NaN intervals).
    seed : int
        Seed; the replicates depend only on ``seed``, ``key`` and the data.
    level : float
        Central interval probability.
    bins : array_like
        Histogram edges of the overlap (the paper's by default).
    key : sequence of str
        Extra seed material, e.g. (suite name, mass bin), so that each row of
        a rating table has its own stream whatever other rows exist.

    Returns
    -------
    dict
        ``mean_lo, mean_hi, median_lo, median_hi`` (percentile intervals);
        ``overlap_ceiling``: the mean raw overlap of two independent draws of sizes N and M
        from the reference, i.e. what a suite identical to the reference scores at these sizes;
        ``overlap_paper_q_lo/_q_hi, overlap_paper_rep_mean``: percentiles and mean of the raw
        overlap's replicates.
        :func:`relative_overlap` turns them into the relative overlap and its interval.
    """
    out = {k: np.nan for k in ("mean_lo", "mean_hi", "median_lo", "median_hi", "overlap_paper_q_lo",
                               "overlap_paper_q_hi", "overlap_paper_rep_mean", "overlap_ceiling")}
    suite = np.asarray(suite, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if n_boot <= 0 or suite.size == 0 or reference.size == 0:
        return out
    rng = stable_rng(seed, *key)
    reps = _replicates(suite, reference, groups, reference_groups, n_boot, bins, rng)
    a = 100 * (1 - level) / 2
    for name in ("mean", "median"):
        arr = reps[name][np.isfinite(reps[name])]
        if arr.size:
            out[f"{name}_lo"], out[f"{name}_hi"] = (float(v) for v in np.percentile(arr, [a, 100 - a]))
    arr = reps["overlap"][np.isfinite(reps["overlap"])]
    if arr.size:
        out["overlap_paper_q_lo"], out["overlap_paper_q_hi"] = (float(v) for v in np.percentile(arr, [a, 100 - a]))
        out["overlap_paper_rep_mean"] = float(arr.mean())
    if np.isfinite(reps["ceiling"]).any():
        out["overlap_ceiling"] = float(np.nanmean(reps["ceiling"]))
    return out


def _hist_overlap(c_s: np.ndarray, c_r: np.ndarray, width: np.ndarray) -> float:
    """The paper's overlap of two count histograms on bins of ``width`` (NaN when one is empty)."""
    if c_s.sum() == 0 or c_r.sum() == 0:
        return np.nan
    h_s = c_s / c_s.sum() / width
    h_r = c_r / c_r.sum() / width
    return float(np.minimum(h_s, h_r).sum() / h_s.sum())


def _replicates(suite, reference, groups, reference_groups, n_boot, bins, rng) -> dict[str, np.ndarray]:
    """Bootstrap replicates (n_boot,) of the mean, median and raw overlap, and ceiling draws."""
    order = np.argsort(suite, kind="stable")
    xs = suite[order]
    g_idx, n_g = group_index(groups, suite.size)
    g_sorted = g_idx[order]
    rg_idx, n_rg = group_index(reference_groups, reference.size)
    width = np.diff(bins)
    nb = len(bins) - 1
    b_s, b_r = bin_index(suite, bins), bin_index(reference, bins)
    in_s, in_r = b_s >= 0, b_r >= 0
    reps = {k: np.full(n_boot, np.nan) for k in ("mean", "median", "overlap", "ceiling")}
    for i in range(n_boot):
        # integer multiplicity of each group in this replicate, spread to its images
        w_g = np.bincount(rng.integers(0, n_g, n_g), minlength=n_g)
        w = w_g[g_idx]
        w_r = np.bincount(rng.integers(0, n_rg, n_rg), minlength=n_rg)[rg_idx]
        reps["mean"][i] = np.dot(w, suite) / w.sum()
        reps["median"][i] = weighted_median(xs, w_g[g_sorted])
        reps["overlap"][i] = _hist_overlap(np.bincount(b_s[in_s], weights=w[in_s], minlength=nb),
                                           np.bincount(b_r[in_r], weights=w_r[in_r], minlength=nb), width)
        # two independent draws from the reference at the row's sizes: the overlap of "no difference"
        c1, c2 = b_r[rng.integers(0, reference.size, suite.size)], b_r[rng.integers(0, reference.size, reference.size)]
        reps["ceiling"][i] = _hist_overlap(np.bincount(c1[c1 >= 0], minlength=nb),
                                           np.bincount(c2[c2 >= 0], minlength=nb), width)
    return reps


def relative_overlap(raw: float, boot: dict[str, float]) -> dict[str, float]:
    """The overlap relative to its ceiling, with a bootstrap interval.

    ``overlap = overlap_paper / overlap_ceiling``: the paper's overlap as a fraction of what two
    samples of one distribution give at the row's sizes.  The raw overlap of two finite histograms is
    biased low by sampling noise (about 0.85 for 400 vs 400 images of one distribution), by an amount
    that depends on n; dividing by the ceiling removes that, so that ``overlap`` reads about 1 for
    identical distributions at every n (tests/test_rating_design.py) and lower the more they differ.
    The interval is the spread of the bootstrap replicates of the raw overlap around their own mean
    (they are biased lower still), carried to the estimate and divided by the ceiling:
    ``[r - (q_hi - m) / c, r + (m - q_lo) / c]``; it contains the estimate by construction.

    Parameters
    ----------
    raw : float
        The paper's overlap of the row.
    boot : dict
        :func:`bootstrap`'s output.

    Returns
    -------
    dict
        ``overlap``, ``overlap_lo``, ``overlap_hi`` (NaN without a bootstrap or ceiling).
    """
    c = boot.get("overlap_ceiling", np.nan)
    if not (np.isfinite(raw) and np.isfinite(c) and c > 0):
        return {"overlap": np.nan, "overlap_lo": np.nan, "overlap_hi": np.nan}
    r = raw / c
    m, q_lo, q_hi = (boot.get(k, np.nan) for k in ("overlap_paper_rep_mean", "overlap_paper_q_lo", "overlap_paper_q_hi"))
    if not np.isfinite(m):
        return {"overlap": float(r), "overlap_lo": np.nan, "overlap_hi": np.nan}
    return {"overlap": float(r), "overlap_lo": float(max(0.0, r - (q_hi - m) / c)), "overlap_hi": float(r + (m - q_lo) / c)}


def group_index(groups: np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    """Integer group id (0..G-1, sorted by label) per element; each element its own group when ``groups`` is None."""
    if groups is None:
        return np.arange(n), n
    codes, uniques = pd.factorize(pd.Series(np.asarray(groups)), sort=True)
    return codes.astype(np.int64), len(uniques)


def bin_index(x: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Bin of each value with np.histogram's rules (last bin closed), -1 outside."""
    idx = np.searchsorted(bins, x, side="right") - 1
    idx[x == bins[-1]] = len(bins) - 2
    idx[(x < bins[0]) | (x > bins[-1])] = -1
    return idx
