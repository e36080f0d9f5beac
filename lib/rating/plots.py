"""Figures of the rating: score histograms, score against stellar mass, ranking, morphology trends.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot
state, so it works headless and inside notebooks alike), optionally saves it
atomically as PNG, and returns it.  LaTeX is never used for text (the original
``lib/evaluate.py`` switched ``text.usetex`` on globally).

Colours follow the paper: reference (SDSS) green, then the suites in the
paper's order NoAGN blue, AGN orange, n80 grey, UHD red, then the rest of tab10.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure
from scipy import ndimage

from lib.rating.stats import PAPER_OVERLAP_BINS, overlap

REFERENCE_COLOUR = "#2ca02c"
SUITE_COLOURS = ["#1f77b4", "#ff7f0e", "#7f7f7f", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf"]
BIN_COLOURS = ["#440154", "#21918c", "#e08b00", "#3b528b", "#5ec962"]  # mass bins in the ranking plot
FONTSIZE = 15  # the paper's notebook uses 15 throughout
_RC = {"text.usetex": False, "font.size": FONTSIZE * 0.8, "axes.labelsize": FONTSIZE}
A_LABEL = "anomaly score A"


def suite_colour(i: int) -> str:
    """Colour of the i-th suite (cycles)."""
    return SUITE_COLOURS[i % len(SUITE_COLOURS)]


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Save ``fig`` as PNG through a temporary file and ``os.replace`` (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    # fixed metadata so that identical inputs give byte-identical PNGs
    fig.savefig(tmp, dpi=dpi, format="png", metadata={"Software": None})
    os.replace(tmp, path)
    return path


def _hist_panel(ax, reference: np.ndarray, suites: Mapping[str, np.ndarray], reference_name: str,
                bins: np.ndarray, title: str | None = None) -> None:
    """One panel: reference filled, suites as steps, overlaps in the legend.

    Densities are normalised over the scores inside the bins (as the paper's overlap); a sample with no
    score inside is listed in the legend, not drawn (matplotlib's density=True would divide 0 by 0).
    """
    def density(x):
        counts, _ = np.histogram(x, bins)
        return counts / counts.sum() / np.diff(bins) if counts.sum() else None

    ref = np.asarray(reference, dtype=float)
    h_ref = density(ref) if ref.size else None
    if h_ref is not None:
        ax.stairs(h_ref, bins, fill=True, color=REFERENCE_COLOUR, alpha=0.3, label=f"{reference_name} (n={ref.size})")
    elif ref.size:
        ax.plot([], [], " ", label=f"{reference_name} (n={ref.size}): no score in range")
    for i, (name, s) in enumerate(suites.items()):
        s = np.asarray(s, dtype=float)
        if s.size == 0:
            continue
        tail = np.mean(s > bins[-1])
        ov = overlap(s, ref) if ref.size else np.nan
        ov = f"overlap {ov:.3f}, " if np.isfinite(ov) else ""
        h = density(s)
        label = f"{name} (n={s.size}): {ov}{tail:.0%} > {bins[-1]:g}"
        if h is not None:
            ax.stairs(h, bins, lw=3, alpha=0.7, color=suite_colour(i), label=label)
        else:
            ax.plot([], [], " ", label=label + " (none in range)")
    ax.set_xlim(bins[0], bins[-1])
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=FONTSIZE * 0.7, frameon=False)
    if title:
        ax.text(0.5, 0.92, title, transform=ax.transAxes, fontsize=FONTSIZE, ha="center")


def figure_histograms(reference: np.ndarray, suites: Mapping[str, np.ndarray], path: str | os.PathLike | None = None,
                      reference_name: str = "reference", bins: np.ndarray = PAPER_OVERLAP_BINS,
                      title: str = "all masses") -> Figure:
    """Score histograms of every suite against the reference (the paper's ``SDSSnihao.png``).

    Parameters
    ----------
    reference : array_like, shape (M,)
    suites : mapping of str to array_like
    path : path-like, optional
        PNG to write.
    bins : array_like
        The paper's ``linspace(0, 0.1, 100)``; scores beyond are counted in the legend.
    """
    with rc_context(_RC):
        fig = Figure(figsize=(16, 8))
        ax = fig.add_subplot()
        _hist_panel(ax, reference, suites, reference_name, bins, title)
        ax.set_xlabel(A_LABEL)
        ax.set_ylabel("density")
        fig.tight_layout(rect=(0, 0, 0.62, 1))
        if path is not None:
            save_figure(fig, path)
    return fig


def figure_histograms_massbins(per_bin: Sequence[tuple[str, np.ndarray, Mapping[str, np.ndarray]]],
                               path: str | os.PathLike | None = None, reference_name: str = "reference",
                               bins: np.ndarray = np.linspace(0, 0.1, 50)) -> Figure:
    """Stacked histogram panels, one per mass bin (the paper's ``NIHAONoAGNAGN.png``).

    Parameters
    ----------
    per_bin : sequence of (label, reference scores, {suite: scores})
        One entry per mass bin, lowest mass first (drawn top to bottom).
    bins : array_like
        The paper used ``linspace(0, 0.1, 50)`` for this figure.
    """
    n = max(len(per_bin), 1)
    with rc_context(_RC):
        fig = Figure(figsize=(16, 4.5 * n))
        axs = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
        for ax, (label, ref, suites) in zip(axs, per_bin):
            _hist_panel(ax, ref, suites, reference_name, bins, title=f"log M* in [{label})")
            ax.set_ylabel("density")
        axs[-1].set_xlabel(A_LABEL)
        fig.subplots_adjust(hspace=0, right=0.62, left=0.07)
        if path is not None:
            save_figure(fig, path)
    return fig


def figure_score_vs_mass(ref_logm: np.ndarray, ref_scores: np.ndarray,
                         suites: Mapping[str, pd.DataFrame], path: str | os.PathLike | None = None,
                         reference_name: str = "reference", mass_edges: Sequence[float] | None = None) -> Figure:
    """Score against stellar mass (the paper's ``grandscore.png``).

    The reference is a filled 2-D density of (log M*, log A); each suite is
    drawn as per-group means with standard-deviation error bars, or as single
    images when it has no groups.

    Parameters
    ----------
    ref_logm, ref_scores : array_like, shape (M,)
        Reference log10(M*/Msun) and scores (NaN masses are skipped).
    suites : mapping of str to DataFrame
        Columns ``mass`` (log10 M*), ``mean`` and optionally ``std`` (one row
        per group, see :func:`lib.rating.group_stats`) or ``mass`` and ``score``
        (one row per image).
    mass_edges : sequence of float, optional
        Bin edges drawn as dashed red lines.
    """
    with rc_context(_RC):
        fig = Figure(figsize=(16, 8))
        ax = fig.add_subplot()
        m = np.asarray(ref_logm, dtype=float)
        a = np.asarray(ref_scores, dtype=float)
        ok = np.isfinite(m) & (a > 0)
        if ok.sum() > 10:
            # density of log A: a smoothed 2-D histogram, deterministic unlike a KDE on a subsample
            xb = np.linspace(m[ok].min(), m[ok].max(), 61)
            yb = np.linspace(np.log10(a[ok]).min(), np.log10(a[ok]).max(), 61)
            h, _, _ = np.histogram2d(m[ok], np.log10(a[ok]), [xb, yb])
            h = ndimage.gaussian_filter(h, 1.5).T
            xc, yc = 0.5 * (xb[1:] + xb[:-1]), 10 ** (0.5 * (yb[1:] + yb[:-1]))
            levels = np.linspace(h.max() * 1e-3, h.max(), 20)
            ax.contourf(xc, yc, h, levels=levels, colors=[REFERENCE_COLOUR], alpha=0.3)
            ax.contourf(xc, yc, h, levels=levels[::4], colors=[REFERENCE_COLOUR], alpha=0.15)
        ax.scatter([], [], color=REFERENCE_COLOUR, alpha=0.5, marker="s", s=80, label=f"{reference_name} density")
        for i, (name, df) in enumerate(suites.items()):
            c = suite_colour(i)
            if "mean" in df:
                ax.errorbar(df["mass"], df["mean"], yerr=df["std"] if "std" in df else None, fmt="o", ms=7,
                            color=c, alpha=0.8, capsize=2, label=f"{name} ({len(df)} galaxies)")
            else:
                ax.scatter(df["mass"], df["score"], s=12, color=c, alpha=0.6, label=f"{name} ({len(df)} images)")
        if mass_edges is not None:
            for e in mass_edges:
                ax.axvline(e, color="r", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("log10 M* / Msun")
        ax.set_ylabel(A_LABEL)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=FONTSIZE * 0.65, frameon=False)
        fig.tight_layout()
        if path is not None:
            save_figure(fig, path)
    return fig


def figure_ranking(table: pd.DataFrame, path: str | os.PathLike | None = None) -> Figure:
    """Forest plot: every suite's A rating and latent rating with 95 % intervals, per mass bin.

    Parameters
    ----------
    table : pandas.DataFrame
        A rating table from :func:`lib.rating.rate`.  Left: ``overlap`` (bias-corrected, the
        paper's A-based rating) with ``overlap_lo/_hi``; the grey band is the null row's
        (observed half vs half) interval.  Right, when the table has latents: ``c2st_auroc``
        with its interval; grey bars are each row's permutation null band.  Suites are ranked
        by the overall latent rating (by the overlap without latents), most observed-like on
        top.  Hollow markers: rows with too few images.
    """
    suites = table[table["role"] == "suite"]
    overall = suites[suites["mass_bin"] == "all"]
    latent = bool(np.isfinite(overall["c2st_auroc"].to_numpy(dtype=float)).any())
    key = "c2st_auroc" if latent else "overlap"
    overall = overall.sort_values(key, ascending=latent, kind="stable")[::-1]  # top of the plot = most similar
    bins = [b for b in suites["mass_bin"].unique() if b != "all"]
    null = table[(table["role"] == "half_vs_half") & (table["mass_bin"] == "all")]
    panels = [("overlap", "A rating: overlap with the observed scores\n(bias-corrected, 95 % interval)")]
    if latent:
        panels.append(("c2st_auroc", "latent rating: C2ST AUROC\n(0.5 = indistinguishable, 95 % interval)"))
    n = max(len(overall), 1)
    with rc_context(_RC):
        fig = Figure(figsize=(7 * len(panels) + 2.5, 2.0 + 0.42 * n * (1 + 0.25 * len(bins))))
        axs = np.atleast_1d(fig.subplots(1, len(panels), sharey=True, squeeze=False)[0])
        y = np.arange(len(overall))
        specs = [("all", 0.0, "o", "k")] + [(b, -0.32 + 0.64 * (j + 1) / (len(bins) + 1), ["s", "^", "v", "D"][j % 4],
                                            BIN_COLOURS[j % len(BIN_COLOURS)]) for j, b in enumerate(bins)]
        for ax, (col, label) in zip(axs, panels):
            if col == "overlap" and len(null) and np.isfinite(null["overlap_lo"].iloc[0]):
                ax.axvspan(null["overlap_lo"].iloc[0], null["overlap_hi"].iloc[0], color="grey", alpha=0.2,
                           label="observed half vs half (95 %)")
            if col == "c2st_auroc":
                ax.axvline(0.5, color="grey", lw=1)
            for b, dy, mk, c in specs:
                rows = suites[suites["mass_bin"] == b].set_index("suite").reindex(overall["suite"])
                est = rows[col].to_numpy(dtype=float)
                few = rows["too_few"].fillna(True).to_numpy(dtype=bool)
                if col == "c2st_auroc" and b == "all":
                    ax.hlines(y, rows["c2st_auroc_null_q025"], rows["c2st_auroc_null_q975"], color="grey", lw=7,
                              alpha=0.3, label="null band (permutations)")
                # rows with too few images: a hollow marker and no interval, not drawn as if exact
                ax.hlines((y + dy)[~few], rows[f"{col}_lo"][~few], rows[f"{col}_hi"][~few], color=c,
                          lw=2 if b == "all" else 1.2)
                lab = "all masses" if b == "all" else f"log M* [{b})"
                ax.plot(est[~few], (y + dy)[~few], mk, color=c, ms=8 if b == "all" else 6, label=lab)
                ax.plot(est[few], (y + dy)[few], mk, mfc="white", mec=c, ms=6,
                        label="too few images (no interval)" if few.any() else None)
            if not np.isfinite(suites[col].to_numpy(dtype=float)).any():
                ax.text(0.5, 0.5, "undefined: no score inside\nthe paper's range [0, 0.1]" if col == "overlap"
                        else "no latents", transform=ax.transAxes, ha="center", color="#b00000")
            ax.set_xlabel(label)
            ax.set_xlim(-0.02, 1.02)
            ax.grid(axis="x", alpha=0.3)
        axs[0].set_yticks(y, overall["suite"].tolist())
        axs[0].set_ylim(-0.6, len(overall) - 0.4)
        handles = {}
        for ax in axs:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        fig.legend(list(handles.values()), list(handles), loc="upper left", bbox_to_anchor=(0.80, 0.98),
                   fontsize=FONTSIZE * 0.6, frameon=False)
        fig.tight_layout(rect=(0, 0, 0.80, 1))
        if path is not None:
            save_figure(fig, path)
    return fig


def figure_group_means(stats: pd.DataFrame, path: str | os.PathLike | None = None, label: str = "suite",
                       colour: str = SUITE_COLOURS[1], mass_edges: Sequence[float] | None = None) -> Figure:
    """Per-galaxy mean +- std of A against log stellar mass (the paper's ``n80score.png`` style).

    Parameters
    ----------
    stats : pandas.DataFrame
        From :func:`lib.rating.group_stats` with a ``mass`` column in log10 Msun.
    """
    with rc_context(_RC):
        fig = Figure(figsize=(12, 8))
        ax = fig.add_subplot()
        ax.errorbar(stats["mass"], stats["mean"], yerr=stats["std"], fmt=".", ms=10, color=colour, capsize=2,
                    label=f"{label}: {len(stats)} galaxies, mean +- std over orientations")
        for e in (mass_edges or []):
            ax.axvline(e, color="r", ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("log10 M* / Msun")
        ax.set_ylabel(A_LABEL)
        ax.legend(loc="upper left")
        fig.tight_layout()
        if path is not None:
            save_figure(fig, path)
    return fig


def figure_morphology_trends(trends: Mapping[str, pd.DataFrame], params: Sequence[str],
                             path: str | os.PathLike | None = None, vmin: float | None = None,
                             vmax: float | None = None) -> Figure:
    """Statmorph parameters against mass, coloured by mean log A (the paper's ``imagebasedA.png``).

    Parameters
    ----------
    trends : mapping of str to DataFrame
        Per sample, the output of :func:`lib.rating.morphology.binned_trends`
        (columns ``mass, <p>_median, <p>_q16, <p>_q84, mean_score``).
    params : sequence of str
        Up to nine parameters, drawn in a 3x3 grid (column-major, as the paper).
    vmin, vmax : float, optional
        Limits of log10 mean A shared by every panel and sample (the paper's
        colour bar belonged to one panel only); by default the range of all.
    """
    logs = np.concatenate([np.log10(t["mean_score"].to_numpy(dtype=float)) for t in trends.values()])
    logs = logs[np.isfinite(logs)]
    vmin = float(logs.min()) if vmin is None and logs.size else vmin
    vmax = float(logs.max()) if vmax is None and logs.size else vmax
    markers = ["s", "^", "o", "D"]
    with rc_context(_RC):
        fig = Figure(figsize=(24, 16))
        axs = fig.subplots(3, 3, sharex=True)
        sc = None
        for i, p in enumerate(params[:9]):
            ax = axs[i % 3, i // 3]
            for j, (name, t) in enumerate(trends.items()):
                ok = t[f"{p}_median"].notna()
                ax.fill_between(t["mass"][ok], t[f"{p}_q16"][ok], t[f"{p}_q84"][ok], color="grey", alpha=0.15)
                sc = ax.scatter(t["mass"][ok], t[f"{p}_median"][ok], c=np.log10(t["mean_score"][ok]), cmap="magma",
                                vmin=vmin, vmax=vmax, marker=markers[j % 4], s=120, edgecolors="k",
                                label=name if i == 0 else None)
            ax.set_ylabel(p)
            if i % 3 == 2:
                ax.set_xlabel("log10 M* / Msun")
        axs[0, 0].legend(loc="best")
        fig.subplots_adjust(hspace=0, wspace=0.3, left=0.06, right=0.9, top=0.97, bottom=0.06)
        if sc is not None:
            cax = fig.add_axes([0.92, 0.15, 0.015, 0.7])
            fig.colorbar(sc, cax=cax, label="log10 mean A (shared scale)")
        if path is not None:
            save_figure(fig, path)
    return fig


def figure_correlations(computed: pd.Series, published: Mapping[str, float] | None = None,
                        path: str | os.PathLike | None = None) -> Figure:
    """Bar chart of the Pearson correlation of A with each parameter, next to published values."""
    with rc_context(_RC):
        fig = Figure(figsize=(12, 6))
        ax = fig.add_subplot()
        x = np.arange(len(computed))
        ax.bar(x - 0.2, computed.to_numpy(dtype=float), 0.4, color=SUITE_COLOURS[1], label="computed")
        if published:
            ax.bar(x + 0.2, [published.get(k, np.nan) for k in computed.index], 0.4, color="grey",
                   label="published (Jin et al. 2024)")
        ax.axhline(0, color="k", lw=1)
        ax.set_xticks(x, list(computed.index), rotation=30)
        ax.set_ylabel("Pearson r with A")
        ax.legend()
        fig.tight_layout()
        if path is not None:
            save_figure(fig, path)
    return fig
