"""Morphology report: statmorph of synthetic cutouts per stellar-mass bin against the paper's SDSS.

    python benchmarks/realism_morphology.py [--n-per-bin 150] [--seed 1] [--quick]
    python benchmarks/realism_morphology.py --folder data/synth/observed   # a generated folder

Measures G, M20, C, A, S, D with statmorph (``lib/rating/morphology.py``'s :func:`measure_image`: the
R channel = i band of the 8-bit JPEG, as the paper did), keeps flag == 0 (the paper's cut), and
compares the median and 16-84 % band per paper mass bin with ``data/anchors/imagebasedA_sdss.csv``
(Jin et al. 2024, SDSS).  A cell passes when the synthetic median lies inside the paper's 16-84 % band
and within a third of its half-width of the paper's median.  The pooled row compares all synthetic
galaxies with the bundled real cutouts (data/sdss_real, no masses) measured the same way.
Writes one table to stdout and a figure (docs/realism_morphology.png).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.realism_common import real_files  # noqa: E402 - the real tile list, shared with realism.py
from lib import galaxies  # noqa: E402
from lib.galaxies import imaging  # noqa: E402
from lib.galaxies.relations import MASS_BINS  # noqa: E402

ANCHORS = os.path.join(ROOT, "data", "anchors", "imagebasedA_sdss.csv")
PARAMS = ("gini", "m20", "concentration", "asymmetry", "smoothness", "deviation")
LABELS = {"gini": "G", "m20": "M20", "concentration": "C", "asymmetry": "A", "smoothness": "S", "deviation": "D"}
GOAL_PARAMS = ("gini", "m20", "concentration", "asymmetry")  # the goal figures
BINS = tuple(MASS_BINS)  # low, mid, high


def load_anchors(path: str = ANCHORS) -> pd.DataFrame:
    """Paper SDSS medians and bands: index (param, mass_bin), columns median, p16, p84."""
    df = pd.read_csv(path, comment="#")
    df = df[df["mass_bin"].isin([*BINS, "all"]) & df["param"].isin(PARAMS)]
    return df.set_index(["param", "mass_bin"])[["median", "p16", "p84"]]


def measure_rgb(rgb: np.ndarray) -> dict:
    """statmorph of one (64, 64, 3) uint8 cutout (R channel); failures give flag 4 and NaNs."""
    from lib.rating.morphology import measure_image
    try:
        m = measure_image(np.asarray(rgb)[..., 0].astype(np.float64))
    except ValueError:  # nothing detected
        return {"flag": 4.0, **{p: np.nan for p in PARAMS}}
    return {"flag": m["flag"], **{p: m[p] for p in PARAMS}}


def sample_per_bin(n_per_bin: int, seed: int, preset: str = "observed", max_draws: int = 200000) -> list[int]:
    """Indices of the first ``n_per_bin`` galaxies of each mass bin (parameters only, no rendering)."""
    _, params = galaxies.load_config(preset)
    want, out = {b: n_per_bin for b in BINS}, []
    for k in range(max_draws):
        b = galaxies.make_image(params, seed, k, render=False)[1]["mass_bin"]
        if want.get(b, 0) > 0:
            want[b] -= 1
            out.append(k)
            if not any(want.values()):
                break
    return out


def measure_synthetic(indices: list[int], seed: int, preset: str = "observed") -> pd.DataFrame:
    """Render the given population indices (through a JPEG, as stored) and measure them."""
    _, params = galaxies.load_config(preset)
    rows = []
    for k in indices:
        rgb, row = galaxies.make_image(params, seed, k)
        rows.append({"index": k, "logmstar": row["logmstar"], "mass_bin": row["mass_bin"],
                     **measure_rgb(imaging.jpeg_roundtrip(rgb))})
    return pd.DataFrame(rows)


def measure_folder(folder: str) -> pd.DataFrame:
    """Measure a folder written by ``galaxies.generate`` (its metadata.csv gives the masses)."""
    from PIL import Image
    meta = pd.read_csv(os.path.join(folder, galaxies.METADATA))
    rows = []
    for _, r in meta.iterrows():
        rgb = np.asarray(Image.open(os.path.join(folder, r["file"])).convert("RGB"))
        rows.append({"file": r["file"], "logmstar": r["logmstar"], "mass_bin": r["mass_bin"], **measure_rgb(rgb)})
    return pd.DataFrame(rows)


def measure_real(files: list[str]) -> pd.DataFrame:
    from PIL import Image
    return pd.DataFrame([{"file": os.path.basename(f), **measure_rgb(np.asarray(Image.open(f).convert("RGB")))}
                         for f in files])


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Median, 16th and 84th percentile and count of each parameter for flag == 0 rows."""
    ok = df[df["flag"] == 0]
    rows = []
    for p in PARAMS:
        v = ok[p].dropna().to_numpy()
        q = np.percentile(v, [16, 50, 84]) if len(v) else (np.nan,) * 3
        rows.append({"param": p, "p16": q[0], "median": q[1], "p84": q[2], "n": len(v)})
    return pd.DataFrame(rows).set_index("param")


def passes(med: float, ref: pd.Series) -> tuple[bool, bool]:
    """(inside the paper's 16-84 % band, within a third of its half-width of the paper's median)."""
    half = 0.5 * (ref["p84"] - ref["p16"])
    return bool(ref["p16"] <= med <= ref["p84"]), bool(abs(med - ref["median"]) <= half / 3)


