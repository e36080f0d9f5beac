"""Training output sink: ``loss_log.txt``, image grids, and optional live sinks (visdom, TensorBoard).

Files (the original's names and places)::

    <outf>/<name>/loss_log.txt                      one header per run, one line per epoch
    <outf>/<name>/train/images/reals.png            last saved training batch (8 per row)
    <outf>/<name>/train/images/fakes.png            its reconstructions, tile by tile
    <outf>/<name>/train/images/fixed_fakes_NNN.png  reconstructions of the fixed first batch, epoch NNN (1-based)

Log lines keep the original format, ``   Loss: [epoch/niter] err_d: 0.023 ...``
with a 0-based epoch, but the values are epoch means (the original logged one
batch); the run header says so.
"""
from __future__ import annotations

import os
import time

import torch
from torchvision.utils import save_image

__all__ = ["Visualizer"]


def labelled_pairs(inputs: torch.Tensor, recons: torch.Tensor, when: str, zoom: int = 2):
    """A PIL image: ``inputs`` (B, C, H, W) in a labelled top row, their reconstructions below.

    Both rows share one min-max scaling (that of the inputs and reconstructions together), so
    brightness differences are real.  PIL, not matplotlib: training calls this often.
    """
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    both = torch.cat([inputs, recons]).detach().float().cpu()
    grid = make_grid(both, nrow=len(inputs), normalize=True, padding=2, pad_value=1.0)
    arr = (grid.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    tiles = Image.fromarray(arr.squeeze(-1) if arr.shape[-1] == 1 else arr).convert("RGB")
    tiles = tiles.resize((tiles.width * zoom, tiles.height * zoom), Image.NEAREST)
    band = 14
    out = Image.new("RGB", (tiles.width, tiles.height + 2 * band), "white")
    out.paste(tiles, (0, band))
    draw = ImageDraw.Draw(out)
    draw.text((4, 1), "input (fixed batch, tiles 0-%d)" % (len(inputs) - 1), fill="black")
    draw.text((4, band + tiles.height + 1), f"reconstruction {when} (same tiles)", fill="black")
    return out


class Visualizer:
    """Writes the loss log and image grids; forwards everything to the live sinks.

    Parameters
    ----------
    run_dir : ``<outf>/<name>``.
    sinks : objects with ``scalars(x, values, title)``, ``images(dict)``,
        ``text(msg)``, ``close()`` (see ``lib/live/``); never allowed to stop training.
    name : run name, used in plot titles.
    """

    def __init__(self, run_dir: str, sinks: list | None = None, name: str = "") -> None:
        self.run_dir = run_dir
        self.image_dir = os.path.join(run_dir, "train", "images")
        os.makedirs(self.image_dir, exist_ok=True)
        os.makedirs(os.path.join(run_dir, "test", "images"), exist_ok=True)
        self.log_path = os.path.join(run_dir, "loss_log.txt")
        self.sinks = list(sinks or [])
        self.name = name
        with open(self.log_path, "a") as fh:
            fh.write(f"================ Training Loss ({time.strftime('%c')}) ================\n")
            fh.write("# per-epoch values are means over all iterations of the epoch\n")

    def log(self, message: str) -> None:
        """Append a free-text line (warnings, resume notes) to the loss log and the dashboards."""
        with open(self.log_path, "a") as fh:
            fh.write(message.rstrip("\n") + "\n")
        for s in self.sinks:
            s.text(message)

    def plot_errors(self, x: float, values: dict[str, float]) -> None:
        """Live plots only: losses (and D outputs, speed) at fractional epoch ``x``."""
        for s in self.sinks:
            s.scalars(x, values, f"{self.name} loss over time")

    def print_epoch_errors(self, epoch: int, niter: int, errors: dict[str, float]) -> str:
        """Write ``   Loss: [epoch/niter] key: value ...`` (0-based epoch, 3 decimals) to the log."""
        line = f"   Loss: [{epoch}/{niter}] " + "".join(f"{k}: {v:.3f} " for k, v in errors.items())
        with open(self.log_path, "a") as fh:
            fh.write(line + "\n")
        return line

    def save_images(self, epoch: int, reals: torch.Tensor, fakes: torch.Tensor, fixed: torch.Tensor,
                    fixed_reals: torch.Tensor | None = None) -> None:
        """Save the grids (each min-max normalised over its batch, as the original) and show them live.

        ``reals.png`` and ``fakes.png`` are one batch and its reconstructions, tile for tile;
        ``fixed_fakes_<e>.png`` reconstructs the fixed batch, whose inputs are ``fixed_reals.png``
        (new), and ``fixed_pairs_<e>.png`` (new) puts the first 8 inputs above their
        reconstructions with labels, so that a reconstruction can be matched to its galaxy.
        """
        save_image(reals, os.path.join(self.image_dir, "reals.png"), normalize=True)
        save_image(fakes, os.path.join(self.image_dir, "fakes.png"), normalize=True)
        save_image(fixed, os.path.join(self.image_dir, f"fixed_fakes_{epoch + 1:03d}.png"), normalize=True)
        if fixed_reals is not None:
            save_image(fixed_reals, os.path.join(self.image_dir, "fixed_reals.png"), normalize=True)
            labelled_pairs(fixed_reals[:8], fixed[:8], f"after epoch {epoch + 1}").save(
                os.path.join(self.image_dir, f"fixed_pairs_{epoch + 1:03d}.png"))
        for s in self.sinks:
            s.images({"reals": reals, "fakes": fakes, "fixed_fakes": fixed})

    def close(self) -> None:
        for s in self.sinks:
            s.close()
