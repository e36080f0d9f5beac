"""What the realism benchmarks share: the real cutout sets, the whole-cutout statistics, the split protocol.

``benchmarks/realism.py`` and ``benchmarks/realism_morphology.py`` both import this module (and
not each other).

Whole-cutout statistics (:func:`whole_cutout`), measured on the 64x64 view the network sees:
* ``sigma_R``, ``sigma_G``, ``sigma_B``: robust sigma (1.4826 x median absolute deviation) of the
  4-pixel border frame of each channel, in [0, 1] units of the JPEG (8-bit value / 255);
* ``ln_r80_r20`` and ``ln_r50``: from the growth curve of the background-subtracted summed light
  (R + G + B minus each channel's border median, negative pixels set to 0; every source in the
  cutout, not one segment), with radii about the cutout centre (31.5, 31.5), in pixels.

The protocol (:func:`repeated_splits`): ``n_splits`` random halves H1, H2 of the bundled real tiles;
per split, a cross-validated classifier (:func:`cv_auroc`) tells H1 from H2 (real vs real) and H1 from
as many synthetic cutouts (a fresh sample per split), at the same sample sizes, with the same features.
Nothing is fitted on the cutouts that report: each AUROC is on out-of-fold scores.
"""

from __future__ import annotations

import glob
import os

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_DIR = os.path.join(ROOT, "data", "sdss_real")
WHOLE = ("sigma_R", "sigma_G", "sigma_B", "ln_r80_r20", "ln_r50")
BORDER = 4  # pixels


def real_files(folder: str | None = None) -> list[str]:
    """The real cutouts of ``folder`` (default the bundled ``data/sdss_real``), sorted: PNG or JPEG files."""
    folder = REAL_DIR if folder is None else folder
    out = []
    for ext in ("png", "jpg", "jpeg", "PNG", "JPG", "JPEG"):
        out += glob.glob(os.path.join(folder, f"*.{ext}"))
    return sorted(set(out))


def load_images(files: list[str]) -> list[np.ndarray]:
    """(64, 64, 3) uint8 arrays of the given image files; any other size is refused (ValueError)."""
    out = []
    for f in files:
        with Image.open(f) as im:
            a = np.asarray(im.convert("RGB"))
        if a.shape != (64, 64, 3):
            raise ValueError(f"{f}: {a.shape[1]}x{a.shape[0]} pixels, not a 64x64 cutout")
        out.append(a)
    return out


def border_pixels(a: np.ndarray, width: int = BORDER) -> np.ndarray:
    """The ``width``-pixel frame of an (H, W, C) array as (n, C): top, bottom, then the sides between."""
    return np.concatenate([a[:width].reshape(-1, a.shape[2]), a[-width:].reshape(-1, a.shape[2]),
                           a[width:-width, :width].reshape(-1, a.shape[2]),
                           a[width:-width, -width:].reshape(-1, a.shape[2])])


def whole_cutout(rgb: np.ndarray) -> dict:
    """The whole-cutout statistics of one (64, 64, 3) uint8 cutout (see the module docstring)."""
    a = np.asarray(rgb, dtype=np.float64) / 255.0
    b = border_pixels(a)
    med = np.median(b, axis=0)
    sig = 1.4826 * np.median(np.abs(b - med), axis=0)
    light = np.clip((a - med).sum(axis=2), 0.0, None)  # (64, 64), [0, 1] units summed over R, G, B
    h, w = light.shape
    yy, xx = np.indices(light.shape)
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2).ravel()
    order = np.argsort(r, kind="stable")
    cum = np.cumsum(light.ravel()[order])
    if cum[-1] <= 0:
        r20 = r50 = r80 = np.nan
    else:
        r20, r50, r80 = (float(np.interp(f * cum[-1], cum, r[order])) for f in (0.2, 0.5, 0.8))
    return {"sigma_R": float(sig[0]), "sigma_G": float(sig[1]), "sigma_B": float(sig[2]),
            "ln_r80_r20": float(np.log(r80 / max(r20, 0.5))), "ln_r50": float(np.log(max(r50, 0.5)))}


def cv_auroc(xa: np.ndarray, xb: np.ndarray, seed: int, folds: int = 4, repeats: int = 3) -> float:
    """Cross-validated AUROC of a logistic regression telling set ``b`` (positive) from set ``a``.

    ``xa``, ``xb``: (n, features).  Standardised features, balanced classes, C = 1; stratified
    ``folds``-fold, repeated ``repeats`` times with shuffles from ``seed``: the AUROC of the out-of-fold
    scores, averaged over the repeats.  A missing feature (NaN) gets the training folds' median.
    0.5 = the classifier cannot tell the sets apart (small samples scatter around it, a little below).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    x = np.r_[xa, xb].astype(np.float64)
    y = np.r_[np.zeros(len(xa)), np.ones(len(xb))]
    aucs = []
    for rep in range(repeats):
        scores = np.zeros(len(y))
        for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed * 100 + rep).split(x, y):
            fill = np.nanmedian(x[tr], axis=0)
            fill = np.where(np.isfinite(fill), fill, 0.0)
            clean = lambda z: np.where(np.isfinite(z), z, fill)  # noqa: E731
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
            clf.fit(clean(x[tr]), y[tr])
            scores[te] = clf.decision_function(clean(x[te]))
        aucs.append(roc_auc_score(y, scores))
    return float(np.mean(aucs))


def repeated_splits(x_real: np.ndarray, x_syn: np.ndarray, n_splits: int, seed: int) -> list[dict]:
    """The protocol of the module docstring on feature arrays (n, features).

    ``x_syn`` must hold ``n_splits * (len(x_real) // 2)`` synthetic cutouts: split k uses rows
    k*h .. (k+1)*h-1 (h = half the real set), so no synthetic cutout is used twice.  Returns per
    split ``{"rr": real-vs-real AUROC, "syn": synthetic-vs-real AUROC, "half": indices of H1}``.
    """
    h = len(x_real) // 2
    if len(x_syn) < n_splits * h:
        raise ValueError(f"need {n_splits * h} synthetic cutouts for {n_splits} splits, got {len(x_syn)}")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_splits):
        perm = rng.permutation(len(x_real))
        h1, h2 = perm[:h], perm[h:2 * h]
        out.append({"rr": cv_auroc(x_real[h1], x_real[h2], seed + k),
                    "syn": cv_auroc(x_real[h1], x_syn[k * h:(k + 1) * h], seed + k), "half": np.sort(h1)})
    return out


def half_medians(values: np.ndarray, halves: list[np.ndarray]) -> np.ndarray:
    """Median of ``values`` (n, k) over each half: (len(halves), k)."""
    return np.array([np.nanmedian(values[h], axis=0) for h in halves])
