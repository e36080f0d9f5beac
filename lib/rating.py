"""Rate simulated galaxy images against observed ones by their anomaly scores A.

The paper's rating (Jin et al. 2024, section 4) compares the distribution of the
anomaly score A of a simulation suite's mock images with that of the SDSS test
set, overall and in three stellar-mass bins, through the overlap of the two
score histograms.  This module computes that number exactly as the paper did,
plus statistics that do not share its blind spot (scores above 0.1 are ignored
by the paper's overlap), and bootstrap intervals.

Everything here takes numpy arrays or pandas DataFrames; the command line lives
in ``rate.py``.

Conventions
-----------
* Scores ``A`` are non-negative floats (mean squared latent difference,
  optionally min-max normalised as in the paper).
* Stellar masses are handled internally as log10(M*/Msun).
* Mass bins are half-open, ``[low, high)``.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: The paper's mass-bin edges in log10(M*/Msun): elements 0, 7, 13 and 19 of
#: ``np.linspace(9, 12.5, 20)`` (original_behaviour.md section 7.2).
PAPER_MASS_EDGES: tuple[float, ...] = (9.0, 10.289473684210526, 11.394736842105264, 12.5)
#: The paper's histogram edges for the overlap: 100 edges, 99 bins on [0, 0.1].
PAPER_OVERLAP_BINS: np.ndarray = np.linspace(0.0, 0.1, 100)
#: Number of log-spaced bins used by :func:`overlap_full`.
FULL_OVERLAP_NBINS = 100

#: Column order of the rating table.
RATING_COLUMNS = [
    "suite", "role", "mass_bin", "mass_lo", "mass_hi", "n_images", "n_groups", "n_reference",
    "mean", "mean_lo", "mean_hi", "median", "median_lo", "median_hi", "std", "q16", "q84",
    "overlap", "overlap_lo", "overlap_hi", "overlap_bias", "overlap_ceiling", "overlap_full", "frac_above_ref_p99",
    "frac_above_0.1", "ks_stat", "ks_pvalue", "wasserstein", "warnings",
]


class RatingError(ValueError):
    """Bad input to the rating (the message is one line, meant for the user)."""


# --------------------------------------------------------------------------- statistics
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
    ks = stats.ks_2samp(suite, reference)
    return {"ks_stat": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
            "wasserstein": float(stats.wasserstein_distance(suite, reference))}


def _stable_seed(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the keys (not on call order)."""
    return np.random.default_rng([int(seed)] + [zlib.crc32(k.encode()) for k in keys])


def _weighted_median(x_sorted: np.ndarray, w_sorted: np.ndarray) -> float:
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
    rng = _stable_seed(seed, *key)
    order = np.argsort(suite, kind="stable")
    xs = suite[order]
    g_idx, n_g = _group_index(groups, suite.size)
    g_sorted = g_idx[order]
    rg_idx, n_rg = _group_index(reference_groups, reference.size)
    width = np.diff(bins)
    nb = len(bins) - 1
    b_s = _bin_index(suite, bins)
    b_r = _bin_index(reference, bins)
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
        medians[i] = _weighted_median(xs, w_g[g_sorted])
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


def _group_index(groups: np.ndarray | None, n: int) -> tuple[np.ndarray, int]:
    """Integer group id per element (each element its own group when ``groups`` is None)."""
    if groups is None:
        return np.arange(n), n
    codes, uniques = pd.factorize(pd.Series(np.asarray(groups)), sort=True)
    return codes.astype(np.int64), len(uniques)


