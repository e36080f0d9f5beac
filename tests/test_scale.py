"""Sharded scoring (--shard, --merge_shards, torchrun test.py), precision and memory layout, the uint8 data path."""
import csv
import glob
import json
import os
import shutil

import numpy as np
import pytest
import torch

import test as test_script
from lib.data import build_transform, load_image, open_images
from lib.networks import NetG, weights_init
from lib.scoring import BATCH_RTOL, BF16_RTOL, Scorer
from tests.conftest import EXAMPLES_DIR, real_tiles
from tests.test_distributed_cli import torchrun


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small generator's checkpoint and 13 labelled images (9 SDSS cutouts normal, the 4 examples abnormal)."""
    root = tmp_path_factory.mktemp("scale")
    torch.manual_seed(0)
    g = NetG(32, 3, 16, 16)
    g.apply(weights_init)
    weights = str(root / "netG.pth")
    torch.save({"epoch": 1, "state_dict": g.state_dict()}, weights)
    for sub, files in (("0.normal", real_tiles()[:9]), ("1.abnormal", sorted(glob.glob(EXAMPLES_DIR + "/*")))):
        os.makedirs(root / "imgs" / sub)
        for f in files:
            shutil.copy(f, root / "imgs" / sub)
    ref = str(root / "ref" / "scores.csv")
    assert score(weights, root / "imgs", ref) == 0
    return weights, root / "imgs", ref


def score(weights, images, out_csv, *extra) -> int:
    return test_script.main(["--weights", str(weights), "--images", str(images), "--out_csv", str(out_csv),
                             "--batchsize", "4", "--save_latents", "--device", "cpu", *extra])


def rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_same_scores(got_csv, ref_csv):
    got, ref = rows(got_csv), rows(ref_csv)
    assert [r["filename"] for r in got] == [r["filename"] for r in ref]  # same rows, same order
    assert [r["label"] for r in got] == [r["label"] for r in ref]
    np.testing.assert_allclose([float(r["ascore"]) for r in got], [float(r["ascore"]) for r in ref], rtol=BATCH_RTOL)
    lg, lr = np.load(got_csv[:-4] + "_latents.npz"), np.load(ref_csv[:-4] + "_latents.npz")
    assert list(lg["filenames"]) == list(lr["filenames"])
    np.testing.assert_allclose(lg["latent_i"], lr["latent_i"], rtol=BATCH_RTOL, atol=1e-6)


def test_shards_then_merge_equal_one_run(setup, tmp_path, capsys):
    weights, images, ref = setup
    out = str(tmp_path / "scores.csv")
    for i in (1, 0):  # any order, any machine
        assert score(weights, images, out, "--shard", f"{i}/2") == 0
    assert sorted(os.listdir(tmp_path)) == sorted(
        f"scores.shard-{i}-of-2{s}" for i in (0, 1) for s in (".csv", "_latents.npz", "_run.json"))
    assert test_script.main(["--merge_shards", out]) == 0
    assert_same_scores(out, ref)  # shard batches [4, 2] + [4, 3] against [4, 4, 4, 1]: BATCH_RTOL
    assert json.loads((tmp_path / "scores_run.json").read_text())["n_scored"] == 13
    assert (tmp_path / "metrics.json").is_file()  # AUROC on the whole set, after merging
    os.unlink(tmp_path / "scores.shard-1-of-2.csv")
    assert test_script.main(["--merge-shards", out]) == 2  # the earlier spelling, kept as an alias
    assert "shard(s) [1] of 2 missing" in capsys.readouterr().err


def test_torchrun_scores_shards_and_rank0_merges(setup, tmp_path):
    weights, images, ref = setup
    out = str(tmp_path / "scores.csv")
    r = torchrun(2, "test.py", "--weights", weights, "--images", str(images), "--out_csv", out, "--batchsize", "4",
                 "--save_latents", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_scores(out, ref)
    assert not glob.glob(str(tmp_path / "*shard*"))  # joined, then removed
    run = json.loads((tmp_path / "scores_run.json").read_text())
    assert run["world_size"] == 2 and run["backend"] == "gloo" and run["n_scored"] == 13


def test_bf16_and_channels_last_scores_within_the_documented_tolerances():
    """The paper's network size on the bundled images: channels-last is the same maths; bf16 is within BF16_RTOL."""
    torch.manual_seed(0)
    g = NetG(64, 3, 128, 64)
    g.apply(weights_init)
    t = build_transform(64, 3)
    x = torch.stack([t(load_image(f)) for f in real_tiles()[:12] + sorted(glob.glob(EXAMPLES_DIR + "/*"))])
    a32 = Scorer(g)(x)["A"].numpy()
    np.testing.assert_allclose(Scorer(g, channels_last=True)(x)["A"].numpy(), a32, rtol=BATCH_RTOL)
    a16 = Scorer(g, precision="bf16", channels_last=True)(x)["A"].numpy()
    rel = np.abs(a16 - a32) / a32
    assert rel.max() < BF16_RTOL and 0 < np.median(rel)  # bf16 really ran, and stayed within the tolerance


def test_uint8_batches_normalised_on_the_device_equal_the_transform(setup):
    """The GPU-rate path (uint8 batches, normalisation where the network runs) gives the original's tensors."""
    _, images, _ = setup
    src = open_images(str(images), 32, 3)
    t = build_transform(32, 3)
    raw = next(iter(src.scoring_batches(8, raw=True, workers=2)))
    assert raw[0].dtype == torch.uint8
    expect = torch.stack([t(load_image(p)) for p in raw[2]])
    g = NetG(32, 3, 16, 16)
    s = Scorer(g)
    out = s(raw[0])
    assert torch.equal(out["x"], expect)  # bit for bit
    assert torch.equal(out["A"], s(expect)["A"])
