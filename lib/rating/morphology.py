"""Non-parametric morphology (statmorph) of galaxy images, and how it relates to the score A.

Measuring: :func:`measure_folder` runs statmorph (Rodriguez-Gomez et al. 2019)
on every image of a folder, one band per image (the R channel of an (i, r, g)
colour cutout stands for the i band; FITS images are used as they are), in
parallel over CPU cores.  statmorph and photutils are optional dependencies,
imported only when measuring.

Analysis (the paper's section on image-based parameters): the quality cuts,
the correlation of A with the nine parameters, and the binned trends with
stellar mass.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

#: The nine parameters of the paper's correlation table and Fig. (imagebasedA).
STATMORPH_PARAMS = ["gini", "m20", "gini_m20_bulge", "concentration", "asymmetry", "smoothness",
                    "multimode", "intensity", "deviation"]
#: Pearson correlation of A with each parameter printed by the original
#: ``statmorph_1102.ipynb`` for the NIHAO-AGN mocks after the cuts of :func:`quality_cuts`.
PAPER_PEARSON = {"gini": -0.48, "m20": 0.47, "gini_m20_bulge": -0.59, "concentration": -0.56, "asymmetry": 0.24,
                 "smoothness": 0.02, "multimode": 0.50, "intensity": 0.44, "deviation": 0.53}
#: Columns written per image, in the order of the paper's statmorph tables.
MEASURED_COLUMNS = [
    "flag", "flag_sersic", "xc_centroid", "yc_centroid", "ellipticity_centroid", "elongation_centroid",
    "orientation_centroid", "xc_asymmetry", "yc_asymmetry", "ellipticity_asymmetry", "elongation_asymmetry",
    "orientation_asymmetry", "flux_circ", "flux_ellip", "rpetro_circ", "rpetro_ellip", "rmax_circ", "rmax_ellip",
    "rhalf_circ", "rhalf_ellip", "r20", "r50", "r80", "gini", "m20", "gini_m20_bulge", "gini_m20_merger",
    "sn_per_pixel", "concentration", "asymmetry", "smoothness", "multimode", "intensity", "deviation",
    "outer_asymmetry", "shape_asymmetry", "sersic_amplitude", "sersic_rhalf", "sersic_n", "sersic_xc", "sersic_yc",
    "sersic_ellip", "sersic_theta", "sersic_chi2_dof", "sky_mean", "sky_median", "sky_sigma",
]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".fits", ".fit", ".fits.gz", ".fit.gz")
INSTALL_HINT = "statmorph and photutils are needed for morphology: pip install statmorph photutils"


class MorphologyUnavailable(ImportError):
    """statmorph or photutils is not installed."""


def require_statmorph() -> None:
    """Raise :class:`MorphologyUnavailable` with the install hint if statmorph/photutils are missing."""
    try:
        import photutils  # noqa: F401
        import statmorph  # noqa: F401
    except ImportError:
        raise MorphologyUnavailable(INSTALL_HINT) from None


# --------------------------------------------------------------------------- measuring
def load_band(path: str | os.PathLike, channel: int = 0) -> np.ndarray:
    """One band of an image as a float array.

    Parameters
    ----------
    path : path-like
        FITS (the first HDU with 2-D data) or an image PIL reads.
    channel : int
        Colour channel of an RGB image; 0 (R) is the i band of the SDSS
        (i, r, g) composites and of the NIHAO mocks.

    Returns
    -------
    numpy.ndarray, shape (H, W), float64
        Pixel values as stored (0-255 for 8-bit images).
    """
    name = str(path).lower()
    if name.endswith((".fits", ".fit", ".fits.gz", ".fit.gz")):
        from astropy.io import fits
        with fits.open(path) as hdul:
            for hdu in hdul:
                if hdu.data is not None and hdu.data.ndim == 2:
                    return np.asarray(hdu.data, dtype=np.float64)
        raise ValueError("no 2-D image in the FITS file")
    from PIL import Image
    with Image.open(path) as im:
        arr = np.asarray(im)
    if arr.ndim == 3:
        arr = arr[..., channel]
    return arr.astype(np.float64)


def segment(image: np.ndarray, nsigma: float = 2.0, npixels: int = 5,
            deblend: bool = True) -> tuple[np.ndarray, np.ndarray, int]:
    """Background-subtract and segment an image; pick the source at the centre.

    With ``deblend`` (default), overlapping sources are split (photutils ``deblend_sources``, its
    SExtractor-like defaults: 32 levels, contrast 0.001), so that a neighbour touching the galaxy
    gets its own label, which statmorph then masks, instead of joining the galaxy's segment and
    inflating its Gini and asymmetry (measured on the bundled SDSS tiles: median G 0.448 -> 0.442,
    A 0.084 -> 0.056; docs/synthetic_galaxies.md).

    Returns
    -------
    data : numpy.ndarray, shape (H, W)
        ``image`` minus its sigma-clipped median.
    segmap : numpy.ndarray, shape (H, W), int
        photutils segmentation (0 = background).
    label : int
        Segment at the central pixel, else the brightest one.

    Raises
    ------
    ValueError
        Nothing detected.
    """
    from astropy.stats import sigma_clipped_stats
    from photutils.segmentation import deblend_sources, detect_sources

    _, median, sigma = sigma_clipped_stats(image, sigma=3.0)
    # noise-free mocks have a flat sky (sigma 0): fall back to a tiny fraction of the peak
    sigma = max(float(sigma), 1e-3 * float(np.max(image) - median), 1e-12)
    data = image - median
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'no sources' is reported through the ValueError below
        segm = detect_sources(data, nsigma * sigma, npixels)  # positional: photutils 3 renamed it n_pixels
        if segm is not None and deblend:
            segm = deblend_sources(data, segm, npixels, nlevels=32, contrast=0.001, progress_bar=False)
    if segm is None:
        raise ValueError("no source detected")
    segmap = np.asarray(segm.data)
    cy, cx = (s // 2 for s in segmap.shape)
    label = int(segmap[cy, cx])
    if label == 0:  # nothing at the centre: take the brightest segment
        sums = np.bincount(segmap.ravel(), weights=np.clip(data, 0, None).ravel())
        sums[0] = -1
        label = int(np.argmax(sums))
    return data, segmap, label


def measure_image(image: np.ndarray, gain: float = 1.0, nsigma: float = 2.0, npixels: int = 5,
                  deblend: bool = True) -> dict:
    """statmorph parameters of the central source of one band.

    Parameters
    ----------
    image : numpy.ndarray, shape (H, W)
        Not background-subtracted (done here with sigma-clipped statistics).
    gain : float
        Counts per pixel unit, used by statmorph for the noise (Poisson term).
    nsigma, npixels : float, int
        Detection threshold above the background and minimum source area.
    deblend : bool
        Split overlapping sources before picking the central one (:func:`segment`).

    Returns
    -------
    dict
        :data:`MEASURED_COLUMNS`; statmorph's -99 for failed quantities and
        flag 4 for a catastrophic failure are kept as they are (the paper's
        cuts rely on them).
    """
    import statmorph

    data, segmap, label = segment(image, nsigma, npixels, deblend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statmorph warns per image; the flags carry the verdict
        morph = statmorph.SourceMorphology(data, segmap, label, gain=gain)
    return {c: float(getattr(morph, c, np.nan)) for c in MEASURED_COLUMNS}


def _measure_one(args: tuple) -> dict:
    """Worker: measure one file, never raise (failures go to the ``error`` column)."""
    path, rel, channel, gain, nsigma, npixels, deblend = args
    row = {"filename": path, "name": rel}
    try:
        row.update(measure_image(load_band(path, channel), gain=gain, nsigma=nsigma, npixels=npixels,
                                 deblend=deblend))
        row["error"] = ""
    except Exception as exc:  # one bad image must not stop 64k others
        row.update({c: np.nan for c in MEASURED_COLUMNS})
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return row


def measure_folder(folder: str | os.PathLike, workers: int | None = None, channel: int = 0, gain: float = 1.0,
                   nsigma: float = 2.0, npixels: int = 5, progress: bool = True,
                   deblend: bool = True) -> pd.DataFrame:
    """Measure every image of ``folder`` in parallel.

    Parameters
    ----------
    folder : path-like
    workers : int, optional
        Processes (default: all CPU cores); 1 runs in this process.
    channel, gain, nsigma, npixels, deblend
        See :func:`load_band` and :func:`measure_image`.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    pandas.DataFrame
        One row per file, sorted by relative path; columns ``filename`` (the
        folder as given joined with the relative path, the form test.py writes,
        to join with score CSVs), ``name`` (path relative to ``folder``, the
        paper tables' key), :data:`MEASURED_COLUMNS`, ``error`` (empty when measured).
    """
    from tqdm import tqdm

    require_statmorph()
    folder = Path(folder)
    from lib.data import list_images  # the one listing rule; imported here, so torch loads only to measure

    files = [Path(p) for p, _ in list_images(str(folder), IMAGE_EXTENSIONS)]
    # filename joins the folder as given with the relative path, as test.py writes its paths
    jobs = [(os.path.join(str(folder), *p.relative_to(folder).parts), p.relative_to(folder).as_posix(), channel,
             gain, nsigma, npixels, deblend) for p in files]
    workers = workers or os.cpu_count() or 1
    bar = dict(total=len(jobs), disable=not progress, unit="img", desc="statmorph")
    if workers == 1 or len(jobs) <= 1:
        rows = [_measure_one(j) for j in tqdm(jobs, **bar)]
    else:
        # chunks amortise the inter-process traffic; map keeps the input order
        chunk = max(1, min(64, len(jobs) // (4 * workers)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            rows = list(tqdm(pool.map(_measure_one, jobs, chunksize=chunk), **bar))
    return pd.DataFrame(rows, columns=["filename", "name", *MEASURED_COLUMNS, "error"])


# --------------------------------------------------------------------------- analysis
def quality_cuts(df: pd.DataFrame) -> pd.DataFrame:
    """The paper's cuts for the NIHAO mocks: ``flag != 4`` (not catastrophic) and ``gini >= 0`` (not -99)."""
    return df[(df["flag"] != 4) & (df["gini"] >= 0)]


def correlate_with_score(df: pd.DataFrame, score_col: str = "score", params: Sequence[str] = STATMORPH_PARAMS,
                         method: str = "pearson") -> pd.Series:
    """Correlation coefficient of the score with each parameter (rows with NaN dropped pairwise)."""
    return pd.Series({p: df[score_col].corr(df[p], method=method) for p in params}, name=f"{method} r with A")


def compare_with_paper(computed: pd.Series, published: Mapping[str, float] = PAPER_PEARSON) -> pd.DataFrame:
    """Computed and published correlations side by side, with their rounded agreement."""
    out = pd.DataFrame({"computed": computed, "published": pd.Series(published)})
    out["agrees_to_2_decimals"] = np.round(out["computed"], 2) == np.round(out["published"], 2)
    return out


def binned_trends(df: pd.DataFrame, mass_col: str, score_col: str = "score",
                  params: Sequence[str] = STATMORPH_PARAMS, n_bins: int = 10) -> pd.DataFrame:
    """Median and 16-84 percentiles of each parameter in equal-width bins of log mass.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per image.
    mass_col : str
        log10(M*/Msun).
    n_bins : int
        Bins between the minimum and maximum mass.  Unlike the original
        notebook (right-open bins that drop the most massive point) the last
        bin is closed.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``mass`` (centre), ``n``, ``mean_score``, and
        ``<p>_median``, ``<p>_q16``, ``<p>_q84`` per parameter (NaN for empty bins).
    """
    m = df[mass_col].to_numpy(dtype=float)
    edges = np.linspace(np.nanmin(m), np.nanmax(m), n_bins + 1)
    idx = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = df[idx == b]
        row = {"mass": 0.5 * (edges[b] + edges[b + 1]), "n": len(sel),
               "mean_score": sel[score_col].mean() if len(sel) else np.nan}
        for p in params:
            v = sel[p].dropna().to_numpy(dtype=float)
            q16, med, q84 = np.percentile(v, [16, 50, 84]) if v.size else (np.nan,) * 3
            row.update({f"{p}_median": med, f"{p}_q16": q16, f"{p}_q84": q84})
        rows.append(row)
    return pd.DataFrame(rows)
