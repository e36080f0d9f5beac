"""Training throughput at the paper configuration (isize 64, nz 128, ngf = ndf = 64, batch 64), data loading included.

    python benchmarks/bench_train.py [--steps 6] [--rounds 3] [--device cpu]

Prints images/s, the achieved GFLOP/s (FLOPs counted by torch's FlopCounterMode
on one step), that as a fraction of the machine's float32 matmul rate, and the
same for the original's update step (4 discriminator passes, generator loss
back-propagated into D) on the same machine, in the same run.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import make_jpeg_folder, matmul_gflops  # noqa: E402  (puts the repo root on sys.path)
from lib.data import ImageList, find_samples
from lib.loaders import make_loader
from lib.model import Ganomaly
from tests.reference_step import original_step


def timed_steps(step, loader, device, steps: int, warmup: int = 2) -> float:
    """images/s over `steps` batches after `warmup`, loading included."""
    it, n = iter(loader), 0
    for _ in range(warmup):
        step(next(it)[0].to(device))
    t = time.perf_counter()
    for _ in range(steps):
        try:
            x = next(it)[0]
        except StopIteration:
            it = iter(loader)
            x = next(it)[0]
        step(x.to(device))
        n += x.shape[0]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6, help="timed steps of 64 images per round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (ours, original); the best of each counts")
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels_last", action="store_true")
    opt = p.parse_args()
    peak = matmul_gflops() if opt.device == "cpu" else float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        make_jpeg_folder(os.path.join(tmp, "train", "0.normal"), 64 * (opt.steps + 4))
        samples, _ = find_samples(os.path.join(tmp, "train"))
        loader = make_loader(ImageList(samples, 64, 3), 64, shuffle=True, drop_last=True,
                             workers=0 if opt.device == "cpu" else 4)
        torch.manual_seed(0)
        model = Ganomaly(isize=64, nc=3, nz=128, ngf=64, ndf=64, extralayers=0, lr=2e-4, beta1=0.5,
                         w_adv=1, w_con=50, w_enc=1, device=opt.device, channels_last=opt.channels_last)
        x = torch.rand(64, 3, 64, 64, device=opt.device) * 2 - 1
        with FlopCounterMode(display=False) as fc:
            model.optimize_params(x)
        ours_flop = fc.get_total_flops() / 64
        og = torch.optim.Adam(model.netg.parameters(), lr=2e-4, betas=(0.5, 0.999))
        od = torch.optim.Adam(model.netd.parameters(), lr=2e-4, betas=(0.5, 0.999))
        with FlopCounterMode(display=False) as fc:
            original_step(model.netg, model.netd, og, od, x)
        orig_flop = fc.get_total_flops() / 64
        # interleaved rounds, best of each: a busy moment on a shared machine hurts both alike
        ours, orig = 0.0, 0.0
        for _ in range(opt.rounds):
            ours = max(ours, timed_steps(lambda b: model.optimize_params(model.to_input(b)), loader, opt.device,
                                         opt.steps))
            orig = max(orig, timed_steps(lambda b: original_step(model.netg, model.netd, og, od, b), loader,
                                         opt.device, opt.steps))
        peak = max(peak, matmul_gflops()) if opt.device == "cpu" else peak
    print(f"device {opt.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"matmul {peak:.1f} GFLOP/s (2048x2048 float32)")
    for name, rate, flop in (("this project", ours, ours_flop), ("original step", orig, orig_flop)):
        gfs = rate * flop / 1e9
        print(f"{name:14s} {rate:7.1f} images/s  {flop / 1e9:5.2f} GFLOP/image/step  {gfs:6.1f} GFLOP/s  "
              f"{gfs / peak:5.1%} of matmul")
    print(f"speed-up over the original step: {ours / orig:.2f}x; "
          f"images/s as a fraction of the matmul rate / original FLOPs: {ours * orig_flop / 1e9 / peak:.1%}")


if __name__ == "__main__":
    main()
