"""The live dashboard against a real visdom server on 127.0.0.1, offline, and in headless Chromium.

One visdom server (``python -m visdom.server -bind_local``) runs for the whole
module on a free port, with its static files installed by
tools/visdom_setup.py and every outgoing HTTP(S) request sent to a dead proxy:
if it tried to reach a CDN it would fail, so the tests prove it starts offline.
Windows are read back through visdom's own client API (``get_window_data``).
"""
import base64
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import requests
import torch
from PIL import Image

from lib.live import (HEALTH_WINDOW, LiveSinkWarning, VisdomSink, group_window, image_window,
                      scalar_window)
from tests.conftest import ROOT, real_tiles

sys.path.insert(0, os.path.join(ROOT, "tools"))
import visdom_setup  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::lib.live.LiveSinkWarning"),
              # visdom 0.2.4 calls the deprecated logger.warn when told not to open its socket
              pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")]

DEAD_PROXY = "http://127.0.0.1:9"  # discard port: nothing answers, so any download fails
SMALL = ["--isize", "32", "--nz", "16", "--ngf", "16", "--ndf", "16", "--batchsize", "4",
         "--device", "cpu", "--niter", "1", "--print_freq", "4", "--save_image_freq", "8"]
RUN = "ganomaly/SDSS"
ENV = "ganomaly_SDSS"  # train.py names the environment after the run, '/' -> '_'
KEYS = ("err_d", "err_g", "err_g_adv", "err_g_con", "err_g_enc", "d_real", "d_fake", "images_per_s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env_path) -> subprocess.Popen:
    env = dict(os.environ, HTTP_PROXY=DEAD_PROXY, HTTPS_PROXY=DEAD_PROXY, http_proxy=DEAD_PROXY,
               https_proxy=DEAD_PROXY, NO_PROXY="", no_proxy="")
    # the log goes to a file: an unread pipe would fill up and freeze the server
    log = open(os.path.join(str(env_path), "server.log"), "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "visdom.server", "-bind_local", "-port", str(port),
         "-env_path", os.path.join(str(env_path), ""), "-logging_level", "WARNING"],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    log.close()
    proc.log_path = log.name
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"visdom server exited:\n{read_log(proc)}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("visdom server did not answer within 60 s")


def read_log(proc) -> str:
    with open(proc.log_path) as fh:
        return fh.read()


def stop_server(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return read_log(proc)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(port, log getter) of a visdom server on 127.0.0.1 that cannot reach the internet."""
    visdom_setup.install(log=lambda *a: None)  # instant when `make visdom` already ran
    port = free_port()
    proc = start_server(port, tmp_path_factory.mktemp("visdom_envs"))
    yield port, proc
    stop_server(proc)


def client(port):
    import visdom

    return visdom.Visdom(server="http://127.0.0.1", port=port, use_incoming_socket=False,
                         raise_exceptions=True)


def window(port, env, win, timeout=15.0):
    """A window's data as visdom stores it, waiting until it exists."""
    vis = client(port)
    end = time.monotonic() + timeout
    while True:
        wins = json.loads(vis.get_window_data(env=env) or "{}")
        if win in wins:
            return wins[win]
        if time.monotonic() > end:
            raise AssertionError(f"window {win!r} not in env {env!r}: {sorted(wins)}")
        time.sleep(0.1)


def line_points(port, env, win, n=None, timeout=15.0):
    """{trace name: (x list, y list)} of a line plot, waiting until its traces hold ``n`` points.

    The sink sends in the background and close() waits at most 2 s, so on a
    loaded machine the last redraw may arrive a little after close().
    """
    end = time.monotonic() + timeout
    while True:
        data = window(port, env, win, timeout)
        points = {t["name"]: (t["x"], t["y"]) for t in data["content"]["data"]}
        if n is None or all(len(x) >= n for x, _ in points.values()) or time.monotonic() > end:
            return points
        time.sleep(0.1)


def decode_image(win_data) -> np.ndarray:
    src = win_data["content"]["src"]
    assert src.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))


