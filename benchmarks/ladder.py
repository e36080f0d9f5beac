"""Ladder benchmark: which statistic of the rating orders each knob's strengths, against an independent reference?

    python benchmarks/ladder.py                      # full run (tens of minutes on 2 CPU cores)
    python benchmarks/ladder.py --n-train 256 --n-suite 32 --niter 1   # plumbing check (~3 min)
    python benchmarks/ladder.py --weights output/ladder/ladder/train/weights/netG_14.pth  # rescore only

Generates an ``observed`` training set, an independent observed reference (its own seed), the suites'
base population without any knob (``base_0``, strength 0) and every ``<knob>_<strength>`` suite (the
same galaxies as ``base_0`` with one knob changed), trains GANomaly with ``train.py``, scores every set
with ``test.py --save_latents`` and rates every suite against the reference exactly as ``rate.py`` does
(:func:`lib.rating.rate`: A statistics and latent C2ST / MMD).  Prints, per knob, Spearman's rho between
strength 0..3 and each statistic (1 = ordered; the overlap's sign flipped so that 1 always means "a stronger
knob looks more different"), the statistics that order it, and the observed-vs-observed (half vs half) value
of every statistic with a null band against that band.  Results: ``<out>/ladder.csv``, ``<out>/null.csv``,
``<out>/rating/``.  Generation is resumable: a re-run reuses the images already written.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import rate  # noqa: E402
from lib import galaxies  # noqa: E402
from lib.rating.ladder import null_check, strength_orders  # noqa: E402

BASE = "base_0"


def run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def newest_netg(weights_dir: str) -> str:
    epochs = sorted(int(f[5:-4]) for f in os.listdir(weights_dir)
                    if f.startswith("netG_") and f.endswith(".pth") and f[5:-4].isdigit())
    if not epochs:
        raise FileNotFoundError(f"no netG_<epoch>.pth in {weights_dir}")
    return os.path.join(weights_dir, f"netG_{epochs[-1]}.pth")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "output", "ladder"))
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--n-suite", type=int, default=500, help="images per suite and in the reference")
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
    sets = os.path.join(args.out, "sets")
    if not args.weights:
        galaxies.generate("observed", args.n_train, args.seed, os.path.join(data, "train"), workers=args.workers)
    # the reference: its own seed, other galaxies than the suites' (unpaired, as a user's comparison)
    galaxies.generate("observed", args.n_suite, args.seed + 2000, os.path.join(sets, "observed"), workers=args.workers)
    names = [BASE] + [f"{k}_{s}" for k in args.knobs for s in (1, 2, 3)]
    for name in names:  # one seed for base_0 and every suite: the same galaxies, each with one knob
        galaxies.generate("observed" if name == BASE else name, args.n_suite, args.seed + 1000,
                          os.path.join(sets, name), workers=args.workers)
    print(f"generation: {time.time() - t0:.0f} s", flush=True)
    weights = args.weights
    if not weights:
        t1 = time.time()
        run([py, "train.py", "--dataroot", data, "--isize", "64", "--niter", str(args.niter), "--name", "ladder",
             "--outf", args.out, "--ngf", str(args.ngf), "--ndf", str(args.ngf), "--batchsize", str(args.batchsize),
             "--manualseed", str(args.seed), "--device", args.device])
        weights = newest_netg(os.path.join(args.out, "ladder", "train", "weights"))
        print(f"training: {time.time() - t1:.0f} s -> {weights}", flush=True)
    t2 = time.time()
    csvs = {}
    for name in ["observed"] + names:
        csvs[name] = os.path.join(args.out, "scores", f"{name}.csv")
        os.makedirs(os.path.dirname(csvs[name]), exist_ok=True)
        run([py, "test.py", "--weights", weights, "--images", os.path.join(sets, name), "--out_csv", csvs[name],
             "--device", args.device, "--save_latents"])
    print(f"scoring: {time.time() - t2:.0f} s", flush=True)
    t3 = time.time()
    rating = os.path.join(args.out, "rating")
    if rate.main(["--reference", f"observed={csvs['observed']}",
                  *sum((["--suite", f"{n}={csvs[n]}"] for n in names), []),
                  "--out", rating, "--n-boot", "200", "--seed", str(args.seed)]):
        return 1
    print(f"rating: {time.time() - t3:.0f} s", flush=True)
    table = pd.read_csv(os.path.join(rating, "rating.csv"))
    orders = strength_orders(table, args.knobs, BASE)
    nulls = null_check(table)
    orders.to_csv(os.path.join(args.out, "ladder.csv"), index=False)
    nulls.to_csv(os.path.join(args.out, "null.csv"), index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:+.2f}".format):
        print("\nSpearman rho over strengths 0-3, all masses (+1 = ordered; overlap sign-flipped):")
        print(orders.to_string(index=False))
        print("\nobserved half vs half, each statistic against its permutation null band:")
        print(nulls.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    n_ok = int((orders["ordered_by"] != "none").sum())
    print(f"knobs ordered by at least one statistic: {n_ok} of {len(orders)}; null inside its band: "
          f"{int(nulls['inside'].sum())} of {len(nulls)}; total {time.time() - t0:.0f} s; weights {weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
