"""Small-multiple figures of a rating: score ECDFs, the latent space and A against mass, one panel per suite.

One panel per suite, the observed images drawn identically in every panel, so that 21 suites
stay readable (overlaid histograms of 16 samples under one legend did not).  Panels of rows
with too few images are greyed and labelled, not drawn as if exact.  Like plots.py, every
function builds a :class:`matplotlib.figure.Figure` without pyplot and saves it atomically.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure
from scipy import ndimage
from sklearn.decomposition import PCA

from lib.rating.plots import FONTSIZE, save_figure

_RC = {"text.usetex": False, "font.size": FONTSIZE * 0.65, "axes.titlesize": FONTSIZE * 0.72}
FEW_COLOUR = "#eeeeee"
SUITE_COLOUR = "#d62728"  # one colour for every suite: each panel is one suite against the reference
REF_COLOUR = "#555555"


def _grid(n: int, ncols: int = 6, size: tuple[float, float] = (2.7, 2.1), extra_top: float = 0.9):
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows + extra_top))
    axs = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    for ax in axs.flat[n:]:
        ax.set_visible(False)
    for i, ax in enumerate(axs.flat[:n]):
        if i + ncols >= n:  # nothing below this panel: it carries the x axis
            ax.xaxis.set_tick_params(labelbottom=True)
    return fig, list(axs.flat[:n]), nrows, ncols


def _finish(fig: Figure, axs: list, ncols: int, xlabel: str, ylabel: str, title: str,
            path: str | os.PathLike | None) -> None:
    """Axis labels on the outer panels only, the title, layout, and an atomic save."""
    for i, ax in enumerate(axs):
        if i + ncols >= len(axs):  # nothing below: the bottom panel of its column
            ax.set_xlabel(xlabel)
    for ax in axs[::ncols]:
        ax.set_ylabel(ylabel)
    fig.suptitle(title, fontsize=FONTSIZE * 0.8)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    if path is not None:
        save_figure(fig, path)


def _ecdf(ax, x: np.ndarray, **kw) -> None:
    x = np.sort(np.log10(np.clip(np.asarray(x, dtype=float), 1e-12, None)))
    if x.size:
        ax.step(np.r_[x[0], x], np.r_[0, np.arange(1, x.size + 1) / x.size], where="post", **kw)


def _mark_few(ax, n: int) -> None:
    ax.set_facecolor(FEW_COLOUR)
    ax.text(0.5, 0.5, f"too few images\n(n={n})", transform=ax.transAxes, ha="center", va="center",
            color="#b00000", fontsize=FONTSIZE * 0.7, alpha=0.8)


def figure_ecdf_grid(reference: np.ndarray, suites: Mapping[str, np.ndarray], path: str | os.PathLike | None = None,
                     reference_name: str = "reference", title: str = "all masses",
                     notes: Mapping[str, str] | None = None, few: Mapping[str, bool] | None = None,
                     ncols: int = 6) -> Figure:
    """Cumulative distribution of log10 A, one panel per suite, the reference in every panel.

    Parameters
    ----------
    reference : array_like, shape (M,)
        Observed scores A (> 0; zeros are drawn at 1e-12).
    suites : mapping of str to array_like
        Scores per suite, in panel order.
    path : path-like, optional
        PNG to write.
    title : str
        Figure title (the mass bin).
    notes : mapping of str to str, optional
        A short line per suite under its name (e.g. the overlap and the C2ST AUROC).
    few : mapping of str to bool, optional
        Suites whose panel is greyed as having too few images.
    ncols : int
        Panels per row.

    Notes
    -----
    The full range of A is shown; the dotted line is the paper's histogram cut at A = 0.1
    (its overlap ignores everything to the right).
    """
    notes = notes or {}
    few = few or {}
    ref = np.asarray(reference, dtype=float)
    with rc_context(_RC):
        fig, axs, nrows, ncols = _grid(len(suites), ncols)
        for ax, (name, s) in zip(axs, suites.items()):
            s = np.asarray(s, dtype=float)
            _ecdf(ax, ref, color=REF_COLOUR, lw=1.6)
            _ecdf(ax, s, color=SUITE_COLOUR, lw=2.0)
            ax.axvline(-1.0, color="grey", ls=":", lw=1)
            ax.set_title(name, loc="left", fontweight="bold")
            ax.text(0.03, 0.97, f"n={s.size}" + (f"\n{notes[name]}" if name in notes else ""),
                    transform=ax.transAxes, va="top", ha="left", fontsize=FONTSIZE * 0.55)
            if few.get(name):
                _mark_few(ax, s.size)
            ax.grid(alpha=0.25)
        _finish(fig, axs, ncols, "log10 A", "fraction <= A",
                f"{title}: cumulative distribution of the anomaly score, {reference_name} (grey, n={ref.size}) "
                "vs each suite (red); dotted: the paper's cut at A = 0.1", path)
    return fig


def figure_latent_pca(reference: np.ndarray, suites: Mapping[str, np.ndarray], path: str | os.PathLike | None = None,
                      reference_name: str = "reference", notes: Mapping[str, str] | None = None,
                      few: Mapping[str, bool] | None = None, ncols: int = 6, max_points: int = 600,
                      seed: int = 0) -> Figure:
    """The first two principal components of the latents: the reference in grey, each suite in colour.

    Parameters
    ----------
    reference : array_like, shape (M, d)
        Observed latent vectors; they define the standardisation and the PCA axes.
    suites : mapping of str to array_like, shape (N, d)
        Latent vectors per suite.
    notes, few, ncols
        As :func:`figure_ecdf_grid`.
    max_points : int
        At most this many points per sample are drawn (a seeded subsample).

    Notes
    -----
    PCA shows the directions in which the observed latents vary most.  A suite can be
    separable in a low-variance direction (C2ST high) and still overlap the observed cloud
    here: this picture shows, it does not test.
    """
    notes = notes or {}
    few = few or {}
    rng = np.random.default_rng(seed)
    ref = np.asarray(reference, dtype=float)
    mu, sd = ref.mean(0), ref.std(0)
    sd[sd == 0] = 1
    pca = PCA(n_components=2, random_state=seed).fit((ref - mu) / sd)

    def proj(z):
        z = np.asarray(z, dtype=float)
        if len(z) > max_points:
            z = z[rng.choice(len(z), max_points, replace=False)]
        return pca.transform((z - mu) / sd)

    r2 = proj(ref)
    evr = pca.explained_variance_ratio_
    with rc_context(_RC):
        fig, axs, nrows, ncols = _grid(len(suites), ncols, size=(2.7, 2.5))
        for ax, (name, z) in zip(axs, suites.items()):
            ax.scatter(r2[:, 0], r2[:, 1], s=6, color="#999999", alpha=0.5, lw=0)
            if len(z):
                p2 = proj(z)
                ax.scatter(p2[:, 0], p2[:, 1], s=7, color=SUITE_COLOUR, alpha=0.6, lw=0)
            ax.set_title(name, loc="left", fontweight="bold")
            if name in notes:
                ax.text(0.03, 0.97, notes[name], transform=ax.transAxes, va="top", ha="left",
                        fontsize=FONTSIZE * 0.55)
            if few.get(name):
                _mark_few(ax, len(z))
        _finish(fig, axs, ncols, f"PC1 ({evr[0]:.0%})", f"PC2 ({evr[1]:.0%})",
                f"latent_i in the first two principal axes of {reference_name} (grey, standardised); "
                "each suite in red", path)
    return fig


def figure_score_vs_mass_grid(ref_logm: np.ndarray, ref_scores: np.ndarray, suites: Mapping[str, pd.DataFrame],
                              path: str | os.PathLike | None = None, reference_name: str = "reference",
                              mass_edges: Sequence[float] | None = None, ncols: int = 6) -> Figure:
    """A against stellar mass, one panel per suite, the reference's density (grey contours) in every panel.

    Parameters
    ----------
    ref_logm, ref_scores : array_like, shape (M,)
        Reference log10(M*/Msun) and scores.
    suites : mapping of str to DataFrame
        Columns ``mass`` and ``score`` (one row per image) or ``mass`` and ``mean`` (per galaxy).
    mass_edges : sequence of float, optional
        Bin edges, drawn as dashed lines.
    """
    m = np.asarray(ref_logm, dtype=float)
    a = np.asarray(ref_scores, dtype=float)
    ok = np.isfinite(m) & (a > 0)
    dens = None
    if ok.sum() > 10:
        xb = np.linspace(m[ok].min(), m[ok].max(), 31)
        yb = np.linspace(np.log10(a[ok]).min(), np.log10(a[ok]).max(), 31)
        h, _, _ = np.histogram2d(m[ok], np.log10(a[ok]), [xb, yb])
        dens = (0.5 * (xb[1:] + xb[:-1]), 0.5 * (yb[1:] + yb[:-1]), ndimage.gaussian_filter(h, 1.2).T)
    with rc_context(_RC):
        fig, axs, nrows, ncols = _grid(len(suites), ncols, size=(2.7, 2.2))
        for ax, (name, df) in zip(axs, suites.items()):
            if dens is not None:
                ax.contour(dens[0], dens[1], dens[2], levels=np.linspace(dens[2].max() * 0.05, dens[2].max(), 5),
                           colors=REF_COLOUR, linewidths=0.8, alpha=0.7)
            y = df["mean"] if "mean" in df else df["score"]
            ax.scatter(df["mass"], np.log10(np.clip(np.asarray(y, dtype=float), 1e-12, None)), s=5,
                       color=SUITE_COLOUR, alpha=0.5, lw=0)
            for e in (mass_edges or []):
                ax.axvline(e, color="k", ls="--", lw=0.6, alpha=0.5)
            ax.set_title(name, loc="left", fontweight="bold")
        _finish(fig, axs, ncols, "log10 M* / Msun", "log10 A",
                f"anomaly score against stellar mass: {reference_name} density (grey contours) and each suite "
                "(red); dashed: the mass bins", path)
    return fig
