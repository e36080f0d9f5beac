"""Evaluate a trained model on an image set: the engine behind ``test.py``.

Outputs (all written under a temporary name, then renamed):

* ``anomaly_scores.csv``: ``filename, ascore[, label][, ascore_norm][, ascore_pct]``, one row per scored image,
  in input order, ``ascore`` the raw A at full float64 precision. Rows are streamed to the temporary file
  batch by batch, so memory stays bounded for any number of images.
* ``anomaly_scores_errors.csv``: ``filename, reason`` for every file that could not be scored.
* optional: ``latents.npz`` (filenames, latent_i, latent_o, ascore), per-image panels and a grid of the most
  anomalous images, ``metrics.json`` + ``roc.png`` when both classes (0.normal, 1.abnormal) are present.

Detection metrics for labelled sets (0 = normal, 1 = abnormal): AUROC, average precision,
EER and the ROC figure.  Unlike the original ``lib/evaluate.py``, importing this module
changes no matplotlib settings (the original switched on LaTeX text for every plot).
"""
from __future__ import annotations

import csv
import heapq
import io
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch

from lib.fileio import atomic_write_bytes, write_csv, write_json
from lib.scoring import Scorer

__all__ = ["ScoreResult", "score_files", "save_panel", "save_worst_grid", "detection_metrics", "save_roc_figure"]


def detection_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUROC, average precision and equal error rate of scores (higher = more anomalous).

    Parameters
    ----------
    labels : (N,) ints, 1 for abnormal, 0 for normal; both classes must be present.
    scores : (N,) anomaly scores.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    if set(np.unique(labels)) != {0, 1}:
        raise ValueError("metrics need both normal (0) and abnormal (1) images")
    fpr, tpr, thresholds = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    # EER: where the false positive and false negative rates cross (linear interpolation between ROC points)
    if i + 1 < len(fpr) and (fnr[i] - fpr[i]) * (fnr[i + 1] - fpr[i + 1]) < 0:
        d0, d1 = fnr[i] - fpr[i], fnr[i + 1] - fpr[i + 1]
        t = d0 / (d0 - d1)
        eer = fpr[i] + t * (fpr[i + 1] - fpr[i])
    else:
        eer = (fpr[i] + fnr[i]) / 2
    return dict(auroc=float(roc_auc_score(labels, scores)), average_precision=float(average_precision_score(labels, scores)),
                eer=float(eer), eer_threshold=float(thresholds[i]), n_normal=int((labels == 0).sum()),
                n_abnormal=int((labels == 1).sum()))


