"""Realism benchmark: synthetic ``observed`` cutouts against the real SDSS cutouts.

    python benchmarks/realism.py [--n 96] [--n-per-bin 150] [--seed 1] [--splits 20] [--quick]
    python benchmarks/realism.py --unseen DIR     # also real cutouts that are not in the repository

Printed one after the other:
1. image statistics, real (the 32 bundled tiles, data/sdss_real) vs ``--n`` synthetic (median, IQR);
2. the whole-cutout statistics (benchmarks/realism_common.py: border robust sigma per channel, ln(r80/r20)
   and ln r50 of all the light in the cutout) per set: the bundled tiles, the spread of their random halves,
   the ``--unseen`` set if given, the synthetic cutouts; each synthetic median against the real range;
3. the realism classifier on repeated random halves of the bundled tiles (``--splits``): per split, the
   cross-validated AUROC of real half 1 vs real half 2 (real vs real) and of real half 1 vs as many fresh
   synthetic cutouts, same features, same sample sizes; the spread over the splits and the goal
   (synthetic within 0.03 of real vs real on every split); with ``--unseen``, the same classifier
   bundled vs unseen and synthetic vs unseen;
4. what is tuned on the bundled tiles, with its value (read from the code), and the noise budget and
   outskirts sensitivity of benchmarks/realism_noise.py (the published per-band noise chain to 8-bit
   levels; per-channel border and pixel-to-pixel noise, real against synthetic; the whole-cutout
   statistics of one-ingredient variants);
5. the morphology report of benchmarks/realism_morphology.py (statmorph per paper mass bin against
   Jin et al. 2024's SDSS medians and bands; pooled against the real tiles) and its figure.
``--quick`` (about a minute: 32 synthetic cutouts, 3 splits, 8 per mass bin, no figures) is run by the tests.

Image statistics of part 1, identically on both sets (8-bit RGB, as the network sees them):
* background: sigma-clipped median and standard deviation per channel in 8 px border strips;
* the central galaxy, segmented with photutils on the luminance (mean of R, G, B) at
  3 sigma above the background: flux-weighted colour R/G and B/G, the colour of its 9 brightest
  pixels (core), the concentration
  C = 5 log10(r80/r20), the half-light radius r50 (pixels) and the peak luminance;
* the fraction of cutouts with a neighbour (another segment of >= 8 pixels).
The classifier uses these 14 and the 5 whole-cutout statistics.  It also writes a picture with the
real grid next to a synthetic grid (docs/realism.png).
"""

from __future__ import annotations

import argparse
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

from benchmarks import realism_common as common  # noqa: E402
from lib import galaxies  # noqa: E402
from lib.galaxies import imaging  # noqa: E402

FEATURES = ("bg_R", "noise_R", "bg_G", "noise_G", "bg_B", "noise_B", "colour_RG", "colour_BG", "core_RG", "core_BG",
            "C", "r50", "peak", "neighbour")
GOAL_MARGIN = 0.03  # synthetic vs real AUROC at most this above real vs real, on every split


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


def features(images: list[np.ndarray]) -> tuple[list[dict], np.ndarray]:
    """Part 1's statistics (one dict per cutout) and the classifier's (n, 19) array: those 14 + the 5
    whole-cutout statistics."""
    stats = [measure(x) for x in images]
    whole = [common.whole_cutout(x) for x in images]
    x = np.array([[s[k] for k in FEATURES] + [w[k] for k in common.WHOLE] for s, w in zip(stats, whole)], dtype=float)
    return stats, x


