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
(overlap, bootstrap, KS, ...) are in ``stats.py``, the latent two-sample tests
(C2ST, MMD) in ``latent.py``, the one-line verdict in ``verdict.py``; validation
of scores and masses, mass bins and galaxy groups in ``inputs.py``.  ``from lib.rating import
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
from threadpoolctl import threadpool_limits

from lib.rating.inputs import (PAPER_MASS_EDGES, RatingError, assign_mass_bins, extract_table, finalize_bins,
                               mass_bin_labels)
from lib.rating.latent import LATENT_COLUMNS, LatentConfig, latent_stats
from lib.rating.permutation import score_tests
from lib.rating.stats import (PAPER_OVERLAP_BINS, bootstrap, frac_above, overlap, overlap_full, relative_overlap,
                              stable_rng, two_sample)
from lib.rating.verdict import table_verdicts

#: Fewer images than this on either side (or fewer galaxies than :data:`MIN_GALAXIES`) and a row is
#: flagged ``too_few``: its statistics are computed but are not to be read as exact.
MIN_IMAGES = 20
MIN_GALAXIES = 5

#: Column order of the rating table.  Every ``<stat>_lo``/``<stat>_hi`` pair is an interval for the
#: column ``<stat>`` right before it; ``<stat>_null_q025``/``_q975`` are the central 95 % of that
#: statistic under "no difference" (permutations) at the row's sample sizes.
RATING_COLUMNS = [
    "suite", "role", "mass_bin", "mass_lo", "mass_hi", "n_images", "n_groups", "n_reference", "too_few",
    "mean", "mean_lo", "mean_hi", "median", "median_lo", "median_hi", "median_ratio", "std", "q16", "q84",
    "overlap", "overlap_lo", "overlap_hi", "overlap_paper", "overlap_paper_null_q025", "overlap_paper_null_q975",
    "overlap_ceiling", "overlap_full", "frac_above_ref_p99", "frac_above_0.1",
    "ks_stat", "ks_pvalue", "ks_stat_null_q025", "ks_stat_null_q975", "wasserstein",
    *LATENT_COLUMNS, "suite_p", "verdict", "warnings",
]


def rate_row(suite: np.ndarray, reference: np.ndarray, groups: np.ndarray | None = None,
             reference_groups: np.ndarray | None = None, n_boot: int = 1000, seed: int = 0,
             key: Sequence[str] = (), latent: np.ndarray | None = None, reference_latent: np.ndarray | None = None,
             latent_config: LatentConfig | None = None) -> dict:
    """All statistics of one suite (or one mass bin of it) against the reference.

    Parameters
    ----------
    suite, reference : array_like, shape (N,), (M,)
        Scores (already validated; either may be empty, giving NaN).
    groups, reference_groups : array_like, optional
        Group labels for the bootstrap, the permutations and ``n_groups``.
    n_boot, seed, key
        See :func:`bootstrap`.
    latent, reference_latent : array_like, shape (N, d), (M, d), optional
        Latent features of the same images; without them the latent columns are NaN.
    latent_config : LatentConfig, optional
        Folds, permutations (also used for the score null bands), seed of the latent statistics;
        by default ``LatentConfig(seed=seed)``.

    Returns
    -------
    dict
        Keys of :data:`RATING_COLUMNS` except suite, role, mass_bin, mass_lo,
        mass_hi, suite_p, verdict and warnings.  ``overlap`` is the paper's overlap relative to its
        ceiling (:func:`lib.rating.stats.relative_overlap`; NaN without a bootstrap) and
        ``overlap_lo/_hi`` its interval; ``overlap_paper`` is the paper's raw number.  The
        tests (``ks_pvalue``, ``c2st_p``, ``mmd2_p``) use one random image per galaxy.
    """
    with threadpool_limits(limits=1):  # small matrices: extra BLAS threads only contend on a shared machine
        return _rate_row(suite, reference, groups, reference_groups, n_boot, seed, key, latent, reference_latent,
                         latent_config or LatentConfig(seed=seed))


