"""``make demo``: the paper's whole method on the embedded synthetic default, end to end, on a CPU.

1. generate an SDSS-like ``observed`` population: a training set, an independent held-out reference set
   (its own seed), and 21 simulation suites that push each of the 7 knobs of ``galaxies.KNOBS`` by strength
   1, 2, 3, plus ``base_0``, the suites' base population with no knob (strength 0);
2. train GANomaly on the observed training set (train.py);
3. score the reference and every suite, saving the latent vectors (test.py --save_latents);
4. rate every suite against the independent reference with rate.py: the paper's A-based rating (overlap),
   the latent rating (C2ST AUROC), each with its interval, the observed half-vs-half null, a one-line
   verdict per suite and mass bin, figures; then print which statistics order each knob's strengths.

The comparison is unpaired, as a user's would be: the reference galaxies are not the suites' galaxies.
The paired change of A (each suite's galaxy with and without its knob, against ``base_0``) is an extra
column, labelled ``paired_dA``.  Sizes are chosen for a few minutes on two quiet CPU cores (3.2 min measured;
over 20 min when other jobs load the machine), so the
network is narrower than the paper's (ngf = ndf = 32 instead of 64) and trained for a few epochs: the demo
shows the method, not the paper's numbers.  ``python demo.py --help`` lists the knobs.
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
from lib.rating.ladder import null_check, strength_orders

KNOBS = list(galaxies.KNOBS)  # all seven, blue_colours and too_clean included: A misses them, C2ST does not
BASE = "base_0"


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="output/demo", help="everything goes here")
    p.add_argument("--n-train", type=int, default=2000, help="observed training images")
    p.add_argument("--n-test", type=int, default=250, help="independent observed reference images")
    p.add_argument("--n-suite", type=int, default=250, help="images per simulation suite")
    p.add_argument("--niter", type=int, default=8, help="training epochs")
    p.add_argument("--ngf", type=int, default=32, help="network width (the paper: 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="image generation processes")
    return p.parse_args(argv)


def step(title: str) -> float:
    print(f"\n=== {title}", flush=True)
    return time.perf_counter()


def generate_all(opt) -> dict[str, str]:
    """Training set, reference and every suite; returns name -> image folder (re-runs skip what exists)."""
    galaxies.generate("observed", opt.n_train, opt.seed + 1, os.path.join(opt.out, "data", "train"), workers=opt.workers)
    folders = {"observed": os.path.join(opt.out, "suites", "observed")}
    # the reference has its own seed: other galaxies than the suites', as a user's observations would be
    galaxies.generate("observed", opt.n_test, opt.seed + 2, folders["observed"], workers=opt.workers)
    # every suite and base_0 share one seed: the same galaxies with and without each knob (paired_dA)
    folders[BASE] = os.path.join(opt.out, "suites", BASE)
    galaxies.generate("observed", opt.n_suite, opt.seed + 3, folders[BASE], workers=opt.workers)
    for knob in KNOBS:
        for strength in (1, 2, 3):
            name = f"{knob}_{strength}"
            folders[name] = os.path.join(opt.out, "suites", name)
            galaxies.generate(name, opt.n_suite, opt.seed + 3, folders[name], workers=opt.workers)
    return folders


def score_all(opt, weights: str, folders: dict[str, str]) -> dict[str, str]:
    """test.py --save_latents on every set; returns name -> score CSV (rate.py finds latents and metadata)."""
    csvs = {}
    for name, folder in folders.items():
        csvs[name] = os.path.join(opt.out, "scores", f"{name}.csv")
        if test_script.main(["--weights", weights, "--images", folder, "--out_csv", csvs[name], "--device", "cpu",
                             "--save_latents"]):
            raise SystemExit(f"error: scoring {name} failed")
    return csvs


def paired_da(csvs: dict[str, str]) -> dict[str, float]:
    """Mean change of A, same galaxy with and without the knob (suite minus base_0, matched by image index)."""
    def by_index(path):
        df = pd.read_csv(path)
        return pd.Series(df["ascore"].to_numpy(), index=df["filename"].str.extract(r"_(\d+)\.\w+$")[0].astype(int))
    base = by_index(csvs[BASE])
    return {n: float((by_index(p) - base).dropna().mean()) for n, p in csvs.items() if n not in ("observed", BASE)}


def report(table: pd.DataFrame, paired: dict[str, float]) -> str:
    """The 'all masses' rows: both ratings with intervals, the paired column and the verdict."""
    rows = table[(table["mass_bin"] == "all") & (table["role"] != "reference")]
    lines = []
    for _, r in rows.iterrows():
        lines.append({"suite": r["suite"], "mean A": f"{r['mean']:.4f}",
                      "overlap [95%]": f"{r['overlap']:.2f} [{r['overlap_lo']:.2f}, {r['overlap_hi']:.2f}]",
                      "C2ST AUROC [95%]": f"{r['c2st_auroc']:.2f} [{r['c2st_auroc_lo']:.2f}, {r['c2st_auroc_hi']:.2f}]",
                      "paired_dA": f"{paired[r['suite']]:+.4f}" if r["suite"] in paired else "",
                      "verdict": r["verdict"]})
    return pd.DataFrame(lines).to_string(index=False)


def main(argv: list[str] | None = None) -> int:
    opt = parse(argv)
    t0 = time.perf_counter()
    n_sets = 3 * len(KNOBS) + 1
    t = step(f"1/4 generating synthetic galaxies ({opt.n_train} train, {opt.n_test} reference, "
             f"{n_sets} suites x {opt.n_suite})")
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

    t = step("3/4 scoring the reference and every suite, with latents (paper protocol)")
    csvs = score_all(opt, weights, folders)
    print(f"done in {time.perf_counter() - t:.0f} s")

    t = step("4/4 rating every suite against the independent reference (rate.py)")
    out = os.path.join(opt.out, "rating")
    rate_args = ["--reference", f"observed={csvs['observed']}",
                 *sum((["--suite", f"{k}={v}"] for k, v in csvs.items() if k != "observed"), []),
                 "--out", out, "--n-boot", "200", "--seed", str(opt.seed), "--quiet"]
    if rate.main(rate_args):
        return 1
    table = pd.read_csv(os.path.join(out, "rating.csv"))
    paired = paired_da(csvs)
    overall = table[table["mass_bin"] == "all"].assign(paired_dA=lambda d: d["suite"].map(paired))
    overall.to_csv(os.path.join(opt.out, "rating.csv"), index=False)
    print(f"rated in {time.perf_counter() - t:.0f} s\n\nAll masses (paired_dA: the paired comparison, same galaxies "
          f"with and without the knob, for reference only):")
    print(report(table, paired))
    orders = strength_orders(table, KNOBS, BASE)
    with pd.option_context("display.width", 200, "display.float_format", "{:+.1f}".format):
        print("\nSpearman rho of each statistic over strengths 0-3 (+1: ordered; overlap sign-flipped):")
        print(orders.to_string(index=False))
    nulls = null_check(table)
    print(f"\nobserved half vs half, each statistic against its permutation null band (95 %): "
          f"{int(nulls['inside'].sum())} of {len(nulls)} inside")
    print(nulls.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nrating: {os.path.join(opt.out, 'rating.csv')} (all masses); per mass bin, summary.md and figures: {out}/")
    print(f"demo finished in {(time.perf_counter() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    from options import one_line_warnings
    one_line_warnings()
    sys.exit(main())
