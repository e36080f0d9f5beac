#!/usr/bin/env python
"""Rate simulation suites against observed galaxies by their anomaly scores.

Example::

    python rate.py --reference SDSS=output/sdss_test_scores.csv \\
        --suite NoAGN=scores_noagn.csv --suite AGN=scores_agn.csv \\
        --mass-col m --mass-scale linear --group-col galaxy --out output/rating

writes ``output/rating/rating.csv`` (one row per suite and mass bin, 'all'
first), ``rating.md``, ``rating_run.json`` and PNG figures.  See
:mod:`lib.rating` for the statistics.
"""
from __future__ import annotations

import argparse
import sys

from lib.rating import PAPER_MASS_EDGES, RatingError
from lib.rating import run_rating


def _floats(text: str) -> list[float]:
    try:
        return [float(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number list: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rate.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", required=True, metavar="NAME=CSV", help="observed scores, e.g. SDSS test set")
    p.add_argument("--suite", action="append", default=[], metavar="NAME=CSV",
                   help="simulation scores (repeat for each suite)")
    p.add_argument("--score-col", default="ascore", help="score column (default: ascore)")
    p.add_argument("--mass-col", default=None, help="stellar-mass column; enables the per-mass-bin rows")
    p.add_argument("--mass-scale", default="log", choices=["log", "linear"],
                   help="log: log10(M*/Msun); linear: M*/Msun (default: log)")
    p.add_argument("--group-col", default=None,
                   help="images of one galaxy share a value (e.g. 20 orientations); bootstrap resamples groups")
    p.add_argument("--mass-bins", type=_floats, nargs="+", default=None, metavar="EDGE",
                   help="bin edges in log10 M*, half-open [low, high) (default: the paper's "
                        + " ".join(f"{e:g}" for e in PAPER_MASS_EDGES) + ")")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates (default: 1000; 0 = none)")
    p.add_argument("--no-figures", action="store_true", help="write only the tables")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, rate, write the outputs; return the exit code (0 ok, 2 bad input)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed its one-line usage error
        return int(exc.code or 0)
    edges = [e for group in args.mass_bins for e in group] if args.mass_bins else None
    try:
        table = run_rating(args.reference, args.suite, args.out, score_col=args.score_col, mass_col=args.mass_col,
                           mass_scale=args.mass_scale, group_col=args.group_col, mass_bins=edges,
                           n_boot=args.n_boot, seed=args.seed, figures=not args.no_figures)
    except RatingError as exc:
        print(f"rate.py: error: {exc}", file=sys.stderr)
        return 2
    shown = table[["suite", "mass_bin", "n_images", "mean", "median", "overlap", "overlap_lo", "overlap_hi"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {args.out}/rating.csv, rating.md and figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