def _bin_index(x: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Bin of each value with np.histogram's rules (last bin closed), -1 outside."""
    idx = np.searchsorted(bins, x, side="right") - 1
    idx[x == bins[-1]] = len(bins) - 2
    idx[(x < bins[0]) | (x > bins[-1])] = -1
    return idx


# --------------------------------------------------------------------------- inputs
def to_log_mass(mass: np.ndarray, scale: str = "log") -> np.ndarray:
    """Convert stellar masses to log10(M*/Msun) and check that the unit is plausible.

    Parameters
    ----------
    mass : array_like, shape (N,)
        Masses, either log10(M*/Msun) (``scale='log'``) or M*/Msun (``'linear'``).
    scale : {'log', 'linear'}

    Raises
    ------
    RatingError
        Unknown scale, or values that contradict it (log masses above 20 or
        linear masses below 1e3 Msun are a unit mix-up, not galaxies).
    """
    m = np.asarray(mass, dtype=float)
    finite = m[np.isfinite(m)]
    if scale == "log":
        if finite.size and finite.max() > 20:
            raise RatingError(f"masses up to {finite.max():.3g} cannot be log10(M*/Msun); "
                              "use --mass-scale linear for masses in solar masses")
        return m
    if scale == "linear":
        if finite.size and (finite.min() <= 0 or finite.max() < 1e3):
            raise RatingError(f"masses between {finite.min():.3g} and {finite.max():.3g} do not look like "
                              "M*/Msun; use --mass-scale log for log10 masses")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(m)
    raise RatingError(f"unknown mass scale {scale!r}; use 'log' (log10 M*/Msun) or 'linear' (M*/Msun)")


def mass_bin_labels(edges: Sequence[float]) -> list[str]:
    """Names of the bins ``[edges[i], edges[i+1])``, e.g. ``'9.00-10.29'``."""
    return [f"{lo:.2f}-{hi:.2f}" for lo, hi in zip(edges[:-1], edges[1:])]


def assign_mass_bins(log_mass: np.ndarray, edges: Sequence[float] = PAPER_MASS_EDGES) -> np.ndarray:
    """Index of the half-open bin ``[edges[i], edges[i+1])`` of each mass, -1 outside any bin.

    Parameters
    ----------
    log_mass : array_like, shape (N,)
        log10(M*/Msun); NaN is outside every bin.
    edges : sequence of float, increasing
    """
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise RatingError(f"mass bin edges must be at least two increasing numbers, got {list(edges)}")
    m = np.asarray(log_mass, dtype=float)
    idx = np.searchsorted(edges, m, side="right") - 1
    idx[(idx < 0) | (idx >= edges.size - 1) | ~np.isfinite(m)] = -1
    return idx


def check_scores(scores: np.ndarray, name: str) -> np.ndarray:
    """Validate a score array; return it as float.

    Raises
    ------
    RatingError
        Empty, non-finite or negative scores (A is a mean of squares: a
        negative value means a wrong column or a broken normalisation).
    """
    s = np.asarray(scores, dtype=float).ravel()
    if s.size == 0:
        raise RatingError(f"{name}: no scores")
    bad = ~np.isfinite(s)
    if bad.any():
        raise RatingError(f"{name}: {int(bad.sum())} of {s.size} scores are NaN or infinite")
    if (s < 0).any():
        raise RatingError(f"{name}: {int((s < 0).sum())} negative scores (min {s.min():.3g}); "
                          "A is a mean squared difference and cannot be negative")
    return s


# --------------------------------------------------------------------------- the table
def rate_row(suite: np.ndarray, reference: np.ndarray, groups: np.ndarray | None = None,
             reference_groups: np.ndarray | None = None, n_boot: int = 1000, seed: int = 0,
             key: Sequence[str] = ()) -> dict:
    """All statistics of one suite (or one mass bin of it) against the reference.

    Parameters
    ----------
    suite, reference : array_like, shape (N,), (M,)
        Scores (already validated; either may be empty, giving NaN).
    groups, reference_groups : array_like, optional
        Group labels for the bootstrap and ``n_groups``.
    n_boot, seed, key
        See :func:`bootstrap`.

    Returns
    -------
    dict
        Keys of :data:`RATING_COLUMNS` except suite, role, mass_bin, mass_lo,
        mass_hi and warnings.
    """
    suite = np.asarray(suite, dtype=float)
    reference = np.asarray(reference, dtype=float)
    row: dict = {"n_images": int(suite.size),
                 "n_groups": int(pd.Series(groups).nunique()) if groups is not None else pd.NA,
                 "n_reference": int(reference.size)}
    if suite.size:
        q16, med, q84 = np.percentile(suite, [16, 50, 84])
        row.update(mean=float(suite.mean()), median=float(med), std=float(suite.std(ddof=1)) if suite.size > 1
                   else np.nan, q16=float(q16), q84=float(q84))
    else:
        row.update(mean=np.nan, median=np.nan, std=np.nan, q16=np.nan, q84=np.nan)
    row["overlap"] = overlap(suite, reference)
    row["overlap_full"] = overlap_full(suite, reference)
    p99 = np.percentile(reference, 99) if reference.size else np.nan
    row["frac_above_ref_p99"] = frac_above(suite, p99)
    row["frac_above_0.1"] = frac_above(suite, PAPER_OVERLAP_BINS[-1])
    row.update(two_sample(suite, reference))
    row.update(bootstrap(suite, reference, groups, reference_groups, n_boot=n_boot, seed=seed, key=key))
    return row


def rate(reference: pd.DataFrame, suites: Mapping[str, pd.DataFrame], reference_name: str = "reference",
         score_col: str = "ascore", mass_col: str | None = None, mass_scale: str = "log",
         group_col: str | None = None, mass_edges: Sequence[float] | None = PAPER_MASS_EDGES,
         n_boot: int = 1000, seed: int = 0, include_reference: bool = True) -> pd.DataFrame:
    """The rating table: every suite against the reference, overall and per mass bin.

    Parameters
    ----------
    reference : pandas.DataFrame
        Observed images, with ``score_col`` (and ``mass_col`` when given).
    suites : mapping of str to pandas.DataFrame
        Simulation suites, same columns (``group_col`` optional per table).
    reference_name : str
        Name of the reference in the table.
    score_col, mass_col, group_col : str
        Column names; masses are in ``mass_scale`` ('log' = log10 M*/Msun,
        'linear' = M*/Msun).
    mass_edges : sequence of float
        Half-open bin edges in log10(M*/Msun); used only with ``mass_col``.
    n_boot, seed : int
        Bootstrap replicates and seed (identical inputs give identical tables).
    include_reference : bool
        Add a row per bin for the reference itself (overlap 1, KS 0).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RATING_COLUMNS`; rows: mass_bin 'all' first, then each
        bin; within a bin the reference then the suites in the given order.

    Raises
    ------
    RatingError
        Missing columns, empty tables, bad scores or masses.
    """
    if not suites:
        raise RatingError("no suite to rate")
    if reference_name in suites:
        raise RatingError(f"suite name {reference_name!r} is also the reference's name")
    tables = {reference_name: reference, **suites}
    data = {}
    for name, df in tables.items():
        data[name] = _extract(df, name, score_col, mass_col, mass_scale, group_col,
                              is_reference=name == reference_name)
    edges = list(mass_edges) if (mass_col and mass_edges is not None) else None
    if edges is not None:
        assign_mass_bins(np.array([]), edges)  # validates the edges
        finalize_bins(data, edges)
    labels = mass_bin_labels(edges) if edges else []
    ref = data[reference_name]
    rows = []
    bin_specs = [("all", np.nan, np.nan, None)]
    if edges:
        bin_specs += [(lab, edges[i], edges[i + 1], i) for i, lab in enumerate(labels)]
    for label, lo, hi, b in bin_specs:
        r_sel = slice(None) if b is None else (ref["bin"] == b)
        r_scores = ref["score"][r_sel]
        r_groups = None if ref["group"] is None else ref["group"][r_sel]
        names = ([reference_name] if include_reference else []) + list(suites)
        for name in names:
            d = data[name]
            sel = slice(None) if b is None else (d["bin"] == b)
            s = d["score"][sel]
            g = None if d["group"] is None else d["group"][sel]
            warn = list(d["warnings"]) if b is None else []
            if name == reference_name:
                row = rate_row(s, r_scores, g, r_groups, n_boot=n_boot, seed=seed, key=(name, label))
                row.update(overlap_lo=np.nan, overlap_hi=np.nan, overlap_bias=np.nan,
                           overlap_ceiling=np.nan)  # the reference against itself: no interval
            else:
                row = rate_row(s, r_scores, g, r_groups, n_boot=n_boot, seed=seed, key=(name, label))
            if b is not None and s.size == 0:
                warn.append("no images in this mass bin")
            if b is not None and r_scores.size == 0:
                warn.append("reference has no images in this mass bin")
            if s.size and not np.isfinite(row["overlap"]):
                warn.append("no score inside the paper's overlap range [0, 0.1]")
            if s.size and not np.isnan(row["frac_above_0.1"]) and row["frac_above_0.1"] > 0 and name != reference_name:
                warn.append(f"{row['frac_above_0.1']:.1%} of scores > 0.1 are ignored by 'overlap'")
            row.update(suite=name, role="reference" if name == reference_name else "suite", mass_bin=label,
                       mass_lo=lo, mass_hi=hi, warnings="; ".join(warn))
            rows.append(row)
    table = pd.DataFrame(rows)[RATING_COLUMNS]
    table["n_groups"] = table["n_groups"].astype("Int64")
    return table


def _extract(df: pd.DataFrame, name: str, score_col: str, mass_col: str | None, mass_scale: str,
             group_col: str | None, is_reference: bool = False) -> dict:
    """Scores, mass-bin indices and groups of one table, validated."""
    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame({score_col: np.asarray(df, dtype=float)})
    if len(df) == 0:
        raise RatingError(f"{name}: the table has no rows")
    if score_col not in df.columns:
        raise RatingError(f"{name}: no column {score_col!r} (columns: {', '.join(map(str, df.columns))})")
    raw = df[score_col]
    coerced = pd.to_numeric(raw, errors="coerce")
    nonnum = int((coerced.isna() & raw.notna()).sum())
    if nonnum:
        raise RatingError(f"{name}: {nonnum} values of {score_col!r} are not numbers")
    score = check_scores(coerced.to_numpy(dtype=float), name)
    out = {"score": score, "group": None, "bin": None, "warnings": []}
    if mass_col:
        if mass_col not in df.columns:
            raise RatingError(f"{name}: no mass column {mass_col!r} (columns: {', '.join(map(str, df.columns))})")
        logm = to_log_mass(pd.to_numeric(df[mass_col], errors="coerce").to_numpy(dtype=float), mass_scale)
        out["logm"] = logm
        n_nan = int((~np.isfinite(logm)).sum())
        if n_nan:
            out["warnings"].append(f"{n_nan} images without a valid mass are in 'all' only")
    if group_col and group_col in df.columns:
        out["group"] = df[group_col].astype(str).to_numpy()
    elif group_col and not is_reference:
        out["warnings"].append(f"no group column {group_col!r}: images resampled individually")
    return out


def finalize_bins(data: dict, edges: Sequence[float]) -> None:
    """Attach mass-bin indices (in place) and warn about masses outside every bin."""
    for d in data.values():
        if "logm" in d:
            d["bin"] = assign_mass_bins(d["logm"], edges)
            n_out = int(((d["bin"] < 0) & np.isfinite(d["logm"])).sum())
            if n_out == len(d["bin"]):
                d["warnings"].append(f"all {n_out} masses fall outside every mass bin")
            elif n_out:
                d["warnings"].append(f"{n_out} images with masses outside every bin are in 'all' only")


def rate_suites(reference: np.ndarray, suites: Mapping[str, np.ndarray], reference_name: str = "observed",
                n_boot: int = 200, seed: int = 0, include_reference: bool = True) -> pd.DataFrame:
    """Rate plain score arrays (no masses, no groups): one row per suite.

    Parameters
    ----------
    reference : array_like, shape (M,)
        Observed scores.
    suites : mapping of str to array_like
        Simulation scores per suite, e.g. ``{'noise_0.5': a, ...}``.
    reference_name : str
        Name of the reference row.
    n_boot, seed : int
        Bootstrap replicates and seed.
    include_reference : bool
        Put the reference first as its own row.

    Returns
    -------
    pandas.DataFrame
        The ``mass_bin == 'all'`` rows of :func:`rate`; the columns start with
        ``suite, n_images, mean, median, overlap``.
    """
    table = rate(pd.DataFrame({"ascore": np.asarray(reference, dtype=float)}),
                 {k: pd.DataFrame({"ascore": np.asarray(v, dtype=float)}) for k, v in suites.items()},
                 reference_name=reference_name, n_boot=n_boot, seed=seed, include_reference=include_reference,
                 mass_edges=None)
    first = ["suite", "n_images", "mean", "median", "overlap"]
    return table[first + [c for c in table.columns if c not in first]].reset_index(drop=True)


def group_stats(df: pd.DataFrame, score_col: str, group_col: str, mass_col: str | None = None) -> pd.DataFrame:
    """Per-group (per-galaxy) mean, std and count of the score, and mean mass.

    Parameters
    ----------
    df : pandas.DataFrame
    score_col, group_col, mass_col : str
        ``mass_col`` values are averaged as given (use log10 masses).

    Returns
    -------
    pandas.DataFrame
        Index: group; columns ``n, mean, std`` (ddof=1) and ``mass`` if asked,
        sorted by group.
    """
    g = df.groupby(group_col, sort=True)
    out = pd.DataFrame({"n": g[score_col].size(), "mean": g[score_col].mean(), "std": g[score_col].std(ddof=1)})
    if mass_col:
        out["mass"] = g[mass_col].mean()
    return out


def galaxy_and_orientation(names: Sequence[str]) -> pd.DataFrame:
    """Split mock-image names ``<run>_<galaxy>_<NN>.png`` into run, galaxy and orientation.

    Example: ``'AGN_g2.71e12_14.png'`` gives run 'AGN', galaxy 'g2.71e12', orientation 14.
    Names that do not follow the pattern give NaN parts.
    """
    s = pd.Series(list(names), dtype=str).str.replace(r"\.[A-Za-z]+$", "", regex=True)
    parts = s.str.extract(r"^(?P<run>[^_]+)_(?P<galaxy>.+)_(?P<orientation>\d+)$")
    parts["orientation"] = pd.to_numeric(parts["orientation"])
    return parts


#: The paper's overlaps with SDSS (original_behaviour.md section 7.3, cells 27 and 29-31); bins low, mid,
#: high are those of :data:`PAPER_MASS_EDGES`.  NoAGN binned by its own mass, AGN by the AGN run's mass.
PAPER_OVERLAPS = {
    "NoAGN": {"all": 0.6806826928, "low": 0.6821197532, "mid": 0.5942067816, "high": 0.6278283151},
    "AGN": {"all": 0.7180525471, "low": 0.6220338390, "mid": 0.6621764480, "high": 0.7358442061},
}
#: The paper's image and galaxy counts per mass bin (low, mid, high); 20 images per galaxy.
PAPER_BIN_COUNTS = {
    "SDSS": {"images": (12793, 45976, 5572)},
    "NoAGN": {"images": (440, 340, 760), "galaxies": (22, 17, 38)},
    "AGN": {"images": (520, 620, 400), "galaxies": (26, 31, 20)},
}


def bin_counts(log_mass: np.ndarray, groups: np.ndarray | None = None,
               edges: Sequence[float] = PAPER_MASS_EDGES) -> pd.DataFrame:
    """Images (and groups) per half-open mass bin.

    Parameters
    ----------
    log_mass : array_like, shape (N,)
        log10(M*/Msun).
    groups : array_like, shape (N,), optional
        Galaxy of each image.
    edges : sequence of float

    Returns
    -------
    pandas.DataFrame
        Columns ``mass_bin, n_images`` (and ``n_groups``), one row per bin plus
        ``outside`` for masses in no bin.
    """
    idx = assign_mass_bins(log_mass, edges)
    labels = mass_bin_labels(edges) + ["outside"]
    rows = []
    for b, lab in zip(list(range(len(edges) - 1)) + [-1], labels):
        sel = idx == b
        row = {"mass_bin": lab, "n_images": int(sel.sum())}
        if groups is not None:
            row["n_groups"] = int(pd.Series(np.asarray(groups)[sel]).nunique())
        rows.append(row)
    return pd.DataFrame(rows)
