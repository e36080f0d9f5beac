"""Two-sample tests on GANomaly's latent vectors: a classifier test (C2ST) and a kernel test (MMD).

The anomaly score A is one number per image: it sees how hard an image is to
reconstruct, and is blind to every difference the encoder represents but the
reconstruction does not punish (colours, for one).  These statistics compare the
encoder's codes ``latent_i`` (z in the paper, nz numbers per image) of a suite with
those of the observed images directly.

* :func:`c2st` - classifier two-sample test (Lopez-Paz & Oquab 2017): standardise the
  pooled latents per dimension, fit an L2-regularised linear classifier in stratified
  k-fold cross-validation (folds grouped by galaxy when several images share one), and
  report the AUROC of the out-of-fold predictions over the (suite, observed) pairs that
  share a test fold (:func:`fold_auroc`).  0.5: the classifier cannot tell the samples
  apart; 1: perfectly separable.  The interval is a bootstrap of the out-of-fold
  predictions over galaxies (no refits).  The p-value and null band come from
  permutations of the labels over galaxies.  The default classifier is ridge (least
  squares with an L2 penalty, the shrinkage-LDA direction): its fit is linear in the
  labels, so each permutation is an exact refit for the price of a matrix product.
  Permuting the out-of-fold predictions of one fit instead (the only cheap route for
  scikit-learn's logistic regression, ``classifier='logistic'``) ignores that folds share
  training images, which correlates their AUROCs under the null (about +0.25 between
  folds) and gives too many small p-values.  One comparison of 250 vs 250 images,
  interval and p-value included, takes well under 0.1 s.
* :func:`mmd` - squared maximum mean discrepancy (Gretton et al. 2012, unbiased
  estimator) with a Gaussian kernel whose width is the median pairwise distance of
  the standardised pooled latents, with a permutation p-value.

Both return plain dicts of floats; :func:`lib.rating.rate` puts them into the table.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from sklearn.linear_model import LogisticRegression
from scipy.stats import rankdata
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from lib.rating.stats import group_index, permuted_labels, stable_rng

#: Columns that :func:`c2st` and :func:`mmd` fill, in table order.
LATENT_COLUMNS = ["c2st_auroc", "c2st_auroc_lo", "c2st_auroc_hi", "c2st_p", "c2st_auroc_null_q025",
                  "c2st_auroc_null_q975", "mmd2", "mmd2_p", "mmd2_null_q025", "mmd2_null_q975"]


@dataclass(frozen=True)
class LatentConfig:
    """How the latent statistics are computed (written to rating_run.json).

    Attributes
    ----------
    features : {'latent_i', 'latent_i+diff'}
        The encoder's code of the input, or that concatenated with ``latent_o - latent_i``.
    classifier : {'ridge', 'logistic'}
        'ridge' (default): L2-regularised least-squares linear classifier (the ridge / shrinkage
        LDA direction).  Its fit is linear in the labels, so every permutation is an exact refit
        at the cost of a matrix product, and the p-value is exact.  'logistic': L2 logistic
        regression (scikit-learn); its permutations relabel the out-of-fold predictions within
        each fold without refits, which ignores the dependence between folds that share training
        images: the p-value is then approximate and liberal (11 % of p-values below 0.05 under the
        null in a 300-run Monte Carlo with d = 3, 60 vs 60 images).
    n_folds : int
        Stratified k-fold splits (fewer when a sample has fewer galaxies).
    ridge : float
        Ridge penalty per training image (lambda = ridge x n_train on standardised latents).
    C : float
        Inverse L2 regularisation strength of the logistic regression.
    n_boot, n_perm : int
        Bootstrap replicates of the interval, permutations of the p-value and null band.
    seed : int
        Seeds the folds, the bootstrap and the permutations.
    mmd : bool
        Also compute the kernel statistic.
    mmd_max_n : int
        MMD uses at most this many images per sample (a seeded subsample; the kernel matrix is N^2).
    level : float
        Central probability of the intervals and null bands.
    """
    features: str = "latent_i"
    classifier: str = "ridge"
    n_folds: int = 5
    ridge: float = 0.1
    C: float = 1.0
    n_boot: int = 200
    n_perm: int = 200
    seed: int = 0
    mmd: bool = True
    mmd_max_n: int = 1500
    level: float = 0.95

    def record(self) -> dict:
        """The configuration as written to the run JSON, with the classifier spelled out."""
        clf = (f"ridge least-squares classifier, lambda = {self.ridge} x n_train, exact refits in the permutations"
               if self.classifier == "ridge" else f"sklearn LogisticRegression(penalty='l2', C={self.C}, "
               "solver='lbfgs', max_iter=1000), permutations without refits (approximate)")
        return {**asdict(self), "classifier": clf + "; latents standardised per dimension over the pooled sample",
                "folds": f"StratifiedGroupKFold(n_splits={self.n_folds}, shuffle=True, random_state=seed) by galaxy "
                         "(StratifiedKFold without galaxy groups)",
                "interval": "percentile bootstrap of the out-of-fold predictions over galaxies, no refits",
                "auroc": "over the (suite, observed) pairs that share a test fold",
                "p_value": "one-sided, (1 + #null >= observed) / (1 + n_perm), labels permuted by galaxy"}


def features_of(arrays: dict, features: str = "latent_i") -> np.ndarray:
    """The feature matrix (N, d) of a latents file's arrays (``latent_i``, ``latent_o``)."""
    z = np.asarray(arrays["latent_i"], dtype=float).reshape(len(arrays["latent_i"]), -1)
    if features == "latent_i":
        return z
    if features == "latent_i+diff":
        zo = np.asarray(arrays["latent_o"], dtype=float).reshape(len(z), -1)
        return np.hstack([z, zo - z])
    raise ValueError(f"unknown latent features {features!r}; use 'latent_i' or 'latent_i+diff'")


