"""The TensorBoard sink of the live training display: the same scalars, grids and messages as event files."""
from __future__ import annotations

import numpy as np
import torch

from lib.live.base import ThreadedSink, minmax, to_numpy_images, warn_live

__all__ = ["TensorBoardSink"]


class TensorBoardSink(ThreadedSink):
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
            warn_live(f"tensorboard: cannot write to {logdir}: {type(exc).__name__}: {exc}; "
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
                arr = to_numpy_images(tensor)
                self._submit(lambda n=name, a=arr: self._add_grid(n, a, step))
        except Exception as exc:
            self._task_failed(exc)

    def _add_grid(self, name: str, arr: np.ndarray, step: int) -> None:
        import torchvision.utils as vutils

        grid = vutils.make_grid(torch.from_numpy(minmax(arr)), nrow=8, padding=2)
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
