"""One galaxy's cutout request: settings, shared rate limit, retries and response validation.

One request per galaxy to the SkyServer ``getjpeg`` service (sdss.md section 1):
``ra``, ``dec`` (deg), ``scale`` (arcsec/px, 0.396127 = native SDSS pixel),
``width``, ``height`` (px) always sent explicitly.  :class:`Worker` makes
the request for one galaxy, retries transient errors with exponential backoff
and jitter (``Retry-After`` on 429/503 pauses every worker through the shared
:class:`RateLimiter`), and hands a body that :func:`check_jpeg` accepts to
the ``save`` function it was given.

The resumable download run (status database, thread pool) is ``download.py``.
"""
from __future__ import annotations

import http.client
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Callable, NamedTuple

import requests
import urllib3

from lib.fileio import JpegError, read_jpeg

DEFAULT_BASE_URL = "https://skyserver.sdss.org/dr17/SkyServerWS/ImgCutout/getjpeg"
PERMANENT_STATUS = (400, 404)     # bad request; outside the SDSS footprint
RETRY_AFTER_STATUS = (429, 503)
MAX_BODY = 4 << 20                # bytes; a 64x64 cutout is ~2 kB
MAX_DELAY = 600.0                 # s, cap on backoff and on Retry-After
BLANK_LEVEL = 8                   # max pixel value <= this: an all-black "no data" image
TRANSIENT = (requests.RequestException, http.client.HTTPException, urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True)
class Settings:
    """What is requested and how politely. Units: scale arcsec/px, width/height px, rate requests/s,
    timeout and backoff s."""
    base_url: str = DEFAULT_BASE_URL
    scale: float = 0.396127
    width: int = 64
    height: int = 64
    opt: str = ""
    workers: int = 4
    rate: float = 4.0
    retries: int = 5
    timeout: float = 30.0
    backoff: float = 1.0

    def params(self, ra: float, dec: float) -> dict:
        p = {"ra": repr(float(ra)), "dec": repr(float(dec)), "scale": repr(float(self.scale)),
             "width": str(self.width), "height": str(self.height)}
        if self.opt:
            p["opt"] = self.opt
        return p

    def identity(self) -> dict:
        """The settings that decide the pixels: a folder must not mix two of them."""
        return {"base_url": self.base_url, "scale": self.scale, "width": self.width, "height": self.height,
                "opt": self.opt}


class Outcome(NamedTuple):
    galcount: int
    state: str          # ok | failed (permanent) | retry (gave up for now) | fatal (cannot write) | stopped
    attempts: int
    http_status: int | None
    reason: str
    nbytes: int = 0
    blank: bool = False


class RateLimiter:
    """Shared by all workers: at most ``n = max(1, floor(rate))`` request starts in any window of
    ``n / rate`` seconds, so the long-run rate is ``rate`` per second and never above it in a window."""

    def __init__(self, rate: float) -> None:
        self.n = max(1, int(rate))
        self.window = self.n / rate
        self.starts: deque[float] = deque()
        self.paused_until = 0.0
        self.lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        """Hold every worker for ``seconds`` (a 429/503 with Retry-After is about the whole client)."""
        with self.lock:
            self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def acquire(self, stop: threading.Event) -> bool:
        """Block until a request may start; False if ``stop`` was set meanwhile."""
        while True:
            with self.lock:
                now = time.monotonic()
                delay = self.paused_until - now
                if delay <= 0:
                    while self.starts and now - self.starts[0] >= self.window:
                        self.starts.popleft()
                    if len(self.starts) < self.n:
                        self.starts.append(now)
                        return True
                    delay = self.starts[0] + self.window - now
            if stop.wait(delay):
                return False


def check_jpeg(body: bytes, content_type: str, width: int, height: int) -> tuple[str | None, bool]:
    """Validate a cutout response body.

    Returns
    -------
    reason : str or None
        Why the body is not a usable image; None if it is.
    blank : bool
        True for an (almost) all-black image, the "no data" answer of old servers.
    """
    if not content_type.lower().startswith("image/"):
        return f"content type {content_type or 'missing'!r}, not an image", False
    try:
        img = read_jpeg(body, (width, height))  # the project's one JPEG rule (lib/fileio.py)
    except JpegError as exc:
        return str(exc), False
    extrema = img.getextrema()
    top = max(hi for _, hi in extrema) if isinstance(extrema[0], tuple) else extrema[1]
    return None, top <= BLANK_LEVEL


