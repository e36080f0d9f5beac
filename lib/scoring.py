"""Anomaly score A of images under a trained GANomaly generator, batched but exactly the paper's protocol.

Score (Jin et al. 2024, eq. 5; the original ``test.py``)::

    A = mean_k (latent_i[k] - latent_o[k])^2      over the nz latent channels

The paper scored one image per forward pass with the generator left in
training mode, so every BatchNorm normalised each image with that image's own
per-channel statistics over H x W. That is instance normalisation with the
BatchNorm's affine weight, bias and eps, which works on a batch of any size:
``score_mode="paper"`` swaps each BatchNorm for exactly that, giving the
batch-1 numbers (bit for bit on CPU) at batch speed. ``score_mode="eval"``
uses the BatchNorm running statistics instead. In both modes a score depends
only on its own image, never on the batch or the order.

Normalisation (paper_plot of the original): A_norm = (A - A_min) / (A_max - A_min)
with the paper's fixed constants below (presumably the min and max of A over
the SDSS test set), or with a reference set's min and max (``Calibration``).
"""
from __future__ import annotations

import copy
import json
import os
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lib.loaders import normalize_uint8
from lib.fileio import write_json
from lib.networks import autocast, check_precision

__all__ = ["PAPER_A_MIN", "PAPER_A_MAX", "PerSampleNorm", "Scorer", "normalize_paper",
           "Calibration", "BATCH_RTOL", "BF16_RTOL"]

# paper_plot_0211.ipynb of Jin et al. 2024: A_norm = (A - 0.0007747652) / (0.93256927 - 0.0007747652)
PAPER_A_MIN = 0.0007747652
PAPER_A_MAX = 0.93256927

#: Relative tolerance of a score across batch shapes.  Paper-mode scores are per image,
#: but the convolution kernels that torch picks depend on the batch shape, and their
#: different summation orders round differently: ``--batchsize 7`` against ``1`` differs
#: by up to ~1.3e-6 relative on this CPU (64 against 1 happened to be identical).  Used
#: wherever scores from different batchings are compared (tests, sharded scoring).
BATCH_RTOL = 1e-5

#: Relative tolerance of a bf16 score (``--precision bf16``) against the fp32 one.  bf16 keeps 8 bits of
#: mantissa, so latent_i and latent_o carry ~0.5 % errors and A, a mean squared difference of the two,
#: moves by up to 1.6 % (median 0.4 %) on the bundled 36 cutouts and examples, paper-size NetG, this CPU;
#: ranks among images whose A differ by less than that can swap (docs/scaling.md has the figures).
BF16_RTOL = 3e-2


def normalize_paper(a: np.ndarray) -> np.ndarray:
    """The paper's fixed normalisation of raw scores."""
    return (np.asarray(a, dtype=np.float64) - PAPER_A_MIN) / (PAPER_A_MAX - PAPER_A_MIN)


class PerSampleNorm(nn.Module):
    """A BatchNorm2d evaluated as in training mode on a batch of one image, for every image of the batch.

    Each (image, channel) plane is normalised by its own mean and biased
    variance over H x W, then scaled and shifted by the BatchNorm's affine
    parameters: ``F.instance_norm`` with the BatchNorm's weight, bias and eps.
    """

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, use_input_stats=True, eps=self.eps)


def _with_per_sample_norm(net: nn.Module) -> nn.Module:
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, name, PerSampleNorm(child))
    return net


