#!/usr/bin/env python
"""SDSS-like mock images of simulated galaxies, straight from their star (and gas) particles.

Reads particle files (NPZ / HDF5, format in docs/mock_observations.md) or any snapshot
pynbody reads, and writes ``OUT/<run>_<galaxy>_<NN>.jpg`` (``--recipe sdss``, 64x64 like the
SDSS cutouts) or ``.png`` (``--recipe paper``, the paper's 500x500 mocks), ``OUT/metadata.csv``
(one row per image) and ``OUT/mock_observation_run.json``, ready for ``test.py --images OUT``::

    python mock_observation.py --make-example output/example_particles
    python mock_observation.py --particles output/example_particles --out output/mocks/example

See docs/mock_observations.md; the engine is the package lib/mocks.
"""
from __future__ import annotations

import argparse
import os
import sys

from lib import mocks
from options import parse_shard

PROG = "mock_observation.py"


class UsageError(Exception):
    """A bad command line (one line for the user)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + error
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--particles", nargs="+", metavar="FILE|DIR",
                     help="particle files (.npz: one galaxy; .h5/.hdf5: one group per galaxy) or folders of them")
    src.add_argument("--snapshot", metavar="PATH", help="an IllustrisTNG, EAGLE or FIRE snapshot (one HDF5 chunk: "
                     "all its chunks are read), or any snapshot pynbody reads (NIHAO Tipsy, Gadget, RAMSES, SWIFT, ...)")
    src.add_argument("--make-example", metavar="DIR", help="write the embedded example galaxies as particle files "
                     "into DIR and exit")
    p.add_argument("--halo", type=int, default=None, metavar="N",
                   help="with --snapshot: halo N (TNG: FoF group of the group catalogue; EAGLE: GroupNumber; pynbody: "
                   "its halo catalogue) (default: the whole snapshot)")
    p.add_argument("--subhalo", type=int, default=None, metavar="S",
                   help="with --snapshot: the subhalo's own particles (TNG: Subfind ID, as the web API; EAGLE: "
                   "SubGroupNumber within --halo, 0 = the central)")
    p.add_argument("--groupcat", default=None, metavar="PATH",
                   help="TNG: the group catalogue (a fof_subhalo_tab chunk or its folder) if not in ../groups_NNN/ "
                   "beside the snapshot's folder or in its folder")
    p.add_argument("--recipe", choices=["sdss", "paper"], default="sdss",
                   help="sdss: 64x64 SDSS-like JPEG at a redshift, PSF, noise; paper: the paper's 500x500 PNG "
                   "(50 kpc, Lupton Q=20 stretch=0.1, no PSF/noise) (default: sdss)")
    p.add_argument("--orientations", default="random:20", metavar="SPEC",
                   help="faceon, edgeon, random:N (isotropic directions and uniform position angles, seeded) or "
                   "THETA,PHI[,PA] in degrees (inclination from face-on, azimuth about the spin axis, position "
                   "angle of the line of nodes from the image x axis) (default: random:20, the paper's 20)")
    p.add_argument("--spin", choices=["auto", "stars", "gas"], default="auto",
                   help="face-on axis from the angular momentum of the stars or the gas within 5 kpc (auto: stars "
                   "for --recipe sdss, gas for --recipe paper as the paper's engine) (default: auto)")
    p.add_argument("--dust", choices=["none", "paper"], default="none",
                   help="paper: the paper's gas screen (warm + 0.25 cool gas, Calzetti R_V=3.1); none: no dust, "
                   "as the paper's published mocks (default: none)")
    p.add_argument("--redshift", default=None, metavar="Z|sample",
                   help="sdss recipe: place every galaxy at Z, or draw z per galaxy from the SDSS main sample's "
                   "distribution (seeded) (default: sample)")
    p.add_argument("--save-maps", action="store_true",
                   help="also write OUT/maps/<run>_<galaxy>_<NN>.fits with the g, r, i maps")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (required unless --make-example)")
    p.add_argument("--run", default=None, metavar="NAME",
                   help="run name, the first part of every file name, without '_' (default: the --out folder's "
                   "name, '_' -> '-')")
    p.add_argument("--seed", type=int, default=0, help="seed of orientations, redshifts and noise (default: 0)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="render only galaxies I, I+N, ... of the inputs sorted by name (I counts from 0), writing "
                        "metadata.shard-I-of-N.csv and its run record; join the N shards with --merge_shards OUT")
    p.add_argument("--merge_shards", "--merge-shards", default=None, metavar="OUT",
                   help="merge the shard tables and run records in OUT into metadata.csv and "
                        "mock_observation_run.json (as one process writes them), then exit")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="galaxies rendered in parallel (default: 1)")
    p.add_argument("--ssp", default=None, metavar="NPZ",
                   help="SSP magnitude table (default: data/ssp/bpass_ugriz_sin_imf135_300.npz, the paper's)")
    p.add_argument("--kcorr", default=None, metavar="NPZ|none",
                   help="sdss recipe: K-correction table of the SSPs (default: data/ssp/kcorr_sdss2010_bc03.npz); "
                   "'none': rest-frame magnitudes taken as observed")
    p.add_argument("--field-sources", action="store_true",
                   help="sdss recipe: add the sky's other sources to every view as make_galaxies.py's observed "
                   "population has them (background galaxies to r = 24, foreground stars; seeded per view), "
                   "instead of the particles alone (default: off, as the paper's mocks)")
    p.add_argument("--galactic-extinction", action="store_true",
                   help="sdss recipe: dim every view by a Milky Way foreground E(B-V) drawn as over the SDSS "
                   "footprint (log-normal, median 0.03 mag; SDSS images are not corrected for it) (default: off)")
    p.add_argument("--force", action="store_true",
                   help="go on where a galaxy's units look wrong or a cutout is blank (warned, recorded) instead "
                   "of stopping that galaxy")
    p.add_argument("--example-stars", type=int, default=20000, metavar="N",
                   help="star particles per example galaxy with --make-example (default: 20000)")
    return p


def check(args: argparse.Namespace) -> None:
    """Cross-option checks; raise UsageError with one line."""
    if not (args.particles or args.snapshot):
        raise UsageError("give --particles FILE|DIR..., --snapshot PATH or --make-example DIR")
    for opt in ("halo", "subhalo", "groupcat"):
        if getattr(args, opt) is not None and not args.snapshot:
            raise UsageError(f"--{opt} needs --snapshot")
    if not args.out:
        raise UsageError("--out DIR is required")
    if args.run is None:
        args.run = os.path.basename(os.path.normpath(args.out)).replace("_", "-") or "mocks"
    if "_" in args.run or "/" in args.run or not args.run:
        raise UsageError(f"--run {args.run!r}: a run name must be non-empty without '_' or '/' "
                         "(files are <run>_<galaxy>_<NN>, which rate.py splits at '_')")
    if args.recipe == "paper" and args.redshift is not None:
        raise UsageError("--redshift applies to --recipe sdss only (the paper's mocks have no redshift)")
    if args.recipe == "paper" and args.kcorr is not None:
        raise UsageError("--kcorr applies to --recipe sdss only (the paper's mocks are rest-frame)")
    for flag in ("field_sources", "galactic_extinction"):
        if args.recipe == "paper" and getattr(args, flag):
            raise UsageError(f"--{flag.replace('_', '-')} applies to --recipe sdss only (the paper's mocks show "
                             "the galaxy alone)")
    args.kcorr = args.kcorr or mocks.DEFAULT_KCORR
    z = args.redshift or "sample"
    if z != "sample":
        try:
            zf = float(z)
        except ValueError:
            zf = -1.0
        if not 0 < zf <= 5:
            raise UsageError(f"--redshift {z!r}: give a number in (0, 5] or 'sample'")
    args.redshift = z
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: must be >= 1")
    try:
        mocks.parse_orientations(args.orientations)
    except mocks.OrientationError as exc:
        raise UsageError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, render, write; return 0, 2 (bad input: some galaxy or option) or 1 (a bug)."""
    try:
        args = build_parser().parse_args(argv)
        if args.make_example:
            paths = mocks.write_examples(args.make_example, n_star=args.example_stars, seed=args.seed)
            print(f"wrote {len(paths)} example galaxies to {args.make_example}: "
                  + ", ".join(os.path.basename(p) for p in paths))
            return 0
        if args.merge_shards:
            record = mocks.merge_shards(args.merge_shards)
            print(f"merged {record['merged_shards']} shards: {record['n_images']} images of {record['n_done']} "
                  f"galaxies in {args.merge_shards}/metadata.csv")
            return 0
        shard = None
        if args.shard is not None:
            try:
                shard = parse_shard(args.shard)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        check(args)
        ssp = args.ssp or mocks.DEFAULT_SSP
        mocks.load_ssp(ssp)  # a bad table stops the run before any galaxy
        if args.recipe == "sdss" and args.kcorr != "none":
            ktable = mocks.load_kcorr(args.kcorr)
            if args.redshift != "sample" and float(args.redshift) > ktable.z_max:
                raise UsageError(f"--redshift {args.redshift}: the K-correction table {args.kcorr} stops at "
                                 f"z = {ktable.z_max:g} (--kcorr none for rest-frame light)")
        if args.snapshot:
            source = mocks.snapshot_source(args.snapshot, args.halo, args.subhalo, args.groupcat)
            if source.kind == "pynbody":
                mocks.readers.require_pynbody()  # a missing pynbody: one line before any work
            sources, problems = [source], []
        else:
            sources, problems = mocks.list_sources(args.particles)
        names = [s.name for s in sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise UsageError(f"two inputs give the same galaxy name {', '.join(dup)}: rename one (it would "
                             "overwrite the other's images)")
    except (UsageError, mocks.SSPError, mocks.MockInputError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    for line in problems:
        print(f"{PROG}: error: {line}", file=sys.stderr)
    opts = mocks.Options(out=args.out, run=args.run, recipe=args.recipe, orientations=args.orientations,
                         dust=args.dust, redshift=args.redshift, seed=args.seed, save_maps=args.save_maps,
                         workers=args.workers, ssp=ssp, kcorr=args.kcorr, spin=args.spin, force=args.force,
                         field_sources=args.field_sources, galactic_extinction=args.galactic_extinction)
    if shard is not None:
        sources = mocks.select_shard(sources, *shard)
    results = mocks.run(sources, opts, shard=shard) if sources else []
    failed = [r for r in results if r.error]
    for r in results:
        for w in r.warnings:
            print(f"{PROG}: warning: {w}", file=sys.stderr)
    for r in failed:
        print(f"{PROG}: error: {r.error}", file=sys.stderr)
    n_images = sum(len(r.rows) for r in results)
    written = f"shard {shard[0]} of {shard[1]}'s table and run record" if shard else f"metadata.csv, {mocks.RUN_JSON}"
    print(f"wrote {n_images} images of {len(results) - len(failed)} galaxies to {args.out} "
          f"({written}); {len(failed) + len(problems)} failed")
    if any(r.unexpected for r in failed):
        return 1
    return 2 if failed or problems or not sources else 0


if __name__ == "__main__":
    from options import one_line_warnings
    one_line_warnings()
    sys.exit(main())
