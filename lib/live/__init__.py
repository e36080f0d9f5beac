"""Live training display: visdom dashboard and TensorBoard, never blocking training.

The training loop (lib/visualizer.py) talks to a list of :class:`LiveSink` objects built by
:func:`make_sinks`.  Every sink method returns at once: the work (HTTP calls, PNG encoding,
event-file writes) runs on one background thread per sink, fed by a bounded queue that drops
the oldest item when it overflows.  Nothing here raises into the training loop; problems
become one warning (:class:`LiveSinkWarning`) and the run goes on.  Everything shown live is
also written to the run's own files, so a missing server loses nothing.

Data flow::

    base.py               LiveSink interface, ThreadedSink worker, image helpers, LiveSinkWarning
      |-- visdom_sink.py       VisdomSink: windows at localhost:8097 (window ids below it)
      |-- tensorboard_sink.py  TensorBoardSink: event files in <run>/tensorboard
    __init__.py           make_sinks(): the sinks the options ask for
"""
from __future__ import annotations

from lib.live.base import LiveSink, LiveSinkWarning, ThreadedSink, minmax, to_numpy_images  # noqa: F401
from lib.live.tensorboard_sink import TensorBoardSink
from lib.live.visdom_sink import HEALTH_WINDOW, VisdomSink, group_window, image_window, scalar_window  # noqa: F401

__all__ = ["LiveSink", "LiveSinkWarning", "VisdomSink", "TensorBoardSink", "make_sinks",
           "group_window", "scalar_window", "image_window", "HEALTH_WINDOW"]


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
