"""Evaluate a trained model on an image set: the engine behind ``test.py``, and the owner of its files.

This module alone names, writes, shards and merges the ``anomaly_scores`` file family (every file is
written under a temporary name, then renamed). For a score table ``<stem>.csv`` (default
``anomaly_scores.csv``):

* ``<stem>.csv``: ``filename, ascore[, label][, ascore_norm][, ascore_pct]``, one row per scored image,
  in input order, ``ascore`` the raw A at full float64 precision. Rows are streamed to the temporary file
  batch by batch, so memory stays bounded for any number of images.
* ``<stem>_errors.csv``: ``filename, reason`` for every file that could not be scored.
* ``<stem>_latents.npz`` (optional): filenames, latent_i, latent_o, ascore.
* ``<stem>_run.json``: the run record (options, weights, counts, package versions).
* beside them: ``metrics.json`` + ``roc.png`` when both classes (0.normal, 1.abnormal) are present,
  per-image panels (``images/``) and ``most_anomalous.png``.
* sharded (``test.py --shard I/N``, torchrun): ``<stem>.shard-I-of-N.csv`` and its own side files,
  joined by :func:`merge_shards` into the files above.

Detection metrics for labelled sets (0 = normal, 1 = abnormal): AUROC, average precision,
EER and the ROC figure.  Unlike the original ``lib/evaluate.py``, importing this module
changes no matplotlib settings (the original switched on LaTeX text for every plot), and it imports
no torch: rate.py reads the file names here without loading it.
"""
from __future__ import annotations

import csv
import glob
import heapq
import io
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from lib.fileio import RECORD_SUFFIX, atomic_write_bytes, atomic_write_text, write_csv, write_json, write_run_record

if TYPE_CHECKING:
    import torch

    from lib.scoring import Scorer

__all__ = ["ScoreResult", "score_files", "save_panel", "save_worst_grid", "detection_metrics", "save_roc_figure",
           "SCORES_CSV", "ERRORS", "LATENTS", "RUN", "side_file", "write_metrics", "write_run", "shard_path",
           "merge_shards"]

# ------------------------------------------------------------------ the file family's names (spelled here only)
SCORES_CSV = "anomaly_scores.csv"  # test.py's default table name
ERRORS, LATENTS, RUN = "_errors.csv", "_latents.npz", RECORD_SUFFIX  # side files: <stem><suffix>
METRICS_JSON, ROC_PNG, WORST_PNG, PANELS = "metrics.json", "roc.png", "most_anomalous.png", "images"


def side_file(out_csv: str, suffix: str) -> str:
    """``<stem><suffix>`` beside the score table ``<stem>.csv`` (``suffix`` one of ERRORS, LATENTS, RUN)."""
    return os.path.splitext(os.fspath(out_csv))[0] + suffix


def panels_dir(out_csv: str) -> str:
    """The folder of the per-image panels of ``out_csv`` (``images/`` beside it)."""
    return os.path.join(os.path.dirname(os.path.abspath(out_csv)), PANELS)


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


def write_metrics(labels: np.ndarray, scores: np.ndarray, folder: str) -> dict | None:
    """``metrics.json`` and ``roc.png`` in ``folder`` for a labelled set; None (nothing written) unless
    both classes are present. Unknown labels (-1) are left out."""
    y, s = np.asarray(labels), np.asarray(scores)
    if not {0, 1} <= set(y.tolist()):
        return None
    keep = y >= 0
    m = detection_metrics(y[keep], s[keep])
    write_json(os.path.join(folder, METRICS_JSON), m)
    save_roc_figure(y[keep], s[keep], os.path.join(folder, ROC_PNG))
    return m


def write_run(out_csv: str, **fields) -> None:
    """``<stem>_run.json``: the record of the run that wrote ``out_csv`` (``fields`` + package versions)."""
    write_run_record(side_file(out_csv, RUN), fields)


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
    import torch
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


