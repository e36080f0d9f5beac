"""SDSS_cutouts/download_cutouts.py against a real fault-injecting HTTP server on 127.0.0.1.

The server answers ``getjpeg``-style requests; each galaxy has a plan of
faults served in order (then success). It counts requests per galcount and
records their arrival and end times, so the tests check retries, the rate
limit, resume without re-download and throughput from the server's side.
"""
from __future__ import annotations

import io
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lib.sdss.http import RateLimiter, _retry_after, check_jpeg  # noqa: E402
from SDSS_cutouts import download_cutouts  # noqa: E402

SCRIPT = os.path.join(ROOT, "SDSS_cutouts", "download_cutouts.py")


def jpeg_bytes(w: int = 64, h: int = 64, black: bool = False, seed: int = 0) -> bytes:
    """A galaxy-like JPEG: a Gaussian blob on noise (all black for the no-data case)."""
    if black:
        arr = np.zeros((h, w, 3), np.uint8)
    else:
        yy, xx = np.mgrid[0:h, 0:w]
        blob = 200 * np.exp(-((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / (2 * (w / 8) ** 2))
        noise = np.random.default_rng(seed).normal(20, 5, (h, w, 3))
        arr = np.clip(blob[..., None] * [1.0, 0.8, 0.6] + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=75)
    return buf.getvalue()


def ra_of(galcount: int) -> float:
    return 100.0 + galcount / 1000.0


class CutoutServer:
    """ImgCutout stand-in. ``plan[galcount]`` is a list of faults to serve before answering normally."""

    def __init__(self, latency: float = 0.0, hang: float = 1.5):
        self.latency, self.hang = latency, hang
        self.plan: dict[int, list[str]] = {}
        self.counts: dict[int, int] = defaultdict(int)
        self.log: list[tuple[int, float, float, str]] = []  # galcount, arrival, end, fault
        self.lock = threading.Lock()
        self.params: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                t0 = time.monotonic()
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query, keep_blank_values=True))
                try:
                    g = round((float(q["ra"]) - 100.0) * 1000)
                except (KeyError, ValueError):
                    return self.reply(400, b'{"ErrorMessage": "bad ra"}', "application/json")
                with server.lock:
                    server.counts[g] += 1
                    server.params.append(q)
                    todo = server.plan.get(g, [])
                    fault = todo.pop(0) if todo else "ok"
                time.sleep(server.latency)
                try:
                    self.serve(fault, int(q.get("width", 64)), int(q.get("height", 64)))
                except OSError:  # the client gave up (timeout test): nothing to do
                    pass
                with server.lock:
                    server.log.append((g, t0, time.monotonic(), fault))

            def reply(self, code, body, ctype, extra=(), length=None):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                for k, v in extra:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def serve(self, fault, w, h):
                good = jpeg_bytes(w, h)
                if fault == "ok":
                    self.reply(200, good, "image/jpeg")
                elif fault == "black":
                    self.reply(200, jpeg_bytes(w, h, black=True), "image/jpeg")
                elif fault == "timeout":
                    time.sleep(server.hang)
                    self.reply(200, good, "image/jpeg")
                elif fault == "reset":  # RST instead of an answer
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                elif fault in ("500", "502"):
                    self.reply(int(fault), b"<html>Server Error</html>", "text/html")
                elif fault in ("429", "503"):
                    self.reply(int(fault), b"slow down", "text/plain", extra=[("Retry-After", "1")])
                elif fault == "400":
                    self.reply(400, b'{"ErrorCode": 400, "ErrorMessage": "bad"}', "application/json")
                elif fault == "404":  # as SkyServer: the body is still a (black) JPEG
                    self.reply(404, jpeg_bytes(w, h, black=True), "image/jpeg")
                elif fault == "truncated":  # Content-Length promises more than is sent
                    self.reply(200, good[: len(good) // 2], "image/jpeg", length=len(good))
                    self.close_connection = True
                elif fault == "short200":  # a complete HTTP answer holding a cut JPEG
                    self.reply(200, good[: len(good) // 2], "image/jpeg")
                elif fault == "noeoi":
                    self.reply(200, good[:-2], "image/jpeg")
                elif fault == "html200":
                    self.reply(200, b"<html><body>Error: service unavailable</body></html>", "text/html")
                elif fault == "jpeg_as_text":
                    self.reply(200, good, "text/plain")
                elif fault == "wrongsize":
                    self.reply(200, jpeg_bytes(2 * w, 2 * h), "image/jpeg")
                else:
                    raise AssertionError(fault)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/dr17/SkyServerWS/ImgCutout/getjpeg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def times(self, fault=None):
        return sorted(t for _, t, _, f in self.log if fault is None or f == fault)


@pytest.fixture
def server():
    s = CutoutServer()
    yield s
    s.close()


def write_catalog(path, galcounts, extra_rows=()):
    rows = [{"galcount": g, "ra": ra_of(g), "dec": 0.5, "z": 0.1} for g in galcounts] + list(extra_rows)
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def args(cat, outdir, url, *extra):
    return ["--catalog", cat, "--outdir", str(outdir), "--base-url", url, "--no-progress", *extra]


def assert_all_valid(outdir, galcounts):
    names = sorted(n for n in os.listdir(outdir) if n.endswith(".jpg"))
    assert names == sorted(f"{g}.jpg" for g in galcounts)
    for n in names:
        with open(os.path.join(outdir, n), "rb") as f:
            reason, _ = check_jpeg(f.read(), "image/jpeg", 64, 64)
        assert reason is None, (n, reason)
    assert os.listdir(os.path.join(outdir, ".partial")) == []


# --- small parts -------------------------------------------------------------------------------------------

def test_check_jpeg_rejects_every_bad_body():
    good = jpeg_bytes()
    assert check_jpeg(good, "image/jpeg", 64, 64) == (None, False)
    assert check_jpeg(jpeg_bytes(black=True), "image/jpeg", 64, 64) == (None, True)
    assert "content type" in check_jpeg(good, "text/html", 64, 64)[0]
    assert "marker" in check_jpeg(good[:-2], "image/jpeg", 64, 64)[0]
    # cut in the middle but with a valid end marker glued on: the full decode must catch it
    assert "decode" in check_jpeg(good[: len(good) // 2] + b"\xff\xd9", "image/jpeg", 64, 64)[0]
    assert "128x128" in check_jpeg(jpeg_bytes(128, 128), "image/jpeg", 64, 64)[0]
    png = io.BytesIO()
    Image.new("RGB", (64, 64)).save(png, format="PNG")
    assert check_jpeg(png.getvalue(), "image/png", 64, 64)[0] is not None


def test_retry_after_parsing():
    assert _retry_after("3") == 3.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < _retry_after(date) <= 31


def test_rate_limiter_never_exceeds_window():
    lim, stop = RateLimiter(20.0), threading.Event()
    starts = []
    t0 = time.monotonic()
    for _ in range(50):
        assert lim.acquire(stop)
        starts.append(time.monotonic())
    starts = np.array(starts)
    assert max(np.sum((starts >= s) & (starts < s + 1.0)) for s in starts) <= 20
    assert 1.9 < time.monotonic() - t0 < 3.5  # 50 starts at 20/s: windows at 0, 1, 2 s


# --- the whole script --------------------------------------------------------------------------------------

FAULTS = ["timeout", "reset", "500", "502", "truncated", "short200", "noeoi", "html200", "jpeg_as_text",
          "wrongsize", "429", "503"]


def test_every_fault_retried_permanent_failures_listed(server, tmp_path, capsys):
    gals = list(range(1, 21))
    for g, fault in zip(gals, FAULTS):
        server.plan[g] = [fault]
    server.plan[15], server.plan[16], server.plan[17] = ["400"], ["404"], ["black"]
    cat = write_catalog(tmp_path / "cat.csv", gals)
    out = tmp_path / "cut"
    rc = download_cutouts.main(args(cat, out, server.url, "--timeout", "0.5", "--backoff", "0.05",
                                    "--workers", "4", "--rate", "50"))
    assert rc == 0
    saved = [g for g in gals if g not in (15, 16)]
    assert_all_valid(out, saved)
    # every transient fault cost exactly one extra request; permanent ones were asked once
    for g, fault in zip(gals, FAULTS):
        assert server.counts[g] == 2, (g, fault, server.counts[g])
    assert server.counts[15] == server.counts[16] == 1 and server.counts[20] == 1
    failed = pd.read_csv(out / "failed.csv")
    assert failed["galcount"].tolist() == [15, 16]
    assert failed["reason"].str.contains("HTTP 400").iloc[0] and failed["reason"].str.contains("HTTP 404").iloc[1]
    assert pd.read_csv(out / "flagged.csv")["galcount"].tolist() == [17]
    # Retry-After: 1 honoured by every worker: after a 429/503 answer no new request for ~1 s
    # (requests that left a few ms before the client read the answer may still arrive)
    for fault in ("429", "503"):
        t_end = [e for _, _, e, f in server.log if f == fault][0]
        assert not [t for t in server.times() if t_end + 0.05 < t < t_end + 0.95]
        assert [t for t in server.times() if t > t_end + 0.95]
    # parameters sent explicitly, as the issue demands
    q = server.params[0]
    assert q["scale"] == "0.396127" and q["width"] == "64" and q["height"] == "64" and "ra" in q and "dec" in q
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("download: 20 rows: 18 saved") and "2 failed permanently" in line
    assert "0 left to retry" in line and "1 blank flagged" in line


def test_gives_up_then_rerun_finishes(server, tmp_path):
    server.plan[2] = ["500", "503", "500"]
    cat = write_catalog(tmp_path / "cat.csv", [1, 2, 3])
    out = tmp_path / "cut"
    common = args(cat, out, server.url, "--backoff", "0.01", "--retries", "1")
    assert download_cutouts.main(common) == 1          # galaxy 2 still failing: not done yet
    assert {"1.jpg", "3.jpg", "download_status.sqlite", "failed.csv", "download_run.json"} <= set(os.listdir(out))
    assert not (out / "2.jpg").exists()
    assert download_cutouts.main(common) == 0
    assert_all_valid(out, [1, 2, 3])
    assert server.counts == {1: 1, 2: 4, 3: 1}            # nothing saved was fetched again
    # a third run has nothing to do
    assert download_cutouts.main(common) == 0 and sum(server.counts.values()) == 6
    # an image deleted after it was recorded is fetched again
    os.remove(out / "1.jpg")
    assert download_cutouts.main(common) == 0 and server.counts[1] == 2 and (out / "1.jpg").exists()


def test_limit_and_retry_failed(server, tmp_path, capsys):
    server.plan[2] = ["404"]
    cat = write_catalog(tmp_path / "cat.csv", [1, 2, 3, 4])
    out = tmp_path / "cut"
    assert download_cutouts.main(args(cat, out, server.url, "--limit", "2")) == 0
    assert dict(server.counts) == {1: 1, 2: 1}
    assert "download: 2 rows: 1 saved" in capsys.readouterr().out
    assert download_cutouts.main(args(cat, out, server.url)) == 0           # 404 stays failed: not asked again
    assert dict(server.counts) == {1: 1, 2: 1, 3: 1, 4: 1}
    assert download_cutouts.main(args(cat, out, server.url, "--retry-failed")) == 0
    assert server.counts[2] == 2 and (out / "2.jpg").exists()
    assert pd.read_csv(out / "failed.csv").empty


def test_ctrl_c_stops_cleanly_then_resumes(tmp_path):
    server = CutoutServer(latency=0.1)
    try:
        gals = list(range(1, 31))
        cat = write_catalog(tmp_path / "cat.csv", gals)
        out = tmp_path / "cut"
        proc = subprocess.Popen([sys.executable, SCRIPT, *args(cat, out, server.url, "--workers", "2", "--rate", "3")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (out.exists() and len(list(out.glob("*.jpg"))) >= 5):
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr and "run the same command again" in stderr
        done = {int(p.stem) for p in out.glob("*.jpg")}
        assert f"{len(done)} saved" in stdout.strip().splitlines()[-1]      # everything on disk was recorded
        assert download_cutouts.main(args(cat, out, server.url, "--rate", "50")) == 0
        assert_all_valid(out, gals)
        assert all(server.counts[g] == 1 for g in done)
    finally:
        server.close()


def test_kill_9_then_resume(tmp_path):
    server = CutoutServer(latency=0.1)
    try:
        gals = list(range(1, 41))
        cat = write_catalog(tmp_path / "cat.csv", gals)
        out = tmp_path / "cut"
        # a slow rate: on a loaded machine the run must still be going when the signal comes (seconds left)
        cmd = [sys.executable, SCRIPT, *args(cat, out, server.url, "--workers", "3", "--rate", "4")]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if out.exists() and sum(n.endswith(".jpg") for n in os.listdir(out)) >= 12:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = {int(n[:-4]) for n in os.listdir(out) if n.endswith(".jpg")}
        assert 12 <= len(before) < 40
        for g in before:                        # every file present after the kill is a whole image
            with open(out / f"{g}.jpg", "rb") as f:
                assert check_jpeg(f.read(), "image/jpeg", 64, 64)[0] is None
        assert download_cutouts.main(args(cat, out, server.url, "--workers", "3", "--rate", "50")) == 0
        assert_all_valid(out, gals)
        assert all(server.counts[g] == 1 for g in before)  # completed images not downloaded again
        assert sum(server.counts.values()) <= 40 + 6          # at most the requests in flight at the kill
    finally:
        server.close()


def test_bad_input_is_reported(server, tmp_path, capsys):
    out = tmp_path / "cut"
    pd.DataFrame({"galcount": [1], "ra": [1.0]}).to_csv(tmp_path / "nodec.csv", index=False)
    assert download_cutouts.main(args(str(tmp_path / "nodec.csv"), out, server.url)) == 2
    assert "lacks column(s) ['dec']" in capsys.readouterr().err
    pd.DataFrame({"galcount": ["1", "x"], "ra": [1.0, 2.0], "dec": [0.0, 0.0]}).to_csv(tmp_path / "g.csv", index=False)
    assert download_cutouts.main(args(str(tmp_path / "g.csv"), out, server.url)) == 2
    assert "galcount must be an integer" in capsys.readouterr().err
    write_catalog(tmp_path / "dup.csv", [1, 2, 2])
    assert download_cutouts.main(args(str(tmp_path / "dup.csv"), out, server.url)) == 2
    assert "duplicate galcount" in capsys.readouterr().err
    assert download_cutouts.main(args(str(tmp_path / "missing.csv"), out, server.url)) == 2
    (tmp_path / "afile").write_text("x")
    cat = write_catalog(tmp_path / "cat.csv", [1, 2],
                        [{"galcount": 7, "ra": float("nan"), "dec": 0.0}, {"galcount": 8, "ra": 10.0, "dec": 95.0},
                         {"galcount": 9, "ra": 400.0, "dec": 0.0}])
    assert download_cutouts.main(args(cat, tmp_path / "afile" / "sub", server.url)) == 2
    assert "not writable" in capsys.readouterr().err
    assert download_cutouts.main(args(cat, out, server.url, "--width", "32")) == 2
    assert server.counts == {}                               # nothing requested for bad input
    assert download_cutouts.main(args(cat, out, server.url)) == 0
    failed = pd.read_csv(out / "failed.csv")
    assert failed["galcount"].tolist() == [7, 8, 9] and failed["reason"].str.startswith("invalid coordinates").all()
    assert dict(server.counts) == {1: 1, 2: 1}
    assert "3 row(s) with missing or out-of-range RA/Dec" in capsys.readouterr().out
    # other pixel settings in the same folder would mix two kinds of image: refused
    assert download_cutouts.main(args(cat, out, server.url, "--scale", "0.4")) == 2
    assert "other settings" in capsys.readouterr().err


def test_disk_full_stops_cleanly_and_resumes(server, tmp_path, monkeypatch, capsys):
    """A write error (ENOSPC injected at the file write; a real full disk needs root to stage) stops the run."""
    import errno

    import lib.sdss.download as dl
    real_save, calls = dl._save, []

    def save_until_full(outdir, galcount, body):
        calls.append(galcount)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(outdir, galcount, body)

    monkeypatch.setattr(dl, "_save", save_until_full)
    gals = list(range(1, 31))
    cat = write_catalog(tmp_path / "cat.csv", gals)
    out = tmp_path / "cut"
    assert download_cutouts.main(args(cat, out, server.url, "--workers", "2", "--rate", "200")) == 1
    assert "No space left on device" in capsys.readouterr().out
    saved = {int(n[:-4]) for n in os.listdir(out) if n.endswith(".jpg")}
    assert len(saved) == 5
    monkeypatch.setattr(dl, "_save", real_save)
    assert download_cutouts.main(args(cat, out, server.url, "--workers", "2", "--rate", "200")) == 0
    assert_all_valid(out, gals)
    assert all(server.counts[g] == 1 for g in saved)


# --- throughput (server-side timing, 100 ms latency) --------------------------------------------------------

def _run_cli(cat, out, url, *extra):
    return subprocess.run([sys.executable, SCRIPT, *args(cat, out, url, *extra)], capture_output=True, text=True,
                          timeout=120)


def test_default_settings_reach_4_per_second(tmp_path):
    server = CutoutServer(latency=0.1)
    try:
        cat = write_catalog(tmp_path / "cat.csv", range(1, 21))
        r = _run_cli(cat, tmp_path / "cut", server.url)
        assert r.returncode == 0, r.stderr
        t = np.array(server.times())
        span = max(e for *_, e, _ in server.log) - t.min()
        rate = len(t) / span
        # a few ms of arrival jitter: count in 0.95 s windows (a 5/s limiter would put 5 in one)
        in_window = max(np.sum((t >= s) & (t < s + 0.95)) for s in t)
        print(f"default settings: {rate:.2f} img/s over {len(t)} requests; max {in_window} in any 0.95 s")
        assert in_window <= 4 and 3.4 <= rate <= 6.0
    finally:
        server.close()


def test_16_workers_10x_one_at_a_time(tmp_path):
    """Best of up to 3 runs: the 2-core test machine is shared, and one busy moment should not decide."""
    server = CutoutServer(latency=0.1)
    try:
        # the original: one urlretrieve after the other
        t0 = time.monotonic()
        for g in range(1001, 1011):
            urllib.request.urlretrieve(f"{server.url}?ra={ra_of(g)}&dec=0.5&width=64&height=64",
                                       str(tmp_path / f"{g}.png"))
        serial = 10 / (time.monotonic() - t0)
        cat = write_catalog(tmp_path / "cat.csv", range(1, 65))
        best = 0.0
        for attempt in range(3):
            server.log.clear()
            r = _run_cli(cat, tmp_path / f"cut{attempt}", server.url, "--workers", "16", "--rate", "100")
            assert r.returncode == 0, r.stderr
            span = max(e for *_, e, _ in server.log) - min(t for _, t, _, _ in server.log)
            best = max(best, 64 / span)
            if best >= 10 * serial:
                break
        print(f"one at a time: {serial:.1f} img/s; --workers 16 --rate 100: {best:.1f} img/s ({best / serial:.1f}x)")
        assert serial < 10.5 and best >= 10 * serial
    finally:
        server.close()
