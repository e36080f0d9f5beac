"""The verdict: in which respects a suite differs from the observed images, and the summary table.

**The rule (one, for every row).**  Each row has up to three permutation p-values: KS on A
(``ks_pvalue``), C2ST on the latents (``c2st_p``) and MMD (``mmd2_p``), each computed on one random
image per galaxy (lib/rating/permutation.py).  Holm's step-down procedure (Holm 1979, Scand. J.
Statist. 6, 65) over a row's p-values at :data:`ALPHA` decides which statistics flag: the smallest
p is compared with ALPHA / k, the next with ALPHA / (k - 1), ... (k: p-values present).  A row that
does not differ is therefore flagged with probability at most ALPHA (5 %), whatever its statistics'
dependence; over a table of R tested rows that do not differ, at most ALPHA x R false flags are
expected (:func:`expected_false_flags`, printed under the summary).  Each flag becomes a phrase:

* KS on A -> "harder to reconstruct (median A x1.8)" or "easier to reconstruct (median A x0.6)";
* C2ST on the latents -> "separable in latent space (AUROC 0.89)";
* MMD on the latents, when C2ST does not flag -> "latent distribution differs (MMD)".

A row without any p-value (e.g. one image) reads "not tested".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: False-alarm rate of one row's verdict (Holm over the row's tests).
ALPHA = 0.05
#: The p-value columns one verdict combines.
TESTS = ("ks_pvalue", "c2st_p", "mmd2_p")


def holm_flags(pvalues: dict[str, float], alpha: float = ALPHA) -> dict[str, bool]:
    """Holm's step-down decisions for a few p-values (NaN = not tested, never flagged)."""
    present = sorted((p, k) for k, p in pvalues.items() if np.isfinite(p))
    flags = {k: False for k in pvalues}
    for i, (p, k) in enumerate(present):
        if p > alpha / (len(present) - i):
            break
        flags[k] = True
    return flags


def verdict(row) -> str:
    """One line saying in which respects a rating row differs from its reference (see the module's rule)."""
    if not row.get("n_images"):
        return "no images"
    ps = {k: float(row.get(k, np.nan)) for k in TESTS}
    if not any(np.isfinite(p) for p in ps.values()):
        return f"not tested (n={row['n_images']})"
    flag = holm_flags(ps)
    parts = []
    if flag["ks_pvalue"]:
        ratio = row.get("median_ratio", np.nan)
        harder = not np.isfinite(ratio) or ratio >= 1
        parts.append(f"{'harder' if harder else 'easier'} to reconstruct (median A x{ratio:.2g})")
    if flag["c2st_p"]:
        parts.append(f"separable in latent space (AUROC {row['c2st_auroc']:.2f})")
    elif flag["mmd2_p"]:
        parts.append("latent distribution differs (MMD)")
    text = "; ".join(parts) if parts else "no difference detected"
    if not np.isfinite(row.get("c2st_auroc", np.nan)) and not row.get("too_few"):
        text += " (A only: no latents)"
    if row.get("too_few"):
        text = f"too few images (n={row['n_images']}): {text}"
    return text


def table_verdicts(table: pd.DataFrame) -> list[str]:
    """The verdict of every row of a rating table ('' for the reference's own rows)."""
    return ["" if r["role"] == "reference" else verdict(r) for _, r in table.iterrows()]


def expected_false_flags(table: pd.DataFrame, alpha: float = ALPHA) -> tuple[int, float]:
    """Tested non-reference rows R and the bound alpha x R on false flags if none of them differed."""
    rows = table[table["role"] != "reference"]
    tested = int(rows[list(TESTS)].notna().any(axis=1).sum())
    return tested, alpha * tested


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
        String cells: ``model`` (:func:`model_of`; rows of one model kept together, in the order the
        models first appear; left out when no two suites share a model), ``suite, mass_bin, n`` (images/galaxies, ``*`` = too few),
        ``A: overlap [95%]`` (relative to its ceiling, with its interval), ``A: paper overlap (null band)``,
        ``latent: C2ST AUROC [95%]``, ``C2ST AUROC null band``, ``p: KS / C2ST / MMD`` and ``verdict``.
    """
    rows = []
    for _, r in table[table["role"] != "reference"].iterrows():
        g = r["n_groups"]
        n = f"{r['n_images']}" + ("" if pd.isna(g) else f"/{g}") + ("*" if r["too_few"] else "")
        paper = "" if not np.isfinite(r["overlap_paper"]) else f"{r['overlap_paper']:.2f}"
        band = _band(r["overlap_paper_null_q025"], r["overlap_paper_null_q975"])
        cband = _band(r["c2st_auroc_null_q025"], r["c2st_auroc_null_q975"])
        p = " / ".join("-" if not np.isfinite(r[k]) else f"{r[k]:.3f}" for k in TESTS)
        rows.append({"model": "", "suite": r["suite"], "mass_bin": r["mass_bin"], "n": n,
                     "A: overlap [95%]": _iv(r["overlap"], r["overlap_lo"], r["overlap_hi"]),
                     "A: paper overlap (null band)": f"{paper} ({band})" if band else paper,
                     "latent: C2ST AUROC [95%]": _iv(r["c2st_auroc"], r["c2st_auroc_lo"], r["c2st_auroc_hi"]),
                     "C2ST AUROC null band": cband,
                     "p: KS / C2ST / MMD": p,
                     "verdict": r["verdict"]})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    models = model_of(list(dict.fromkeys(out["suite"])))
    out["model"] = out["suite"].map(models)
    if (out["model"] == out["suite"]).all():  # no two suites of one model: the column says nothing
        return out.drop(columns="model")
    first = {m: i for i, m in reversed(list(enumerate(out["model"])))}
    return out.iloc[sorted(range(len(out)), key=lambda i: (first[out["model"].iat[i]], i))].reset_index(drop=True)


def model_of(suites: list[str]) -> dict[str, str]:
    """Each suite's model: the name before its last ``_`` when another suite shares that prefix
    (``NIHAO_noAGN_1``, ``NIHAO_noAGN_2`` -> ``NIHAO_noAGN``), else the suite's own name."""
    prefix = {s: s.rsplit("_", 1)[0] if "_" in s else s for s in suites}
    counts = pd.Series(list(prefix.values())).value_counts()
    return {s: p if counts[p] > 1 else s for s, p in prefix.items()}


def summary_markdown(summary: pd.DataFrame, table: pd.DataFrame | None = None) -> str:
    """The summary table as GitHub Markdown, with the verdict's rule (and, given the table, its false-flag bound) below."""
    cols = list(summary.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in summary.iterrows():
        lines.append("| " + " | ".join(str(r[c]).replace("|", "/") for c in cols) + " |")
    lines += ["", f"Verdict rule: Holm's step-down over each row's permutation p-values (KS on A, C2ST, MMD; one "
                  f"image per galaxy), each row's false-alarm rate at most {ALPHA:.0%}."]
    if table is not None:
        tested, bound = expected_false_flags(table)
        lines.append(f"If no suite differed: at most {bound:.1f} false flags expected among the {tested} tested rows.")
    return "\n".join(lines) + "\n"