def _rate_row(suite, reference, groups, reference_groups, n_boot, seed, key, latent, reference_latent,
              cfg: LatentConfig) -> dict:
    suite = np.asarray(suite, dtype=float)
    reference = np.asarray(reference, dtype=float)
    n_groups = int(pd.Series(groups).nunique()) if groups is not None else pd.NA
    row: dict = {"n_images": int(suite.size), "n_groups": n_groups, "n_reference": int(reference.size),
                 "too_few": bool(suite.size < MIN_IMAGES or reference.size < MIN_IMAGES
                                 or (groups is not None and n_groups < MIN_GALAXIES))}
    row.update(_describe(suite, reference))
    row.update(two_sample(suite, reference))
    boot = bootstrap(suite, reference, groups, reference_groups, n_boot=n_boot, seed=seed, key=key)
    row.update({k: boot[k] for k in ("mean_lo", "mean_hi", "median_lo", "median_hi", "overlap_ceiling")})
    row.update(relative_overlap(row["overlap_paper"], boot))
    # the tested KS statistic replaces the all-image one (identical when every galaxy has one image)
    row.update(score_tests(suite, reference, groups, reference_groups, cfg.n_perm,
                           stable_rng(cfg.seed, "score-null", *key), cfg.level))
    if latent is not None and reference_latent is not None:
        row.update(latent_stats(latent, reference_latent, groups, reference_groups, cfg, key))
    else:
        row.update({c: np.nan for c in LATENT_COLUMNS})
    return row


def _describe(suite: np.ndarray, reference: np.ndarray) -> dict:
    """Summary numbers of the suite's A and the paper's raw overlaps (no resampling)."""
    row: dict = {c: np.nan for c in ("mean", "median", "std", "q16", "q84")}
    if suite.size:
        q16, med, q84 = np.percentile(suite, [16, 50, 84])
        row.update(mean=float(suite.mean()), median=float(med), std=float(suite.std(ddof=1)) if suite.size > 1
                   else np.nan, q16=float(q16), q84=float(q84))
    ref_median = float(np.median(reference)) if reference.size else np.nan
    row["median_ratio"] = row["median"] / ref_median if ref_median > 0 else np.nan  # > 1: harder to reconstruct
    row["overlap_paper"] = overlap(suite, reference)
    row["overlap_full"] = overlap_full(suite, reference)
    p99 = np.percentile(reference, 99) if reference.size else np.nan
    row["frac_above_ref_p99"] = frac_above(suite, p99)
    row["frac_above_0.1"] = frac_above(suite, PAPER_OVERLAP_BINS[-1])
    return row