def standardise(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale every dimension to zero mean and unit variance over the pooled sample [x, y]."""
    pooled = np.vstack([x, y])
    mu, sd = pooled.mean(0), pooled.std(0)
    sd[sd == 0] = 1.0  # a constant dimension carries no information; leave it at zero
    return (x - mu) / sd, (y - mu) / sd


def auroc_parts(scores: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of a weighted AUROC, many weightings at once.

    ``num = sum_ij w_pos_i w_neg_j (1[s_i > s_j] + 1/2 1[s_i = s_j])``, ``den = sum w_pos sum w_neg``;
    AUROC = num / den.  Sums of parts over folds give the AUROC over within-fold pairs.

    Parameters
    ----------
    scores : array_like, shape (N,)
    w_pos, w_neg : array_like, shape (B, N) or (N,)
        Weight of each element as a positive / negative (0/1 labels, bootstrap counts).

    Returns
    -------
    num, den : numpy.ndarray, shape (B,)
    """
    order = np.argsort(scores, kind="stable")
    s = np.asarray(scores, dtype=float)[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # runs of tied scores
    pos = np.add.reduceat(np.atleast_2d(w_pos)[:, order].astype(float), starts, axis=1)
    neg = np.add.reduceat(np.atleast_2d(w_neg)[:, order].astype(float), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    return (pos * (below + 0.5 * neg)).sum(1), pos.sum(1) * neg.sum(1)


def weighted_auroc(scores: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray) -> np.ndarray:
    """AUROC of ``scores`` for weighted positives and negatives (see :func:`auroc_parts`); NaN without weight."""
    num, den = auroc_parts(scores, w_pos, w_neg)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def fold_auroc(scores: np.ndarray, folds: list[np.ndarray], w_pos: np.ndarray, w_neg: np.ndarray) -> np.ndarray:
    """AUROC over the (positive, negative) pairs that share a test fold, for each weighting row.

    Comparing only within a fold removes the fold-to-fold offsets of the decision values (each
    fold has its own classifier), so that the permutation null of the labels is exact: given its
    fold's classifier, a test image's score does not depend on its label under "no difference".
    """
    w_pos, w_neg = np.atleast_2d(w_pos), np.atleast_2d(w_neg)
    num = np.zeros(len(w_pos))
    den = np.zeros(len(w_pos))
    for idx in folds:
        n_k, d_k = auroc_parts(scores[idx], w_pos[:, idx], w_neg[:, idx])
        num += n_k
        den += d_k
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _folds(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int, grouped: bool):
    if grouped:
        return StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(y, y, groups)
    return StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(y, y)


def fold_auroc_matrix(scores: np.ndarray, folds: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
    """:func:`fold_auroc` for a different score vector per row: ``scores`` and ``labels`` (P, N)."""
    num = np.zeros(len(scores))
    den = np.zeros(len(scores))
    for idx in folds:
        r = rankdata(scores[:, idx], axis=1)  # mid-ranks: ties count one half
        pos = labels[:, idx]
        n1 = pos.sum(1)
        num += (r * pos).sum(1) - n1 * (n1 + 1) / 2
        den += n1 * (len(idx) - n1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def out_of_fold_scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray, config: LatentConfig, grouped: bool = True,
                       perm: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None]:
    """Out-of-fold decision values of the configured linear classifier (label 1 vs 0).

    Parameters
    ----------
    x : array_like, shape (N, d)
        Standardised features.
    y : array_like, shape (N,)
        0/1 labels.
    groups : array_like, shape (N,)
        Integer group per row; a group never straddles a training and a test fold.
    config : LatentConfig
        ``classifier``, ``n_folds``, ``ridge``/``C``, ``seed``.
    grouped : bool
        False when every row is its own group (plain stratified folds).
    perm : numpy.ndarray of bool, shape (P, N), optional
        Relabellings; with the ridge classifier their out-of-fold scores are returned too
        (an exact refit per relabelling: the ridge fit is linear in the labels).

    Returns
    -------
    scores : numpy.ndarray, shape (N,)
    folds : list of numpy.ndarray
        Sorted row indices of each test fold.
    null_scores : numpy.ndarray, shape (P, N), or None
    """
    out = np.full(len(y), np.nan)
    null = None if perm is None or config.classifier != "ridge" else np.full(perm.shape, np.nan)
    folds = []
    for train, test in _folds(y, groups, config.n_folds, config.seed, grouped):
        if config.classifier == "ridge":
            m = x[train].mean(0)
            xt = x[train] - m  # (n_T, d)
            gram = xt.T @ xt + config.ridge * len(train) * np.eye(x.shape[1])
            proj = (x[test] - m) @ np.linalg.solve(gram, xt.T)  # (n_S, n_T): test scores per unit label
            out[test] = proj @ y[train]
            if null is not None:
                null[:, test] = perm[:, train].astype(float) @ proj.T
        elif config.classifier == "logistic":
            clf = LogisticRegression(C=config.C, max_iter=1000)
            clf.fit(x[train], y[train])
            out[test] = clf.decision_function(x[test])
        else:
            raise ValueError(f"unknown classifier {config.classifier!r}; use 'ridge' or 'logistic'")
        folds.append(np.sort(test))
    return out, folds, null


def _nan_result(prefix: str) -> dict[str, float]:
    return {c: np.nan for c in LATENT_COLUMNS if c.startswith(prefix)}


def _quantiles(null: np.ndarray, level: float) -> tuple[float, float]:
    null = null[np.isfinite(null)]
    if not null.size:
        return np.nan, np.nan
    a = 100 * (1 - level) / 2
    lo, hi = np.percentile(null, [a, 100 - a])
    return float(lo), float(hi)


def c2st(x: np.ndarray, y: np.ndarray, groups_x: np.ndarray | None = None, groups_y: np.ndarray | None = None,
         config: LatentConfig = LatentConfig(), key: Sequence[str] = ()) -> dict[str, float]:
    """Classifier two-sample test of ``x`` (a suite) against ``y`` (the observed images).

    Parameters
    ----------
    x, y : array_like, shape (N, d), (M, d)
        Latent vectors (raw: standardised here over the pooled sample).
    groups_x, groups_y : array_like, shape (N,) / (M,), optional
        Galaxy of each image: folds, bootstrap and permutations keep a galaxy's images together.
    config : LatentConfig
    key : sequence of str
        Extra seed material (suite, mass bin) for the bootstrap and permutation streams.

    Returns
    -------
    dict
        ``c2st_auroc`` (out-of-fold AUROC, suite = positive), ``c2st_auroc_lo/_hi``
        (percentile bootstrap over galaxies), ``c2st_p`` (one-sided permutation p-value,
        ``(1 + #null >= obs) / (1 + n_perm)``) and ``c2st_auroc_null_q025/_q975`` (central
        band of the permutation null: what "no difference" looks like at these sizes).
        All NaN when either sample has fewer than 2 galaxies.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    gx, ngx = group_index(groups_x, len(x))
    gy, ngy = group_index(groups_y, len(y))
    n_folds = min(config.n_folds, ngx, ngy)
    if n_folds < 2:
        return _nan_result("c2st")
    xs, ys = standardise(x, y)
    z = np.vstack([xs, ys])
    lab = np.r_[np.ones(len(x), int), np.zeros(len(y), int)]
    code = np.r_[gx, gy + ngx]  # pooled galaxy id
    grouped = groups_x is not None or groups_y is not None
    rng = stable_rng(config.seed, "c2st", *key)
    perm = (permuted_labels(groups_x, groups_y, len(x), len(y), config.n_perm, rng)
            if config.n_perm > 0 and config.classifier == "ridge" else None)
    s, folds, null_scores = out_of_fold_scores(z, lab, code, replace(config, n_folds=n_folds), grouped, perm)
    est = float(fold_auroc(s, folds, lab, 1 - lab)[0])
    out = {"c2st_auroc": est}
    if config.n_boot > 0:
        # resample galaxies within each sample; a galaxy drawn k times weighs its images k times
        cx = rng.multinomial(ngx, np.full(ngx, 1 / ngx), size=config.n_boot)  # (B, ngx)
        cy = rng.multinomial(ngy, np.full(ngy, 1 / ngy), size=config.n_boot)
        w = np.hstack([cx[:, gx], cy[:, gy]])  # (B, N + M)
        boot = fold_auroc(s, folds, w * lab, w * (1 - lab))
        out["c2st_auroc_lo"], out["c2st_auroc_hi"] = _quantiles(boot, config.level)
    else:
        out["c2st_auroc_lo"] = out["c2st_auroc_hi"] = np.nan
    if config.n_perm <= 0:
        out.update(c2st_p=np.nan, c2st_auroc_null_q025=np.nan, c2st_auroc_null_q975=np.nan)
        return out
    if null_scores is not None:  # ridge: every relabelling refitted exactly
        null = fold_auroc_matrix(null_scores, folds, perm)
    else:  # logistic: relabel whole galaxies within each test fold, classifiers as fitted
        perm = np.zeros((config.n_perm, len(lab)), dtype=bool)
        for idx in folds:
            in_x = idx[lab[idx] == 1]
            in_y = idx[lab[idx] == 0]  # idx is sorted: suite rows come first, as permuted_labels expects
            perm[:, idx] = permuted_labels(None if groups_x is None else code[in_x],
                                           None if groups_y is None else code[in_y],
                                           len(in_x), len(in_y), config.n_perm, rng)
        null = fold_auroc(s, folds, perm, ~perm)
    out["c2st_p"] = float((1 + np.sum(null >= est - 1e-12)) / (1 + config.n_perm))
    out["c2st_auroc_null_q025"], out["c2st_auroc_null_q975"] = _quantiles(null, config.level)
    return out


def _subsample(n: int, groups: np.ndarray | None, max_n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most about ``max_n`` elements, whole groups at a time."""
    if n <= max_n:
        return np.arange(n)
    g, ng = group_index(groups, n)
    keep_g = rng.permutation(ng)[: max(2, int(round(ng * max_n / n)))]
    return np.flatnonzero(np.isin(g, keep_g))


def mmd(x: np.ndarray, y: np.ndarray, groups_x: np.ndarray | None = None, groups_y: np.ndarray | None = None,
        config: LatentConfig = LatentConfig(), key: Sequence[str] = ()) -> dict[str, float]:
    """Unbiased squared MMD with a median-heuristic Gaussian kernel, and its permutation p-value.

    Parameters
    ----------
    x, y : array_like, shape (N, d), (M, d)
        Latent vectors (standardised here over the pooled sample).
    groups_x, groups_y : array_like, optional
        Galaxies: the permutations move whole galaxies.
    config : LatentConfig
        ``n_perm``, ``seed``, ``mmd_max_n`` (larger samples are subsampled by galaxy), ``level``.
    key : sequence of str
        Extra seed material.

    Returns
    -------
    dict
        ``mmd2`` (dimensionless: kernel values are in [0, 1]), ``mmd2_p`` and the
        central null band ``mmd2_null_q025/_q975``.  NaN with fewer than 2 images a side.
    """
    rng = stable_rng(config.seed, "mmd", *key)
    ix = _subsample(len(x), groups_x, config.mmd_max_n, rng)
    iy = _subsample(len(y), groups_y, config.mmd_max_n, rng)
    if len(ix) < 2 or len(iy) < 2:
        return _nan_result("mmd2")
    x = np.asarray(x, dtype=float)[ix]
    y = np.asarray(y, dtype=float)[iy]
    gx = None if groups_x is None else np.asarray(groups_x)[ix]
    gy = None if groups_y is None else np.asarray(groups_y)[iy]
    xs, ys = standardise(x, y)
    z = np.vstack([xs, ys])
    sq = (z * z).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)  # (N, N) squared distances
    off = d2[~np.eye(len(z), dtype=bool)]
    h2 = float(np.median(off)) or 1.0  # median heuristic: sigma = median distance
    k = np.exp(-d2 / (2 * h2))
    np.fill_diagonal(k, 0.0)  # the unbiased estimator leaves out i == j

    def stat(a: np.ndarray) -> np.ndarray:
        a = np.atleast_2d(a).astype(float)  # (P, N) 1 = sample x
        b = 1 - a
        ka = a @ k
        n, m = a.sum(1), b.sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):  # a relabelling by galaxy may leave < 2 a side
            kxx = (ka * a).sum(1) / (n * (n - 1))
            kxy = (ka * b).sum(1) / (n * m)
            kyy = ((b @ k) * b).sum(1) / (m * (m - 1))
        return np.where((n >= 2) & (m >= 2), kxx + kyy - 2 * kxy, np.nan)

    lab = np.r_[np.ones(len(x)), np.zeros(len(y))]
    est = float(stat(lab)[0])
    out = {"mmd2": est}
    if config.n_perm > 0:
        null = stat(permuted_labels(gx, gy, len(x), len(y), config.n_perm, rng))
        out["mmd2_p"] = float((1 + np.sum(null >= est - 1e-15)) / (1 + config.n_perm))
        out["mmd2_null_q025"], out["mmd2_null_q975"] = _quantiles(null, config.level)
    else:
        out.update(mmd2_p=np.nan, mmd2_null_q025=np.nan, mmd2_null_q975=np.nan)
    return out


def latent_stats(x: np.ndarray, y: np.ndarray, groups_x: np.ndarray | None = None,
                 groups_y: np.ndarray | None = None, config: LatentConfig = LatentConfig(),
                 key: Sequence[str] = ()) -> dict[str, float]:
    """:func:`c2st` and (with ``config.mmd``) :func:`mmd`: every column of :data:`LATENT_COLUMNS`."""
    out = {c: np.nan for c in LATENT_COLUMNS}
    if len(x) == 0 or len(y) == 0:
        return out
    # small matrices: one BLAS thread is faster than several, and far faster on a busy shared machine
    with threadpool_limits(limits=1):
        out.update(c2st(x, y, groups_x, groups_y, config, key))
        if config.mmd:
            out.update(mmd(x, y, groups_x, groups_y, config, key))
    return out
