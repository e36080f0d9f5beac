"""Scale-out figures: training and scoring images/s for 1 and 2 processes, fp32/bf16, channels-last off/on.

    python benchmarks/bench_scale.py [--n 640] [--steps 3]

Paper configuration (isize 64, nz 128, ngf 64, batch 64). Scoring runs ``test.py`` as a user would, on N
JPEG cutouts; its steady rate is (N - 1) over the wall time less the start-up (one image), compared with
NetG's forward-only rate (paper BatchNorm mode) at the same batch and precision. bf16 scores are compared
with the fp32 ones (Spearman, largest relative difference of A). Training times ``optimize_params`` steps
(1 process x 64, or 2 processes x 32 with gloo and global BatchNorm). With CUDA, a GPU section adds AMP
rates and projects the paper's full run (643,663 images x 50 epochs) on 1 and 8 GPUs; it is skipped otherwise.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.multiprocessing as mp

from common import ROOT, make_jpeg_folder  # noqa: E402
from lib.distributed import init_world
from lib.model import Ganomaly
from lib.networks import NetG, weights_init
from lib.scoring import Scorer

NET = dict(isize=64, nc=3, nz=128, ngf=64, ndf=64, extralayers=0, lr=2e-4, beta1=0.5, w_adv=1, w_con=50, w_enc=1)
PAPER_IMAGES, PAPER_EPOCHS = 643_663, 50


def timed(fn, seconds: float = 4.0, min_calls: int = 2) -> float:
    """Calls per second of fn() after one warm-up call, over at least ``seconds``."""
    fn()
    n, t0 = 0, time.perf_counter()
    while n < min_calls or time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def run(cmd: list[str], nproc: int = 1) -> float:
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr",
               "127.0.0.1", "--master_port", str(29500 + os.getpid() % 1000), *cmd]
    else:
        cmd = [sys.executable, *cmd]
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def scores(path: str) -> np.ndarray:
    with open(path, newline="") as fh:
        return np.array([float(r["ascore"]) for r in csv.DictReader(fh)])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def bench_scoring(tmp: str, n: int, batch: int, trained: str = "") -> None:
    files = make_jpeg_folder(os.path.join(tmp, "imgs"), n)
    if trained:  # a trained model: its scores spread as a real rating's do, so Spearman means something
        from lib.checkpoint import load_netg
        g, _ = load_netg(trained, "cpu")
        weights = trained
        print(f"weights: {trained} (trained; ngf {g.config['ngf']}, nz {g.config['nz']})")
    else:
        torch.manual_seed(0)
        g = NetG(64, 3, 128, 64)
        g.apply(weights_init)
        weights = os.path.join(tmp, "netG.pth")
        torch.save({"epoch": 1, "state_dict": g.state_dict()}, weights)
        print("weights: untrained paper-size NetG (scores lie close together: a hard case for Spearman)")
    base = ["test.py", "--weights", weights, "--batchsize", str(batch), "--device", "cpu"]
    startup = run(base + ["--images", files[0], "--out_csv", os.path.join(tmp, "one.csv")])
    print(f"\nscoring (test.py on {n} JPEG cutouts, batch {batch}; start-up {startup:.1f} s subtracted)")
    print(f"{'procs':>5} {'precision':>9} {'ch-last':>7} {'forward-only':>13} {'test.py':>9} {'ratio':>6}  vs fp32")
    x = torch.rand(batch, 3, 64, 64) * 2 - 1
    ref = None
    for nproc, prec, cl in ((1, "fp32", False), (1, "fp32", True), (1, "bf16", False), (1, "bf16", True),
                            (2, "fp32", False), (2, "bf16", True)):
        flags = ["--precision", prec] + (["--channels_last"] if cl else [])
        out = os.path.join(tmp, f"s_{nproc}_{prec}_{cl}.csv")
        wall = run(base + flags + ["--images", os.path.join(tmp, "imgs"), "--out_csv", out], nproc)
        rate = (n - 1) / max(wall - startup, 1e-9)
        a = scores(out)
        if nproc == 1:
            scorer = Scorer(g, "paper", "cpu", prec, cl)
            fwd = batch * timed(lambda: scorer(x))
            ratio = f"{rate / fwd:5.0%}"
        else:
            fwd, ratio = float("nan"), "   - "
        if ref is None:
            ref, cmp = a, "(reference)"
        else:
            rel = np.abs(a - ref) / ref
            cmp = f"Spearman {spearman(a, ref):.5f}, max |dA|/A {rel.max():.2e}"
        print(f"{nproc:>5} {prec:>9} {'on' if cl else 'off':>7} {fwd:>13.1f} {rate:>9.1f} {ratio:>6}  {cmp}", flush=True)
    bench_packed_scoring(tmp, base, g, x, n, batch)


def bench_packed_scoring(tmp: str, base: list[str], g, x: torch.Tensor, n: int, batch: int) -> None:
    """The same images as one packed uint8 array: no JPEG decoding competes with the network for the cores."""
    from lib.sdss import pack_folder

    one = os.path.join(tmp, "one_img")
    os.makedirs(one)
    os.symlink(os.path.join(tmp, "imgs", sorted(os.listdir(os.path.join(tmp, "imgs")))[0]), os.path.join(one, "a.jpg"))
    pack_folder(one, os.path.join(tmp, "packed_one"), progress=False)
    pack_folder(os.path.join(tmp, "imgs"), os.path.join(tmp, "packed"), progress=False)
    startup = run(base + ["--images", os.path.join(tmp, "packed_one"), "--out_csv", os.path.join(tmp, "p1.csv")])
    print(f"the same {n} images packed (SDSS_cutouts/pack.py; start-up {startup:.1f} s subtracted)")
    for prec, cl in (("fp32", False), ("bf16", False), ("bf16", True)):
        flags = ["--precision", prec] + (["--channels_last"] if cl else [])
        wall = run(base + flags + ["--images", os.path.join(tmp, "packed"), "--out_csv",
                                   os.path.join(tmp, f"p_{prec}_{cl}.csv")])
        rate = (n - 1) / max(wall - startup, 1e-9)
        scorer = Scorer(g, "paper", "cpu", prec, cl)
        fwd = batch * timed(lambda: scorer(x))
        print(f"{1:>5} {prec:>9} {'on' if cl else 'off':>7} {fwd:>13.1f} {rate:>9.1f} {rate / fwd:>6.0%}  packed",
              flush=True)


def bench_detection(tmp: str, weights: str, normal: str, abnormal: str, batch: int) -> None:
    """AUROC of normal (label 0) against anomalous (label 1) images in fp32 and bf16: does bf16 change a verdict?"""
    root = os.path.join(tmp, "labelled")  # the label comes from the nearest 0.normal / 1.abnormal folder
    os.makedirs(root)
    for label, src in (("0.normal", normal), ("1.abnormal", abnormal)):
        os.symlink(os.path.abspath(src), os.path.join(root, label))
    print(f"\ndetection: {normal} (normal) against {abnormal} (anomalous), test.py metrics")
    for prec in ("fp32", "bf16"):
        out = os.path.join(tmp, f"det_{prec}.csv")
        run(["test.py", "--weights", weights, "--images", root, "--out_csv", out, "--batchsize", str(batch),
             "--device", "cpu", "--precision", prec])
        with open(os.path.join(tmp, "metrics.json")) as fh:
            m = json.load(fh)
        print(f"  {prec}: AUROC {m['auroc']:.4f}, average precision {m['average_precision']:.4f} "
              f"({m['n_normal']} normal, {m['n_abnormal']} anomalous)", flush=True)


def _train_worker(rank: int, size: int, port: int, prec: str, cl: bool, steps: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(max(1, torch.get_num_threads() // size))
    world, _ = init_world("cpu")
    rate = train_rate(prec, cl, steps, 64 // size, world)
    if rank == 0:
        with open(out, "w") as fh:
            fh.write(str(rate * size))
    world.close()


def train_rate(prec: str, cl: bool, steps: int, batch: int, world=None) -> float:
    torch.manual_seed(0)
    m = Ganomaly(**NET, precision=prec, channels_last=cl, world=world)
    x = m.to_input(torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8))
    return batch * timed(lambda: m.optimize_params(x), seconds=0, min_calls=steps)


def bench_training(tmp: str, steps: int) -> None:
    print(f"\ntraining (optimize_params, global batch 64, {steps} timed steps after one warm-up)")
    print(f"{'procs':>5} {'precision':>9} {'ch-last':>7} {'images/s':>9}")
    for nproc, prec, cl in ((1, "fp32", False), (1, "fp32", True), (1, "bf16", False), (1, "bf16", True),
                            (2, "fp32", False), (2, "bf16", True)):
        if nproc == 1:
            rate = train_rate(prec, cl, steps, 64)
        else:
            out = os.path.join(tmp, "rate.txt")
            mp.spawn(_train_worker, args=(nproc, 29400 + os.getpid() % 100, prec, cl, steps, out), nprocs=nproc)
            rate = float(open(out).read())
        print(f"{nproc:>5} {prec:>9} {'on' if cl else 'off':>7} {rate:>9.1f}", flush=True)


def bench_gpu(steps: int) -> None:
    if not torch.cuda.is_available():
        print("\nGPU: skipped (no CUDA on this machine)")
        return
    name = torch.cuda.get_device_name(0)
    print(f"\nGPU: {name}")
    for prec in ("fp32", "bf16"):
        torch.manual_seed(0)
        m = Ganomaly(**NET, device="cuda", precision=prec, channels_last=True)
        x = m.to_input(torch.randint(0, 256, (64, 3, 64, 64), dtype=torch.uint8))

        def step():
            m.optimize_params(x)
            torch.cuda.synchronize()
        train = 64 * timed(step, seconds=3, min_calls=steps)
        scorer = Scorer(m.netg, "paper", "cuda", prec, True)
        xs = torch.randint(0, 256, (256, 3, 64, 64), dtype=torch.uint8).pin_memory()

        def score():
            scorer(xs)
            torch.cuda.synchronize()
        rate = 256 * timed(score, seconds=3)
        hours = PAPER_IMAGES * PAPER_EPOCHS / train / 3600
        print(f"  {prec}: training {train:.0f} images/s, scoring {rate:.0f} images/s (batch 256); the paper's run "
              f"(643,663 x 50): {hours:.1f} h on 1 GPU, {hours / 8:.1f} h on 8 (ideal scaling)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=640, help="images to score")
    p.add_argument("--batchsize", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="timed training steps per configuration")
    p.add_argument("--weights", default="", help="score with this trained generator (e.g. make demo's) "
                   "instead of an untrained one")
    p.add_argument("--scoring-only", action="store_true", help="skip the training benchmark")
    p.add_argument("--detection", nargs=2, metavar=("NORMAL_DIR", "ANOMALOUS_DIR"),
                   help="with --weights: AUROC of these two image sets in fp32 and in bf16")
    opt = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_scoring(tmp, opt.n, opt.batchsize, opt.weights)
        if opt.detection and opt.weights:
            bench_detection(tmp, opt.weights, *opt.detection, opt.batchsize)
        if not opt.scoring_only:
            bench_training(tmp, opt.steps)
    if not opt.scoring_only:
        bench_gpu(opt.steps)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
