"""``make demo``: the paper's whole method on the embedded synthetic default, end to end, on a CPU.

1. generate an SDSS-like ``observed`` population (training set + held-out test set) and 15 simulation
   suites that each push one knob by strength 1, 2, 3 (lib/galaxies.py, lib/imaging.py; the knobs of
   ``galaxies.RANKED_KNOBS``);
2. train GANomaly on the observed training set (train.py);
3. score the held-out observed images and every suite (test.py, the paper's protocol);
4. rate each suite against the observed scores (lib/rating.py): images, mean and median A, and the paper's
   overlap; write ``output/demo/rating.csv`` and the full rate.py report (per mass bin, figures).

Sizes are chosen to finish in a few minutes on two CPU cores, so the network is narrower than the
paper's (ngf = ndf = 32 instead of 64) and trained for a few epochs: the demo shows the method,
not the paper's numbers. ``python demo.py --help`` lists the knobs.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import time

import pandas as pd

import rate
import test as test_script
import train
from lib import galaxies
from lib.rating import rate_suites

KNOBS = galaxies.RANKED_KNOBS  # blue_colours and too_clean are presets too, but the method does not rank them


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="output/demo", help="everything goes here")
    p.add_argument("--n-train", type=int, default=2000, help="observed training images")
    p.add_argument("--n-test", type=int, default=250, help="held-out observed images (the reference)")
    p.add_argument("--n-suite", type=int, default=250, help="images per simulation suite (the same galaxies as the "
                   "reference when equal to --n-test)")
    p.add_argument("--niter", type=int, default=8, help="training epochs")
    p.add_argument("--ngf", type=int, default=32, help="network width (the paper: 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="image generation processes")
    return p.parse_args(argv)


def step(title: str) -> float:
    print(f"\n=== {title}", flush=True)
    return time.perf_counter()


def generate_all(opt) -> dict[str, str]:
    """Observed train/test sets and every suite; returns suite name -> image folder (re-runs skip what exists)."""
    galaxies.generate("observed", opt.n_train, opt.seed + 1, os.path.join(opt.out, "data", "train"), workers=opt.workers)
    folders = {"observed": os.path.join(opt.out, "suites", "observed")}
    # the held-out observed images and every suite share one seed: the same galaxies, seen with and without each
    # deviation, so suites differ from the reference only by their knob (none of them is in the training set)
    galaxies.generate("observed", opt.n_test, opt.seed + 3, folders["observed"], workers=opt.workers)
    for knob in KNOBS:
        for strength in (1, 2, 3):
            name = f"{knob}_{strength}"
            folders[name] = os.path.join(opt.out, "suites", name)
            galaxies.generate(name, opt.n_suite, opt.seed + 3, folders[name], workers=opt.workers)
    return folders


def score_all(opt, weights: str, folders: dict[str, str]) -> dict[str, pd.DataFrame]:
    """test.py on every suite; each table gets the generator's log stellar mass from metadata.csv."""
    tables = {}
    for name, folder in folders.items():
        out_csv = os.path.join(opt.out, "scores", f"{name}.csv")
        if test_script.main(["--weights", weights, "--images", folder, "--out_csv", out_csv, "--device", "cpu"]):
            raise SystemExit(f"error: scoring {name} failed")
        scores = pd.read_csv(out_csv)
        meta = pd.read_csv(os.path.join(folder, galaxies.METADATA))
        scores["file"] = [os.path.relpath(f, folder) for f in scores["filename"]]
        tables[name] = scores.merge(meta[["file", "logmstar"]], on="file", how="left")
        tables[name].to_csv(out_csv, index=False)
    return tables


def ranking_check(table: pd.DataFrame) -> list[str]:
    """Per knob: is mean A increasing with strength (and above the observed images)?"""
    means = table.set_index("suite")["mean"]
    lines = []
    for knob in KNOBS:
        m = [means["observed"]] + [means[f"{knob}_{s}"] for s in (1, 2, 3)]
        ok = all(a < b for a, b in zip(m, m[1:]))
        lines.append(f"  {knob:20s} observed {m[0]:.4f} < 1: {m[1]:.4f} < 2: {m[2]:.4f} < 3: {m[3]:.4f}   "
                     f"{'ordered' if ok else 'NOT ordered'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    opt = parse(argv)
    t0 = time.perf_counter()
    t = step(f"1/4 generating synthetic galaxies ({opt.n_train} train, {opt.n_test} test, 15 suites x {opt.n_suite})")
    folders = generate_all(opt)
    print(f"done in {time.perf_counter() - t:.0f} s")

    t = step(f"2/4 training GANomaly: isize 64, nz 128, ngf = ndf = {opt.ngf} (the paper: 64), {opt.niter} epochs, CPU")
    run = os.path.join(opt.out, "model")
    weights = os.path.join(run, "train", "weights", f"netG_{opt.niter - 1}.pth")
    if not os.path.isfile(weights):
        args = ["--dataroot", os.path.join(opt.out, "data"), "--isize", "64", "--nz", "128", "--ngf", str(opt.ngf),
                "--ndf", str(opt.ngf), "--niter", str(opt.niter), "--batchsize", "64", "--outf", opt.out,
                "--name", "model", "--manualseed", str(opt.seed), "--print_freq", "640", "--save_image_freq", "640"]
        if glob.glob(os.path.join(run, "train", "weights", "netG_*.pth")):
            args.append("--resume")
        if train.main(args):
            return 1
    print(f"done in {time.perf_counter() - t:.0f} s")

    t = step("3/4 scoring the held-out observed images and every suite (paper protocol)")
    tables = score_all(opt, weights, folders)
    print(f"done in {time.perf_counter() - t:.0f} s")

    t = step("4/4 rating the suites against the observed images")
    suites = {k: v["ascore"].to_numpy() for k, v in tables.items() if k != "observed"}
    table = rate_suites(tables["observed"]["ascore"].to_numpy(), suites, reference_name="observed",
                        n_boot=200, seed=opt.seed)
    cols = ["suite", "n_images", "mean", "median", "overlap"]
    out_csv = os.path.join(opt.out, "rating.csv")
    table.to_csv(out_csv + ".tmp", index=False)
    os.replace(out_csv + ".tmp", out_csv)
    rate_args = ["--reference", f"observed={os.path.join(opt.out, 'scores', 'observed.csv')}",
                 *sum((["--suite", f"{k}={os.path.join(opt.out, 'scores', k + '.csv')}"] for k in suites), []),
                 "--mass-col", "logmstar", "--out", os.path.join(opt.out, "rating"), "--n-boot", "200"]
    rate.main(rate_args)
    with pd.option_context("display.width", 120, "display.float_format", "{:.4f}".format):
        print(table[cols].to_string(index=False))
    print("\nDoes a stronger deviation give a higher mean A?")
    print("\n".join(ranking_check(table)))
    print(f"\nrating table: {out_csv}; full report per mass bin with figures: {os.path.join(opt.out, 'rating')}/")
    print(f"demo finished in {(time.perf_counter() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
