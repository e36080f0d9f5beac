"""Realism benchmark: synthetic ``observed`` cutouts against the real SDSS cutouts.

    python benchmarks/realism.py [--n 96] [--n-per-bin 150] [--seed 1] [--draws 5] [--quick]

Three parts, printed one after the other:
1. the image statistics below, real vs synthetic (median and interquartile range);
2. the realism classifier: a logistic regression on those statistics, *calibrated* (fitted) on the
   even-numbered half of the sorted real tiles (tile_00, tile_04, ..., 16 tiles) against ``--n``
   synthetic cutouts, and *reported* (AUROC, Hanley & McNeil 1982 standard error) on the other half
   (tile_02, tile_06, ..., 16 tiles) against ``--n`` other synthetic cutouts; 0.5 = indistinguishable;
3. the morphology report of benchmarks/realism_morphology.py (statmorph per paper mass bin against
   Jin et al. 2024's SDSS medians and bands; pooled against the real tiles) and its figure.
``--quick`` (about a minute: 32 + 32 synthetic cutouts, 8 per mass bin, no figures) is run by the tests.

Measures, identically on both sets (8-bit RGB, as the network sees them):
* background: sigma-clipped median and standard deviation per channel in 8 px border strips;
* the central galaxy, segmented with photutils on the luminance (mean of R, G, B) at
  3 sigma above the background: flux-weighted colour R/G and B/G, the colour of its 9 brightest
  pixels (core), the concentration
  C = 5 log10(r80/r20), the half-light radius r50 (pixels) and the peak luminance;
* the fraction of cutouts with a neighbour (another segment of >= 8 pixels);
and prints them side by side (median and interquartile range).  It also writes a picture
with the real grid next to a synthetic grid (docs/realism.png).
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from astropy.stats import sigma_clipped_stats  # noqa: E402
from photutils.segmentation import detect_sources  # noqa: E402
from scipy import ndimage  # noqa: E402

from lib import galaxies  # noqa: E402
from lib.galaxies import imaging  # noqa: E402

REAL_GLOBS = ("data/sdss_real/*.png", "data/examples/SDSS_example.png")
FEATURES = ("bg_R", "noise_R", "bg_G", "noise_G", "bg_B", "noise_B", "colour_RG", "colour_BG", "core_RG", "core_BG",
            "C", "r50", "peak", "neighbour")


def real_files() -> list[str]:
    """The bundled real tiles (data/sdss_real/*.png), sorted: the halves of the classifier protocol."""
    return sorted(glob.glob(os.path.join(ROOT, "data", "sdss_real", "*.png")))


def load_real() -> list[np.ndarray]:
    """The bundled real SDSS cutouts as (64, 64, 3) uint8 arrays."""
    files = []
    for pattern in REAL_GLOBS:
        files += sorted(glob.glob(os.path.join(ROOT, pattern)))
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def make_synthetic(n: int, seed: int, preset: str = "observed") -> list[np.ndarray]:
    """``n`` synthetic cutouts, read back through a JPEG file as the real ones are."""
    _, params = galaxies.load_config(preset)
    return [imaging.jpeg_roundtrip(galaxies.make_image(params, seed, k)[0]) for k in range(n)]


def _growth_radius(lum: np.ndarray, cy: float, cx: float, frac: float) -> float:
    yy, xx = np.indices(lum.shape)
    r = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(r)
    cum = np.cumsum(lum.ravel()[order])
    return float(np.interp(frac * cum[-1], cum, r[order]))


def measure(rgb: np.ndarray) -> dict:
    """Statistics of one (64, 64, 3) uint8 cutout (see module docstring)."""
    a = rgb.astype(np.float64)
    border = np.concatenate([a[:8].reshape(-1, 3), a[-8:].reshape(-1, 3)])
    out = {}
    for c, name in enumerate("RGB"):
        _, med, std = sigma_clipped_stats(border[:, c], sigma=3.0)
        out[f"bg_{name}"], out[f"noise_{name}"] = med, std
    lum = a.mean(axis=2)
    _, bg, sig = sigma_clipped_stats(np.concatenate([lum[:8], lum[-8:]]).ravel(), sigma=3.0)
    smooth = ndimage.gaussian_filter(lum - bg, 1.0)
    seg = detect_sources(smooth, threshold=max(3 * sig, 4.0), n_pixels=8)
    h, w = lum.shape
    if seg is None:
        return {**out, "colour_RG": np.nan, "colour_BG": np.nan, "core_RG": np.nan, "core_BG": np.nan,
                "C": np.nan, "r50": np.nan,
                "peak": float(lum.max()), "neighbour": 0.0}
    labels = seg.data
    yy, xx = np.indices(lum.shape)
    dist = {lab: np.hypot(yy[labels == lab] - h / 2, xx[labels == lab] - w / 2).min() for lab in seg.labels}
    main = min(dist, key=dist.get)
    mask = labels == main
    flux = np.clip(a - np.array([out["bg_R"], out["bg_G"], out["bg_B"]]), 0, None)[mask]
    tot = flux.sum(axis=0) + 1e-9
    lm = np.where(mask, np.clip(lum - bg, 0, None), 0.0)
    cy, cx = ndimage.center_of_mass(lm)
    r20, r50, r80 = (_growth_radius(lm, cy, cx, f) for f in (0.2, 0.5, 0.8))
    core = a[mask][np.argsort(lum[mask])[-9:]].mean(axis=0)  # 9 brightest pixels
    out.update(colour_RG=tot[0] / tot[1], colour_BG=tot[2] / tot[1],
               core_RG=core[0] / max(core[1], 1.0), core_BG=core[2] / max(core[1], 1.0),
               C=5 * np.log10(r80 / max(r20, 0.3)), r50=r50, peak=float(lum[mask].max()),
               neighbour=float(len(seg.labels) > 1))
    return out


def summarise(stats: list[dict]) -> dict:
    keys = stats[0].keys()
    res = {}
    for k in keys:
        v = np.array([s[k] for s in stats], dtype=float)
        v = v[np.isfinite(v)]
        if k == "neighbour":
            res[k] = (v.mean(), np.nan, np.nan)
        else:
            res[k] = (np.median(v), *np.percentile(v, [25, 75]))
    return res


def table(real: dict, syn: dict) -> str:
    lines = [f"{'statistic':<14}{'real median [IQR]':>28}{'synthetic median [IQR]':>30}"]
    for k in real:
        if k == "neighbour":
            lines.append(f"{'frac_neighbour':<14}{real[k][0]:>28.2f}{syn[k][0]:>30.2f}")
            continue
        fmt = lambda t: f"{t[0]:7.2f} [{t[1]:6.2f},{t[2]:6.2f}]"  # noqa: E731
        lines.append(f"{k:<14}{fmt(real[k]):>28}{fmt(syn[k]):>30}")
    return "\n".join(lines)


def grid(images: list[np.ndarray], cols: int = 6, rows: int = 5, pad: int = 2) -> np.ndarray:
    out = np.zeros((rows * (64 + pad) - pad, cols * (64 + pad) - pad, 3), np.uint8)
    for k, im in enumerate(images[: cols * rows]):
        r, c = divmod(k, cols)
        out[r * (64 + pad): r * (64 + pad) + 64, c * (64 + pad): c * (64 + pad) + 64] = im
    return out


def save_figure(real: list[np.ndarray], syn: list[np.ndarray], path: str, zoom: int = 2) -> None:
    """Real grid (left) next to synthetic grid (right), labelled, as a small PNG.

    Composed with Pillow at an integer zoom (nearest neighbour), so every cutout pixel
    is shown as it is and the PNG stays small.
    """
    from PIL import ImageDraw
    left, right = grid(real), grid(syn)
    gap, head = 12, 18
    h, w = left.shape[:2]
    canvas = np.full((h + head, 2 * w + gap, 3), 255, np.uint8)
    canvas[head:, :w], canvas[head:, w + gap:] = left, right
    img = Image.fromarray(canvas).resize((canvas.shape[1] * zoom, canvas.shape[0] * zoom), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    draw.text((4, 6), "real SDSS cutouts (data/sdss_real)", fill=(0, 0, 0))
    draw.text(((w + gap) * zoom + 4, 6), "synthetic 'observed' population (lib/galaxies: population.py + imaging.py)",
              fill=(0, 0, 0))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".part"
    img.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)


def _features(stats: list[dict]) -> np.ndarray:
    return np.array([[s[k] for k in FEATURES] for s in stats], dtype=float)


def auroc_with_se(scores_real: np.ndarray, scores_syn: np.ndarray) -> tuple[float, float]:
    """AUROC of synthetic (positive) vs real and its Hanley & McNeil (1982) standard error."""
    from sklearn.metrics import roc_auc_score
    y = np.r_[np.zeros(len(scores_real)), np.ones(len(scores_syn))]
    auc = float(roc_auc_score(y, np.r_[scores_real, scores_syn]))
    n1, n2 = len(scores_syn), len(scores_real)
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    se = math.sqrt((auc * (1 - auc) + (n1 - 1) * (q1 - auc * auc) + (n2 - 1) * (q2 - auc * auc)) / (n1 * n2))
    return auc, se


def classifier_auroc(real_cal: list[dict], syn_cal: list[dict], real_rep: list[dict],
                     syn_rep: list[dict]) -> tuple[float, float]:
    """Fit a logistic regression (standardised statistics, balanced classes) on the calibration
    half, return the AUROC and its standard error on the report half."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x_cal = np.r_[_features(real_cal), _features(syn_cal)]
    fill = np.nanmedian(x_cal, axis=0)  # a cutout without a detected galaxy gets the median

    def clean(x):
        return np.where(np.isfinite(x), x, fill)
    y_cal = np.r_[np.zeros(len(real_cal)), np.ones(len(syn_cal))]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
    clf.fit(clean(x_cal), y_cal)
    return auroc_with_se(clf.decision_function(clean(_features(real_rep))),
                         clf.decision_function(clean(_features(syn_rep))))


def run_classifier(n: int, seed: int, preset: str = "observed") -> tuple[float, float]:
    """The protocol of the module docstring: calibrate on even tiles, report on odd tiles."""
    files = real_files()
    real = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    syn = make_synthetic(2 * n, seed, preset)
    stats_real, stats_syn = [measure(x) for x in real], [measure(x) for x in syn]
    return classifier_auroc(stats_real[0::2], stats_syn[:n], stats_real[1::2], stats_syn[n:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=96, help="synthetic cutouts to generate")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--preset", default="observed")
    ap.add_argument("--figure", default=os.path.join(ROOT, "docs", "realism.png"))
    ap.add_argument("--no-figure", action="store_true")
    ap.add_argument("--n-per-bin", type=int, default=150, help="synthetic galaxies per mass bin (morphology)")
    ap.add_argument("--morph-figure", default=os.path.join(ROOT, "docs", "realism_morphology.png"))
    ap.add_argument("--draws", type=int, default=5, help="synthetic draws for the classifier's spread (the real "
                    "halves fixed; the first is the reported figure)")
    ap.add_argument("--quick", action="store_true", help="32 + 32 cutouts, 8 per mass bin, no figures (~1 min)")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.n_per_bin, args.no_figure, args.draws = 32, 8, True, 1
    real = load_real()
    if not real:
        print("error: no real cutouts under data/sdss_real", file=sys.stderr)
        return 1
    t0 = time.time()
    syn = make_synthetic(args.n, args.seed, args.preset)
    dt = time.time() - t0
    print(f"real cutouts: {len(real)}; synthetic '{args.preset}' cutouts: {len(syn)} "
          f"(seed {args.seed}, {dt:.1f} s, {1000 * dt / len(syn):.0f} ms each)")
    print(table(summarise([measure(x) for x in real]), summarise([measure(x) for x in syn])))
    if not args.no_figure:
        save_figure(real, syn, args.figure)
        print(f"figure: {os.path.relpath(args.figure, ROOT)}")
    auc, se = run_classifier(args.n, args.seed + 1000, args.preset)
    print(f"realism classifier AUROC synthetic vs held-out real tiles: {auc:.3f} +- {se:.3f} "
          f"(calibrated on tiles 0, 2, 4, ... of {len(real_files())} sorted + {args.n} synthetic; "
          f"reported on tiles 1, 3, 5, ... + {args.n} other synthetic; goal <= 0.80)")
    if args.draws > 1:  # the synthetic sample's share of the spread: same real halves, other synthetic seeds
        others = [run_classifier(args.n, args.seed + k + 1000, args.preset)[0] for k in range(1, args.draws)]
        print(f"same protocol, synthetic seeds {args.seed + 1}..{args.seed + args.draws - 1}: "
              + " / ".join(f"{a:.3f}" for a in others) + f"; mean of {args.draws} draws {np.mean([auc, *others]):.3f}")
    from benchmarks import realism_morphology as morph
    syn_m = morph.measure_synthetic(morph.sample_per_bin(args.n_per_bin, args.seed, args.preset), args.seed,
                                    args.preset)
    rep = morph.report(syn_m, morph.measure_real(real_files()))
    print(morph.format_table(rep))
    if not args.no_figure:
        morph.save_figure(rep, args.morph_figure)
        print(f"figure: {os.path.relpath(args.morph_figure, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
