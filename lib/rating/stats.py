"""Statistics that compare a suite's anomaly scores A with the reference's.

The paper's overlap of the two score histograms on [0, 0.1] (:func:`overlap`),
an overlap on bins that cover every score (:func:`overlap_full`), the
fraction of high scores, two-sample KS and Wasserstein statistics,
bootstrap intervals of the mean, median and overlap (:func:`bootstrap`), and
the permutation machinery shared with the latent statistics (latent.py):
group-level label permutations (:func:`permuted_labels`) and the null
distributions of the paper's overlap and the KS statistic
(:func:`score_permutation_null`).

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
    """Two-sample statistics of ``suite`` against ``reference``.

    Returns
    -------
    dict
        ``ks_stat``, ``ks_pvalue`` (two-sided Kolmogorov-Smirnov,
        :func:`scipy.stats.ks_2samp`) and ``wasserstein`` (Wasserstein-1
        distance in units of A, :func:`scipy.stats.wasserstein_distance`).
        NaN when a sample is empty.
    """
    suite = np.asarray(suite, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if suite.size == 0 or reference.size == 0:
        return {"ks_stat": np.nan, "ks_pvalue": np.nan, "wasserstein": np.nan}
    # scipy's default tries the exact distribution up to 10,000 per sample and warns when it
    # fails to converge (e.g. 250 x 250); choose the method up front instead: exact only where
    # it is cheap and stable, the asymptotic distribution otherwise.
    method = "exact" if suite.size * reference.size <= 10_000 else "asymp"
    ks = stats.ks_2samp(suite, reference, method=method)
    return {"ks_stat": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
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
    """Bootstrap intervals of the suite's mean, median and overlap.

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
        ``mean_lo, mean_hi, median_lo, median_hi`` (percentile intervals),
        ``overlap_lo, overlap_hi`` (basic bootstrap interval, clipped to
        [0, 1]) and ``overlap_bias`` (mean replicate minus estimate: how much
        resampling noise lowers the overlap, a measure of its small-sample bias)
        and ``overlap_ceiling`` (mean overlap of a same-size random draw from
        the reference: what a suite identical to the reference would score).
    """
    out = {k: np.nan for k in ("mean_lo", "mean_hi", "median_lo", "median_hi", "overlap_lo", "overlap_hi",
                               "overlap_bias", "overlap_ceiling")}
    suite = np.asarray(suite, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if n_boot <= 0 or suite.size == 0 or reference.size == 0:
        return out
    rng = stable_rng(seed, *key)
    order = np.argsort(suite, kind="stable")
    xs = suite[order]
    g_idx, n_g = group_index(groups, suite.size)
    g_sorted = g_idx[order]
    rg_idx, n_rg = group_index(reference_groups, reference.size)
    width = np.diff(bins)
    nb = len(bins) - 1
    b_s = bin_index(suite, bins)
    b_r = bin_index(reference, bins)
    means = np.empty(n_boot)
    medians = np.empty(n_boot)
    overlaps = np.empty(n_boot)
    ceilings = np.full(n_boot, np.nan)
    for i in range(n_boot):
        # integer multiplicity of each group in this replicate, spread to its images
        w_g = np.bincount(rng.integers(0, n_g, n_g), minlength=n_g)
        w = w_g[g_idx]
        w_rg = np.bincount(rng.integers(0, n_rg, n_rg), minlength=n_rg)
        w_r = w_rg[rg_idx]
        total = w.sum()
        if total == 0:  # only possible with groups of size 0: not reachable, kept defensive
            means[i] = medians[i] = overlaps[i] = np.nan
            continue
        means[i] = np.dot(w, suite) / total
        medians[i] = weighted_median(xs, w_g[g_sorted])
        # same-size draw from the reference: the overlap a suite identical to the
        # reference would get at this sample size
        b_c = b_r[rng.integers(0, reference.size, suite.size)]
        c_c = np.bincount(b_c[b_c >= 0], minlength=nb)
        c_r0 = np.bincount(b_r[b_r >= 0], minlength=nb)
        if c_c.sum() and c_r0.sum():
            h_c = c_c / c_c.sum() / width
            ceilings[i] = np.minimum(h_c, c_r0 / c_r0.sum() / width).sum() / h_c.sum()
        c_s = np.bincount(b_s[b_s >= 0], weights=w[b_s >= 0], minlength=nb)
        c_r = np.bincount(b_r[b_r >= 0], weights=w_r[b_r >= 0], minlength=nb)
        if c_s.sum() == 0 or c_r.sum() == 0:
            overlaps[i] = np.nan
        else:
            h_s = c_s / c_s.sum() / width
            h_r = c_r / c_r.sum() / width
            overlaps[i] = np.minimum(h_s, h_r).sum() / h_s.sum()
    a = 100 * (1 - level) / 2
    for name, arr in (("mean", means), ("median", medians)):
        arr = arr[np.isfinite(arr)]
        if arr.size:
            out[f"{name}_lo"], out[f"{name}_hi"] = (float(v) for v in np.percentile(arr, [a, 100 - a]))
    # The overlap of two finite histograms is biased low (sampling noise never
    # adds shared area), and a bootstrap replicate is noisier still, so the
    # percentile interval can miss the estimate altogether.  The basic
    # (reverse-percentile) interval 2*est - q corrects that first-order bias.
    arr = overlaps[np.isfinite(overlaps)]
    est = overlap(suite, reference, bins)
    if arr.size and np.isfinite(est):
        q_lo, q_hi = np.percentile(arr, [a, 100 - a])
        out["overlap_lo"] = float(np.clip(2 * est - q_hi, 0.0, 1.0))
        out["overlap_hi"] = float(np.clip(2 * est - q_lo, 0.0, 1.0))
        out["overlap_bias"] = float(arr.mean() - est)
    if np.isfinite(ceilings).any():
        out["overlap_ceiling"] = float(np.nanmean(ceilings))
    return out


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


# --------------------------------------------------------------------------- permutations
def permuted_labels(groups_a: np.ndarray | None, groups_b: np.ndarray | None, n_a: int, n_b: int,
                    n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """Random relabellings of the pooled sample ``[a, b]``, whole groups at a time.

    Parameters
    ----------
    groups_a, groups_b : array_like, shape (n_a,) / (n_b,), optional
        Group (galaxy) of each element; None: every element is its own group.
        Groups of ``a`` and ``b`` are distinct even when their labels coincide.
    n_a, n_b : int
        Sample sizes.
    n_perm : int
        Number of permutations.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray of bool, shape (n_perm, n_a + n_b)
        True where the element is labelled ``a`` in that permutation.  The groups'
        labels are shuffled, so the number of ``a`` elements varies when groups
        differ in size (the null keeps the images of one galaxy together).
    """
    ga, na_g = group_index(groups_a, n_a)
    gb, nb_g = group_index(groups_b, n_b)
    code = np.concatenate([ga, gb + na_g])  # (N,) pooled group id
    g_is_a = np.arange(na_g + nb_g) < na_g  # (G,) the true label of each group
    order = np.argsort(rng.random((n_perm, na_g + nb_g)), axis=1)  # one shuffle of the groups per row
    return g_is_a[order][:, code]


def ks_statistics(pooled: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Two-sample KS statistic of each relabelling of ``pooled`` (rows of ``labels``, True = sample a)."""
    order = np.argsort(pooled, kind="stable")
    x = pooled[order]
    lab = labels[:, order].astype(float)  # (P, N)
    last = np.r_[x[1:] != x[:-1], True]  # evaluate the ECDFs at the end of each run of ties
    n_a = lab.sum(1, keepdims=True)
    n_b = lab.shape[1] - n_a
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(np.cumsum(lab, 1) / n_a - np.cumsum(1 - lab, 1) / n_b)[:, last]
    return d.max(1)


