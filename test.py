"""Score images with a trained GANomaly generator; writes ``anomaly_scores.csv``.

Score your own images with the paper's model (``make paper-weights`` first)::

    python test.py --images path/to/mock_images/

or with your own run: ``python test.py --weights output/<name>/train/weights/netG_<epoch>.pth --images DIR``.
Without ``--images`` it reads ``data/<dataset>/test/<class>/*`` as the original
and writes ``output/ganomaly/<dataset>/test/anomaly_scores.csv``, plus ``anomaly_scores_run.json`` beside it
(options, weights, counts, package versions).

In parallel (docs/scaling.md): ``torchrun --nproc_per_node 4 test.py --images DIR`` scores 4 contiguous shards
and rank 0 joins them into one CSV, rows in input order; across machines, ``--shard I/N`` per job, then
``python test.py --merge_shards OUT_CSV``.
"""
from __future__ import annotations

import glob
import os
import re
import sys

import numpy as np

import options
from lib.checkpoint import CheckpointError, is_paper_netg, load_netg
from lib.data import DatasetLayoutError, open_images
from lib.distributed import World, init_world, shard_range
from lib.loaders import auto_workers
from lib.evaluate import ERRORS, SCORES_CSV, merge_shards, score_files, shard_path, side_file, write_run
from lib.scoring import Calibration, Scorer, normalize_paper

PAPER_WEIGHTS = "output/ganomaly/SDSS/train/weights/netG_43.pth"
DEMO_OUTPUT = "output/demo"  # where `make demo` trains its model


def select_inputs(opt, isize: int, nc: int, shard: tuple[int, int] = (0, 1), workers: int = 1):
    """``(batches, n_total, with_label, first)`` from --images, or from <dataroot>/test/<class>/ as the original.

    Either may also be a packed dataset (SDSS_cutouts/pack.py). ``shard`` (I, N): the I-th of N contiguous
    blocks, starting at input ``first``. Batches come as uint8, decoded ahead by ``workers`` threads.
    """
    where = opt.images or os.path.join(options.dataroot(opt), "test")
    source = open_images(where, isize, nc, classes=not opt.images)
    if len(source) < shard[1]:
        raise options.OptionError(f"{len(source)} images for {shard[1]} shards: use fewer processes")
    start, stop = shard_range(len(source), *shard)
    batches = source.scoring_batches(opt.batchsize, start, stop, workers=workers, raw=True,
                                     pin=opt.torch_device.startswith("cuda"))
    return batches, stop - start, source.with_label, start


def missing_weights_message(weights: str) -> str:
    """One line for a missing --weights file: where trained weights are, and the command that uses them."""
    if os.path.normpath(weights) != os.path.normpath(PAPER_WEIGHTS):
        return (f"weights file not found: {weights} (train.py writes output/<name>/train/weights/netG_<epoch>.pth)")
    demo = sorted(glob.glob(os.path.join(DEMO_OUTPUT, "**", "weights", "netG_*.pth"), recursive=True),
                  key=lambda p: (os.path.dirname(p), int(re.search(r"netG_(\d+)\.pth$", p).group(1))))
    if demo:
        return (f"the paper's weights {PAPER_WEIGHTS} are not here (`make paper-weights` downloads them; needs the "
                f"internet); `make demo` trained a model: python test.py --weights {demo[-1]} --images DIR")
    return (f"the paper's weights {PAPER_WEIGHTS} are not here: `make paper-weights` downloads them (needs the "
            "internet), or `make demo` trains a model offline; then pass --weights output/<name>/train/weights/"
            "netG_<epoch>.pth")


def normalizers(opt) -> dict:
    if opt.normalize == "paper":
        if not is_paper_netg(opt.weights):
            print(f"warning: --normalize paper uses the constants of the paper's netG_43.pth; {opt.weights} is "
                  "another model, so ascore_norm is not on the paper's scale (for this model: --calibrate on a "
                  "reference set, then --normalize reference)", file=sys.stderr)
        return {"ascore_norm": normalize_paper}
    if opt.normalize == "reference":
        path = Calibration.path_for(opt.weights)
        if not os.path.isfile(path):
            raise CheckpointError(f"--normalize reference: no calibration {path}; make one with "
                                  f"`python test.py --weights {opt.weights} --images REFERENCE_DIR --calibrate`")
        cal = Calibration.load(path)
        return {"ascore_norm": cal.normalize, "ascore_pct": cal.percentile}
    return {}


def merge(out_csv: str, world: World | None = None) -> int:
    """Join the shard files of ``out_csv`` (--merge_shards, or rank 0 after torchrun's shards)."""
    try:
        rec = merge_shards(out_csv, remove=world is not None, **(dict(world_size=world.size, backend=world.backend)
                                                                  if world else {}))
    except (FileNotFoundError, ValueError) as exc:
        return options.fail(str(exc))
    print(f"{rec['n_scored']} images from {rec['shards']} shards -> {out_csv}")
    if rec["metrics"]:
        m = rec["metrics"]
        print(f"AUROC {m['auroc']:.4f}  average precision {m['average_precision']:.4f}  EER {m['eer']:.4f}")
    return 0