# -- the server itself ------------------------------------------------------------------
def test_setup_is_idempotent_and_server_serves_every_static_file_offline(server):
    port, proc = server
    t = time.perf_counter()
    assert visdom_setup.install(log=lambda *a: None) == 0  # nothing to fetch the second time
    assert time.perf_counter() - t < 1.0
    static = visdom_setup.visdom_static_dir()
    import visdom
    assert (static / "version.built").read_text().strip() == visdom.__version__
    page = requests.get(f"http://127.0.0.1:{port}/", timeout=5).text
    urls = re.findall(r"""(?:src|href)=['"]?([^'" >]*/static/[^'" >]+)""", page)
    assert len(urls) >= 15, urls
    for url in urls:
        if "user/style.css" in url:
            continue  # an optional user override
        r = requests.get(f"http://127.0.0.1:{port}{url}", timeout=5)
        assert r.status_code == 200 and len(r.content) > 100, url
    # bootstrap.css's glyphicon fonts: the browser drops the '#...' fragment of the SVG's url()
    for ext in ("eot", "woff2", "woff", "ttf", "svg"):
        r = requests.get(f"http://127.0.0.1:{port}/static/fonts/glyphicons-halflings-regular.{ext}", timeout=5)
        assert r.status_code == 200 and len(r.content) > 1000, ext
    plotly = requests.get(f"http://127.0.0.1:{port}/static/js/plotly-plotly.min.js", timeout=5).text
    assert "2.11.1" in plotly[:500]
    # -bind_local: not reachable through the machine's other addresses
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # UDP: sends nothing, only picks the outgoing address
            own_ip = probe.getsockname()[0]
    except OSError:  # no route at all: loopback is the only address
        own_ip = "127.0.0.1"
    if not own_ip.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((own_ip, port), timeout=2).close()
    log = read_log(proc)
    assert "downloading" not in log.lower() and "Traceback" not in log, log  # it never went online