def score_permutation_null(suite: np.ndarray, reference: np.ndarray, labels: np.ndarray,
                           bins: np.ndarray = PAPER_OVERLAP_BINS) -> dict[str, np.ndarray]:
    """Null distributions of the paper's overlap and the KS statistic by relabelling the pooled scores.

    Parameters
    ----------
    suite, reference : array_like, shape (N,), (M,)
    labels : numpy.ndarray of bool, shape (P, N + M)
        From :func:`permuted_labels` (True = suite).
    bins : array_like
        Overlap histogram edges.

    Returns
    -------
    dict
        ``overlap_paper`` and ``ks_stat``: arrays of shape (P,), the statistic under
        "no difference" at these sample sizes (NaN where a relabelled sample is empty).
    """
    pooled = np.concatenate([np.asarray(suite, dtype=float), np.asarray(reference, dtype=float)])
    b = bin_index(pooled, bins)
    inside = b >= 0
    nb = len(bins) - 1
    width = np.diff(bins)
    # counts per bin of each relabelled sample: (P, N) @ one-hot (N, nb)
    onehot = np.zeros((pooled.size, nb))
    onehot[np.flatnonzero(inside), b[inside]] = 1.0
    c_a = labels.astype(float) @ onehot
    c_b = onehot.sum(0)[None, :] - c_a
    with np.errstate(divide="ignore", invalid="ignore"):
        h_a = c_a / c_a.sum(1, keepdims=True) / width
        h_b = c_b / c_b.sum(1, keepdims=True) / width
        ov = np.minimum(h_a, h_b).sum(1) / h_a.sum(1)
    return {"overlap_paper": ov, "ks_stat": ks_statistics(pooled, labels)}