def prepare(opt, world: World) -> tuple:
    """Check the run and open its parts: ``(shard, netg, workers, (batches, n_total, with_label, first), normalizers)``.

    Raises OptionError, CheckpointError or DatasetLayoutError (one line for the user).
    """
    shard = (world.rank, world.size) if world.distributed else (
        (opt.shard_index, opt.shard_count) if opt.shard else (0, 1))
    if world.distributed and opt.shard:
        raise options.OptionError("--shard is for runs without torchrun: under torchrun each process is a shard")
    if (world.distributed or opt.shard) and (opt.calibrate or opt.strict):
        raise options.OptionError("--calibrate and --strict need the whole set in one process (not sharded)")
    if not os.path.isfile(opt.weights):
        raise CheckpointError(missing_weights_message(opt.weights))
    netg, _ = load_netg(opt.weights, opt.torch_device, **options.architecture_args(opt))
    workers = auto_workers(opt.workers, opt.torch_device, "score", int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    inputs = select_inputs(opt, netg.config["isize"], netg.config["nc"], shard, workers)
    return shard, netg, workers, inputs, normalizers(opt)


def report(opt, res, n_total: int, out_csv: str) -> int | None:
    """Print what the run did; the exit status when it failed (nothing or too little written), else None."""
    if opt.strict and res.errors:
        shown = "; ".join(f"{os.path.basename(p)}: {why}" for p, why in res.errors[:3])
        more = f" and {len(res.errors) - 3} more" if len(res.errors) > 3 else ""
        return options.fail(f"--strict: {len(res.errors)} of {n_total} files could not be scored ({shown}{more}); "
                            "nothing written", status=1)
    if res.errors:
        print(f"warning: {len(res.errors)} of {n_total} files could not be scored "
              f"(listed in {side_file(out_csv, ERRORS)})", file=sys.stderr)
    if not res.n_scored:
        return options.fail("no image could be scored")
    print(f"{res.n_scored} image{'s' if res.n_scored != 1 else ''} scored in {res.seconds:.1f} s ({res.n_scored / res.seconds:.0f} images/s) -> {out_csv}")
    if res.metrics:
        m = res.metrics
        print(f"AUROC {m['auroc']:.4f}  average precision {m['average_precision']:.4f}  EER {m['eer']:.4f} "
              f"({m['n_normal']} normal, {m['n_abnormal']} abnormal)")
    return None


def main(argv: list[str] | None = None) -> int:
    world = World()
    try:
        opt = options.parse_test(argv)
        if opt.merge_shards:
            return merge(opt.merge_shards)
        world, opt.torch_device = init_world(opt.torch_device, backend="gloo", timeout_s=24 * 3600)  # a barrier only
        shard, netg, workers, (batches, n_total, with_label, first), norm = prepare(opt, world)
    except (options.OptionError, CheckpointError, DatasetLayoutError) as exc:
        world.close()
        return options.fail(str(exc)) if world.is_main else 2

    cfg = netg.config
    final_csv = opt.out_csv or os.path.join(opt.outf, opt.name, "test", SCORES_CSV)
    out_csv = shard_path(final_csv, *shard) if shard[1] > 1 else final_csv
    print(f"scoring {n_total} images with {opt.weights} (isize {cfg['isize']}, nz {cfg['nz']}, mode {opt.score_mode}, "
          f"{opt.torch_device}, {opt.precision}{', channels-last' if opt.channels_last else ''}, {workers} decoding "
          f"thread(s){f', shard {shard[0]} of {shard[1]}' if shard[1] > 1 else ''})", file=sys.stderr)
    scorer = Scorer(netg, **options.scoring_args(opt))
    res = score_files(scorer, batches, n_total=n_total, with_label=with_label, out_csv=out_csv, normalizers=norm,
                      save_latents=opt.save_latents, save_panels=opt.save_test_images, strict=opt.strict,
                      progress=world.is_main, n_worst=opt.n_worst if opt.save_test_images and shard[1] == 1 else 0,
                      first_index=first, metrics=shard[1] == 1)
    if (status := report(opt, res, n_total, out_csv)) is not None:
        return status
    write_run(out_csv, options=vars(opt), weights=os.path.abspath(opt.weights), architecture=cfg, n_inputs=n_total,
              n_scored=res.n_scored, n_errors=len(res.errors), seconds=round(res.seconds, 3), metrics=res.metrics,
              world_size=world.size, backend=world.backend)
    if world.distributed:  # every shard written: rank 0 joins them into the one CSV
        world.barrier()
        status = merge(final_csv, world) if world.is_main else 0
        world.close()
        return status
    if opt.calibrate:
        cal = Calibration.from_scores(np.array(res.scores), opt.weights)
        cal.save(Calibration.path_for(opt.weights))
        print(f"calibration from {cal.n} reference images -> {Calibration.path_for(opt.weights)}")
    return 0


if __name__ == "__main__":
    options.one_line_warnings()
    sys.exit(main())
