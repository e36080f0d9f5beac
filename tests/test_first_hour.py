"""A new user's first hour (issue 13): each defect found by trying the project as a newcomer, with its test.

Labels on both folder layouts, messages that say what to do, file modes, --strict, one-line warnings,
batch-size tolerance, the paper's constants on other weights, and figures a reader can match up.
"""
import csv
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch

import test as test_script
import train
from lib import fileio
from lib.checkpoint import atomic_save
from lib.evaluate import save_worst_grid
from lib.networks import NetG, weights_init
from lib.scoring import BATCH_RTOL
from tests.conftest import EXAMPLES_DIR, ROOT, real_tiles

SMALL = ["--isize", "32", "--nz", "16", "--ngf", "16", "--ndf", "16", "--batchsize", "4", "--device", "cpu"]


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    g = NetG(32, 3, 16, 16)
    g.apply(weights_init)
    path = tmp_path / "netG_0.pth"
    torch.save({"epoch": 1, "state_dict": g.state_dict()}, path)
    return str(path)


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_abnormal_folder_alone_is_labelled_1_in_both_layouts(weights, tmp_path):
    """The paper's layout data/test/test/1.abnormal/apple.jpg: label 1 whether found by --dataroot or --images."""
    abnormal = tmp_path / "data" / "test" / "test" / "1.abnormal"
    abnormal.mkdir(parents=True)
    shutil.copy(os.path.join(EXAMPLES_DIR, "apple.jpg"), abnormal / "apple.jpg")
    plain, images = tmp_path / "plain.csv", tmp_path / "images.csv"
    assert test_script.main(["--weights", weights, "--dataroot", str(tmp_path / "data" / "test"),
                             "--out_csv", str(plain)]) == 0
    assert test_script.main(["--weights", weights, "--images", str(tmp_path / "data" / "test" / "test"),
                             "--out_csv", str(images)]) == 0
    assert [r["label"] for r in read_csv(plain)] == ["1"]
    assert [r["label"] for r in read_csv(images)] == ["1"]