class Scorer:
    """Scores batches of normalised images with a NetG.

    Parameters
    ----------
    netg : a trained ``lib.networks.NetG`` (left untouched: the scorer works on a copy).
    mode : ``"paper"`` (per-image BatchNorm statistics) or ``"eval"`` (running statistics).
    device : torch device for the forward passes.
    precision : ``"fp32"`` (the faithful default), ``"bf16"`` (autocast on CPU or CUDA; latents and A are
        computed in float32 from the bf16 network outputs; docs/scaling.md gives the effect on A) or
        ``"fp64"`` (a check mode).
    channels_last : channels-last memory format (same maths, faster convolutions on most hardware).
    """

    def __init__(self, netg: nn.Module, mode: str = "paper", device: str | torch.device = "cpu",
                 precision: str = "fp32", channels_last: bool = False) -> None:
        if mode not in ("paper", "eval"):
            raise ValueError(f"score mode must be 'paper' or 'eval', got {mode!r}")
        self.mode, self.precision = mode, precision
        self.device = torch.device(device)
        self.dtype = check_precision(precision, self.device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        net = _with_per_sample_norm(netg) if mode == "paper" else copy.deepcopy(netg)
        # eval() only matters for mode="eval": no BatchNorm left otherwise
        self.netg = net.to(self.device, self.dtype, memory_format=self.memory_format).eval()

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x (B, nc, isize, isize) -> dict of ``A`` (B,) float64, ``latent_i``, ``latent_o`` (B, nz), ``fake`` and ``x``.

        ``x`` is float in [-1, 1], or uint8 pixels that are normalised here, on the device, with the
        original's float32 operations (lib.loaders.normalize_uint8); the returned ``x`` is the normalised batch.
        """
        x = x.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:
            x = normalize_uint8(x)
        x = x.to(self.dtype).contiguous(memory_format=self.memory_format)
        with autocast(self.precision, self.device):
            fake, latent_i, latent_o = self.netg(x)
        if self.precision == "bf16":
            latent_i, latent_o = latent_i.float(), latent_o.float()
        latent_i, latent_o = latent_i.flatten(1), latent_o.flatten(1)  # (B, nz, 1, 1) -> (B, nz)
        a = torch.mean(torch.pow(latent_i - latent_o, 2), dim=1)
        return dict(A=a.double().cpu(), latent_i=latent_i.cpu(), latent_o=latent_o.cpu(), fake=fake, x=x)


class Calibration:
    """Score quantiles of a reference image set, stored next to the weights as ``<weights>.calib.json``.

    ``normalize(A)`` = (A - min_ref) / (max_ref - min_ref), the paper's formula
    with this model's reference set; ``percentile(A)`` is the percentage of
    reference images scoring below A.
    """

    LEVELS = np.linspace(0.0, 1.0, 1001)

    def __init__(self, quantiles: np.ndarray, n: int, weights: str = "") -> None:
        self.quantiles, self.n, self.weights = np.asarray(quantiles, dtype=np.float64), int(n), weights
        if self.quantiles[-1] <= self.quantiles[0]:
            raise ValueError("calibration needs reference scores that are not all equal")

    @classmethod
    def from_scores(cls, scores: np.ndarray, weights: str = "") -> "Calibration":
        scores = np.asarray(scores, dtype=np.float64)
        if scores.size < 2:
            raise ValueError("calibration needs at least 2 reference images")
        return cls(np.quantile(scores, cls.LEVELS), scores.size, weights)

    @staticmethod
    def path_for(weights: str) -> str:
        return weights + ".calib.json"

    def save(self, path: str) -> None:
        write_json(path, dict(weights=os.path.basename(self.weights), n_reference=self.n,
                              levels=self.LEVELS.tolist(), quantiles=self.quantiles.tolist()))

    @classmethod
    def load(cls, path: str) -> "Calibration":
        with open(path) as fh:
            d = json.load(fh)
        return cls(np.array(d["quantiles"]), d["n_reference"], d.get("weights", ""))

    def normalize(self, a: np.ndarray) -> np.ndarray:
        lo, hi = self.quantiles[0], self.quantiles[-1]
        return (np.asarray(a, dtype=np.float64) - lo) / (hi - lo)

    def percentile(self, a: np.ndarray) -> np.ndarray:
        return 100.0 * np.interp(np.asarray(a, dtype=np.float64), self.quantiles, self.LEVELS)
