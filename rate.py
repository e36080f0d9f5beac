#!/usr/bin/env python
"""Rate simulation suites against observed galaxies: anomaly scores A and latent two-sample tests.

Example (CSVs written by ``test.py --save_latents --out_csv scores/NAME.csv``)::

    python rate.py --reference observed=scores/observed.csv \\
        --suite NoAGN=scores/noagn.csv --suite AGN=scores/agn.csv --out output/rating

reads ``scores/NAME_latents.npz`` beside each CSV (without it: A statistics only) and the
images' ``metadata.csv`` (``--metadata NAME=CSV``, or the image folder recorded in
``scores/NAME_run.json``), groups images by ``galaxy`` and bins them by ``logmstar``.
Writes ``output/rating/rating.csv`` (every statistic, one row per suite and mass bin),
``summary.md`` (the A rating, the latent rating and a verdict per row), ``rating.md``,
``rating_run.json`` and PNG figures.  docs/rating.md explains every column.
"""
from __future__ import annotations

import argparse
import sys

from lib.rating import PAPER_MASS_EDGES, LatentConfig, RatingError, run_rating


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
    p.add_argument("--metadata", action="append", default=[], metavar="NAME=CSV",
                   help="images' metadata.csv of table NAME (columns file, galaxy, logmstar ...); default: the "
                        "metadata.csv of the image folder that test.py recorded in <csv stem>_run.json")
    p.add_argument("--score-col", default="ascore", help="score column (default: ascore)")
    p.add_argument("--mass-col", default=None,
                   help="stellar-mass column (default: logmstar when every table has it, e.g. from its metadata)")
    p.add_argument("--mass-scale", default="log", choices=["log", "linear"],
                   help="log: log10(M*/Msun); linear: M*/Msun (default: log)")
    p.add_argument("--group-col", default=None,
                   help="images of one galaxy share a value (e.g. 20 orientations); resampled and permuted "
                        "together (default: galaxy when a table has it)")
    p.add_argument("--mass-bins", type=_floats, nargs="+", default=None, metavar="EDGE",
                   help="bin edges in log10 M*, half-open [low, high) (default: the paper's "
                        + " ".join(f"{e:g}" for e in PAPER_MASS_EDGES) + ")")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap, folds and permutations (default: 0)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates of the A statistics "
                   "(default: 1000; 0 = none)")
    p.add_argument("--n-perm", type=int, default=500, help="permutations for p-values and null bands (default: 500; the verdict needs >= 20 x (mass bins + 1) x 3 to flag a suite on one test alone)")
    p.add_argument("--latent-features", default="latent_i", choices=["latent_i", "latent_i+diff"],
                   help="C2ST/MMD features: the encoder's code, or that plus latent_o - latent_i")
    p.add_argument("--classifier", default="ridge", choices=["ridge", "logistic"],
                   help="C2ST classifier: ridge (exact permutation p-value) or logistic (approximate)")
    p.add_argument("--folds", type=int, default=5, help="C2ST cross-validation folds (default: 5)")
    p.add_argument("--ridge", type=float, default=0.1,
                   help="ridge classifier's penalty per training image on standardised latents (default: 0.1)")
    p.add_argument("--no-mmd", action="store_true", help="skip the kernel statistic")
    p.add_argument("--no-compare", action="store_true", help="skip the comparison of suites with each other "
                   "(ranking.csv, pairwise.csv: paired bootstrap, rank probabilities)")
    p.add_argument("--no-figures", action="store_true", help="write only the tables")
    p.add_argument("--quiet", action="store_true", help="print only the notes and where the outputs went "
                   "(the summary is in summary.md)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, rate, write the outputs; return the exit code (0 ok, 2 bad input)."""
    try:
        opt = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed its one-line usage error
        return int(exc.code or 0)
    edges = [e for group in opt.mass_bins for e in group] if opt.mass_bins else None
    try:
        if opt.folds < 2 or opt.n_perm < 0 or opt.ridge <= 0:
            raise RatingError(f"--folds must be >= 2, --n-perm >= 0 and --ridge > 0, got {opt.folds}, "
                              f"{opt.n_perm} and {opt.ridge}")
        cfg = LatentConfig(features=opt.latent_features, classifier=opt.classifier, n_folds=opt.folds, ridge=opt.ridge,
                           n_boot=min(opt.n_boot, 200) if opt.n_boot else 0, n_perm=opt.n_perm, seed=opt.seed,
                           mmd=not opt.no_mmd)
        table = run_rating(opt.reference, opt.suite, opt.out, score_col=opt.score_col, mass_col=opt.mass_col,
                           mass_scale=opt.mass_scale, group_col=opt.group_col, mass_bins=edges,
                           n_boot=opt.n_boot, seed=opt.seed, figures=not opt.no_figures,
                           metadata=opt.metadata, latent_config=cfg,
                           compare=not opt.no_compare)
    except RatingError as exc:
        print(f"rate.py: error: {exc}", file=sys.stderr)
        return 2
    for note in table.attrs["notes"]:
        print(f"note: {note}")
    if not opt.quiet:
        print(table.attrs["summary"].to_string(index=False))
    print(f"wrote {opt.out}/rating.csv, summary.md, rating.md, rating_run.json and figures")
    return 0


if __name__ == "__main__":
    from options import one_line_warnings
    one_line_warnings()
    sys.exit(main())
