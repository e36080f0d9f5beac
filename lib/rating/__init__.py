"""Rating simulations against observations: score tables (and latents) -> the rating (Jin et al. 2024, section 4).

Data flow::

    sources.py     score CSV + <stem>_latents.npz beside it + the images' metadata.csv (found via <stem>_run.json)
        |
    inputs.py      validated scores, log10 M*, mass bins, galaxy groups
        |
    stats.py       the paper's overlap, KS, Wasserstein, bootstrap intervals, label permutations (A statistics)
    latent.py      C2ST AUROC and MMD on the latent vectors, with intervals, p-values and null bands
        |
    table.py       one row per suite and mass bin, plus the observed half-vs-half null row (:func:`rate`)
    verdict.py     the one-line verdict per row and the summary table
        |
    report.py      rate.py's engine: read, rate, write rating.csv / summary.md / rating_run.json / figures
    plots.py       paper-style figures and the forest plot of both ratings (ranking.png)
    panels.py      small multiples: score ECDFs per suite and mass bin, the latent PCA per suite
    morphology.py  statmorph parameters of images and their correlation with A (morphology.py)

Other code imports from here (``from lib.rating import rate_suites, RatingError``) or takes a
module (``from lib.rating import plots``); the modules import each other directly.
"""
from lib.rating import morphology, panels, plots  # noqa: F401 - modules used as namespaces (notebooks)
from lib.rating.inputs import (PAPER_MASS_EDGES, RatingError, assign_mass_bins, bin_counts,  # noqa: F401
                               check_scores, extract_table, galaxy_and_orientation, group_stats,
                               mass_bin_labels, to_log_mass)
from lib.rating.latent import LATENT_COLUMNS, LatentConfig, c2st, latent_stats, mmd  # noqa: F401
from lib.rating.report import load_tables, run_rating, to_markdown  # noqa: F401
from lib.rating.sources import (attach_metadata, find_metadata, latents_path, parse_named,  # noqa: F401
                                read_latents, read_scores)
from lib.rating.stats import (FULL_OVERLAP_NBINS, PAPER_OVERLAP_BINS, bootstrap, frac_above,  # noqa: F401
                              full_bins, overlap, overlap_full, two_sample, weighted_median)
from lib.rating.table import (MIN_IMAGES, PAPER_BIN_COUNTS, PAPER_OVERLAPS, RATING_COLUMNS, rate,  # noqa: F401
                              rate_row, rate_suites)
from lib.rating.verdict import summary_markdown, summary_table, verdict  # noqa: F401
