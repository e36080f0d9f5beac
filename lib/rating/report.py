"""Read score tables, run the rating, write rating.csv, rating.md, the figures and a run record.

This is the body of ``rate.py``; it is separate from :mod:`lib.rating` (the
statistics) so that those stay usable on plain arrays.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lib.fileio import atomic_write, atomic_write_text, package_versions
from lib.rating import inputs as I
from lib.rating import plots as P
from lib.rating import table as T

#: Columns shown in rating.md (the CSV has them all).
MD_COLUMNS = ["suite", "mass_bin", "n_images", "n_groups", "mean", "median", "overlap", "overlap_ceiling",
              "overlap_full", "frac_above_ref_p99", "ks_stat", "ks_pvalue", "wasserstein", "warnings"]


def parse_named(spec: str) -> tuple[str, Path]:
    """Split ``NAME=path.csv`` (or a bare path, named after its stem) into (name, path)."""
    if "=" in spec:
        name, path = spec.split("=", 1)
    else:
        name, path = Path(spec).stem, spec
    if not name or not path:
        raise I.RatingError(f"expected NAME=CSV, got {spec!r}")
    return name, Path(path)


def read_scores(path: Path, name: str) -> pd.DataFrame:
    """Read one score CSV, turning every reading problem into a one-line :class:`RatingError`."""
    if not path.is_file():
        raise I.RatingError(f"{name}: no such file {str(path)!r}")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise I.RatingError(f"{name}: cannot read {str(path)!r} as CSV ({str(exc).splitlines()[0]})") from None
    return df


def _fmt(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}g}"
    return str(v)


def to_markdown(table: pd.DataFrame) -> str:
    """The rating table as GitHub Markdown; intervals written as ``est [lo, hi]``."""
    header = MD_COLUMNS
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = []
        for c in header:
            if c in ("mean", "median", "overlap") and np.isfinite(row.get(f"{c}_lo", np.nan)):
                cells.append(f"{_fmt(row[c])} [{_fmt(row[c + '_lo'])}, {_fmt(row[c + '_hi'])}]")
            else:
                cells.append(_fmt(row[c]).replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_rating(reference: str, suites: Sequence[str], out: str | os.PathLike, score_col: str = "ascore",
               mass_col: str | None = None, mass_scale: str = "log", group_col: str | None = None,
               mass_bins: Sequence[float] | None = None, n_boot: int = 1000, seed: int = 0,
               figures: bool = True) -> pd.DataFrame:
    """Rate score CSVs and write every output into ``out``.

    Parameters
    ----------
    reference : str
        ``NAME=CSV`` of the observed scores.
    suites : sequence of str
        ``NAME=CSV`` of each simulation suite.
    out : path-like
        Output folder (created).  Written: ``rating.csv``, ``rating.md``,
        ``rating_run.json`` (options, seed, versions), ``score_hist_all.png``,
        ``ranking.png`` and, with masses, ``score_hist_massbins.png`` and
        ``score_vs_mass.png``.
    score_col, mass_col, mass_scale, group_col, mass_bins, n_boot, seed
        See :func:`lib.rating.rate`.

    Returns
    -------
    pandas.DataFrame
        The rating table.

    Raises
    ------
    lib.rating.RatingError
        Any bad input, before anything is written.
    """
    if not suites:
        raise I.RatingError("give at least one --suite NAME=CSV")
    if n_boot < 0:
        raise I.RatingError(f"--n-boot must be >= 0, got {n_boot}")
    ref_name, ref_path = parse_named(reference)
    named = [parse_named(s) for s in suites]
    names = [n for n, _ in named]
    dupes = sorted({n for n in names if names.count(n) > 1} | ({ref_name} & set(names)))
    if dupes:
        raise I.RatingError(f"duplicate names: {', '.join(dupes)}")
    ref_df = read_scores(ref_path, ref_name)
    suite_dfs = {n: read_scores(p, n) for n, p in named}
    edges = list(mass_bins) if mass_bins else list(I.PAPER_MASS_EDGES)
    table = T.rate(ref_df, suite_dfs, reference_name=ref_name, score_col=score_col, mass_col=mass_col,
                   mass_scale=mass_scale, group_col=group_col, mass_edges=edges, n_boot=n_boot, seed=seed)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "rating.csv", lambda tmp: table.to_csv(tmp, index=False))
    atomic_write_text(out / "rating.md", to_markdown(table))
    record = {"reference": reference, "suites": list(suites), "score_col": score_col, "mass_col": mass_col,
              "mass_scale": mass_scale, "group_col": group_col, "mass_bins": edges if mass_col else None,
              "n_boot": n_boot, "seed": seed, "overlap_bins": "linspace(0, 0.1, 100)", "versions": package_versions()}
    atomic_write_text(out / "rating_run.json", json.dumps(record, indent=1) + "\n")
    if figures:
        _figures(table, ref_name, ref_df, suite_dfs, out, score_col, mass_col, mass_scale, group_col, edges)
    return table


def _figures(table: pd.DataFrame, ref_name: str, ref_df: pd.DataFrame, suite_dfs: dict, out: Path,
             score_col: str, mass_col: str | None, mass_scale: str, group_col: str | None,
             edges: Sequence[float]) -> None:
    """Write the PNG figures of one rating run."""
    ref_s = ref_df[score_col].to_numpy(dtype=float)
    suite_s = {n: d[score_col].to_numpy(dtype=float) for n, d in suite_dfs.items()}
    P.figure_histograms(ref_s, suite_s, out / "score_hist_all.png", reference_name=ref_name)
    P.figure_ranking(table, out / "ranking.png")
    if not mass_col:
        return
    ref_m = I.to_log_mass(ref_df[mass_col].to_numpy(dtype=float), mass_scale)
    ref_b = I.assign_mass_bins(ref_m, edges)
    per_bin = []
    labels = I.mass_bin_labels(edges)
    suite_m = {n: I.to_log_mass(d[mass_col].to_numpy(dtype=float), mass_scale) for n, d in suite_dfs.items()}
    for i, lab in enumerate(labels):
        per_bin.append((lab, ref_s[ref_b == i],
                        {n: suite_s[n][I.assign_mass_bins(suite_m[n], edges) == i] for n in suite_dfs}))
    P.figure_histograms_massbins(per_bin, out / "score_hist_massbins.png", reference_name=ref_name)
    points = {}
    for n, d in suite_dfs.items():
        frame = pd.DataFrame({"score": suite_s[n], "mass": suite_m[n]})
        if group_col and group_col in d.columns:
            frame["group"] = d[group_col].astype(str).to_numpy()
            points[n] = I.group_stats(frame, "score", "group", "mass")
        else:
            points[n] = frame
    P.figure_score_vs_mass(ref_m, ref_s, points, out / "score_vs_mass.png", reference_name=ref_name,
                           mass_edges=edges)
