"""Live training display: visdom dashboard and TensorBoard, never blocking training.

The training loop talks to a list of :class:`LiveSink` objects (see
:func:`make_sinks`).  Every sink method returns at once: the work (HTTP calls,
PNG encoding, event-file writes) runs on one background thread per sink, fed
by a bounded queue that drops the oldest item when it overflows.  Nothing here
raises into the training loop; problems become one warning
(:class:`LiveSinkWarning`) and the run goes on.  Everything shown live is also
written to the run's own files by the training loop, so a missing server loses
nothing.

Modules
-------
This module holds the TensorBoard sink and :func:`make_sinks`.  The base
sink, its background worker and :class:`LiveSinkWarning` are in
``lib/live_base.py``; the visdom sink, its window ids and the list of windows
it draws are in ``lib/live_visdom.py``.  Every name of the public API
(``__all__``) and the base's helpers are re-exported here, so
``from lib.live import VisdomSink`` keeps working.
"""
from __future__ import annotations

import numpy as np
import torch

# re-exported: lib.live is the public entry point of the live display
from lib.live_base import LiveSink, LiveSinkWarning, _minmax, _ThreadedSink, _to_numpy_images, _warn  # noqa: F401
from lib.live_visdom import HEALTH_WINDOW, VisdomSink, group_window, image_window, scalar_window  # noqa: F401

__all__ = ["LiveSink", "LiveSinkWarning", "VisdomSink", "TensorBoardSink", "make_sinks",
           "group_window", "scalar_window", "image_window", "HEALTH_WINDOW"]


class TensorBoardSink(_ThreadedSink):
    """Write the same scalars, image grids and messages as TensorBoard event files.

    TensorBoard steps are integers, so the step is the epoch in thousandths
    (``round(1000 * x)``); tags are ``<title>/<key>``, ``images/<name>`` and
    ``health``.

    Parameters
    ----------
    logdir : str
        Folder for the event files (created if needed).
    """

    def __init__(self, logdir: str) -> None:
        self._writer = None
        self._step = 0
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(logdir))
        except Exception as exc:  # tensorboard missing, folder not writable, ...
            _warn(f"tensorboard: cannot write to {logdir}: {type(exc).__name__}: {exc}; "
                  f"training goes on without TensorBoard logs")
        super().__init__("tensorboard", maxlen=10000)

    def scalars(self, x: float, values: dict[str, float], title: str) -> None:
        try:
            if self._writer is None:
                return
            step = self._step = int(round(1000 * float(x)))
            items = [(str(k), float(v)) for k, v in values.items()]
            for k, v in items:
                self._submit(lambda k=k, v=v: self._writer.add_scalar(f"{title}/{k}", v, step))
        except Exception as exc:
            self._task_failed(exc)

    def images(self, images: dict[str, torch.Tensor]) -> None:
        try:
            if self._writer is None:
                return
            step = self._step
            for name, tensor in images.items():
                arr = _to_numpy_images(tensor)
                self._submit(lambda n=name, a=arr: self._add_grid(n, a, step))
        except Exception as exc:
            self._task_failed(exc)

    def _add_grid(self, name: str, arr: np.ndarray, step: int) -> None:
        import torchvision.utils as vutils

        grid = vutils.make_grid(torch.from_numpy(_minmax(arr)), nrow=8, padding=2)
        self._writer.add_image(f"images/{name}", grid, step)

    def text(self, message: str) -> None:
        try:
            if self._writer is not None:
                step = self._step
                self._submit(lambda: self._writer.add_text("health", message, step))
        except Exception as exc:
            self._task_failed(exc)

    def _shutdown(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()


def make_sinks(display: bool, logger: str, *, server: str, port: int, env: str,
               logdir: str) -> list[LiveSink]:
    """Build the live sinks the options ask for.

    Parameters
    ----------
    display : bool
        ``--display``: stream to visdom.
    logger : {"none", "tensorboard"}
        ``--logger``: also write TensorBoard event files into ``logdir``.
    server, port : str, int
        ``--display_server``, ``--display_port``.
    env : str
        Visdom environment (the run name).
    logdir : str
        TensorBoard folder.

    Returns
    -------
    list of LiveSink
        Possibly empty.
    """
    if logger not in ("none", "tensorboard"):
        raise ValueError(f"unknown logger {logger!r}: choose 'none' or 'tensorboard'")
    sinks: list[LiveSink] = []
    if display:
        sinks.append(VisdomSink(server, port, env))
    if logger == "tensorboard":
        sinks.append(TensorBoardSink(logdir))
    return sinks