def whole_table(sets: dict[str, np.ndarray], halves: np.ndarray, syn: np.ndarray) -> tuple[str, bool]:
    """Whole-cutout medians per set and the verdict: is each synthetic median inside the real range?

    ``sets``: real set name -> (n, 5) whole-cutout statistics; ``halves``: (k, 5) medians of random
    halves of the bundled tiles; ``syn``: (n, 5).  The real range spans the real sets' medians and the
    16-84 % range of the halves' medians (what a real sample of that size scatters over).
    """
    meds = {name: np.nanmedian(v, axis=0) for name, v in sets.items()}
    h16, h84 = np.percentile(halves, [16, 84], axis=0)
    lo = np.minimum(np.min(list(meds.values()), axis=0), h16)
    hi = np.maximum(np.max(list(meds.values()), axis=0), h84)
    s = np.nanmedian(syn, axis=0)
    lines = [f"{'statistic':<12}" + "".join(f"{n:>16}" for n in meds) + f"{'real halves 16-84':>22}"
             f"{'real range':>20}{'synthetic':>11}  inside"]
    ok_all = True
    for j, k in enumerate(common.WHOLE):
        ok = bool(lo[j] <= s[j] <= hi[j])
        ok_all &= ok
        lines.append(f"{k:<12}" + "".join(f"{meds[n][j]:>16.4f}" for n in meds)
                     + f"{f'{h16[j]:.4f} - {h84[j]:.4f}':>22}{f'{lo[j]:.4f} - {hi[j]:.4f}':>20}{s[j]:>11.4f}"
                     f"  {'yes' if ok else 'NO'}")
    lines.append(f"whole-cutout statistics inside the real range: {'all 5' if ok_all else 'not all'} "
                 f"(sigma in [0, 1] JPEG units; radii in pixels about the cutout centre)")
    return "\n".join(lines), ok_all


def splits_report(res: list[dict]) -> tuple[str, bool]:
    """Part 3's lines from :func:`common.repeated_splits`' result."""
    rr, sy = np.array([r["rr"] for r in res]), np.array([r["syn"] for r in res])
    d = sy - rr
    within = int(np.sum(d <= GOAL_MARGIN))
    lines = ["split  real-vs-real  synthetic-vs-real  difference"]
    lines += [f"{k:>5}{a:>14.3f}{b:>19.3f}{b - a:>+12.3f}" for k, (a, b) in enumerate(zip(rr, sy))]
    lines.append(f"real vs real      AUROC mean {rr.mean():.3f} sd {rr.std(ddof=1) if len(rr) > 1 else 0:.3f} "
                 f"[{rr.min():.3f}, {rr.max():.3f}]")
    lines.append(f"synthetic vs real AUROC mean {sy.mean():.3f} sd {sy.std(ddof=1) if len(sy) > 1 else 0:.3f} "
                 f"[{sy.min():.3f}, {sy.max():.3f}]")
    lines.append(f"difference mean {d.mean():+.3f} [{d.min():+.3f}, {d.max():+.3f}]; splits within {GOAL_MARGIN} "
                 f"of real vs real: {within} / {len(res)} (goal: all)")
    return "\n".join(lines), within == len(res)


def unseen_report(x_bundled: np.ndarray, x_unseen: np.ndarray, x_syn: np.ndarray, repeats: int, seed: int) -> str:
    """Bundled vs unseen and synthetic vs unseen, cross-validated, at the same sample sizes (repeated draws)."""
    m = min(len(x_bundled), len(x_unseen), len(x_syn))
    rng = np.random.default_rng(seed)
    bu, su = [], []
    for k in range(repeats):
        u = x_unseen[rng.permutation(len(x_unseen))[:m]]
        bu.append(common.cv_auroc(u, x_bundled[rng.permutation(len(x_bundled))[:m]], seed + k))
        su.append(common.cv_auroc(u, x_syn[rng.permutation(len(x_syn))[:m]], seed + k))
    bu, su = np.array(bu), np.array(su)
    return (f"unseen set, {m} vs {m} per draw, {repeats} draws: bundled vs unseen AUROC {bu.mean():.3f} "
            f"[{bu.min():.3f}, {bu.max():.3f}]; synthetic vs unseen {su.mean():.3f} [{su.min():.3f}, {su.max():.3f}]; "
            f"difference {np.mean(su - bu):+.3f}")


