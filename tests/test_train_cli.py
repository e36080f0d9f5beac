"""train.py end to end on real SDSS cutouts: outputs, formats, resume, bad input."""
import os
import re
import subprocess
import sys

import pytest
import torch

import train
from tests.conftest import ROOT

SMALL = ["--isize", "32", "--nz", "16", "--ngf", "16", "--ndf", "16", "--batchsize", "4", "--device", "cpu"]


def run_train(ds, out, *extra):
    return train.main(["--dataroot", str(ds), "--outf", str(out), "--name", "run", *SMALL, *extra])


def test_one_epoch_writes_the_original_outputs(sdss_dataset, tmp_path):
    assert run_train(sdss_dataset, tmp_path, "--niter", "1", "--manualseed", "0") == 0
    run = tmp_path / "run"
    ckpt = torch.load(run / "train" / "weights" / "netG_0.pth", weights_only=True)
    assert ckpt["epoch"] == 1 and set(ckpt) >= {"epoch", "state_dict", "optimizer", "fixed_input", "opt", "versions"}
    assert ckpt["fixed_input"].shape == (4, 3, 32, 32)
    d = torch.load(run / "train" / "weights" / "netD_0.pth", weights_only=True)
    assert d["epoch"] == 1 and "classifier.0.weight" in d["state_dict"]
    # 16 images < print_freq 100: the original crashed here (UnboundLocalError); we log the epoch mean
    log = (run / "loss_log.txt").read_text().splitlines()
    assert log[0].startswith("================ Training Loss (") and log[0].endswith(") ================")
    loss_lines = [l for l in log if "Loss:" in l]
    assert len(loss_lines) == 1
    m = re.fullmatch(r"   Loss: \[0/1\] err_d: (\S+) err_g: (\S+) err_g_adv: (\S+) err_g_con: (\S+) err_g_enc: (\S+) ",
                     loss_lines[0])
    assert m, loss_lines[0]
    d_, g, adv, con, enc = map(float, m.groups())
    assert g == pytest.approx(adv + 50 * con + enc, abs=0.03)  # err_g = w_adv adv + w_con con + w_enc enc
    from PIL import Image
    for name in ("reals.png", "fakes.png", "fixed_fakes_001.png"):
        with Image.open(run / "train" / "images" / name) as im:
            assert im.size == (4 * 34 + 2, 34 + 2)  # 4 tiles of 32 px, 2 px padding, one row
    opt = (run / "train" / "opt.txt").read_text().splitlines()
    assert opt[0] == "------------ Options -------------" and opt[-1] == "-------------- End ----------------"
    keys = [l.split(":")[0] for l in opt[1:-1]]
    assert keys == sorted(keys) and "gpu_ids: [0]" in opt and "isTrain: True" in opt and "w_con: 50" in opt


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(sdss_dataset, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_train(sdss_dataset, a, "--niter", "3", "--manualseed", "7") == 0
    assert run_train(sdss_dataset, b, "--niter", "1", "--manualseed", "7") == 0
    # as if killed while writing epoch 1: a lone netD_1 and a temporary file are ignored by --resume
    weights = b / "run" / "train" / "weights"
    (weights / "netD_1.pth").write_bytes((weights / "netD_0.pth").read_bytes())
    (weights / ".tmp-abc.pth").write_bytes(b"partial")
    assert run_train(sdss_dataset, b, "--niter", "3", "--manualseed", "7", "--resume") == 0
    for net in ("netG_2.pth", "netD_2.pth"):
        sa = torch.load(a / "run" / "train" / "weights" / net, weights_only=True)["state_dict"]
        sb = torch.load(b / "run" / "train" / "weights" / net, weights_only=True)["state_dict"]
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (net, k)
    assert "# resumed from epoch 1" in (b / "run" / "loss_log.txt").read_text()


@pytest.mark.parametrize("args, message", [
    (["--isize", "48"], "isize must be a power of two"),
    (["--nc", "0"], "--nc 0: must be >= 1"),
    (["--device", "cuda:0"], "CUDA is not available"),
    (["--dataroot", "/nonexistent/place"], "dataset folder not found: /nonexistent/place/train"),
    (["--resume", "/nonexistent/weights"], "no netG_<epoch>.pth / netD_<epoch>.pth pair"),
])
def test_bad_options_give_one_line_errors(sdss_dataset, tmp_path, args, message):
    cmd = [sys.executable, "train.py", "--dataroot", str(sdss_dataset), "--outf", str(tmp_path), "--niter", "1",
           "--device", "cpu", "--batchsize", "4", *args]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr
    assert not (tmp_path / "ganomaly").exists()  # nothing written for a rejected run


def test_empty_train_folder_and_too_few_images(tmp_path, sdss_dataset, capsys):
    (tmp_path / "empty" / "train" / "0.normal").mkdir(parents=True)
    assert train.main(["--dataroot", str(tmp_path / "empty"), "--outf", str(tmp_path), *SMALL]) == 2
    assert "no training images in" in capsys.readouterr().err
    assert run_train(sdss_dataset, tmp_path, "--batchsize", "64") == 2
    assert "no complete batch" in capsys.readouterr().err


def test_corrupt_and_non_image_files_are_skipped(sdss_dataset, tmp_path):
    train_dir = sdss_dataset / "train" / "0.normal"
    good = (train_dir / "tile_00.png").read_bytes()
    (train_dir / "truncated.png").write_bytes(good[: len(good) // 3])
    (train_dir / "notes.jpg").write_text("<html>error</html>")
    (sdss_dataset / "train" / "1.abnormal").mkdir()  # empty class folder: fine
    with pytest.warns(UserWarning, match="skipped unreadable image"):
        assert run_train(sdss_dataset, tmp_path, "--niter", "1") == 0
    listed = (tmp_path / "run" / "train" / "skipped_images.csv").read_text()
    assert "truncated.png" in listed and "notes.jpg" in listed and "tile_00" not in listed


def test_packed_dataset_trains_and_scores_like_the_folder(sdss_dataset, tmp_path):
    """SDSS_cutouts/pack.py output is accepted wherever a folder is: same batches, same scores."""
    import csv

    import test as test_script
    from lib.sdss import pack_folder
    packed = tmp_path / "packed"
    for split in ("train", "test"):
        pack_folder(str(sdss_dataset / split), str(packed / split), isize=32, nc=3, workers=1)
    from lib.data import ImageList, find_samples
    from lib.data import PackedImages
    folder, pk = ImageList(find_samples(str(sdss_dataset / "train"))[0], 32), PackedImages(str(packed / "train"))
    assert len(pk) == 16 and all(torch.equal(folder[i][0], pk[i][0]) for i in range(16))  # identical tensors
    b = tmp_path / "b"
    assert run_train(packed, b, "--niter", "2", "--manualseed", "3") == 0
    w = b / "run" / "train" / "weights" / "netG_1.pth"
    assert torch.load(w, weights_only=True)["epoch"] == 2
    rows = {}
    for name, src in (("folder", sdss_dataset / "test"), ("packed", packed / "test")):
        out = tmp_path / f"{name}.csv"
        assert test_script.main(["--weights", str(w), "--images", str(src), "--out_csv", str(out)]) == 0
        rows[name] = [float(r["ascore"]) for r in csv.DictReader(open(out))]
    assert len(rows["folder"]) == 4 and rows["folder"] == pytest.approx(rows["packed"], rel=1e-6)


def test_nan_loss_stops_cleanly_keeping_the_last_good_checkpoint(sdss_dataset, tmp_path, monkeypatch, capsys):
    import lib.model as lm
    real, calls = lm.generator_loss, []

    def poisoned(*args, **kwargs):  # the 6th step (epoch 1, 4 steps per epoch) produces a NaN loss
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 6:
            out["err_g_con"] = out["err_g_con"] * float("nan")
        return out

    monkeypatch.setattr(lm, "generator_loss", poisoned)
    assert run_train(sdss_dataset, tmp_path, "--niter", "3") == 3
    err = capsys.readouterr().err
    weights = tmp_path / "run" / "train" / "weights"
    assert "training stopped: non-finite loss" in err and f"last good checkpoint: {weights / 'netG_0.pth'}" in err
    assert sorted(os.listdir(weights)) == ["netD_0.pth", "netG_0.pth"]
    assert "STOPPED at epoch 1" in (tmp_path / "run" / "loss_log.txt").read_text()


def test_opt_txt_and_loss_log_lines_match_the_papers_files(tmp_path):
    """The paper's own opt.txt and loss_log.txt (data/paper/) are reproduced line for line."""
    import options
    from lib.visualizer import Visualizer
    from tests.conftest import ROOT
    paper = os.path.join(ROOT, "data", "paper")
    opt = options.parse_train(["--dataset", "SDSS", "--isize", "64", "--niter", "50", "--display", "--device", "cpu"])
    options.write_opt_txt(opt, str(tmp_path / "opt.txt"))
    ours = (tmp_path / "opt.txt").read_text().splitlines()
    theirs = open(os.path.join(paper, "opt.txt")).read().splitlines()
    missing = [line for line in theirs if line not in ours and not line.startswith("device:")]
    assert missing == [] and "device: cpu" in ours
    vis = Visualizer(str(tmp_path / "run"))
    for line in open(os.path.join(paper, "loss_log.txt")).read().splitlines():
        m = re.fullmatch(r"   Loss: \[(\d+)/(\d+)\] (.*) ", line)
        if m:
            values = dict(kv.split(": ") for kv in re.findall(r"\w+: [\d.]+", m.group(3)))
            assert vis.print_epoch_errors(int(m.group(1)), int(m.group(2)), {k: float(v) for k, v in values.items()}) == line
