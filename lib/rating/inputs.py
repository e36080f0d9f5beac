"""Inputs of the rating: score and mass validation, stellar-mass bins and galaxy groups.

Turns the score tables given to :func:`lib.rating.rate` into validated arrays
(:func:`extract_table`, :func:`check_scores`, :func:`to_log_mass`), puts
images into half-open mass bins ``[low, high)`` (:func:`assign_mass_bins`,
:func:`bin_counts`) and groups mock images by galaxy
(:func:`galaxy_and_orientation`, :func:`group_stats`).

``lib/rating/__init__.py`` re-exports the public names
(``from lib.rating import RatingError, PAPER_MASS_EDGES`` works).  Stellar
masses are handled internally as log10(M*/Msun).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: The paper's mass-bin edges in log10(M*/Msun): elements 0, 7, 13 and 19 of
#: ``np.linspace(9, 12.5, 20)`` (original_behaviour.md section 7.2).
PAPER_MASS_EDGES: tuple[float, ...] = (9.0, 10.289473684210526, 11.394736842105264, 12.5)


class RatingError(ValueError):
    """Bad input to the rating (the message is one line, meant for the user)."""


# --------------------------------------------------------------------------- validation
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


def extract_table(df: pd.DataFrame, name: str, score_col: str, mass_col: str | None, mass_scale: str,
                  group_col: str | None, is_reference: bool = False) -> dict:
    """Scores, log masses and groups of one table, validated (:func:`finalize_bins` adds the bins)."""
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


# --------------------------------------------------------------------------- mass bins
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


# --------------------------------------------------------------------------- galaxy groups
def galaxy_and_orientation(names: Sequence[str]) -> pd.DataFrame:
    """Split mock-image names ``<run>_<galaxy>_<NN>.png`` into run, galaxy and orientation.

    Example: ``'AGN_g2.71e12_14.png'`` gives run 'AGN', galaxy 'g2.71e12', orientation 14.
    Names that do not follow the pattern give NaN parts.
    """
    s = pd.Series(list(names), dtype=str).str.replace(r"\.[A-Za-z]+$", "", regex=True)
    parts = s.str.extract(r"^(?P<run>[^_]+)_(?P<galaxy>.+)_(?P<orientation>\d+)$")
    parts["orientation"] = pd.to_numeric(parts["orientation"])
    return parts


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
