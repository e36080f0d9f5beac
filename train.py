"""Train GANomaly on a folder of images (or a packed dataset).

Reads  ``<dataroot>/train/<class>/*`` (default ``./data/<dataset>``).
Writes ``<outf>/<name>/train/weights/netG_<epoch>.pth`` and ``netD_<epoch>.pth`` (0-based epoch),
``<outf>/<name>/train/opt.txt``, ``run_info.json``, image grids and ``<outf>/<name>/loss_log.txt``.

The paper's run::

    python train.py --dataset SDSS --isize 64 --niter 50 --display

Several processes or machines (docs/scaling.md; ``--batchsize`` is the global batch, split over the ranks)::

    torchrun --nproc_per_node 4 train.py --dataset SDSS --isize 64 --niter 50
"""
from __future__ import annotations

import os
import sys
import time

import torch

import options
from lib.checkpoint import CheckpointError, find_last_checkpoint, load_resume
from lib.data import BadFiles, DatasetLayoutError, PackError, is_packed, open_images
from lib.distributed import World, env_world_size, init_world
from lib.loaders import auto_workers
from lib.fileio import RUN_RECORDS, write_csv, write_run_record
from lib.model import Ganomaly, seed_everything, train
from lib.visualizer import Visualizer


def build_train_loader(opt, device: str, world: World):
    """The shuffled training loader (drop_last = --droplast) and the generator that orders its epochs.

    ``<dataroot>/train`` is an image folder tree, or a packed dataset
    (``SDSS_cutouts/pack.py``: a folder with pack.npy + index.csv); ``--dataroot`` may also be the packed
    training set itself (a folder or .npy file). Under torchrun each rank loads its slice of every global
    batch; batches arrive as uint8 and are normalised on the device (lib/loaders.py).
    """
    root = options.dataroot(opt)
    train_dir = os.path.join(root, "train")
    where = next((p for p in (train_dir, root) if is_packed(p)), train_dir)
    source = open_images(where, opt.isize, opt.nc, classes=True, what="training images")
    generator = torch.Generator()
    if world.distributed and opt.manualseed == -1:  # unseeded, but every rank must draw the same order
        generator.manual_seed(world.shared_seed())
    workers = auto_workers(opt.workers, device, "train", int(os.environ.get("LOCAL_WORLD_SIZE", world.size)))
    loader = source.training_loader(opt.batchsize, drop_last=opt.droplast, generator=generator, workers=workers,
                                    pin_memory=device.startswith("cuda"), world=world, raw=True)
    return loader, generator, workers


def make_sinks(opt, run_dir: str) -> list:
    if not opt.display and opt.logger == "none":
        return []
    from lib.live import make_sinks as _make
    return _make(opt.display, opt.logger, server=opt.display_server, port=opt.display_port,
                 env=opt.name.replace("/", "_"), logdir=os.path.join(run_dir, "tensorboard"))


def main(argv: list[str] | None = None) -> int:
    world = World()
    try:
        opt = options.parse_train(argv)
        if opt.batchsize % env_world_size():
            n = env_world_size()
            raise options.OptionError(f"--batchsize {opt.batchsize} is the global batch: it must divide evenly "
                                      f"over the {n} processes (each takes batchsize/{n})")
        world, opt.torch_device = init_world(opt.torch_device)
        loader, generator, workers = build_train_loader(opt, opt.torch_device, world)
        if opt.droplast and len(loader.dataset) < opt.batchsize:
            raise options.OptionError(f"{len(loader.dataset)} training images but --batchsize {opt.batchsize} with "
                                      "--droplast: no complete batch (lower --batchsize or pass --no-droplast)")
        run_dir = os.path.join(opt.outf, opt.name)
        weights_dir = os.path.join(run_dir, "train", "weights")
        seed_everything(opt.manualseed)
        model = Ganomaly(**options.model_args(opt), world=world)
        start, resume_state = opt.iter, None
        if opt.resume:
            g_path, d_path = find_last_checkpoint(weights_dir if opt.resume == "last" else opt.resume)
            resume_state = load_resume(model.netg, model.netd, model.optimizer_g, model.optimizer_d, g_path, d_path,
                                       device=model.device)
            start = resume_state["epoch"]
            if world.is_main:
                print(f"resuming from {g_path} (epoch {start} of {opt.niter} done, written by "
                      f"{resume_state.get('world_size', 1)} process(es); now {world.size})")
    except (options.OptionError, DatasetLayoutError, CheckpointError, PackError, ValueError) as exc:
        world.close()
        rank = int(os.environ.get("RANK", "0"))  # every rank has the same options: rank 0 alone says it
        return options.fail(str(exc)) if rank == 0 else 2
    hint = f"the last complete checkpoint in {weights_dir} is intact: resume with --resume"
    world.stop_on_sigterm(hint)
    try:
        return run(opt, world, model, loader, generator, workers, start, resume_state, run_dir, weights_dir, argv)
    except Exception as exc:  # under torchrun: one line per rank, never a traceback wall; files stay atomic
        if not world.distributed:
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if any(w in first for w in ("Connection reset", "Connection closed", "gloo", "NCCL", "Timed out")):
            first = "lost contact with another process: it died, was killed or hangs"
        else:
            first = f"{type(exc).__name__}: {first}"
        status = options.fail(f"rank {world.rank} of {world.size} stopped ({first}); {hint}", status=4)
        world.reported = True  # torchrun's SIGTERM to this process, which follows, adds no second line
        return status
    finally:
        world.close()


