"""The visdom sink of the live training display (see lib/live/__init__.py for the overview).

:class:`VisdomSink` streams scalars, image grids and health messages to a
visdom server from its own thread; with no server it warns once and retries.

Visdom windows (ids inside the run's environment)
-------------------------------------------------
``lines_<title>``
    one plot per ``scalars(..., title)`` group, one trace per key (the
    original's "<name> loss over time" window).
``scalar_<key>``
    one plot per key (err_d, err_g, err_g_adv, err_g_con, err_g_enc, d_real,
    d_fake, images_per_s, ...), each on its own y scale.
``image_<name>``
    image grids (reals, fakes, fixed_fakes), 8 per row.
``health``
    text window with the health warnings.

The x axis is the epoch (``epoch + iteration / iterations per epoch``).  Each
redraw sends the whole history of a window, so a server that starts (or
restarts) mid-run shows every point logged so far.
"""
from __future__ import annotations

import collections
import html
import logging
import math
import re
import threading
import time
from typing import Callable

import numpy as np
import torch

from lib.live.base import ThreadedSink, minmax, to_numpy_images, warn_live

#: titles of the image windows the original showed (win 1, 2, 3)
IMAGE_TITLES = {"reals": "Reals", "fakes": "Fakes (reconstructions)",
                "fixed_fakes": "Fixed batch reconstructions"}


def _slug(name: str) -> str:
    """Window-id-safe form of a name (letters, digits, '_', '-', '.')."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", str(name)) or "_"


def group_window(title: str) -> str:
    """Visdom window id of the plot holding every key of a ``scalars(..., title)`` group."""
    return f"lines_{_slug(title)}"


def scalar_window(key: str) -> str:
    """Visdom window id of the plot of one key (e.g. ``err_d``)."""
    return f"scalar_{_slug(key)}"


def image_window(name: str) -> str:
    """Visdom window id of an image grid (e.g. ``reals``)."""
    return f"image_{_slug(name)}"


HEALTH_WINDOW = "health"


class _Unreachable(Exception):
    """The visdom server did not answer properly; the message says why."""


def _describe(exc: Exception, url: str, timeout: tuple[float, float]) -> str:
    import requests

    if isinstance(exc, requests.ConnectTimeout):
        return f"no answer from {url} within {timeout[0]:g} s (host unreachable or firewalled?)"
    if isinstance(exc, requests.ReadTimeout):
        return (f"{url} accepted the connection but sent no answer within {timeout[1]:g} s "
                f"(a hung server, or not a visdom server?)")
    if isinstance(exc, requests.HTTPError):
        code = exc.response.status_code if exc.response is not None else "?"
        return (f"{url} answered HTTP {code}: is something other than visdom using this port, "
                f"or is the server address wrong?")
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        if "refused" in text.lower():
            return f"nothing is listening at {url} (connection refused)"
        if "resolve" in text.lower() or "name or service" in text.lower():
            return f"cannot resolve the host of {url}"
        return f"cannot connect to {url} ({text[:200]})"
    return f"{url}: {type(exc).__name__}: {str(exc)[:200]}"


def _make_client(server: str, port: int, env: str, timeout: tuple[float, float]):
    """Create a visdom client whose every request has a timeout.

    The visdom client sets no timeout, so a server that accepts connections
    and never answers would hang it forever.  ``_handle_post`` is the hook
    visdom documents for this.  Raises :class:`_Unreachable`.
    """
    import requests
    import visdom

    class _TimeoutVisdom(visdom.Visdom):
        def _handle_post(self, url, data=None):
            try:
                r = self.session.post(url, data=data if data is not None else {}, timeout=timeout)
                r.raise_for_status()
            except requests.RequestException as exc:
                raise _Unreachable(_describe(exc, f"{self.server}:{self.port}", timeout)) from exc
            return r.text

    # no incoming socket: we never need events from the page, and setting it
    # up waits up to 5 s for a server that may not be there
    return _TimeoutVisdom(server=server, port=port, env=env, raise_exceptions=True,
                          use_incoming_socket=False)


class _QuietVisdomLog(logging.Filter):
    """Drop visdom's chatter that is expected here ("Setting up a new session...")."""

    NOISE = ("Setting up a new session", "Without the incoming socket")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in str(record.msg) for n in self.NOISE)


