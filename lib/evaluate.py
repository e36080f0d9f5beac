"""Detection metrics for labelled test sets (0 = normal, 1 = abnormal): AUROC, average precision, EER, ROC figure.

Unlike the original ``lib/evaluate.py``, importing this module changes no
matplotlib settings (the original switched on LaTeX text for every plot).
"""
from __future__ import annotations

import numpy as np

__all__ = ["detection_metrics", "save_roc_figure"]


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