@dataclass
class _Pass:
    """What one scoring pass keeps besides the CSV rows: latents, the most anomalous images, panels."""
    scorer: Scorer
    writer: object  # csv.writer on the temporary table
    normalizers: dict
    with_label: bool
    save_latents: bool
    panels: str
    n_worst: int
    first_index: int
    res: ScoreResult = field(default_factory=ScoreResult)
    latents: dict = field(default_factory=lambda: {"filenames": [], "latent_i": [], "latent_o": [], "ascore": []})
    worst: list = field(default_factory=list)  # min-heap of (A, index, image, file)

    def batch(self, x: torch.Tensor, labels: list[int], paths: list[str]) -> None:
        """Score one batch x (B, C, H, W): write its rows, keep what the side files need."""
        res = self.res
        out = self.scorer(x)
        x = out["x"].float().cpu() if (self.panels or self.n_worst) else x  # normalised (x may be uint8)
        a = out["A"].numpy()
        extra = [fn(a) for fn in self.normalizers.values()]
        for i, (p, lab) in enumerate(zip(paths, labels)):
            self.writer.writerow([p, repr(float(a[i]))] + ([lab] if self.with_label else [])
                                 + [repr(float(e[i])) for e in extra])
        res.labels += [int(v) for v in labels]
        res.scores += a.tolist()
        if self.save_latents:
            self.latents["filenames"] += paths
            self.latents["latent_i"].append(out["latent_i"].numpy())
            self.latents["latent_o"].append(out["latent_o"].numpy())
            self.latents["ascore"].append(a)
        first = self.first_index + res.n_scored  # index of this batch's first image in the whole set
        if self.panels:
            fake = out["fake"].cpu()
            for i, p in enumerate(paths):
                stem = os.path.splitext(os.path.basename(p))[0]
                save_panel(x[i], fake[i], float(a[i]), os.path.basename(p),
                           os.path.join(self.panels, f"{first + i:06d}_{stem}.png"))
        if self.n_worst:
            for i in range(len(paths)):
                item = (float(a[i]), first + i, x[i].clone(), paths[i])
                (heapq.heappush if len(self.worst) < self.n_worst else heapq.heappushpop)(self.worst, item)
        res.n_scored += len(paths)

    def side_files(self, out_csv: str, metrics: bool) -> None:
        """The errors, latents, most-anomalous grid and metrics of a finished pass."""
        res, base = self.res, os.path.dirname(os.path.abspath(out_csv))
        if res.errors:
            write_csv(side_file(out_csv, ERRORS), ("filename", "reason"), res.errors)
        if self.save_latents and res.n_scored:
            lat = self.latents
            arrays = dict(filenames=np.array(lat["filenames"]), latent_i=np.concatenate(lat["latent_i"]),
                          latent_o=np.concatenate(lat["latent_o"]), ascore=np.concatenate(lat["ascore"]))
            atomic_write_bytes(side_file(out_csv, LATENTS), _npz_bytes(arrays))
        if self.worst:
            save_worst_grid(self.worst, os.path.join(self.panels or base, WORST_PNG))
        if metrics and self.with_label:  # metrics=False: a shard (merged later)
            res.metrics = write_metrics(np.array(res.labels), np.array(res.scores), base)