def run(opt, world: World, model: Ganomaly, loader, generator, workers: int, start: int, resume_state,
        run_dir: str, weights_dir: str, argv) -> int:
    """Train; rank 0 writes opt.txt, run_info.json, the loss log, images and checkpoints."""
    main_rank = world.is_main
    visualizer = None
    if main_rank:
        options.write_opt_txt(opt, os.path.join(run_dir, "train", "opt.txt"))
        write_run_record(os.path.join(run_dir, "train", RUN_RECORDS["train"]),
                         dict(command=sys.argv if argv is None else ["train.py", *argv], seed=opt.manualseed,
                              device=opt.torch_device, world_size=world.size, backend=world.backend,
                              precision=opt.precision, channels_last=opt.channels_last, loader_workers=workers,
                              started=time.strftime("%Y-%m-%dT%H:%M:%S"), n_train_images=len(loader.dataset)))
        visualizer = Visualizer(run_dir, make_sinks(opt, run_dir), name=opt.name)
        if resume_state:
            visualizer.log(f"# resumed from epoch {start}")
        print(f">> Training model Ganomaly on {len(loader.dataset)} images ({opt.torch_device} x {world.size} "
              f"process(es), {world.backend if world.distributed else 'one process'}, {opt.precision}, "
              f"batch {opt.batchsize} = {world.size} x {opt.batchsize // world.size}, loader workers {workers}).")
    from lib.health import HealthMonitor
    health, bad = HealthMonitor(), BadFiles()
    complete = False
    try:
        summary = train(model, loader, **options.train_args(opt), start_epoch=start, weights_dir=weights_dir,
                        visualizer=visualizer, health=health, bad_files=bad, generator=generator,
                        resume_state=resume_state)
        # every rank skipped its own share of the unreadable files: rank 0 lists them all (each once)
        bad.items = list(dict.fromkeys(world.gather_lists(bad.items)))
        complete = True
    except RuntimeError as exc:
        if world.distributed:
            raise
        visualizer.close()
        return options.fail(str(exc).splitlines()[0])
    finally:
        if bad.items and main_rank:
            write_csv(os.path.join(run_dir, "train", "skipped_images.csv"), ("filename", "reason"), bad.items)
            msg = f"{len(bad.items)} unreadable images skipped (listed in {run_dir}/train/skipped_images.csv)"
            if world.distributed and not complete:  # a rank failed: no collective is safe, list ours
                msg += " (rank 0's share: the run stopped before the ranks could pool theirs)"
            print(f"warning: {msg}", file=sys.stderr)
    if not main_rank:
        return 3 if summary["stopped"] else 0
    visualizer.close()
    warnings = health.warnings
    if bad.items:
        warnings.append(f"{len(bad.items)} unreadable images skipped")
    if summary["stopped"]:
        last = summary["last_checkpoint"] or "none written in this run"
        return options.fail(f"training stopped: {summary['stopped']}; last good checkpoint: {last}", status=3)
    print(f"[Done] {summary['epochs_run']} epochs, last checkpoint {summary['last_checkpoint']}")
    if warnings:
        print("Warnings during the run:\n" + "\n".join(f"  - {w}" for w in warnings))
    return 0


if __name__ == "__main__":
    options.one_line_warnings()
    sys.exit(main())
