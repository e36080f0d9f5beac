"""Read score tables with their latents and metadata, rate, write rating.csv, summary.md, the figures and a run record.

This is the body of ``rate.py``: :func:`load_tables` (sources.py: CSVs, ``<stem>_latents.npz``, the images'
``metadata.csv``), :func:`lib.rating.rate` (every statistic), :func:`lib.rating.summary_table` (the two ratings
and the verdict), the figures (plots.py, panels.py).  The statistics themselves stay usable on plain arrays.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lib.fileio import RUN_RECORDS, atomic_write_text, write_run_record, write_table
from lib.rating import compare as comparison
from lib.rating import inputs
from lib.rating import panels
from lib.rating import plots
from lib.rating import ranking_plot
from lib.rating import sources
from lib.rating import table as rating_table
from lib.rating import verdict
from lib.rating.latent import LatentConfig, features_of

RUN_INFO = RUN_RECORDS["rate"]  # rating_run.json

#: Columns shown in rating.md (the CSV has them all).
MD_COLUMNS = ["suite", "mass_bin", "n_images", "n_groups", "mean", "median", "overlap", "overlap_paper",
              "overlap_full", "ks_stat", "ks_pvalue", "c2st_auroc", "c2st_p", "mmd2_p", "warnings"]

parse_named = sources.parse_named  # kept here for callers of the old module layout
read_scores = sources.read_scores


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
            if c in ("mean", "median", "overlap", "c2st_auroc") and np.isfinite(row.get(f"{c}_lo", np.nan)):
                cells.append(f"{_fmt(row[c])} [{_fmt(row[c + '_lo'])}, {_fmt(row[c + '_hi'])}]")
            else:
                cells.append(_fmt(row[c]).replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def load_tables(reference: str, suites: Sequence[str], metadata: Sequence[str] = (),
                features: str = "latent_i") -> tuple[str, dict, dict, list[str]]:
    """Read every score CSV with its metadata and latents.

    Returns
    -------
    ref_name : str
    tables : dict of str to pandas.DataFrame
        Reference first; metadata columns joined when found.
    latents : dict of str to numpy.ndarray
        Features (N, d) of the tables that have latents beside their CSV.
    notes : list of str
        One line per table without latents or with metadata found automatically.
    """
    if not suites:
        raise inputs.RatingError("give at least one --suite NAME=CSV")
    ref_name, ref_path = sources.parse_named(reference)
    named = [(ref_name, ref_path)] + [sources.parse_named(s) for s in suites]
    names = [n for n, _ in named]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise inputs.RatingError(f"duplicate names: {', '.join(dupes)}")
    explicit = dict(sources.parse_named(m) for m in metadata)
    unknown = sorted(set(explicit) - set(names))
    if unknown:
        raise inputs.RatingError(f"--metadata {unknown[0]}=...: no --reference or --suite of that name")
    tables, latents, notes, found_meta, no_latents = {}, {}, [], [], []
    for name, path in named:
        df = sources.read_scores(path, name)
        found = sources.find_metadata(path, name, explicit.get(name))
        if found is not None:
            meta, folder, source = found
            df = sources.attach_metadata(df, meta, folder, name, source)
            if name not in explicit:
                found_meta.append(f"{name}: {source}")
        arrays = sources.read_latents(path, df, name)
        if arrays is None:
            no_latents.append(f"{name}: no latents beside {path} ({sources.latents_path(path).name})")
        else:
            latents[name] = features_of(arrays, features)
        tables[name] = df
    if found_meta:
        more = f" (and {len(found_meta) - 1} more tables likewise)" if len(found_meta) > 1 else ""
        notes.append(f"metadata found through test.py's run record: {found_meta[0]}{more}")
    if no_latents:
        more = f" (and {len(no_latents) - 1} more tables)" if len(no_latents) > 1 else ""
        notes.append(f"{no_latents[0]}{more}: A statistics only")
    return ref_name, tables, latents, notes


def run_rating(reference: str, suites: Sequence[str], out: str | os.PathLike, score_col: str = "ascore",
               mass_col: str | None = None, mass_scale: str = "log", group_col: str | None = None,
               mass_bins: Sequence[float] | None = None, n_boot: int = 1000, seed: int = 0,
               figures: bool = True, metadata: Sequence[str] = (),
               latent_config: LatentConfig | None = None, compare: bool = True) -> pd.DataFrame:
    """Rate score CSVs and write every output into ``out``.

    Parameters
    ----------
    reference : str
        ``NAME=CSV`` of the observed scores.
    suites : sequence of str
        ``NAME=CSV`` of each simulation suite.
    out : path-like
        Output folder (created).  Written: ``rating.csv`` (every statistic), ``rating.md``,
        ``summary.md`` (per suite and mass bin: the A rating, the latent rating, the verdict),
        ``rating_run.json`` (options, classifier, folds, seed, notes, versions) and the figures.
    score_col, mass_col, mass_scale, group_col, mass_bins, n_boot, seed
        See :func:`lib.rating.rate`.  Without ``mass_col``, ``logmstar`` is used when every table
        has it (from its metadata); without ``group_col``, ``galaxy`` when a table has it.
    metadata : sequence of str
        ``NAME=CSV`` metadata files (columns ``file``, ``galaxy``, ``logmstar`` ...); a table without
        one gets the ``metadata.csv`` of the image folder its ``<stem>_run.json`` names, if any.
    latent_config : LatentConfig, optional
        The latent statistics' settings (default ``LatentConfig(seed=seed)``).

    Returns
    -------
    pandas.DataFrame
        The rating table; ``table.attrs['notes']`` (lines for the user) and ``['summary']``.

    Raises
    ------
    lib.rating.RatingError
        Any bad input, before anything is written.
    """
    if n_boot < 0:
        raise inputs.RatingError(f"--n-boot must be >= 0, got {n_boot}")
    cfg = latent_config or LatentConfig(seed=seed)
    ref_name, tables, latents, notes = load_tables(reference, suites, metadata, cfg.features)
    if mass_col is None and all("logmstar" in df.columns for df in tables.values()):
        mass_col, mass_scale = "logmstar", "log"
        notes.append("mass bins by 'logmstar' (log10 M*/Msun) from the metadata")
    if group_col is None and any("galaxy" in df.columns for df in tables.values()):
        group_col = "galaxy"
        notes.append("images grouped by 'galaxy' from the metadata")
    edges = list(mass_bins) if mass_bins else list(inputs.PAPER_MASS_EDGES)
    ref_df = tables[ref_name]
    suite_dfs = {n: d for n, d in tables.items() if n != ref_name}
    table = rating_table.rate(ref_df, suite_dfs, reference_name=ref_name, score_col=score_col, mass_col=mass_col,
                   mass_scale=mass_scale, group_col=group_col, mass_edges=edges, n_boot=n_boot, seed=seed,
                   latents=latents, latent_config=cfg)
    summary = verdict.summary_table(table)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "rating.csv", table)
    atomic_write_text(out / "rating.md", to_markdown(table))
    summary_md = verdict.summary_markdown(summary, table)
    if compare and n_boot > 0:  # suites against each other: ranking.csv, pairwise.csv (lib/rating/compare.py)
        ccfg = comparison.CompareConfig(n_boot=min(n_boot, 200), seed=seed, n_folds=cfg.n_folds, ridge=cfg.ridge)
        summary_md += _write_comparison(out, ref_name, tables, latents, score_col, mass_col, mass_scale,
                                        group_col, edges, ccfg, table, figures)
    atomic_write_text(out / "summary.md", summary_md)
    record = {"reference": reference, "suites": list(suites), "metadata": list(metadata), "score_col": score_col,
              "mass_col": mass_col, "mass_scale": mass_scale, "group_col": group_col,
              "mass_bins": edges if mass_col else None, "n_boot": n_boot, "seed": seed,
              "overlap_bins": "linspace(0, 0.1, 100)", "latent": cfg.record(),
              "tables_with_latents": sorted(latents), "notes": notes}
    write_run_record(out / RUN_INFO, record, indent=1)
    if figures:
        _figures(table, ref_name, ref_df, suite_dfs, out, score_col, mass_col, mass_scale, group_col, edges, latents)
    table.attrs["notes"] = notes
    table.attrs["summary"] = summary
    return table


def _write_comparison(out: Path, ref_name: str, tables: dict, latents: dict, score_col: str, mass_col: str | None,
                      mass_scale: str, group_col: str | None, edges: Sequence[float],
                      ccfg: "comparison.CompareConfig", table: pd.DataFrame, figures: bool = True) -> str:
    """Write ranking.csv (with the misspecification check against ``table``'s null bands), pairwise.csv and
    rank_probabilities[_<bin>].png; return the ranking paragraph for summary.md."""
    data = {}
    for name, df in tables.items():
        data[name] = inputs.extract_table(df, name, score_col, mass_col, mass_scale, group_col, name == ref_name)
        data[name]["latent"] = latents.get(name)
    bins = [("all", None)]
    if mass_col:
        inputs.finalize_bins(data, edges)
        bins += [(lab, i) for i, lab in enumerate(inputs.mass_bin_labels(edges))]
    ref = data.pop(ref_name)
    ranking, pairwise = comparison.compare_suites(ref, data, ccfg, bins)
    ranking = comparison.mark_separable(ranking, table)
    write_table(out / "ranking.csv", ranking)
    write_table(out / "pairwise.csv", pairwise)
    if figures and not ranking.empty:
        for label in dict.fromkeys(ranking["mass_bin"]):
            name = "rank_probabilities.png" if label == "all" else f"rank_probabilities_{label}.png"
            stats = set(ranking.loc[ranking["mass_bin"] == label, "statistic"])
            ranking_plot.figure_rank_probabilities(ranking, out / name, mass_bin=label,
                                                   statistic="c2st_auroc" if "c2st_auroc" in stats else "overlap")
    return comparison.ranking_paragraph(ranking, ccfg)


def _figures(table: pd.DataFrame, ref_name: str, ref_df: pd.DataFrame, suite_dfs: dict, out: Path,
             score_col: str, mass_col: str | None, mass_scale: str, group_col: str | None,
             edges: Sequence[float], latents: dict) -> None:
    """Write the PNG figures of one rating run.

    ``ranking.png`` (forest plot of both ratings), ``score_ecdf_<bin>.png`` (one per mass bin, one
    panel per suite), ``latent_pca.png`` (when the reference has latents) and, with masses,
    ``score_vs_mass.png`` (one panel per suite beyond four suites).
    """
    plots.figure_ranking(table, out / "ranking.png")
    ref_s = ref_df[score_col].to_numpy(dtype=float)
    suite_s = {n: d[score_col].to_numpy(dtype=float) for n, d in suite_dfs.items()}
    labels = inputs.mass_bin_labels(edges) if mass_col else []
    ref_m = inputs.to_log_mass(ref_df[mass_col].to_numpy(dtype=float), mass_scale) if mass_col else None
    suite_m = ({n: inputs.to_log_mass(d[mass_col].to_numpy(dtype=float), mass_scale) for n, d in suite_dfs.items()}
               if mass_col else {})
    for b, label in [(None, "all")] + list(enumerate(labels)):
        rows = table[(table["mass_bin"] == label) & (table["role"] == "suite")].set_index("suite")
        notes = {n: _panel_note(rows.loc[n]) for n in suite_dfs}
        few = {n: bool(rows.loc[n, "too_few"]) for n in suite_dfs}
        if b is None:
            ref_b, s_b = ref_s, suite_s
        else:
            ref_b = ref_s[inputs.assign_mass_bins(ref_m, edges) == b]
            s_b = {n: suite_s[n][inputs.assign_mass_bins(suite_m[n], edges) == b] for n in suite_dfs}
        title = "all masses" if b is None else f"log M* in [{label})"
        panels.figure_ecdf_grid(ref_b, s_b, out / f"score_ecdf_{label}.png", reference_name=ref_name, title=title,
                            notes=notes, few=few)
    if ref_name in latents:
        rows = table[(table["mass_bin"] == "all") & (table["role"] == "suite")].set_index("suite")
        z = {n: latents.get(n, np.zeros((0, latents[ref_name].shape[1]))) for n in suite_dfs}
        notes = {n: (f"C2ST AUROC {rows.loc[n, 'c2st_auroc']:.2f}" if np.isfinite(rows.loc[n, "c2st_auroc"])
                     else "no latents") for n in suite_dfs}
        panels.figure_latent_pca(latents[ref_name], z, out / "latent_pca.png", reference_name=ref_name, notes=notes)
    if not mass_col:
        return
    points = {}
    for n, d in suite_dfs.items():
        frame = pd.DataFrame({"score": suite_s[n], "mass": suite_m[n]})
        if group_col and group_col in d.columns and d[group_col].nunique() < len(d):
            frame["group"] = d[group_col].astype(str).to_numpy()
            points[n] = inputs.group_stats(frame, "score", "group", "mass")
        else:
            points[n] = frame
    if len(points) > 4:  # one panel per suite: overlaid colours stop being readable
        panels.figure_score_vs_mass_grid(ref_m, ref_s, points, out / "score_vs_mass.png", reference_name=ref_name,
                                     mass_edges=edges)
    else:
        plots.figure_score_vs_mass(ref_m, ref_s, points, out / "score_vs_mass.png", reference_name=ref_name,
                               mass_edges=edges)


def _panel_note(row: pd.Series) -> str:
    """Two short lines for a suite's panel: the A rating and the latent rating."""
    text = f"overlap {row['overlap']:.2f}" if np.isfinite(row["overlap"]) else "overlap n/a"
    if np.isfinite(row["c2st_auroc"]):
        text += f"\nC2ST {row['c2st_auroc']:.2f}"
    return text
