"""The verdict: in which respects a suite differs from the observed images, and the summary table.

A statistic *flags* a difference when it lies beyond the upper edge of its null band
(the 97.5th percentile of its permutation distribution at the row's sample sizes, a
one-sided test at 2.5 %); without permutations the p-values decide at :data:`ALPHA`.
Each flag becomes a phrase of the one-line verdict:

* KS of the A distributions -> "harder to reconstruct (median A x1.8)" or
  "easier to reconstruct (median A x0.6)" (the paper's A sees this);
* C2ST on the latents -> "separable in latent space (AUROC 0.89)";
* MMD on the latents, when C2ST does not flag -> "latent distribution differs (MMD)".

No test is corrected for multiplicity: with 21 suites x 4 mass bins a few flags at the
2.5 % level are expected by chance; the printed null row shows the size of that noise.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: Level of the p-value fallback (rows without permutation null bands).
ALPHA = 0.01


def _beyond(row, stat: str, p_col: str) -> bool:
    v, q = row.get(stat, np.nan), row.get(f"{stat}_null_q975", np.nan)
    if np.isfinite(v) and np.isfinite(q):
        return bool(v > q)
    p = row.get(p_col, np.nan)
    return bool(np.isfinite(p) and p < ALPHA)


def verdict(row) -> str:
    """One line saying in which respects a rating row differs from its reference.

    Parameters
    ----------
    row : mapping
        A row of :func:`lib.rating.rate` (needs ``n_images, too_few, median_ratio, ks_stat,
        ks_pvalue, c2st_auroc, c2st_p, mmd2, mmd2_p`` and their null bands).
    """
    if not row.get("n_images"):
        return "no images"
    parts = []
    if _beyond(row, "ks_stat", "ks_pvalue"):
        ratio = row.get("median_ratio", np.nan)
        harder = not np.isfinite(ratio) or ratio >= 1
        parts.append(f"{'harder' if harder else 'easier'} to reconstruct (median A x{ratio:.2g})")
    if _beyond(row, "c2st_auroc", "c2st_p"):
        parts.append(f"separable in latent space (AUROC {row['c2st_auroc']:.2f})")
    elif _beyond(row, "mmd2", "mmd2_p"):
        parts.append("latent distribution differs (MMD)")
    text = "; ".join(parts) if parts else "no difference detected"
    if not np.isfinite(row.get("c2st_auroc", np.nan)) and not row.get("too_few"):
        text += " (A only: no latents)"
    if row.get("too_few"):
        text = f"too few images (n={row['n_images']}): {text}"
    return text


def _iv(est, lo, hi, digits: int = 2) -> str:
    if not np.isfinite(est):
        return ""
    if np.isfinite(lo) and np.isfinite(hi):
        return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{est:.{digits}f}"


def _band(lo, hi, digits: int = 2) -> str:
    return f"{lo:.{digits}f}-{hi:.{digits}f}" if np.isfinite(lo) and np.isfinite(hi) else ""


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per suite and mass bin: the A-based rating, the latent rating, their null bands and the verdict.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`lib.rating.rate` (the reference's own rows are left out; the null rows stay,
        so that a reader sees what "no difference" gives at this sample size).

    Returns
    -------
    pandas.DataFrame
        String cells: ``suite, mass_bin, n`` (images/galaxies, ``*`` = too few),
        ``A: overlap [95%]`` (bias-corrected, with its interval), ``A: paper overlap (null band)``,
        ``latent: C2ST AUROC [95%]``, ``latent: C2ST p (null band)`` and ``verdict``.
    """
    rows = []
    for _, r in table[table["role"] != "reference"].iterrows():
        g = r["n_groups"]
        n = f"{r['n_images']}" + ("" if pd.isna(g) else f"/{g}") + ("*" if r["too_few"] else "")
        paper = "" if not np.isfinite(r["overlap_paper"]) else f"{r['overlap_paper']:.2f}"
        band = _band(r["overlap_paper_null_q025"], r["overlap_paper_null_q975"])
        cband = _band(r["c2st_auroc_null_q025"], r["c2st_auroc_null_q975"])
        p = "" if not np.isfinite(r["c2st_p"]) else f"{r['c2st_p']:.3f}"
        rows.append({"suite": r["suite"], "mass_bin": r["mass_bin"], "n": n,
                     "A: overlap [95%]": _iv(r["overlap"], r["overlap_lo"], r["overlap_hi"]),
                     "A: paper overlap (null band)": f"{paper} ({band})" if band else paper,
                     "latent: C2ST AUROC [95%]": _iv(r["c2st_auroc"], r["c2st_auroc_lo"], r["c2st_auroc_hi"]),
                     "latent: C2ST p (null band)": f"{p} ({cband})" if cband else p,
                     "verdict": r["verdict"]})
    return pd.DataFrame(rows)


def summary_markdown(summary: pd.DataFrame) -> str:
    """The summary table as GitHub Markdown."""
    cols = list(summary.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in summary.iterrows():
        lines.append("| " + " | ".join(str(r[c]).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines) + "\n"
