"""The live-display interface and its background worker (the base of every sink in lib/live/).

:class:`LiveSink` is what the training loop talks to; :class:`ThreadedSink`
runs a sink's work (HTTP calls, PNG encoding, event-file writes) on one daemon
thread fed by a bounded queue that drops the oldest item when it overflows.
Problems become one :class:`LiveSinkWarning` and training goes on.  Also here:
the image helpers every sink uses (:func:`to_numpy_images`, :func:`minmax`).

The visdom sink (``visdom_sink.py``) and the TensorBoard sink (``tensorboard_sink.py``)
share it without importing each other.
"""
from __future__ import annotations

import collections
import itertools
import threading
import warnings
from typing import Callable

import numpy as np
import torch

MAX_IMAGES = 64  # tiles per grid: a batch of the paper's size


class LiveSinkWarning(UserWarning):
    """A live display could not do its job; training goes on."""


def warn_live(message: str) -> None:
    # Most of these come from the sink's own thread, where no caller line would
    # help; line 0 keeps Python from printing a source line under the message.
    # No registry: the sinks decide themselves what to say only once.  Reported as
    # lib/live (module lib.live), the public package, whichever sink file warns.
    warnings.warn_explicit(message, LiveSinkWarning, "lib/live", 0, module="lib.live")


def to_numpy_images(tensor: torch.Tensor) -> np.ndarray:
    """Detached CPU float copy of a (B, C, H, W) batch, at most MAX_IMAGES tiles and 3 channels."""
    t = tensor.detach()[:MAX_IMAGES]
    if t.dim() == 3:  # a single (C, H, W) image
        t = t.unsqueeze(0)
    if t.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) images, got shape {tuple(tensor.shape)}")
    if t.shape[1] not in (1, 3):
        t = t[:, :3]
    return t.to("cpu", torch.float32, copy=True).numpy()


def minmax(batch: np.ndarray) -> np.ndarray:
    """Scale a batch to [0, 1) with one min-max over the whole batch, as the original display did."""
    lo, hi = float(batch.min()), float(batch.max())
    return (batch - lo) / (hi - lo + 1e-5)


class LiveSink:
    """A live display of the training.  This base class shows nothing.

    Every method returns quickly and never raises.
    """

    def scalars(self, x: float, values: dict[str, float], title: str) -> None:
        """Log scalars at x = epoch + fraction of the epoch, grouped under ``title``."""

    def images(self, images: dict[str, torch.Tensor]) -> None:
        """Show image grids: name -> (B, C, H, W) float tensor in [-1, 1]."""

    def text(self, message: str) -> None:
        """Show a warning or health message."""

    def close(self) -> None:
        """Flush (bounded wait) and stop."""


class ThreadedSink(LiveSink):
    """A sink whose work runs on one daemon thread fed by a bounded queue.

    Tasks submitted under a key replace a pending task with the same key (a
    redraw only needs its newest version); tasks without a key are kept in
    order.  When more than ``maxlen`` tasks wait, the oldest are dropped.

    Parameters
    ----------
    name : str
        Thread name prefix.
    maxlen : int
        Most tasks waiting at once.
    close_timeout : float
        Seconds :meth:`close` waits for the queue to drain (s).
    """

    def __init__(self, name: str, maxlen: int = 256, close_timeout: float = 2.0) -> None:
        self._cond = threading.Condition()
        self._pending: collections.OrderedDict = collections.OrderedDict()
        self._seq = itertools.count()
        self._maxlen = maxlen
        self._close_timeout = close_timeout
        self._closing = False
        self.dropped = 0  # tasks dropped on overflow
        self._failures: set[str] = set()
        self._thread = threading.Thread(target=self._run, name=f"{name}-sink", daemon=True)
        self._thread.start()

    # -- queue ---------------------------------------------------------------
    def _submit(self, fn: Callable[[], None], key: object = None) -> None:
        with self._cond:
            if self._closing:
                return
            if key is None:
                key = ("_seq", next(self._seq))
            else:
                self._pending.pop(key, None)  # newest version goes to the back
            self._pending[key] = fn
            while len(self._pending) > self._maxlen:
                self._pending.popitem(last=False)
                self.dropped += 1
            self._cond.notify()

    def _discard_pending(self) -> None:
        with self._cond:
            self._pending.clear()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:  # closing and drained
                    break
                _, fn = self._pending.popitem(last=False)
            try:
                fn()
            except Exception as exc:  # a display bug must never reach training
                self._task_failed(exc)
        try:
            self._shutdown()
        except Exception:
            pass

    def _task_failed(self, exc: Exception) -> None:
        message = f"{type(self).__name__}: {type(exc).__name__}: {exc}"
        if message not in self._failures:  # a bug repeated every iteration: say it once
            self._failures.add(message)
            warn_live(message)

    def _shutdown(self) -> None:
        """Runs on the worker thread once the queue has drained at close."""

    def close(self) -> None:
        try:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join(self._close_timeout)
            if self._thread.is_alive():
                self._close_timed_out()
        except Exception:
            pass

    def _close_timed_out(self) -> None:
        """close() gave up waiting; the daemon thread is left to finish or die with the process."""
        warn_live(f"{type(self).__name__}: still busy {self._close_timeout:g} s after close(); "
              f"{len(self._pending)} update(s) not written")
