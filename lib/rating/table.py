"""Rate simulated galaxy images against observed ones by their anomaly scores A.

The paper's rating (Jin et al. 2024, section 4) compares the distribution of the
anomaly score A of a simulation suite's mock images with that of the SDSS test
set, overall and in three stellar-mass bins, through the overlap of the two
score histograms.  This module computes that number exactly as the paper did,
plus statistics that do not share its blind spot (scores above 0.1 are ignored
by the paper's overlap), and bootstrap intervals.

Everything here takes numpy arrays or pandas DataFrames; the command line lives
in ``rate.py``.

Modules
-------
This module builds the rating table (:func:`rate`, :func:`rate_row`,
:func:`rate_suites`) and holds the paper's published numbers.  The statistics
(overlap, bootstrap, KS, ...) are in ``stats.py``; validation of scores and
masses, mass bins and galaxy groups in ``inputs.py``.  ``from lib.rating import
...`` (the package facade) reaches all of them.

Conventions
-----------
* Scores ``A`` are non-negative floats (mean squared latent difference,
  optionally min-max normalised as in the paper).
* Stellar masses are handled internally as log10(M*/Msun).
* Mass bins are half-open, ``[low, high)``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lib.rating.inputs import (PAPER_MASS_EDGES, RatingError, assign_mass_bins, extract_table, finalize_bins,
                               mass_bin_labels)
from lib.rating.stats import PAPER_OVERLAP_BINS, bootstrap, frac_above, overlap, overlap_full, two_sample

#: Column order of the rating table.
RATING_COLUMNS = [
    "suite", "role", "mass_bin", "mass_lo", "mass_hi", "n_images", "n_groups", "n_reference",
    "mean", "mean_lo", "mean_hi", "median", "median_lo", "median_hi", "std", "q16", "q84",
    "overlap", "overlap_lo", "overlap_hi", "overlap_bias", "overlap_ceiling", "overlap_full", "frac_above_ref_p99",
    "frac_above_0.1", "ks_stat", "ks_pvalue", "wasserstein", "warnings",
]


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
        data[name] = extract_table(df, name, score_col, mass_col, mass_scale, group_col,
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
