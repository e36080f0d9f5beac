"""Scoring throughput at the paper configuration, end to end from JPEG files to the CSV, through test.py.

    python benchmarks/bench_score.py [--n 3000] [--batchsize 64]

Runs ``test.py`` as a user would (a fresh process) on 1 image (start-up: imports
+ model load) and on N images; the steady-state rate is N-1 over the
difference in wall time. Also prints the fraction of the bound set by the
machine's matmul rate (0.63 GFLOP per NetG forward at isize 64), the peak
memory of the scoring process, and the rate of the original's protocol (one
image per forward pass, train-mode BatchNorm) on the same machine.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import torch

from common import ROOT, make_jpeg_folder, matmul_gflops  # noqa: E402
from lib.data import build_transform, load_image
from lib.networks import NetG, weights_init

NETG_GFLOP = 0.63  # forward pass of the paper's NetG, per 64x64 image (encoder1 + decoder + encoder2)


def run_test_py(weights: str, images: str, out_csv: str, batchsize: int) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "test.py", "--weights", weights, "--images", images, "--out_csv", out_csv,
                    "--batchsize", str(batchsize), "--device", "cpu"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def original_protocol_rate(netg: NetG, files: list[str], n: int = 200) -> float:
    """The original loop: decode one image, one forward pass in train mode, one score."""
    t_img = build_transform(64, 3)
    netg.train()
    t = time.perf_counter()
    with torch.no_grad():
        for f in files[:n]:
            _, li, lo = netg(t_img(load_image(f)).unsqueeze(0))
            torch.mean(torch.pow(li - lo, 2), dim=1).item()
    return n / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=3000, help="images to score")
    p.add_argument("--batchsize", type=int, default=64)
    opt = p.parse_args()
    peak = matmul_gflops()
    with tempfile.TemporaryDirectory() as tmp:
        files = make_jpeg_folder(os.path.join(tmp, "imgs"), opt.n)
        torch.manual_seed(0)
        g = NetG(64, 3, 128, 64)
        g.apply(weights_init)
        weights = os.path.join(tmp, "netG.pth")
        torch.save({"epoch": 1, "state_dict": g.state_dict()}, weights)
        startup = run_test_py(weights, files[0], os.path.join(tmp, "one.csv"), opt.batchsize)
        total = run_test_py(weights, os.path.join(tmp, "imgs"), os.path.join(tmp, "all.csv"), opt.batchsize)
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        rate = (opt.n - 1) / (total - startup)
        bound = peak / NETG_GFLOP
        orig = original_protocol_rate(g, files)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, matmul {peak:.1f} GFLOP/s -> "
          f"bound {bound:.0f} images/s at {NETG_GFLOP} GFLOP/image")
    print(f"test.py start-up (imports + model load + 1 image): {startup:.2f} s")
    print(f"test.py on {opt.n} JPEG files: {total:.1f} s wall, steady state {rate:.1f} images/s "
          f"({rate / bound:.0%} of the matmul bound), peak RSS {rss_mb:.0f} MB")
    print(f"original protocol (batch 1, train-mode BN): {orig:.1f} images/s -> speed-up {rate / orig:.1f}x")


if __name__ == "__main__":
    main()