def _delay(settings: Settings, attempt: int) -> float:
    """Exponential backoff with equal jitter: uniform in [d/2, d], d = backoff * 2**(attempt-1) (s)."""
    d = min(MAX_DELAY, settings.backoff * 2 ** (attempt - 1))
    return d / 2 + random.uniform(0, d / 2)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent or unparsable."""
    if not value:
        return None
    try:
        return min(MAX_DELAY, max(0.0, float(value)))
    except ValueError:
        try:
            return min(MAX_DELAY, max(0.0, parsedate_to_datetime(value).timestamp() - time.time()))
        except (TypeError, ValueError):
            return None


def _fetch(session: requests.Session, url: str, params: dict, timeout: float):
    """GET with a total-time limit (requests' timeout only bounds each socket read)."""
    deadline = time.monotonic() + timeout
    with session.get(url, params=params, timeout=timeout, stream=True) as r:
        chunks, total = [], 0
        for chunk in r.iter_content(16384):
            total += len(chunk)
            if total > MAX_BODY:
                raise requests.exceptions.ContentDecodingError(f"body larger than {MAX_BODY} bytes")
            if time.monotonic() > deadline:
                raise requests.Timeout(f"response took longer than {timeout} s")
            chunks.append(chunk)
        return r.status_code, r.reason, r.headers.get("Content-Type", ""), r.headers, b"".join(chunks)


class Worker:
    """Everything one galaxy needs: the session (one per thread), limiter, stop flag, error counter,
    and ``save(outdir, galcount, body)``, which publishes a valid image (may raise OSError)."""

    def __init__(self, settings: Settings, outdir: str, limiter: RateLimiter, stop: threading.Event,
                 save: Callable[[str, int, bytes], None]) -> None:
        self.settings, self.outdir, self.limiter, self.stop = settings, outdir, limiter, stop
        self.save = save
        self.local = threading.local()
        self.transient_errors = 0
        self.lock = threading.Lock()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            s = requests.Session()
            s.headers["User-Agent"] = "ganomaly-sdss-cutouts/1.0 (python-requests; resumable downloader)"
            s.mount("http://", requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
            s.mount("https://", requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
            self.local.session = s
        return self.local.session

    def __call__(self, galcount: int, ra: float, dec: float) -> Outcome:
        st = self.settings
        status, reason = None, ""
        for attempt in range(1, st.retries + 2):
            if not self.limiter.acquire(self.stop):
                return Outcome(galcount, "stopped", attempt - 1, status, "interrupted")
            delay = None
            try:
                status, phrase, ctype, headers, body = _fetch(self.session(), st.base_url, st.params(ra, dec),
                                                              st.timeout)
            except TRANSIENT as exc:
                status, reason = None, f"{type(exc).__name__}: {str(exc)[:150]}"
            else:
                if status in PERMANENT_STATUS:
                    return Outcome(galcount, "failed", attempt, status, f"HTTP {status} {phrase}".strip())
                if status == 200:
                    reason, blank = check_jpeg(body, ctype, st.width, st.height)
                    if reason is None:
                        try:
                            self.save(self.outdir, galcount, body)
                        except OSError as exc:
                            return Outcome(galcount, "fatal", attempt, status, f"cannot write image: {exc}")
                        return Outcome(galcount, "ok", attempt, status, "", len(body), blank)
                else:
                    reason = f"HTTP {status} {phrase}".strip()
                    after = _retry_after(headers.get("Retry-After")) if status in RETRY_AFTER_STATUS else None
                    if after is not None:
                        self.limiter.pause(after)
                        delay = after
            with self.lock:
                self.transient_errors += 1
            if attempt <= st.retries and self.stop.wait(delay if delay is not None else _delay(st, attempt)):
                return Outcome(galcount, "stopped", attempt, status, "interrupted")
        return Outcome(galcount, "retry", st.retries + 1, status, reason)
