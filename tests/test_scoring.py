"""Scoring: the batched paper protocol equals the literal batch-1 loop; test.py end to end; weights download."""
import csv
import http.server
import json
import os
import shutil
import threading

import numpy as np
import pytest
import torch

import get_paper_weights
import test as test_script
from lib.data import build_transform, load_image
from lib.networks import NetG, weights_init
from lib.scoring import Calibration, Scorer, normalize_paper
from tests.conftest import EXAMPLES_DIR, ROOT, real_tiles


def trained_like_netg(isize=64, nz=32, ngf=16, seed=0):
    """A NetG whose BatchNorms have non-trivial affine parameters and running statistics."""
    torch.manual_seed(seed)
    g = NetG(isize, 3, nz, ngf)
    g.apply(weights_init)
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return g


def images(n=12, isize=64):
    t = build_transform(isize, 3)
    files = real_tiles()[:n - 3] + [os.path.join(EXAMPLES_DIR, f) for f in ("NIHAO_example.png", "apple.jpg", "SDSS_example.png")]
    return torch.stack([t(load_image(f)) for f in files])


def literal_paper_loop(netg, x):
    """The paper: one image per forward pass, generator in training mode, no_grad."""
    netg.train()
    out = []
    with torch.no_grad():
        for i in range(x.shape[0]):
            _, li, lo = netg(x[i:i + 1])
            out.append(torch.mean(torch.pow(li - lo, 2), dim=1).item())
    return np.array(out)


def test_batched_paper_mode_equals_the_batch1_train_mode_loop():
    g, x = trained_like_netg(), images()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    batched = Scorer(g, "paper")(x)["A"].numpy()
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())  # scorer leaves the model alone
    expect = literal_paper_loop(g, x)
    np.testing.assert_allclose(batched, expect, rtol=1e-5)
    assert np.ptp(expect) > 0.1 * expect.mean()  # scores actually differ between images


@pytest.mark.parametrize("mode", ["paper", "eval"])
def test_scores_do_not_depend_on_batch_size_or_order(mode):
    g, x = trained_like_netg(seed=1), images()
    s = Scorer(g, mode)
    full = s(x)["A"].numpy()
    ones = np.concatenate([s(x[i:i + 1])["A"].numpy() for i in range(len(x))])
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(3))
    shuffled = np.empty_like(full)
    shuffled[perm.numpy()] = np.concatenate([s(x[perm[i:i + 5]])["A"].numpy() for i in range(0, len(x), 5)])
    np.testing.assert_allclose(ones, full, rtol=1e-5)
    np.testing.assert_allclose(shuffled, full, rtol=1e-5)


def test_eval_mode_uses_running_statistics():
    g, x = trained_like_netg(seed=2), images(6)
    g.eval()
    with torch.no_grad():
        _, li, lo = g(x)
    expect = torch.mean((li - lo) ** 2, dim=1).flatten().double().numpy()
    np.testing.assert_allclose(Scorer(g, "eval")(x)["A"].numpy(), expect, rtol=1e-6)
    assert not np.allclose(Scorer(g, "paper")(x)["A"].numpy(), expect, rtol=1e-3)


def test_paper_normalisation_constants():
    # the paper: apple A_raw 1.1472573 -> 1.23040259, SDSS_example 0.0257242 -> 0.0267757
    np.testing.assert_allclose(normalize_paper([1.1472573280334473, 0.025724200531840324]),
                               [1.23040259, 0.0267757], rtol=2e-6)  # as printed (7-8 digits)


@pytest.fixture
def weights(tmp_path):
    g = trained_like_netg(isize=32, nz=16, ngf=16)
    path = tmp_path / "netG_0.pth"
    torch.save({"epoch": 1, "state_dict": g.state_dict()}, path)
    return str(path), g