def tuned_on_tiles() -> str:
    """What is tuned on the bundled tiles, with the values the code uses now."""
    p = galaxies.Params()
    return ("tuned on the bundled tiles (all 32; the splits above report on tiles these were set with): "
            f"imaging.DISPLAY_GAIN = {imaging.DISPLAY_GAIN}, imaging.DISPLAY_NONLINEARITY = "
            f"{imaging.DISPLAY_NONLINEARITY}, imaging.SKY_RESIDUAL_MEAN = {imaging.SKY_RESIDUAL_MEAN}, "
            f"SKY_RESIDUAL_SCATTER = {imaging.SKY_RESIDUAL_SCATTER}, SKY_RESIDUAL_GRADIENT = "
            f"{imaging.SKY_RESIDUAL_GRADIENT}, Params.neighbour_rate = {p.neighbour_rate}; "
            "fitted to the paper's per-bin morphology (not to the tiles): relations.DISC_N late = "
            f"{galaxies.relations.DISC_N[False]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=96, help="synthetic cutouts for the statistics table")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--preset", default="observed")
    ap.add_argument("--figure", default=os.path.join(ROOT, "docs", "realism.png"))
    ap.add_argument("--no-figure", action="store_true")
    ap.add_argument("--n-per-bin", type=int, default=150, help="synthetic galaxies per mass bin (morphology)")
    ap.add_argument("--morph-figure", default=os.path.join(ROOT, "docs", "realism_morphology.png"))
    ap.add_argument("--splits", type=int, default=20, help="random halves of the bundled tiles")
    ap.add_argument("--unseen", default=None, metavar="DIR", help="a folder of real 64x64 cutouts that are not "
                    "in the repository: its statistics and classifier figures are printed too")
    ap.add_argument("--quick", action="store_true", help="32 cutouts, 3 splits, 8 per mass bin, no figures (~1 min)")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.n_per_bin, args.no_figure, args.splits = 32, 8, True, 3
    try:
        real = common.load_images(common.real_files())
        unseen = common.load_images(common.real_files(args.unseen)) if args.unseen else None
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if len(real) < 4 or (unseen is not None and len(unseen) < 4):
        where = "data/sdss_real" if len(real) < 4 else args.unseen
        print(f"error: fewer than 4 real 64x64 cutouts (.png/.jpg) under {where}", file=sys.stderr)
        return 1
    t0 = time.time()
    syn = make_synthetic(args.n, args.seed, args.preset)
    dt = time.time() - t0
    print(f"real cutouts: {len(real)} bundled" + (f", {len(unseen)} unseen ({args.unseen})" if unseen else "")
          + f"; synthetic '{args.preset}' cutouts: {len(syn)} (seed {args.seed}, {dt:.1f} s, "
          f"{1000 * dt / len(syn):.0f} ms each)")
    stats_real, x_real = features(real)
    stats_syn, _ = features(syn)
    print(table(summarise(stats_real), summarise(stats_syn)))
    if not args.no_figure:
        save_figure(real, syn, args.figure)
        print(f"figure: {os.path.relpath(args.figure, ROOT)}")
    half = len(real) // 2
    pool = make_synthetic(args.splits * half, args.seed + 1000, args.preset)  # fresh cutouts for every split
    _, x_pool = features(pool)
    res = common.repeated_splits(x_real, x_pool, args.splits, args.seed)
    w = slice(len(FEATURES), None)  # the whole-cutout columns
    halves = [r["half"] for r in res] + [np.setdiff1d(np.arange(len(real)), r["half"]) for r in res]
    sets = {"bundled": x_real[:, w]}
    x_unseen = None
    if unseen is not None:
        x_unseen = features(unseen)[1]
        sets["unseen"] = x_unseen[:, w]
    text, _ = whole_table(sets, common.half_medians(x_real[:, w], halves), x_pool[:, w])
    print(f"whole-cutout statistics, medians ({len(real)} bundled tiles, {len(halves)} random halves of "
          f"{half}, {len(pool)} synthetic, seed {args.seed + 1000}):")
    print(text)
    print(f"realism classifier (logistic regression on {x_real.shape[1]} statistics, 4-fold cross-validated x 3): "
          f"{args.splits} random halves of the {len(real)} bundled tiles, {half} real vs {half} real and {half} real "
          f"vs {half} fresh synthetic per split")
    print(splits_report(res)[0])
    if x_unseen is not None:
        print(unseen_report(x_real, x_unseen, x_pool, max(args.splits, 5), args.seed))
    print(tuned_on_tiles())
    from benchmarks import realism_noise
    print(realism_noise.report(real, syn, args.n, args.seed))
    from benchmarks import realism_morphology as morph
    syn_m = morph.measure_synthetic(morph.sample_per_bin(args.n_per_bin, args.seed, args.preset), args.seed,
                                    args.preset)
    rep = morph.report(syn_m, morph.measure_real(common.real_files()))
    print(morph.format_table(rep))
    if not args.no_figure:
        morph.save_figure(rep, args.morph_figure)
        print(f"figure: {os.path.relpath(args.morph_figure, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