def report(syn: pd.DataFrame, real: pd.DataFrame | None = None, anchors: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (mass bin, parameter): synthetic and paper median / band, and the pass verdict.

    ``syn`` needs columns mass_bin, flag and :data:`PARAMS`; ``real`` (optional) the bundled real
    cutouts, compared in the ``pooled`` rows against all synthetic galaxies.
    """
    anchors = load_anchors() if anchors is None else anchors
    rows = []
    for b in BINS:
        s = summarise(syn[syn["mass_bin"] == b])
        for p in PARAMS:
            ref = anchors.loc[(p, b)]
            inside, close = passes(s.loc[p, "median"], ref)
            rows.append({"bin": b, "param": LABELS[p], "n": int(s.loc[p, "n"]), "syn_median": s.loc[p, "median"],
                         "syn_p16": s.loc[p, "p16"], "syn_p84": s.loc[p, "p84"], "ref_median": ref["median"],
                         "ref_p16": ref["p16"], "ref_p84": ref["p84"], "in_band": inside, "within_third": close,
                         "goal": p in GOAL_PARAMS, "pass": inside and close})
    if real is not None and len(real):
        s, r = summarise(syn), summarise(real)
        for p in PARAMS:
            inside, close = passes(s.loc[p, "median"], r.loc[p])
            rows.append({"bin": "pooled", "param": LABELS[p], "n": int(s.loc[p, "n"]),
                         "syn_median": s.loc[p, "median"], "syn_p16": s.loc[p, "p16"], "syn_p84": s.loc[p, "p84"],
                         "ref_median": r.loc[p, "median"], "ref_p16": r.loc[p, "p16"], "ref_p84": r.loc[p, "p84"],
                         "in_band": inside, "within_third": close, "goal": False, "pass": inside and close})
    return pd.DataFrame(rows)


def format_table(rep: pd.DataFrame) -> str:
    """The report as one fixed-width text table (``pooled`` compares with the real tiles)."""
    lines = [f"{'bin':<7}{'stat':<5}{'n':>4}  {'synthetic median [16, 84]':<27}{'reference median [16, 84]':<28}"
             f"{'in band':>8}{'<=1/3':>7}{'goal':>6}"]
    for _, r in rep.iterrows():
        syn = f"{r.syn_median:7.3f} [{r.syn_p16:6.3f},{r.syn_p84:6.3f}]"
        ref = f"{r.ref_median:7.3f} [{r.ref_p16:6.3f},{r.ref_p84:6.3f}]"
        verdict = ("PASS" if r["pass"] else "fail") if r.goal else ""
        lines.append(f"{r.bin:<7}{r.param:<5}{r.n:>4}  {syn:<27}{ref:<28}{'yes' if r.in_band else 'no':>8}"
                     f"{'yes' if r.within_third else 'no':>7}{verdict:>6}")
    goal = rep[rep.goal]
    lines.append(f"goal cells passing (G, M20, C, A x low/mid/high): {int(goal['pass'].sum())} / {len(goal)}; "
                 "reference = Jin et al. 2024 SDSS (data/anchors), pooled = bundled real tiles")
    return "\n".join(lines)


def save_figure(rep: pd.DataFrame, path: str) -> None:
    """Synthetic vs SDSS per mass bin: medians (points) and 16-84 % bands (bars), one panel per parameter."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(10, 6), constrained_layout=True)
    x = np.arange(len(BINS) + 1)
    names = [*BINS, "pooled\n(real tiles)"]
    for ax, p in zip(axes.ravel(), PARAMS):
        d = rep[rep.param == LABELS[p]].set_index("bin").reindex([*BINS, "pooled"])
        ax.errorbar(x - 0.1, d.ref_median, yerr=[d.ref_median - d.ref_p16, d.ref_p84 - d.ref_median], fmt="o",
                    color="tab:blue", capsize=4, label="SDSS (paper; real tiles for pooled)")
        ax.errorbar(x + 0.1, d.syn_median, yerr=[d.syn_median - d.syn_p16, d.syn_p84 - d.syn_median], fmt="s",
                    color="tab:orange", capsize=4, label="synthetic observed")
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi + 0.12 * (hi - lo))  # headroom: pass/fail labels above the bars, not on them
        for k, b in enumerate(BINS):
            if p in GOAL_PARAMS:
                ax.text(k, ax.get_ylim()[1], "pass" if d.loc[b, "pass"] else "fail", ha="center", va="top",
                        fontsize=8, color="green" if d.loc[b, "pass"] else "red")
        ax.set_xticks(x, names, fontsize=8)
        ax.set_title(f"{LABELS[p]} ({p})", fontsize=10)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8)
    fig.suptitle("statmorph on the JPEG i band (R channel): median and 16-84 % per paper mass bin", fontsize=10)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-per-bin", type=int, default=150, help="synthetic galaxies per mass bin")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--preset", default="observed")
    ap.add_argument("--folder", default=None, help="measure a generated folder instead of drawing new galaxies")
    ap.add_argument("--quick", action="store_true", help="8 galaxies per bin, no figure (test suite)")
    ap.add_argument("--figure", default=os.path.join(ROOT, "docs", "realism_morphology.png"))
    args = ap.parse_args(argv)
    n = 8 if args.quick else args.n_per_bin
    syn = (measure_folder(args.folder) if args.folder else
           measure_synthetic(sample_per_bin(n, args.seed, args.preset), args.seed, args.preset))
    rep = report(syn, measure_real(real_files()))
    print(format_table(rep))
    if not args.quick:
        save_figure(rep, args.figure)
        print(f"figure: {os.path.relpath(args.figure, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