def score_files(scorer: Scorer, batches: Iterable[tuple[torch.Tensor | None, list[int], list[str], list]], *,
                n_total: int, with_label: bool, out_csv: str,
                normalizers: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
                save_latents: bool = False, save_panels: bool = False, n_worst: int = 0, progress: bool = True,
                strict: bool = False, first_index: int = 0, metrics: bool = True) -> ScoreResult:
    """Score batches ``(x, labels, filenames, bad)`` and write ``out_csv`` and its side files (module doc).

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
    t0 = time.perf_counter()
    os.makedirs(os.path.dirname(os.path.abspath(out_csv)), exist_ok=True)
    panels = panels_dir(out_csv) if save_panels else ""
    if panels:
        os.makedirs(panels, exist_ok=True)
    tmp = _tmp(out_csv)
    try:
        # disable=None: no bar when stderr is not a terminal (logs, notebooks, CI), one bar otherwise
        with open(tmp, "w", newline="") as fh, tqdm(total=n_total, disable=None if progress else True, unit="img") as bar:
            run = _Pass(scorer, csv.writer(fh), normalizers, with_label, save_latents, panels, n_worst, first_index)
            run.writer.writerow(["filename", "ascore"] + (["label"] if with_label else []) + list(normalizers))
            for x, labels, paths, bad in batches:
                run.res.errors += bad
                bar.update(len(paths) + len(bad))
                if x is not None:
                    run.batch(x, labels, paths)
        res = run.res
        if res.n_scored and not (strict and res.errors):
            os.replace(tmp, out_csv)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    res.seconds = time.perf_counter() - t0
    if not (strict and res.errors):
        run.side_files(out_csv, metrics)
    return res


# ------------------------------------------------------------------ sharded scoring: shard files and their merge
def shard_path(out_csv: str, index: int, count: int) -> str:
    """``<out_csv stem>.shard-I-of-N.csv``: where shard I of N writes its scores (its errors, latents and
    run record take the same stem, as ``anomaly_scores.csv`` gives ``anomaly_scores_errors.csv``)."""
    stem, ext = os.path.splitext(out_csv)
    return f"{stem}.shard-{index}-of-{count}{ext or '.csv'}"


def _shard_files(out_csv: str) -> list[str]:
    stem, ext = os.path.splitext(out_csv)
    pattern = re.compile(re.escape(os.path.basename(stem)) + r"\.shard-(\d+)-of-(\d+)" + re.escape(ext or ".csv") + "$")
    found = {}
    for f in glob.glob(glob.escape(stem) + ".shard-*-of-*" + (ext or ".csv")):
        if m := pattern.search(os.path.basename(f)):
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = f
    if not found:
        raise FileNotFoundError(f"--merge_shards {out_csv}: no {os.path.basename(stem)}.shard-I-of-N{ext} files")
    if len(found) > 1:
        raise ValueError(f"--merge_shards {out_csv}: shards of different runs (N = {sorted(found)}); remove the old ones")
    (count, files), = found.items()
    missing = sorted(set(range(count)) - set(files))
    if missing:
        raise FileNotFoundError(f"--merge_shards {out_csv}: shard(s) {missing} of {count} missing (not finished?)")
    return [files[i] for i in range(count)]


def _read(path: str) -> str:
    with open(path, newline="") as fh:
        return fh.read()


def _lines(path: str) -> list[str]:
    return _read(path).splitlines(keepends=True)


def _join(tables: list[list[str]]) -> str:
    """CSV tables (lists of lines) joined under the first one's header, rows kept as written."""
    return "".join([tables[0][0]] + [row for t in tables for row in t[1:]])


def merge_shards(out_csv: str, remove: bool = False, **record) -> dict:
    """Join ``<stem>.shard-I-of-N.csv`` (I = 0..N-1, all required) into ``out_csv``, in shard order.

    The rows keep their text (same digits as one process); ``*_errors.csv`` and ``*_latents.npz`` are joined
    alike, detection metrics (labelled sets) are computed on the whole set and ``<stem>_run.json`` sums
    the shards' records (``record`` adds fields, e.g. world_size). Returns that record. ``remove``
    deletes the shard files afterwards (torchrun does; ``--merge_shards`` keeps them).
    """
    files = _shard_files(out_csv)
    texts = [_lines(f) for f in files]
    if len({t[0] for t in texts}) != 1:
        raise ValueError(f"--merge_shards {out_csv}: the shards have different columns")
    atomic_write_text(out_csv, _join(texts))
    errors = [e for f in files if os.path.isfile(e := side_file(f, ERRORS))]
    if errors:
        atomic_write_text(side_file(out_csv, ERRORS), _join([_lines(e) for e in errors]))
    latents = [side_file(f, LATENTS) for f in files]
    if all(os.path.isfile(f) for f in latents):
        parts = [dict(np.load(f)) for f in latents]
        atomic_write_bytes(side_file(out_csv, LATENTS),
                           _npz_bytes({k: np.concatenate([p[k] for p in parts]) for k in parts[0]}))
    runs = [json.loads(_read(r)) for f in files if os.path.isfile(r := side_file(f, RUN))]
    out = dict(runs[0] if runs else {}, **record, shards=len(files), n_inputs=sum(r.get("n_inputs", 0) for r in runs),
               n_scored=sum(len(t) - 1 for t in texts), n_errors=sum(r.get("n_errors", 0) for r in runs),
               seconds=max((r.get("seconds", 0) for r in runs), default=0), metrics=None)
    if "label" in texts[0][0].strip().split(","):
        rows = list(csv.DictReader(io.StringIO(_read(out_csv))))
        out["metrics"] = write_metrics(np.array([int(r["label"]) for r in rows]),
                                       np.array([float(r["ascore"]) for r in rows]),
                                       os.path.dirname(os.path.abspath(out_csv)))
    write_json(side_file(out_csv, RUN), out)  # the shards' records merged (their package versions kept)
    if remove:
        for f in files:
            for p in (f, side_file(f, ERRORS), side_file(f, LATENTS), side_file(f, RUN)):
                if os.path.isfile(p):
                    os.unlink(p)
    return out