def save_roc_figure(labels: np.ndarray, scores: np.ndarray, path: str, title: str = "") -> None:
    """ROC curve with the AUROC and EER in the legend, written as a PNG (no LaTeX needed)."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone
    from sklearn.metrics import roc_curve

    m = detection_metrics(labels, scores)
    fpr, tpr, _ = roc_curve(labels, scores)
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot(fpr, tpr, lw=2, label=f"AUROC = {m['auroc']:.3f}, EER = {m['eer']:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


@dataclass
class ScoreResult:
    n_scored: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    labels: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    metrics: dict | None = None


def _tmp(path: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.part")


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def save_panel(real: torch.Tensor, fake: torch.Tensor, score: float, title: str, path: str) -> None:
    """real | reconstruction | |difference| (joint min-max, as the original's figures) with A in the title."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's (e.g. a notebook's) backend alone
    from torchvision.utils import make_grid

    grid = make_grid([real, fake, (fake - real).abs()], normalize=True, padding=2)
    fig = Figure(figsize=(6, 2.4))
    ax = fig.subplots()
    img = grid.permute(1, 2, 0).numpy()
    ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray")
    ax.set_axis_off()
    ax.set_title(f"{title}  A = {score:.8g}", fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def save_worst_grid(items: list[tuple[float, int, torch.Tensor, str]], path: str):
    """The most anomalous images, highest A first, 8 per row, each titled with its file name and A.

    ``items`` are ``(A, index, image (C, H, W) in [-1, 1], file name)``; the images share one
    min-max scaling (as the training grids), so their brightness can be compared.  Returns the
    matplotlib Figure.
    """
    from matplotlib.figure import Figure

    items = sorted(items, key=lambda t: -t[0])
    stack = torch.stack([t[2] for t in items]).float()
    lo, hi = float(stack.min()), float(stack.max())
    ncol = min(8, len(items))
    nrow = -(-len(items) // ncol)
    fig = Figure(figsize=(1.6 * ncol, 2.0 * nrow + 0.3), layout="constrained")  # titles never overlap a row
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, (a, _, img, name), tile in zip(axes.flat, items, stack):
        arr = ((tile - lo) / max(hi - lo, 1e-12)).permute(1, 2, 0).numpy()
        ax.imshow(arr.squeeze(-1) if arr.shape[-1] == 1 else arr, cmap="gray", vmin=0, vmax=1)
        stem = os.path.splitext(os.path.basename(name))[0]
        ax.set_title(f"{stem[:18]}\nA = {a:.4g}", fontsize=7)
    fig.suptitle("most anomalous images (highest A first)", fontsize=9)
    fig.savefig(path, dpi=100)
    return fig


def score_files(scorer: Scorer, batches: Iterable[tuple[torch.Tensor | None, list[int], list[str], list]], *,
                n_total: int, with_label: bool, out_csv: str,
                normalizers: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
                save_latents: str = "", panels_dir: str = "", n_worst: int = 0, progress: bool = True,
                strict: bool = False, first_index: int = 0, metrics: bool = True) -> ScoreResult:
    """Score batches ``(x, labels, filenames, bad)`` and write ``out_csv`` (see module doc).

    ``batches`` comes from ``lib.data.ImageSource.scoring_batches`` (image files, or
    packed arrays); ``n_total`` is the number of
    inputs (for the progress bar); ``with_label`` adds the label column.
    ``normalizers`` maps extra column names (``ascore_norm``, ``ascore_pct``)
    to functions of the raw scores.  With ``strict``, a file that cannot be read means no
    output at all: the scores are discarded and nothing is written (panels aside).
    A shard of a larger set (test.py --shard, torchrun) passes ``first_index`` (its first row's
    index in the whole set, for panel names) and ``metrics=False`` (computed when the shards merge).
    """
    from tqdm import tqdm

    normalizers = normalizers or {}
    res, t0 = ScoreResult(), time.perf_counter()
    latents: dict[str, list] = {"filenames": [], "latent_i": [], "latent_o": [], "ascore": []}
    worst: list[tuple[float, int, torch.Tensor, str]] = []  # min-heap of (A, index, image, file)
    os.makedirs(os.path.dirname(os.path.abspath(out_csv)), exist_ok=True)
    tmp = _tmp(out_csv)
    try:
        # disable=None: no bar when stderr is not a terminal (logs, notebooks, CI), one bar otherwise
        with open(tmp, "w", newline="") as fh, tqdm(total=n_total, disable=None if progress else True, unit="img") as bar:
            writer = csv.writer(fh)
            writer.writerow(["filename", "ascore"] + (["label"] if with_label else []) + list(normalizers))
            for x, labels, paths, bad in batches:
                res.errors += bad
                bar.update(len(paths) + len(bad))
                if x is None:
                    continue
                out = scorer(x)
                x = out["x"].float().cpu() if (panels_dir or n_worst) else x  # normalised (x may be uint8)
                a = out["A"].numpy()
                extra = [fn(a) for fn in normalizers.values()]
                for i, (p, lab) in enumerate(zip(paths, labels)):
                    writer.writerow([p, repr(float(a[i]))] + ([lab] if with_label else []) + [repr(float(e[i])) for e in extra])
                res.labels += [int(v) for v in labels]
                res.scores += a.tolist()
                if save_latents:
                    latents["filenames"] += paths
                    latents["latent_i"].append(out["latent_i"].numpy())
                    latents["latent_o"].append(out["latent_o"].numpy())
                    latents["ascore"].append(a)
                if panels_dir:
                    fake = out["fake"].cpu()
                    for i, p in enumerate(paths):
                        stem = os.path.splitext(os.path.basename(p))[0]
                        save_panel(x[i], fake[i], float(a[i]), os.path.basename(p),
                                   os.path.join(panels_dir, f"{first_index + res.n_scored + i:06d}_{stem}.png"))
                if n_worst:
                    for i in range(len(paths)):
                        item = (float(a[i]), first_index + res.n_scored + i, x[i].clone(), paths[i])
                        (heapq.heappush if len(worst) < n_worst else heapq.heappushpop)(worst, item)
                res.n_scored += len(paths)
        if res.n_scored and not (strict and res.errors):
            os.replace(tmp, out_csv)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    res.seconds = time.perf_counter() - t0
    base = os.path.dirname(os.path.abspath(out_csv))
    if strict and res.errors:
        return res
    if res.errors:
        err_path = os.path.splitext(out_csv)[0] + "_errors.csv"
        write_csv(err_path, ("filename", "reason"), res.errors)
    if save_latents and res.n_scored:
        arrays = dict(filenames=np.array(latents["filenames"]), latent_i=np.concatenate(latents["latent_i"]),
                      latent_o=np.concatenate(latents["latent_o"]), ascore=np.concatenate(latents["ascore"]))
        atomic_write_bytes(save_latents, _npz_bytes(arrays))
    if worst:
        save_worst_grid(worst, os.path.join(panels_dir or base, "most_anomalous.png"))
    if metrics and with_label and {0, 1} <= set(res.labels):  # metrics=False: a shard (merged later)
        y, s = np.array(res.labels), np.array(res.scores)
        keep = y >= 0
        res.metrics = detection_metrics(y[keep], s[keep])
        write_json(os.path.join(base, "metrics.json"), res.metrics)
        save_roc_figure(y[keep], s[keep], os.path.join(base, "roc.png"))
    return res