def split_halves(n: int, groups: np.ndarray | None, seed: int, key: Sequence[str]) -> np.ndarray:
    """A seeded split of n images into two halves by galaxy: True for the first half."""
    codes = pd.factorize(pd.Series(np.asarray(groups)), sort=True)[0] if groups is not None else np.arange(n)
    n_g = int(codes.max()) + 1 if n else 0
    first = stable_rng(seed, "null-split", *key).permutation(n_g)[: n_g // 2]
    return np.isin(codes, first)


def rate(reference: pd.DataFrame, suites: Mapping[str, pd.DataFrame], reference_name: str = "reference",
         score_col: str = "ascore", mass_col: str | None = None, mass_scale: str = "log",
         group_col: str | None = None, mass_edges: Sequence[float] | None = PAPER_MASS_EDGES,
         n_boot: int = 1000, seed: int = 0, include_reference: bool = True,
         latents: Mapping[str, np.ndarray] | None = None, latent_config: LatentConfig | None = None,
         include_null: bool = True) -> pd.DataFrame:
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
    latents : mapping of str to array_like, shape (N_table, d), optional
        Latent features per table name (reference and suites), row-aligned with the tables;
        a table without an entry gets NaN latent statistics.
    latent_config : LatentConfig, optional
        See :class:`lib.rating.latent.LatentConfig`; default ``LatentConfig(seed=seed)``.
    include_null : bool
        Add, per bin, the row ``<reference>: half vs half`` (role 'half_vs_half'): every statistic between two
        halves of the reference split by galaxy, i.e. what "no difference" looks like at this size.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RATING_COLUMNS`; rows: mass_bin 'all' first, then each
        bin; within a bin the reference, the null, then the suites in the given order.

    Raises
    ------
    RatingError
        Missing columns, empty tables, bad scores or masses.
    """
    if not suites:
        raise RatingError("no suite to rate")
    if reference_name in suites:
        raise RatingError(f"suite name {reference_name!r} is also the reference's name")
    cfg = latent_config or LatentConfig(seed=seed)
    data = _read_tables(reference, suites, reference_name, score_col, mass_col, mass_scale, group_col, latents)
    edges = list(mass_edges) if (mass_col and mass_edges is not None) else None
    if edges is not None:
        assign_mass_bins(np.array([]), edges)  # validates the edges
        finalize_bins(data, edges)
    bin_specs = [("all", np.nan, np.nan, None)]
    if edges:
        bin_specs += [(lab, edges[i], edges[i + 1], i) for i, lab in enumerate(mass_bin_labels(edges))]
    rows = []
    for label, lo, hi, b in bin_specs:
        entries = [(reference_name, "reference")] if include_reference else []
        entries += [(f"{reference_name}: half vs half", "half_vs_half")] if include_null else []
        entries += [(n, "suite") for n in suites]
        for name, role in entries:
            row = _table_row(data, reference_name, name, role, label, b, n_boot, seed, cfg)
            row.update(suite=name, role=role, mass_bin=label, mass_lo=lo, mass_hi=hi, suite_p=np.nan, verdict="")
            rows.append(row)
    table = pd.DataFrame(rows)[RATING_COLUMNS]
    table["n_groups"] = table["n_groups"].astype("Int64")
    table["verdict"], table["suite_p"] = table_verdicts(table)
    return table


def _read_tables(reference, suites, reference_name, score_col, mass_col, mass_scale, group_col, latents) -> dict:
    """Validated scores, masses, groups and latents of every table, by name (reference first)."""
    latents = dict(latents or {})
    data = {}
    for name, df in {reference_name: reference, **suites}.items():
        data[name] = extract_table(df, name, score_col, mass_col, mass_scale, group_col,
                                   is_reference=name == reference_name)
        z = latents.get(name)
        data[name]["latent"] = None if z is None else np.asarray(z, dtype=float)
        if z is not None and len(z) != len(data[name]["score"]):
            raise RatingError(f"{name}: {len(z)} latent vectors for {len(data[name]['score'])} scores")
    return data


def _pick(d: dict, b: int | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Scores, groups and latents of one table in mass bin ``b`` (None: all masses)."""
    sel = slice(None) if b is None else (d["bin"] == b)
    take = (lambda v: None if v is None else v[sel])
    return d["score"][sel], take(d["group"]), take(d["latent"])


def _table_row(data: dict, reference_name: str, name: str, role: str, label: str, b: int | None, n_boot: int,
               seed: int, cfg: LatentConfig) -> dict:
    """One row of :func:`rate`: a suite, the half-vs-half null or the reference itself, in one mass bin."""
    ref = data[reference_name]
    r_s, r_g, r_z = _pick(ref, b)
    warn = []
    if role == "half_vs_half":
        half = split_halves(r_s.size, r_g, seed, (label,))
        sub = (lambda v, m: None if v is None else v[m])
        row = rate_row(r_s[half], r_s[~half], sub(r_g, half), sub(r_g, ~half), n_boot=n_boot, seed=seed,
                       key=(name, label), latent=sub(r_z, half), reference_latent=sub(r_z, ~half), latent_config=cfg)
    else:
        d = data[name]
        s, g, z = _pick(d, b)
        warn = list(d["warnings"]) if b is None else []
        row = rate_row(s, r_s, g, r_g, n_boot=n_boot, seed=seed, key=(name, label),
                       latent=None if role == "reference" else z, reference_latent=r_z, latent_config=cfg)
        if role == "reference":  # the reference against itself: no interval, no test
            row.update({c: np.nan for c in ("overlap_lo", "overlap_hi", "overlap_ceiling", "ks_pvalue",
                                            "overlap_paper_null_q025", "overlap_paper_null_q975",
                                            "ks_stat_null_q025", "ks_stat_null_q975")})
            row["overlap"] = 1.0
            row["too_few"] = bool(s.size < MIN_IMAGES)
        elif b is None and d["latent"] is None and ref["latent"] is not None:
            warn.append("no latents: A statistics only")
        if b is not None and s.size == 0:
            warn.append("no images in this mass bin")
    if b is not None and r_s.size == 0:
        warn.append("reference has no images in this mass bin")
    row["warnings"] = "; ".join(warn + _row_warnings(row, role))
    return row


def _row_warnings(row: dict, role: str) -> list[str]:
    """Warnings that follow from a row's numbers."""
    warn = []
    if row["n_images"] and not np.isfinite(row["overlap_paper"]):
        warn.append("no score inside the paper's overlap range [0, 0.1]")
    frac = row["frac_above_0.1"]
    if row["n_images"] and role != "reference" and not np.isnan(frac) and frac > 0:
        warn.append(f"{frac:.1%} of scores > 0.1 are ignored by 'overlap'")
    if row["too_few"] and row["n_images"] and role != "reference":
        warn.append(f"too few images for exact statistics (n={row['n_images']}, "
                    f"reference {row['n_reference']}; need {MIN_IMAGES})")
    return warn


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
        The ``mass_bin == 'all'`` rows of :func:`rate` without the null row; the columns
        start with ``suite, n_images, mean, median, overlap``.
    """
    table = rate(pd.DataFrame({"ascore": np.asarray(reference, dtype=float)}),
                 {k: pd.DataFrame({"ascore": np.asarray(v, dtype=float)}) for k, v in suites.items()},
                 reference_name=reference_name, n_boot=n_boot, seed=seed, include_reference=include_reference,
                 mass_edges=None, include_null=False)
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
