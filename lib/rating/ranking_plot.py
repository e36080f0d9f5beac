"""Figure of the comparison of suites (lib/rating/compare.py): which suite is closest to the observed images."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lib.rating.plots import save_figure


def figure_rank_probabilities(ranking: pd.DataFrame, path: str | os.PathLike | None = None,
                              statistic: str = "c2st_auroc", mass_bin: str = "all") -> Figure:
    """Suites ordered by their rank (closest on top): left P(rank = k) as a heat map, right P(closest), one mass bin.

    Parameters
    ----------
    ranking : pandas.DataFrame
        ranking.csv (:func:`lib.rating.compare.compare_suites`); with a ``separable`` column
        (:func:`lib.rating.compare.mark_separable`) separable suites' labels end in " *".
    """
    rows = ranking[(ranking["mass_bin"] == mass_bin) & (ranking["statistic"] == statistic)].sort_values("rank")
    labels = rows["suite"].tolist()
    if "separable" in rows:
        labels = [f"{n} *" if pd.notna(s) and bool(s) else n for n, s in zip(labels, rows["separable"])]
    n = max(len(rows), 1)
    prob = rows[[f"p_rank_{k + 1}" for k in range(len(rows))]].to_numpy(dtype=float)
    fig = Figure(figsize=(11, 1.5 + 0.35 * n))
    ax, bx = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [2, 1]})
    if len(rows):
        im = ax.imshow(prob, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        fig.colorbar(im, ax=ax, label="P(rank = k)")
        bx.barh(np.arange(len(rows)), rows["p_closest"], color="#1f77b4")
    ax.set_yticks(np.arange(len(rows)), labels)
    ax.set_xticks(np.arange(len(rows)), [str(k + 1) for k in range(len(rows))], fontsize=7)
    ax.set_xlabel(f"rank by {statistic} (1 = closest to the observed images)")
    bx.set_xlabel("P(closest to the observed images)")
    bx.set_xlim(0, 1)
    fig.suptitle(f"mass bin {mass_bin}" + (f"; * = separable from the observed images (beyond its {statistic} null band)"
                                           if "separable" in rows else ""), fontsize=9)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
