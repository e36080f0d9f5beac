"""Ladder benchmark: does GANomaly rank each knob's strengths in order?

    python benchmarks/ladder.py                      # full run (tens of minutes on 2 CPU cores)
    python benchmarks/ladder.py --n-train 256 --n-suite 32 --niter 1   # plumbing check (~2 min)
    python benchmarks/ladder.py --weights output/ladder/ladder/train/weights/netG_14.pth  # rescore only

Generates an ``observed`` training set, a held-out ``observed`` set and every
``<knob>_<strength>`` suite (the held-out set and all suites share one seed, so each
suite shows the same galaxies as the held-out set with only its knob changed: a paired
comparison), trains GANomaly with ``train.py``, scores every set with ``test.py`` and
prints, per knob, the mean anomaly score A at strength 0 (observed), 1, 2, 3 and
Spearman's rho between strength and mean A (1.0 = perfectly ordered), rho over the
individual images, and the paired change dA_s of A (same galaxy with and without the
knob) with its standard error se_s.  Results go to ``<out>/ladder.csv``.  Generation is resumable: a
re-run reuses the images already written.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lib import galaxies  # noqa: E402


def run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def newest_netg(weights_dir: str) -> str:
    epochs = sorted(int(f[5:-4]) for f in os.listdir(weights_dir)
                    if f.startswith("netG_") and f.endswith(".pth") and f[5:-4].isdigit())
    if not epochs:
        raise FileNotFoundError(f"no netG_<epoch>.pth in {weights_dir}")
    return os.path.join(weights_dir, f"netG_{epochs[-1]}.pth")


def _by_index(df: pd.DataFrame) -> pd.Series:
    """A indexed by the image index parsed from ``<name>_<index>.jpg``."""
    idx = df["filename"].str.extract(r"_(\d+)\.[A-Za-z]+$")[0].astype(int)
    return pd.Series(df["ascore"].to_numpy(dtype=float), index=idx.to_numpy())


def ladder_table(scores: dict[str, pd.DataFrame], knobs: list[str]) -> pd.DataFrame:
    """Per knob: mean A at strength 0..3, Spearman rho of the means and over the images,
    and the paired change of A (same galaxy with and without the knob) at each strength
    with its standard error."""
    rows = []
    ref = _by_index(scores["observed"])
    for knob in knobs:
        sets = [ref] + [_by_index(scores[f"{knob}_{s}"]) for s in (1, 2, 3)]
        means = [float(a.mean()) for a in sets]
        strength = np.concatenate([np.full(len(a), s) for s, a in enumerate(sets)])
        rho_img, p_img = spearmanr(strength, np.concatenate([a.to_numpy() for a in sets]))
        row = dict(knob=knob, **{f"mean_A_{s}": m for s, m in enumerate(means)},
                   rho_means=spearmanr([0, 1, 2, 3], means)[0], rho_images=rho_img, p_images=p_img)
        for s in (1, 2, 3):
            d = (sets[s] - ref).dropna()  # pairs: the same image index in both sets
            row[f"dA_{s}"] = float(d.mean()) if len(d) else np.nan
            row[f"se_{s}"] = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "output", "ladder"))
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--n-suite", type=int, default=500, help="images per suite and in the held-out observed set")
    ap.add_argument("--niter", type=int, default=15, help="training epochs")
    ap.add_argument("--ngf", type=int, default=64, help="generator and discriminator width (paper: 64)")
    ap.add_argument("--batchsize", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2, help="processes for image generation")
    ap.add_argument("--knobs", nargs="*", default=list(galaxies.KNOBS))
    ap.add_argument("--weights", help="score with this netG instead of training")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    unknown = [k for k in args.knobs if k not in galaxies.KNOBS]
    if unknown:
        print(f"error: --knobs: unknown knob {unknown[0]}; known: {', '.join(galaxies.KNOBS)}", file=sys.stderr)
        return 2
    py = sys.executable
    t0 = time.time()
    data = os.path.join(args.out, "data")
    names = ["observed"] + [f"{k}_{s}" for k in args.knobs for s in (1, 2, 3)]
    if not args.weights:
        galaxies.generate("observed", args.n_train, args.seed, os.path.join(data, "train"), workers=args.workers)
    for name in names:  # one seed for all scored sets: paired comparison
        galaxies.generate(name, args.n_suite, args.seed + 1000, os.path.join(args.out, "sets", name),
                          workers=args.workers)
    print(f"generation: {time.time() - t0:.0f} s", flush=True)
    weights = args.weights
    if not weights:
        t1 = time.time()
        run([py, "train.py", "--dataroot", data, "--isize", "64", "--niter", str(args.niter), "--name", "ladder",
             "--outf", args.out, "--ngf", str(args.ngf), "--ndf", str(args.ngf), "--batchsize", str(args.batchsize),
             "--manualseed", str(args.seed), "--device", args.device])
        weights = newest_netg(os.path.join(args.out, "ladder", "train", "weights"))
        print(f"training: {time.time() - t1:.0f} s -> {weights}", flush=True)
    scores = {}
    t2 = time.time()
    for name in names:
        csv = os.path.join(args.out, "scores", f"{name}.csv")
        os.makedirs(os.path.dirname(csv), exist_ok=True)
        run([py, "test.py", "--weights", weights, "--images", os.path.join(args.out, "sets", name),
             "--out_csv", csv, "--device", args.device])
        scores[name] = pd.read_csv(csv)
    print(f"scoring: {time.time() - t2:.0f} s", flush=True)
    table = ladder_table(scores, args.knobs)
    table.to_csv(os.path.join(args.out, "ladder.csv"), index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))
    print(f"knobs ranked in order (rho of means = 1): {int((table['rho_means'] > 0.999).sum())} of {len(table)}; "
          f"total {time.time() - t0:.0f} s; weights {weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
