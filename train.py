"""Train GANomaly on a folder of images (or a packed dataset).

Reads  ``<dataroot>/train/<class>/*`` (default ``./data/<dataset>``).
Writes ``<outf>/<name>/train/weights/netG_<epoch>.pth`` and ``netD_<epoch>.pth`` (0-based epoch),
``<outf>/<name>/train/opt.txt``, ``run_info.json``, image grids and ``<outf>/<name>/loss_log.txt``.

The paper's run::

    python train.py --dataset SDSS --isize 64 --niter 50 --display
"""
from __future__ import annotations

import os
import sys
import time

import torch

import options
from lib.checkpoint import CheckpointError, find_last_checkpoint, load_resume
from lib.data import BadFiles, DatasetLayoutError, PackError, is_packed, open_images
from lib.fileio import package_versions, write_csv, write_json
from lib.model import Ganomaly, seed_everything, train
from lib.visualizer import Visualizer


def build_train_loader(opt, device: str):
    """The shuffled training loader (drop_last = --droplast) and the generator that orders its epochs.

    ``<dataroot>/train`` is an image folder tree, or a packed dataset
    (``SDSS_cutouts/pack.py``: a folder with pack.npy + index.csv); ``--dataroot`` may also be the packed
    training set itself (a folder or .npy file).
    """
    root = options.dataroot(opt)
    train_dir = os.path.join(root, "train")
    where = next((p for p in (train_dir, root) if is_packed(p)), train_dir)
    source = open_images(where, opt.isize, opt.nc, classes=True, what="training images")
    generator = torch.Generator()
    # on CPU, worker processes would compete with the model for the same cores: decode in-process
    workers = opt.workers if device.startswith("cuda") else 0
    loader = source.training_loader(opt.batchsize, drop_last=opt.droplast, generator=generator, workers=workers,
                                    pin_memory=device.startswith("cuda"))
    return loader, generator


def make_sinks(opt, run_dir: str) -> list:
    if not opt.display and opt.logger == "none":
        return []
    from lib.live import make_sinks as _make
    return _make(opt.display, opt.logger, server=opt.display_server, port=opt.display_port,
                 env=opt.name.replace("/", "_"), logdir=os.path.join(run_dir, "tensorboard"))


def main(argv: list[str] | None = None) -> int:
    try:
        opt = options.parse_train(argv)
        loader, generator = build_train_loader(opt, opt.torch_device)
        if opt.droplast and len(loader.dataset) < opt.batchsize:
            raise options.OptionError(f"{len(loader.dataset)} training images but --batchsize {opt.batchsize} with "
                                      "--droplast: no complete batch (lower --batchsize or pass --no-droplast)")
        run_dir = os.path.join(opt.outf, opt.name)
        weights_dir = os.path.join(run_dir, "train", "weights")
        seed_everything(opt.manualseed)
        model = Ganomaly(isize=opt.isize, nc=opt.nc, nz=opt.nz, ngf=opt.ngf, ndf=opt.ndf, extralayers=opt.extralayers,
                         lr=opt.lr, beta1=opt.beta1, w_adv=opt.w_adv, w_con=opt.w_con, w_enc=opt.w_enc,
                         device=opt.torch_device, ngpu=opt.ngpu, amp=opt.amp, channels_last=opt.channels_last)
        start, resume_state = opt.iter, None
        if opt.resume:
            g_path, d_path = find_last_checkpoint(weights_dir if opt.resume == "last" else opt.resume)
            resume_state = load_resume(model.netg, model.netd, model.optimizer_g, model.optimizer_d, g_path, d_path,
                                       device=model.device)
            start = resume_state["epoch"]
            print(f"resuming from {g_path} (epoch {start} of {opt.niter} done)")
    except (options.OptionError, DatasetLayoutError, CheckpointError, PackError) as exc:
        return options.fail(str(exc))

    options.write_opt_txt(opt, os.path.join(run_dir, "train", "opt.txt"))
    write_json(os.path.join(run_dir, "train", "run_info.json"),
               dict(command=sys.argv if argv is None else ["train.py", *argv], seed=opt.manualseed,
                    device=opt.torch_device, started=time.strftime("%Y-%m-%dT%H:%M:%S"),
                    n_train_images=len(loader.dataset), versions=package_versions()))

    from lib.health import HealthMonitor
    visualizer = Visualizer(run_dir, make_sinks(opt, run_dir), name=opt.name)
    if resume_state:
        visualizer.log(f"# resumed from epoch {start}")
    health, bad = HealthMonitor(), BadFiles()
    print(f">> Training model Ganomaly on {len(loader.dataset)} images ({opt.torch_device}).")
    try:
        summary = train(model, loader, niter=opt.niter, start_epoch=start, batchsize=opt.batchsize,
                        weights_dir=weights_dir, visualizer=visualizer, health=health, bad_files=bad,
                        print_freq=opt.print_freq, save_image_freq=opt.save_image_freq, seed=opt.manualseed,
                        generator=generator, resume_state=resume_state, opt_dict=dict(vars(opt)))
    except RuntimeError as exc:
        visualizer.close()
        return options.fail(str(exc).splitlines()[0])
    finally:
        if bad.items:
            write_csv(os.path.join(run_dir, "train", "skipped_images.csv"), ("filename", "reason"), bad.items)
            msg = f"{len(bad.items)} unreadable images skipped (listed in {run_dir}/train/skipped_images.csv)"
            print(f"WARNING: {msg}", file=sys.stderr)
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
    sys.exit(main())
