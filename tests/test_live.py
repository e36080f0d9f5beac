"""lib/live/ without a visdom server: unreachable, hung and wrong servers, the queue, TensorBoard files.

The tests against a real visdom server (and the browser test) are in
tests/test_visdom_server.py.
"""
import http.server
import socket
import threading
import time
import warnings

import numpy as np
import pytest
import torch

from lib import live
from lib.live import LiveSinkWarning, TensorBoardSink, VisdomSink, make_sinks

pytestmark = pytest.mark.filterwarnings("ignore::lib.live.LiveSinkWarning")


def wait_for(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, LiveSinkWarning)]


def hammer(sink, n=200):
    """n scalar calls and n/10 image calls; returns the slowest call in seconds."""
    worst = 0.0
    for i in range(n):
        t = time.perf_counter()
        sink.scalars(i / 10, {"err_d": 0.5, "err_g": 1.0}, "loss")
        if i % 10 == 0:
            sink.images({"reals": torch.rand(64, 3, 64, 64) * 2 - 1})
        worst = max(worst, time.perf_counter() - t)
    return worst


def test_no_server_warns_once_stays_fast_and_keeps_retrying():
    port = free_port()  # nothing listens here
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sink = VisdomSink("http://127.0.0.1", port, "run", retry_s=0.2)
        worst = hammer(sink)
        assert wait_for(lambda: sink.warnings)
        time.sleep(0.6)  # several retry periods pass, with calls arriving
        worst = max(worst, hammer(sink, 50))
        time.sleep(0.3)
        t = time.perf_counter()
        sink.close()
        closing = time.perf_counter() - t
    msgs = live_warnings(rec)
    assert len(msgs) == 1 and msgs == sink.warnings
    assert f"nothing is listening at http://127.0.0.1:{port} (connection refused)" in msgs[0]
    assert "Training goes on" in msgs[0] and "retrying every 0.2 s" in msgs[0]
    assert worst < 0.2 and closing < 0.5
    assert sink._client is None


def test_server_that_accepts_but_never_answers_does_not_hang():
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # the kernel accepts connections; nobody ever reads or answers
    port = hung.getsockname()[1]
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            sink = VisdomSink("http://127.0.0.1", port, "run", timeout=(1.0, 1.0))
            worst = hammer(sink)
            assert wait_for(lambda: sink.warnings, timeout=5)
            t = time.perf_counter()
            sink.close()
            closing = time.perf_counter() - t
        msgs = live_warnings(rec)
        assert len(msgs) == 1
        assert "accepted the connection but sent no answer within 1 s" in msgs[0]
        assert worst < 0.2 and closing <= 2.5
    finally:
        hung.close()


def test_close_during_a_hung_request_waits_2_s_and_warns_once():
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            sink = VisdomSink("http://127.0.0.1", hung.getsockname()[1], "run", timeout=(1.0, 3.0))
            sink.scalars(0.5, {"err_d": 1.0}, "loss")
            time.sleep(0.3)  # the worker is now waiting for the hung server's answer
            t = time.perf_counter()
            sink.close()
            closing = time.perf_counter() - t
            time.sleep(1.5)  # the request times out now, after close: no second warning
        msgs = live_warnings(rec)
        assert 1.9 < closing < 2.5
        assert msgs == [f"visdom: http://127.0.0.1:{hung.getsockname()[1]} did not answer within 2 s "
                        f"while closing (a hung server?); the last updates were not shown"]
    finally:
        hung.close()


class _NotVisdom(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.send_response(404)
        self.end_headers()
        self.wfile.write(b"not here")

    def log_message(self, *args):
        pass


def test_another_program_on_the_port_gives_one_clear_warning():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotVisdom)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            sink = VisdomSink("127.0.0.1", server.server_address[1], "run")  # scheme added
            hammer(sink, 20)
            assert wait_for(lambda: sink.warnings)
            sink.close()
        msgs = live_warnings(rec)
        assert len(msgs) == 1
        assert "answered HTTP 404: is something other than visdom using this port" in msgs[0]
    finally:
        server.shutdown()
        server.server_close()


def test_bad_environment_name_is_replaced_with_one_warning():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sink = VisdomSink("http://127.0.0.1", free_port(), "ganomaly/SDSS run#1", retry_s=60)
        assert wait_for(lambda: len(sink.warnings) == 2)
        sink.close()
    assert sink.env == "ganomaly_SDSS_run_1"
    msgs = live_warnings(rec)
    assert msgs[0] == ("visdom: environment name 'ganomaly/SDSS run#1' is not usable in a URL/file name; "
                       "using 'ganomaly_SDSS_run_1' instead")
    assert len(msgs) == 2 and "connection refused" in msgs[1]
    assert VisdomSink("http://127.0.0.1", 1, "..", retry_s=60).env == "main"