def test_missing_paper_weights_names_the_demo_model_when_there_is_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert test_script.main(["--images", EXAMPLES_DIR]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "make paper-weights" in err and "make demo" in err
    demo = tmp_path / "output" / "demo" / "model" / "train" / "weights"
    demo.mkdir(parents=True)
    for e in (2, 10):  # numeric, not string, order: netG_10 is the newest
        (demo / f"netG_{e}.pth").write_bytes(b"x")
    assert test_script.main(["--images", EXAMPLES_DIR]) == 2
    err = capsys.readouterr().err
    assert "python test.py --weights output/demo/model/train/weights/netG_10.pth --images DIR" in err


def test_missing_weights_message_does_not_suggest_the_flag_just_passed(capsys):
    assert test_script.main(["--weights", "missing.pth", "--images", EXAMPLES_DIR]) == 2
    err = capsys.readouterr().err
    assert "weights file not found: missing.pth" in err and "pass --weights" not in err


def test_a_file_with_python_objects_gets_our_message_not_torchs_unsafe_advice(tmp_path, capsys):
    import argparse
    bad = tmp_path / "netG_0.pth"
    torch.save({"state_dict": {}, "opt": argparse.Namespace(x=1)}, bad)
    assert test_script.main(["--weights", str(bad), "--images", EXAMPLES_DIR]) == 2
    err = capsys.readouterr().err
    assert "cannot read checkpoint" in err and "weights_only=False" not in err and len(err.strip().splitlines()) == 1


def test_outputs_are_readable_by_the_group_under_umask_022(weights, tmp_path, umask022):
    out = tmp_path / "scores.csv"
    assert test_script.main(["--weights", weights, "--images", EXAMPLES_DIR, "--out_csv", str(out),
                             "--save_latents"]) == 0
    fileio.atomic_write_bytes(tmp_path / "image.jpg", b"\xff\xd8\xff\xd9")
    atomic_save({"epoch": 1}, str(tmp_path / "netG_1.pth"))
    for name in ("scores.csv", "scores_latents.npz", "scores_run.json", "image.jpg", "netG_1.pth"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name


def test_strict_writes_nothing_when_a_file_cannot_be_read(weights, tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    for f in real_tiles()[:3]:
        shutil.copy(f, src)
    (src / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out" / "scores.csv"
    assert test_script.main(["--weights", weights, "--images", str(src), "--out_csv", str(out), "--strict",
                             "--save_latents"]) == 1
    assert not out.parent.exists() or os.listdir(out.parent) == []
    assert "broken.png" in capsys.readouterr().err
    # without --strict the same input gives scores and the list of bad files
    assert test_script.main(["--weights", weights, "--images", str(src), "--out_csv", str(out)]) == 0
    assert len(read_csv(out)) == 3 and len(read_csv(tmp_path / "out" / "scores_errors.csv")) == 1


def test_one_image_is_one_image(weights, tmp_path, capsys):
    assert test_script.main(["--weights", weights, "--images", os.path.join(EXAMPLES_DIR, "apple.jpg"),
                             "--out_csv", str(tmp_path / "s.csv")]) == 0
    assert "1 image scored in" in capsys.readouterr().out


def test_scores_agree_across_batch_sizes_within_the_documented_tolerance(weights, tmp_path):
    outs = {}
    for b in (1, 7, 64):
        outs[b] = tmp_path / f"b{b}.csv"
        assert test_script.main(["--weights", weights, "--images", os.path.join(ROOT, "data", "sdss_real"),
                                 "--out_csv", str(outs[b]), "--batchsize", str(b)]) == 0
    a = {b: np.array([float(r["ascore"]) for r in read_csv(p)]) for b, p in outs.items()}
    assert len(a[1]) == len(real_tiles())
    for b in (7, 64):
        np.testing.assert_allclose(a[b], a[1], rtol=BATCH_RTOL, atol=0)


def test_paper_normalisation_on_other_weights_warns(weights, tmp_path, capsys):
    assert test_script.main(["--weights", weights, "--images", EXAMPLES_DIR, "--out_csv", str(tmp_path / "s.csv"),
                             "--normalize", "paper"]) == 0
    err = capsys.readouterr().err
    assert "warning: --normalize paper" in err and "not on the paper's scale" in err


def test_warnings_are_one_line_and_training_grids_can_be_matched(tmp_path):
    """train.py on a folder with an unreadable image, run as a user runs it (a subprocess)."""
    ds = tmp_path / "ds" / "train" / "0.normal"
    ds.mkdir(parents=True)
    for f in real_tiles()[:7]:  # 7 + 1 bad = 2 full batches of 4: no image falls in a dropped last batch
        shutil.copy(f, ds)
    (ds / "zz_broken.png").write_bytes(b"not an image")
    proc = subprocess.run([sys.executable, "train.py", "--dataroot", str(tmp_path / "ds"), "--outf", str(tmp_path),
                           "--name", "run", "--niter", "1", "--manualseed", "1", *SMALL],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shown = [ln.split("\r")[-1] for ln in proc.stderr.splitlines()]  # what a terminal shows of each line
    warning_lines = [ln for ln in shown if "zz_broken.png" in ln]
    assert warning_lines and all(ln.startswith("warning: ") for ln in warning_lines), proc.stderr[-3000:]
    assert "UserWarning" not in proc.stderr and ".py:" not in proc.stderr
    images = tmp_path / "run" / "train" / "images"
    from PIL import Image
    with Image.open(images / "fixed_reals.png") as reals, Image.open(images / "fixed_pairs_001.png") as pairs:
        assert reals.size[0] > 32
        assert pairs.size[1] > 2 * 2 * 32  # two rows of zoomed tiles plus two label bands
    assert (images / "fixed_fakes_001.png").is_file()


def test_most_anomalous_grid_names_each_image_and_its_score(tmp_path):
    import matplotlib.image

    items = [(0.5, 0, torch.zeros(3, 8, 8), "dir/low.png"), (2.0, 1, torch.ones(3, 8, 8), "dir/high.png")]
    path = tmp_path / "worst.png"
    fig = save_worst_grid(items, str(path))
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["high\nA = 2", "low\nA = 0.5"]  # highest first
    assert matplotlib.image.imread(path).shape[0] > 100