class VisdomSink(ThreadedSink):
    """Stream scalars, image grids and health messages to a visdom server.

    If no server answers, one :class:`LiveSinkWarning` says why and the
    connection is retried every ``retry_s`` seconds; calls stay instant either
    way.  When a server appears (or comes back) every window is redrawn with
    the full history.

    Parameters
    ----------
    server : str
        Server address, e.g. ``"http://localhost"`` (the original's default).
    port : int
        Server port (8097 by default in visdom).
    env : str
        Visdom environment, named after the run.  Characters other than
        letters, digits, ``_ . -`` are replaced by ``_`` (with one warning).
    timeout : tuple of float
        (connect, read) timeout of each request, seconds.
    retry_s : float
        Seconds between connection attempts while no server answers.
    """

    def __init__(self, server: str = "http://localhost", port: int = 8097, env: str = "main", *,
                 timeout: tuple[float, float] = (2.0, 5.0), retry_s: float = 30.0) -> None:
        self.server = server if "://" in server else f"http://{server}"
        self.port = int(port)
        self.warnings: list[str] = []  # what this sink warned about, in order
        clean = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(env)).lstrip(".") or "main"
        if clean != env:
            self._note(f"visdom: environment name {env!r} is not usable in a URL/file name; "
                       f"using {clean!r} instead")
        self.env = clean
        self.url = f"{self.server}:{self.port}"
        self._timeout = timeout
        self._retry_s = retry_s
        self._client = None
        self._next_try = 0.0
        self._ever_connected = False
        self._warned_down = False
        # what is on display: kept so that every redraw can send the full history
        self._lock = threading.Lock()
        self._groups: dict[str, dict] = {}  # title -> {"keys": [...], "x": [], "y": [[...]]}
        self._series: dict[str, tuple[list, list]] = {}  # key -> (x, y)
        self._images: dict[str, np.ndarray] = {}
        self._messages: collections.deque = collections.deque(maxlen=200)
        logging.getLogger("visdom").addFilter(_QuietVisdomLog())
        super().__init__("visdom")
        self._submit(self._connect_task, key="connect")  # warn early, at the start of training

    # -- public API (caller's thread: bookkeeping only) ----------------------
    def scalars(self, x: float, values: dict[str, float], title: str) -> None:
        try:
            x = float(x)
            clean = {str(k): float(v) for k, v in values.items() if math.isfinite(float(v))}
            if not clean or not math.isfinite(x):
                return
            with self._lock:
                group = self._groups.setdefault(title, {"keys": list(clean), "x": [], "y": []})
                if all(k in clean for k in group["keys"]):
                    group["x"].append(x)
                    group["y"].append([clean[k] for k in group["keys"]])
                for k, v in clean.items():
                    xs, ys = self._series.setdefault(k, ([], []))
                    xs.append(x)
                    ys.append(v)
            self._submit(lambda: self._draw_group(title), key=("group", title))
            for k in clean:
                self._submit(lambda k=k: self._draw_series(k), key=("series", k))
        except Exception as exc:
            self._task_failed(exc)

    def images(self, images: dict[str, torch.Tensor]) -> None:
        try:
            for name, tensor in images.items():
                arr = to_numpy_images(tensor)
                with self._lock:
                    self._images[name] = arr
                self._submit(lambda n=name: self._draw_image(n), key=("image", name))
        except Exception as exc:
            self._task_failed(exc)

    def text(self, message: str) -> None:
        try:
            with self._lock:
                self._messages.append(f"{time.strftime('%H:%M:%S')} {message}")
            self._submit(self._draw_text, key="text")
        except Exception as exc:
            self._task_failed(exc)

    # -- worker thread -------------------------------------------------------
    def _note(self, message: str) -> None:
        self.warnings.append(message)
        warn_live(message)

    def _connect_task(self) -> None:
        self._client_or_none()

    def _client_or_none(self):
        """The connected client, or None (trying to connect when a retry is due)."""
        if self._client is not None:
            return self._client
        if time.monotonic() < self._next_try:  # (also tried once at close if due)
            return None
        try:
            client = _make_client(self.server, self.port, self.env, self._timeout)
        except ImportError:
            self._next_try = math.inf  # no point retrying
            self._note("visdom: the visdom package is not installed (run `make visdom`); "
                       "training goes on without the live dashboard")
            return None
        except _Unreachable as exc:
            self._down(str(exc))
            return None
        if self._warned_down:
            warn_live(f"visdom: connected to {self.url} (environment {self.env!r}); "
                  f"redrawing the history")
        self._client = client
        self._ever_connected = True
        self._warned_down = False
        self._redraw_all()
        return client

    def _down(self, reason: str) -> None:
        self._client = None
        self._next_try = time.monotonic() + self._retry_s
        self._discard_pending()  # kept in self._groups etc.; redrawn on reconnect
        if not self._warned_down:
            self._warned_down = True
            what = "lost the connection" if self._ever_connected else "no server"
            self._note(f"visdom: {what}: {reason}. Training goes on without the live dashboard; "
                       f"retrying every {self._retry_s:g} s (start one with `make visdom`)")

    def _close_timed_out(self) -> None:
        if not self._warned_down:  # one warning in all: the worker stays silent from here on
            self._warned_down = True
            if self._client is None:
                self._note(f"visdom: {self.url} did not answer within {self._close_timeout:g} s while "
                           f"closing (a hung server?); the last updates were not shown")
            else:  # connected, just slow: the sends go on in the background while the process lives
                self._note(f"visdom: still sending to {self.url} {self._close_timeout:g} s after "
                           f"close(); the last updates may not be shown")

    def _call(self, draw: Callable) -> None:
        client = self._client_or_none()
        if client is None:
            return
        try:
            draw(client)
        except _Unreachable as exc:
            self._down(str(exc))

    def _redraw_all(self) -> None:
        with self._lock:
            titles, keys = list(self._groups), list(self._series)
            names, has_text = list(self._images), bool(self._messages)
        for t in titles:
            self._submit(lambda t=t: self._draw_group(t), key=("group", t))
        for k in keys:
            self._submit(lambda k=k: self._draw_series(k), key=("series", k))
        for n in names:
            self._submit(lambda n=n: self._draw_image(n), key=("image", n))
        if has_text:
            self._submit(self._draw_text, key="text")

    def _draw_group(self, title: str) -> None:
        with self._lock:
            g = self._groups[title]
            keys, xs, ys = list(g["keys"]), list(g["x"]), [list(r) for r in g["y"]]
        if not xs:
            return
        y = np.array(ys, dtype=float)
        x = np.repeat(np.array(xs, dtype=float)[:, None], len(keys), axis=1)
        # log y: err_d (~1..50), err_g_con (~0.02), D outputs (0..1) and images/s
        # (hundreds) stay readable together; every key also has its own window
        opts = dict(title=title, legend=keys, xlabel="Epoch", ylabel="Value (log scale)", ytype="log")
        self._call(lambda vis: vis.line(Y=y, X=x, win=group_window(title), opts=opts))

    def _draw_series(self, key: str) -> None:
        with self._lock:
            xs, ys = (list(v) for v in self._series[key])
        opts = dict(title=key, legend=[key], xlabel="Epoch", ylabel=key)
        self._call(lambda vis: vis.line(Y=np.array(ys), X=np.array(xs),
                                        win=scalar_window(key), opts=opts))

    def _draw_image(self, name: str) -> None:
        with self._lock:
            arr = self._images[name]
        grid = minmax(arr)
        # size the window to the grid (8 per row, 2 px padding) so no tile is cut off
        cols = min(8, arr.shape[0])
        rows = -(-arr.shape[0] // 8)
        width, height = cols * (arr.shape[3] + 4) + 40, rows * (arr.shape[2] + 4) + 60
        scale = max(1.0, 260 / width)  # small grids (isize 16/32) are enlarged for legibility
        opts = dict(title=IMAGE_TITLES.get(name, name), width=int(width * scale),
                    height=int(height * scale))
        self._call(lambda vis: vis.images(grid, nrow=8, win=image_window(name), opts=opts))

    def _draw_text(self) -> None:
        with self._lock:
            body = "<br>".join(html.escape(m) for m in self._messages)
        self._call(lambda vis: vis.text(body, win=HEALTH_WINDOW, opts=dict(title="Health warnings")))