def test_launcher_checks_the_port_and_binds_to_localhost_only(server, capsys, tmp_path):
    import visdom_server

    port, _ = server
    assert visdom_server.main(["--port", str(port), "--env-path", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"visdom_server: error: port {port} on 127.0.0.1 is already in use (a visdom server may "
                   f"already be running: open http://localhost:{port}; or pick another with --port)")
    free = free_port()
    assert visdom_server.main(["--check", "--port", str(free), "--env-path", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"-m visdom.server -bind_local -port {free} -env_path {tmp_path}/" in out
    assert visdom_server.main(["--port", "70000"]) == 2


def test_sink_pushes_scalars_images_and_text_that_read_back_exactly(server):
    port, _ = server
    sink = VisdomSink("http://127.0.0.1", port, "sink_test")
    xs = [0.25, 0.5, 0.75, 1.0]
    for i, x in enumerate(xs):
        sink.scalars(x, {"err_d": 50.0 - i, "err_g_con": 0.02 + 0.001 * i}, "run loss over time")
    reals = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
    sink.images({"reals": reals})
    sink.text("epoch 4: D saturated <&>")
    sink.close()
    # on a loaded machine close() may return before the last send (it waits 2 s at most)
    assert [w for w in sink.warnings if "after close()" not in w] == []
    per_key = line_points(port, "sink_test", scalar_window("err_d"), n=4)
    assert per_key == {"err_d": (xs, [50.0, 49.0, 48.0, 47.0])}
    group = line_points(port, "sink_test", group_window("run loss over time"), n=4)
    assert group["err_d"] == (xs, [50.0, 49.0, 48.0, 47.0])
    assert group["err_g_con"][1] == pytest.approx([0.02, 0.021, 0.022, 0.023])
    layout = window(port, "sink_test", group_window("run loss over time"))["content"]["layout"]
    assert layout["yaxis"]["type"] == "log" and layout["xaxis"]["title"] == "Epoch"
    img = decode_image(window(port, "sink_test", image_window("reals")))
    # visdom's grid: 2 tiles of 8 px with 2 px padding each side; tile k starts at 1 + 2 + 12 k
    assert img.shape == (12, 24, 3)
    tile = img[3:11, 3:11]
    expected = (reals[0].permute(1, 2, 0).numpy() + 1) / (2 + 1e-5) * 255  # batch min-max
    assert np.abs(tile.astype(float) - expected).max() <= 1.0
    text = window(port, "sink_test", HEALTH_WINDOW)
    assert "epoch 4: D saturated &lt;&amp;&gt;" in text["content"] and text["title"] == "Health warnings"


def test_sink_started_before_the_server_warns_once_then_redraws_the_history(tmp_path):
    port = free_port()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sink = VisdomSink("http://127.0.0.1", port, "late", retry_s=0.3)
        for i in range(5):
            sink.scalars(i / 4, {"err_d": float(i)}, "loss")
            time.sleep(0.1)
        proc = start_server(port, tmp_path)
        try:
            for i in range(5, 8):  # training goes on; a retry is due: reconnect and redraw everything
                sink.scalars(i / 4, {"err_d": float(i)}, "loss")
                time.sleep(0.4)
            points = line_points(port, "late", scalar_window("err_d"), n=8)
            sink.close()
        finally:
            stop_server(proc)
    assert points == {"err_d": ([i / 4 for i in range(8)], [float(i) for i in range(8)])}
    msgs = [str(w.message) for w in rec if issubclass(w.category, LiveSinkWarning)]
    assert len(msgs) == 2 and "connection refused" in msgs[0]
    assert msgs[1] == f"visdom: connected to http://127.0.0.1:{port} (environment 'late'); redrawing the history"


# -- train.py --display end to end ------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    d = root / "train" / "0.normal"
    d.mkdir(parents=True)
    for f in real_tiles()[:16]:  # 16 real 64x64 SDSS cutouts: 4 iterations of 4
        shutil.copy(f, d / os.path.basename(f))
    return root


def train_main(args):
    import train

    return train.main(args)


@pytest.fixture(scope="module")
def trained(server, dataset, tmp_path_factory):
    """A 1-epoch train.py --display run streaming to the module's server."""
    port, _ = server
    out = tmp_path_factory.mktemp("out")
    t = time.perf_counter()
    rc = train_main(["--dataroot", str(dataset), "--outf", str(out), "--name", RUN, "--manualseed", "1",
                     *SMALL, "--display", "--display_server", "http://localhost", "--display_port", str(port)])
    return rc, out / RUN, time.perf_counter() - t


def logged_epoch_means(run_dir):
    line = [l for l in (run_dir / "loss_log.txt").read_text().splitlines() if "Loss:" in l][-1]
    return {k: float(v) for k, v in re.findall(r"(\w+): (-?[\d.]+)", line)}


def test_train_display_streams_every_loss_term_and_they_match_the_log(server, trained):
    port, _ = server
    rc, run_dir, _ = trained
    assert rc == 0
    series = {k: line_points(port, ENV, scalar_window(k), n=4)[k] for k in KEYS}
    xs = [0.25, 0.5, 0.75, 1.0]  # 16 images, batch 4, plotted every 4 images: epoch + fraction
    for k in KEYS:
        assert series[k][0] == pytest.approx(xs), k
    means = logged_epoch_means(run_dir)
    assert set(means) == {"err_d", "err_g", "err_g_adv", "err_g_con", "err_g_enc"}
    for k, v in means.items():  # the log holds epoch means with 3 decimals; the plot every iteration
        assert np.mean(series[k][1]) == pytest.approx(v, abs=6e-4), k
    for i in range(4):  # err_g = w_adv adv + w_con con + w_enc enc (1, 50, 1), point by point
        g = series["err_g_adv"][1][i] + 50 * series["err_g_con"][1][i] + series["err_g_enc"][1][i]
        assert series["err_g"][1][i] == pytest.approx(g, rel=1e-4)
        assert 0 <= series["d_real"][1][i] <= 1 and 0 <= series["d_fake"][1][i] <= 1
        assert series["images_per_s"][1][i] > 0
    group = line_points(port, ENV, group_window(f"{RUN} loss over time"), n=4)
    assert set(group) == set(KEYS) and group["err_d"] == series["err_d"]


def test_train_display_shows_the_saved_image_grids(server, trained):
    port, _ = server
    _, run_dir, _ = trained
    shown = {n: decode_image(window(port, ENV, image_window(n))) for n in ("reals", "fakes", "fixed_fakes")}
    for n, img in shown.items():
        assert img.shape == (36, 4 * 36, 3), n  # 4 tiles of 32 px, visdom's 2 px padding
    # the live 'reals' grid is the last batch saved in reals.png (same tiles, same batch min-max)
    saved = np.asarray(Image.open(run_dir / "train" / "images" / "reals.png").convert("RGB")).astype(float)

    def worst_tile_difference():
        live = decode_image(window(port, ENV, image_window("reals"))).astype(float)
        return max(np.abs(live[3:35, 3 + 36 * k: 35 + 36 * k]  # visdom: tile k at 1 + 2 + 36 k
                          - saved[2:34, 2 + 34 * k: 34 + 34 * k]).max()  # make_grid: 2 + 34 k
                   for k in range(4))

    end = time.monotonic() + 15  # an earlier grid may still be on show for a moment
    while (diff := worst_tile_difference()) > 2.0 and time.monotonic() < end:
        time.sleep(0.2)
    assert diff <= 2.0


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_browser_renders_the_dashboard(server, trained, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install -y chromium; .ci/run installs it)")
    port, _ = server
    url = f"http://127.0.0.1:{port}/env/{ENV}"
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--virtual-time-budget=5000", "--window-size=1600,1250", "--hide-scrollbars"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=90).stdout
    assert dom.count("js-plotly-plot") >= 1 + len(KEYS)  # the group plot and one per key
    # drawn traces: plotly writes each line as an SVG path with its points
    paths = re.findall(r'<path class="js-line"[^>]*d="([^"]+)"', dom)
    assert len(paths) >= 2 * len(KEYS)
    # plotly drops points that lie on a straight line (a flat d_real, say), so a 4-point series may be
    # drawn with fewer vertices; what must hold is a drawn segment spanning x = 0.25 .. 1.0, i.e. from
    # the pane's left edge to the same right edge for every key's line
    spans = [[float(x) for x in re.findall(r"[ML](-?[\d.]+),", p)] for p in paths[:len(KEYS)]]
    assert all(len(xs) >= 2 and xs[0] == 0 for xs in spans), paths[:len(KEYS)]
    assert len({xs[-1] for xs in spans}) == 1 and spans[0][-1] > 100, paths[:len(KEYS)]
    assert dom.count('src="data:image/png;base64,') >= 3
    for title in ("err_d", "err_g_con", "d_fake", "Reals", "Fixed batch reconstructions"):
        assert title in dom, title
    shot = tmp_path / "dashboard.png"
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=90)
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape == (1250, 1600, 3)
    # white plot panes over visdom's blue background: a blank page would be one colour
    assert (img == 255).all(axis=2).mean() > 0.2 and len(np.unique(img.reshape(-1, 3), axis=0)) > 200
    if os.environ.get("VISDOM_SCREENSHOT"):  # regenerate docs/visdom_dashboard.png
        shutil.copy(shot, os.environ["VISDOM_SCREENSHOT"])


# -- without a working server ------------------------------------------------------------
def timed_train(dataset, out, *extra):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        t = time.perf_counter()
        rc = train_main(["--dataroot", str(dataset), "--outf", str(out), "--name", "run", "--manualseed", "1",
                         *SMALL, *extra])
        elapsed = time.perf_counter() - t
    return rc, elapsed, [str(w.message) for w in rec if issubclass(w.category, LiveSinkWarning)]


def test_train_without_a_server_completes_warns_once_and_is_not_slowed(dataset, tmp_path, monkeypatch):
    # time spent inside the sink's methods, i.e. what training waits for (wall times on a
    # shared machine are too noisy to show a difference of milliseconds)
    spent = {"calls": 0, "s": 0.0}
    for name in ("scalars", "images", "text", "close"):
        def timed(self, *a, _orig=getattr(VisdomSink, name), **k):
            t = time.perf_counter()
            try:
                return _orig(self, *a, **k)
            finally:
                spent["calls"] += 1
                spent["s"] += time.perf_counter() - t
        monkeypatch.setattr(VisdomSink, name, timed)
    rc0, plain, _ = timed_train(dataset, tmp_path / "plain")
    rc, shown, msgs = timed_train(dataset, tmp_path / "display", "--display", "--display_port", str(free_port()))
    assert rc0 == 0 and rc == 0
    assert len(msgs) == 1 and "connection refused" in msgs[0] and "Training goes on" in msgs[0]
    print(f"1 epoch: {plain:.2f} s without --display, {shown:.2f} s with --display and no server; "
          f"{spent['calls']} sink calls took {spent['s'] * 1e3:.1f} ms in all")
    assert spent["calls"] >= 4 + 2 + 1  # 4 scalar plots, 2 image saves, close
    assert spent["s"] < 0.5
    assert shown < 2 * plain + 5.0, (plain, shown)  # and no gross slow-down of the run itself
    # nothing lost: the run's files are all there
    assert (tmp_path / "display" / "run" / "train" / "images" / "reals.png").exists()
    assert logged_epoch_means(tmp_path / "display" / "run")


def test_train_with_a_hung_server_completes_within_the_timeout(dataset, tmp_path):
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    try:
        rc, elapsed, msgs = timed_train(dataset, tmp_path, "--display", "--display_server", "127.0.0.1",
                                        "--display_port", str(hung.getsockname()[1]))
    finally:
        hung.close()
    assert rc == 0
    # one warning: from the request timeout (5 s) if training outlasts it, else from close()
    assert len(msgs) == 1, msgs
    assert "accepted the connection but sent no answer" in msgs[0] or "did not answer within 2 s while closing" in msgs[0]
    assert elapsed < 30
