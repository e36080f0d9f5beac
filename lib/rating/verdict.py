"""The verdict: in which respects a suite differs from the observed images, and the summary table.

**The rule (one, for every suite).**  Each row (a suite in one mass bin, or all masses) has up to three
permutation p-values: KS on A (``ks_pvalue``), C2ST on the latents (``c2st_p``) and MMD (``mmd2_p``), each
computed on one random image per galaxy (lib/rating/permutation.py).  The family is the *suite*: every
p-value of all its rows (all masses and each mass bin, three statistics each; m tests).  The
Benjamini-Hochberg step-up procedure (Benjamini & Hochberg 1995, JRSS B 57, 289) at :data:`ALPHA` over that
family decides which (row, statistic) flags: with the p-values sorted, the k smallest flag, where k is the
largest i with p_(i) <= i x ALPHA / m.  Two guarantees follow, for tests that are positively dependent as
these are (the same images in "all masses" and in a bin; Simes 1986, Biometrika 73, 751; Benjamini &
Yekutieli 2001, Ann. Statist. 29, 1165):

* a suite that does not differ from the reference in any bin gets *any* flag with probability at most
  ALPHA (5 %): over S such suites at most ALPHA x S are expected with a flag
  (:func:`expected_false_flags`, printed under the summary); its Simes p-value (``suite_p``, the smallest
  BH-adjusted p of its family, the same on all its rows) says how far it is from that;
* among a suite's flags, the expected fraction of false ones is at most ALPHA.

Why the suite and not the row, nor the whole table: the question a simulator asks is "does this model differ
from SDSS, and where?"; per row (Holm over three tests, this project's earlier rule) a model that does not
differ is flagged somewhere with probability up to 1 - 0.95^(bins+1), and over the whole table BH lets the
many large differences of other suites carry a null suite's flag through.  The price: one test alone flags
only when its p <= ALPHA / m, so the permutations must resolve it (n_perm >= m / ALPHA, 300 for 4 mass bins).
Each flag becomes a phrase:

* KS on A -> "harder to reconstruct (median A x1.8)" or "easier to reconstruct (median A x0.6)";
* C2ST on the latents -> "separable in latent space (AUROC 0.89)";
* MMD on the latents, when C2ST does not flag -> "latent distribution differs (MMD)".

A row without any p-value (e.g. one image) reads "not tested".
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import pandas as pd

#: Level of the rule: a suite that does not differ is flagged anywhere with probability at most ALPHA.
ALPHA = 0.05
#: The p-value columns one verdict combines.
TESTS = ("ks_pvalue", "c2st_p", "mmd2_p")


def bh_flags(pvalues: Mapping[Hashable, float], alpha: float = ALPHA) -> dict[Hashable, bool]:
    """Benjamini-Hochberg step-up decisions for a family of p-values (NaN = not tested, never flagged)."""
    present = sorted((p, i) for i, (k, p) in enumerate(pvalues.items()) if np.isfinite(p))
    keys = list(pvalues)
    m = len(present)
    k = max((j + 1 for j, (p, _) in enumerate(present) if p <= (j + 1) * alpha / m), default=0)
    flags = {key: False for key in keys}
    for _, i in present[:k]:
        flags[keys[i]] = True
    return flags


def simes_p(pvalues) -> float:
    """Simes' combined p-value of a family, min_i m p_(i) / i (NaN if no test): BH flags anything iff it is <= ALPHA."""
    p = np.sort(np.asarray([v for v in pvalues if np.isfinite(v)], dtype=float))
    if p.size == 0:
        return np.nan
    return float(min(1.0, np.min(p * p.size / np.arange(1, p.size + 1))))


def _families(table: pd.DataFrame):
    """(row indices, {(row index, test): p}) per suite (the reference's own rows are no family)."""
    rows = table[table["role"] != "reference"]
    for _, fam in rows.groupby(["role", "suite"], sort=False):
        yield fam.index, {(i, t): float(fam.at[i, t]) if t in fam.columns and pd.notna(fam.at[i, t]) else np.nan
                          for i in fam.index for t in TESTS}


def verdict(row, flags: Mapping[str, bool] | None = None) -> str:
    """One line saying in which respects a rating row differs from its reference.

    ``flags`` (test column -> flagged) come from the suite's family (:func:`table_verdicts`); without them
    the row is its own family (BH over its own p-values).
    """
    if not row.get("n_images"):
        return "no images"
    ps = {k: float(row.get(k, np.nan)) for k in TESTS}
    if not any(np.isfinite(p) for p in ps.values()):
        return f"not tested (n={row['n_images']})"
    flag = bh_flags(ps) if flags is None else flags
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


def table_verdicts(table: pd.DataFrame) -> tuple[list[str], list[float]]:
    """The verdict and the suite's Simes p of every row of a rating table ('' and NaN for the reference's rows)."""
    verdicts = pd.Series("", index=table.index, dtype=object)
    suite_p = pd.Series(np.nan, index=table.index)
    for index, family in _families(table):
        flags = bh_flags(family)
        suite_p[index] = simes_p(family.values())
        for i in index:
            verdicts[i] = verdict(table.loc[i], {t: flags[(i, t)] for t in TESTS})
    return verdicts.tolist(), suite_p.tolist()


def expected_false_flags(table: pd.DataFrame, alpha: float = ALPHA) -> tuple[int, float]:
    """Tested suites S (the half-vs-half null included) and the bound alpha x S on suites flagged if none differed."""
    tested = sum(any(np.isfinite(p) for p in fam.values()) for _, fam in _families(table))
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
    lines += ["", f"Verdict rule: Benjamini-Hochberg at {ALPHA:.0%} over all of a suite's permutation p-values (KS on A, "
                  f"C2ST, MMD; all masses and every mass bin; one image per galaxy), so a suite that does not differ "
                  f"is flagged anywhere with probability at most {ALPHA:.0%} (its Simes p-value: `suite_p` in rating.csv)."]
    if table is not None:
        tested, bound = expected_false_flags(table)
        lines.append(f"If no suite differed: at most {bound:.1f} of the {tested} tested suites (the half-vs-half null "
                     f"included) expected with any flag.")
    return "\n".join(lines) + "\n"