def test_scalars_keep_finite_values_and_whole_history_for_redraws():
    sink = VisdomSink("http://127.0.0.1", free_port(), "run", retry_s=60)
    sink.scalars(0.25, {"err_d": 1.0, "err_g": float("nan")}, "loss")
    sink.scalars(0.5, {"err_d": 2.0, "err_g": 3.0}, "loss")
    sink.scalars(float("inf"), {"err_d": 9.0}, "loss")
    sink.images({"reals": torch.zeros(2, 3, 4, 4), "bad": torch.zeros(5)})  # bad shape: no exception
    sink.close()
    assert sink._series == {"err_d": ([0.25, 0.5], [1.0, 2.0]), "err_g": ([0.5], [3.0])}
    # the group's keys are fixed by its first call; rows missing one of them are left out
    assert sink._groups["loss"] == {"keys": ["err_d"], "x": [0.25, 0.5], "y": [[1.0], [2.0]]}
    assert sink._images["reals"].shape == (2, 3, 4, 4)


class _Blocking(live.ThreadedSink):
    def __init__(self, gate, maxlen):
        self.gate, self.done = gate, []
        super().__init__("blocking", maxlen=maxlen, close_timeout=0.3)


def test_queue_drops_the_oldest_and_close_is_bounded_when_the_worker_is_stuck():
    gate = threading.Event()
    sink = _Blocking(gate, maxlen=3)
    sink._submit(gate.wait)  # the worker blocks here
    assert wait_for(lambda: not sink._pending)
    for i in range(10):
        sink._submit(lambda i=i: sink.done.append(i))
    sink._submit(lambda: sink.done.append("a"), key="k")
    sink._submit(lambda: sink.done.append("b"), key="k")  # replaces the pending "a", goes to the back
    assert sink.dropped == 8
    t = time.perf_counter()
    sink.close()
    assert time.perf_counter() - t < 0.6  # gave up waiting; training is not held
    gate.set()
    assert wait_for(lambda: not sink._thread.is_alive())
    assert sink.done == [8, 9, "b"]


def test_minmax_is_the_original_display_normalisation():
    x = np.array([[-0.5, 0.5], [1.5, 0.0]])
    np.testing.assert_allclose(live.minmax(x), (x + 0.5) / (2.0 + 1e-5))


def test_tensorboard_sink_writes_scalars_images_and_text(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sink = TensorBoardSink(str(tmp_path / "tb"))
    sink.scalars(0.25, {"err_d": 0.75, "err_g": 1.5}, "run loss over time")
    sink.scalars(1.0, {"err_d": 50.0, "err_g": 1.25}, "run loss over time")
    sink.images({"reals": torch.rand(10, 3, 16, 16) * 2 - 1})
    sink.text("epoch 1: D saturated")
    sink.close()
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0, "scalars": 0}).Reload()
    d = [(e.step, e.value) for e in acc.Scalars("run loss over time/err_d")]
    assert d == [(250, 0.75), (1000, 50.0)]
    assert [e.value for e in acc.Scalars("run loss over time/err_g")] == [1.5, 1.25]
    (img,) = acc.Images("images/reals")
    # make_grid: 8 per row, 2 px padding -> 8 * 18 + 2 wide, 2 rows
    assert (img.width, img.height, img.step) == (146, 38, 1000)
    assert "health" in " ".join(acc.Tags()["tensors"])


def test_tensorboard_sink_on_an_unwritable_folder_warns_and_does_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sink = TensorBoardSink(str(blocker / "tb"))
        sink.scalars(0.5, {"err_d": 1.0}, "loss")
        sink.images({"reals": torch.zeros(1, 3, 4, 4)})
        sink.text("x")
        sink.close()
    msgs = live_warnings(rec)
    assert len(msgs) == 1 and msgs[0].startswith(f"tensorboard: cannot write to {blocker / 'tb'}")


def test_make_sinks_picks_the_sinks_and_rejects_unknown_loggers(tmp_path):
    kw = dict(server="http://127.0.0.1", port=free_port(), env="run", logdir=str(tmp_path / "tb"))
    assert make_sinks(False, "none", **kw) == []
    sinks = make_sinks(True, "tensorboard", **kw)
    try:
        assert [type(s) for s in sinks] == [VisdomSink, TensorBoardSink]
        assert (sinks[0].url, sinks[0].env) == (f"http://127.0.0.1:{kw['port']}", "run")
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for s in sinks:
                s.close()
    with pytest.raises(ValueError, match="unknown logger 'wandb': choose 'none' or 'tensorboard'"):
        make_sinks(False, "wandb", **kw)


def test_base_sink_does_nothing():
    s = live.LiveSink()
    s.scalars(0.0, {"a": 1.0}, "t")
    s.images({"a": torch.zeros(1, 3, 2, 2)})
    s.text("x")
    s.close()
