"""Graded suites: does each statistic of the rating order a knob's strengths, and is the null where it should be?

Used by ``demo.py`` and ``benchmarks/ladder.py`` on a rating table (:func:`lib.rating.rate`) whose suites
are named ``<knob>_<strength>`` (strength 1..3) plus one suite of the same base population without any
knob (strength 0), all rated against an independent observed set.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

#: Statistics checked for order, with the sign that makes "more different" larger.
ORDER_STATS = {"mean": 1, "overlap": -1, "overlap_paper": -1, "ks_stat": 1, "wasserstein": 1,
               "c2st_auroc": 1, "mmd2": 1}
#: Statistics with a permutation null band (``<stat>_null_q025/_q975``).
NULL_STATS = ("overlap_paper", "ks_stat", "c2st_auroc", "mmd2")


def strength_orders(table: pd.DataFrame, knobs: Sequence[str], base: str, mass_bin: str = "all") -> pd.DataFrame:
    """Spearman's rho between strength 0..3 and each statistic, per knob.

    Parameters
    ----------
    table : pandas.DataFrame
        A rating table.
    knobs : sequence of str
        Knob names; suites ``<knob>_1..3`` must be in the table.
    base : str
        The suite that is strength 0 (same base population, no knob).
    mass_bin : str
        Which rows.

    Returns
    -------
    pandas.DataFrame
        One row per knob: ``rho_<stat>`` (sign-adjusted: 1 = stronger knob, more different) for
        each of :data:`ORDER_STATS` the table has values for, and ``ordered_by``: the statistics
        with rho = 1.
    """
    rows = table[(table["mass_bin"] == mass_bin)].set_index("suite")
    out = []
    for knob in knobs:
        names = [base] + [f"{knob}_{s}" for s in (1, 2, 3)]
        row = {"knob": knob}
        stats = [s for s in ORDER_STATS if s in rows.columns]
        for stat in stats:
            sign = ORDER_STATS[stat]
            v = rows.reindex(names)[stat].to_numpy(dtype=float)
            row[f"rho_{stat}"] = (float(spearmanr([0, 1, 2, 3], sign * v)[0])
                                  if np.isfinite(v).all() and np.ptp(v) > 0 else np.nan)
        row["ordered_by"] = ", ".join(s for s in stats if row[f"rho_{s}"] > 0.999) or "none"
        out.append(row)
    return pd.DataFrame(out)


def null_check(table: pd.DataFrame) -> pd.DataFrame:
    """The observed-vs-observed (half vs half) value of each statistic against its own null band.

    Returns
    -------
    pandas.DataFrame
        One row per (mass bin, statistic): ``value``, ``null_q025``, ``null_q975``, ``inside``;
        null rows with too few images are left out.
    """
    out = []
    for _, r in table[(table["role"] == "half_vs_half") & ~table["too_few"].astype(bool)].iterrows():
        for stat in NULL_STATS:
            v, lo, hi = (float(r.get(c, np.nan)) for c in (stat, f"{stat}_null_q025", f"{stat}_null_q975"))
            # (a column the table lacks reads as NaN and is left out)
            if np.isfinite(v) and np.isfinite(lo):
                out.append({"mass_bin": r["mass_bin"], "statistic": stat, "value": v, "null_q025": lo,
                            "null_q975": hi, "inside": bool(lo <= v <= hi)})
    return pd.DataFrame(out, columns=["mass_bin", "statistic", "value", "null_q025", "null_q975", "inside"])