@pytest.fixture
def labelled(tmp_path):
    root = tmp_path / "imgs"
    (root / "0.normal").mkdir(parents=True)
    (root / "1.abnormal" / "sub").mkdir(parents=True)
    for f in real_tiles()[:6]:
        shutil.copy(f, root / "0.normal")
    shutil.copy(os.path.join(EXAMPLES_DIR, "apple.jpg"), root / "1.abnormal")
    shutil.copy(os.path.join(EXAMPLES_DIR, "NIHAO_example.png"), root / "1.abnormal" / "sub")  # 500x500 RGBA
    (root / "1.abnormal" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return root


def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_test_py_scores_a_folder_and_reports_metrics(weights, labelled, tmp_path, capsys):
    w, g = weights
    out = tmp_path / "scores.csv"
    assert test_script.main(["--weights", w, "--images", str(labelled), "--out_csv", str(out), "--batchsize", "3",
                             "--normalize", "paper", "--save_latents"]) == 0
    rows = read_csv(out)
    assert list(rows[0]) == ["filename", "ascore", "label", "ascore_norm"]
    assert len(rows) == 8 and [r["label"] for r in rows] == ["0"] * 6 + ["1"] * 2
    t = build_transform(32, 3)
    x = torch.stack([t(load_image(r["filename"])) for r in rows])
    np.testing.assert_allclose([float(r["ascore"]) for r in rows], literal_paper_loop(g, x), rtol=1e-5)
    np.testing.assert_allclose([float(r["ascore_norm"]) for r in rows],
                               normalize_paper([float(r["ascore"]) for r in rows]), rtol=1e-12)
    errors = read_csv(tmp_path / "scores_errors.csv")
    assert len(errors) == 1 and errors[0]["filename"].endswith("broken.png")
    metrics = json.load(open(tmp_path / "metrics.json"))
    assert metrics["n_normal"] == 6 and metrics["n_abnormal"] == 2 and 0 <= metrics["auroc"] <= 1
    assert (tmp_path / "roc.png").stat().st_size > 1000
    lat = np.load(tmp_path / "scores_latents.npz")
    assert lat["latent_i"].shape == (8, 16) and list(lat["filenames"]) == [r["filename"] for r in rows]
    np.testing.assert_allclose(((lat["latent_i"] - lat["latent_o"]) ** 2).mean(1), lat["ascore"], rtol=1e-5)
    assert "1 of 9 files could not be scored" in capsys.readouterr().err
    run = json.load(open(tmp_path / "scores_run.json"))
    assert run["n_scored"] == 8 and run["n_errors"] == 1 and run["architecture"]["nz"] == 16 and "torch" in run["versions"]
    # --strict turns unreadable files into a failure
    assert test_script.main(["--weights", w, "--images", str(labelled), "--out_csv", str(out), "--strict"]) == 1


def test_dataset_mode_reads_data_name_test_without_a_train_folder(weights, labelled, tmp_path):
    w, _ = weights
    ds = tmp_path / "dsroot"
    shutil.copytree(labelled, ds / "test")
    assert test_script.main(["--weights", w, "--dataroot", str(ds), "--dataset", "mine", "--outf", str(tmp_path / "o")]) == 0
    rows = read_csv(tmp_path / "o" / "ganomaly" / "mine" / "test" / "anomaly_scores.csv")
    assert len(rows) == 8


def test_calibration_gives_a_stable_single_image_normalisation(weights, labelled, tmp_path):
    w, _ = weights
    ref = labelled / "0.normal"
    assert test_script.main(["--weights", w, "--images", str(ref), "--out_csv", str(tmp_path / "ref.csv"), "--calibrate"]) == 0
    cal = Calibration.load(w + ".calib.json")
    ref_scores = np.array([float(r["ascore"]) for r in read_csv(tmp_path / "ref.csv")])
    assert cal.quantiles[0] == ref_scores.min() and cal.quantiles[-1] == ref_scores.max()
    one = labelled / "1.abnormal" / "apple.jpg"
    for name in ("a.csv", "b.csv"):
        assert test_script.main(["--weights", w, "--images", str(one), "--out_csv", str(tmp_path / name),
                                 "--normalize", "reference"]) == 0
    a, b = read_csv(tmp_path / "a.csv")[0], read_csv(tmp_path / "b.csv")[0]
    assert a == b
    expect = (float(a["ascore"]) - ref_scores.min()) / np.ptp(ref_scores)
    assert float(a["ascore_norm"]) == pytest.approx(expect, rel=1e-12)
    assert 0 <= float(a["ascore_pct"]) <= 100


@pytest.mark.parametrize("args, message", [
    (["--weights", "missing.pth"], "weights file not found: missing.pth"),
    ([], "make paper-weights"),
    (["--isize", "64"], "--isize 64 but the checkpoint has 32"),
    (["--images", "/nonexistent"], "no such image folder, file or glob"),
])
def test_bad_input_is_one_line(weights, tmp_path, capsys, args, message):
    w, _ = weights
    base = ["--weights", w, "--images", str(tmp_path)] if "--weights" not in args and args else []
    assert test_script.main(base + args + (["--images", str(tmp_path)] if not args else [])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_checkpoint_that_is_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"epoch": 1, "state_dict": {}, "payload": threading.Lock}, path)  # a global: not loadable as data
    assert test_script.main(["--weights", str(path), "--images", str(tmp_path)]) == 2
    assert "cannot read checkpoint" in capsys.readouterr().err


PAPER = os.path.join(ROOT, "output", "ganomaly", "SDSS", "train", "weights", "netG_43.pth")


@pytest.mark.skipif(not os.path.isfile(PAPER), reason=f"paper weights absent: run `make paper-weights` to put them at {PAPER}")
def test_paper_weights_reproduce_the_papers_scores(tmp_path):
    out = tmp_path / "paper.csv"
    assert test_script.main(["--weights", PAPER, "--images", EXAMPLES_DIR, "--out_csv", str(out)]) == 0
    got = {os.path.basename(r["filename"]): float(r["ascore"]) for r in read_csv(out)}
    for name, a in (("NIHAO_example.png", 0.030030388), ("SDSS_example.png", 0.025724201), ("apple.jpg", 1.14725733)):
        assert got[name] == pytest.approx(a, rel=1e-5)


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves /good (with Range support; the first transfer is cut after 20,000 bytes) and /bad."""
    blobs: dict = {}
    calls: list = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = self.blobs.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if "Range" in self.headers else 0
        self.calls.append((self.path, start))
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if len(self.calls) == 1:  # close the connection part-way through the first transfer (a clean FIN,
            self.wfile.write(body[start:start + 20_000])  # so the client keeps what it received)
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])


def test_get_paper_weights_resumes_verifies_and_rejects(tmp_path):
    import hashlib
    body = os.urandom(50_000)
    sha = hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()
    _Files.blobs = {"/good": body, "/bad": body[:-1] + b"x"}
    _Files.calls = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        dest = tmp_path / "w" / "netG_43.pth"
        assert get_paper_weights.main(["--url", url + "/good", "--dest", str(dest), "--sha1", sha, "--timeout", "5"]) == 0
        assert dest.read_bytes() == body
        assert _Files.calls[0] == ("/good", 0) and _Files.calls[1][1] >= 8192  # resumed, not restarted
        bad = tmp_path / "w" / "bad.pth"
        assert get_paper_weights.main(["--url", url + "/bad", "--dest", str(bad), "--sha1", sha, "--timeout", "5"]) == 1
        assert not bad.exists() and not os.path.exists(str(bad) + ".part")
    finally:
        server.shutdown()
