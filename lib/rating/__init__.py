"""Rating simulations against observations: anomaly-score tables -> the rating (Jin et al. 2024, section 4).

Data flow::

    inputs.py      score tables (CSV) -> validated scores, log10 M*, mass bins, galaxy groups
        |
    stats.py       overlap of score histograms (the paper's number), KS, Wasserstein, bootstrap intervals
        |
    table.py       one row per suite and mass bin (:func:`rate`), the paper's published numbers
        |
    report.py      rate.py's engine: read CSVs, rate, write rating.csv / rating.md / rating_run.json
    plots.py       the figures (histograms per mass bin, score vs mass, ranking)
    morphology.py  statmorph parameters of images and their correlation with A (morphology.py)

Other code imports from here (``from lib.rating import rate_suites, RatingError``) or takes a
module (``from lib.rating import plots``); the modules import each other directly.
"""
from lib.rating import morphology, plots  # noqa: F401 - modules used as namespaces (notebooks)
from lib.rating.inputs import (PAPER_MASS_EDGES, RatingError, assign_mass_bins, bin_counts,  # noqa: F401
                               check_scores, extract_table, galaxy_and_orientation, group_stats,
                               mass_bin_labels, to_log_mass)
from lib.rating.report import parse_named, read_scores, run_rating, to_markdown  # noqa: F401
from lib.rating.stats import (FULL_OVERLAP_NBINS, PAPER_OVERLAP_BINS, bootstrap, frac_above,  # noqa: F401
                              full_bins, overlap, overlap_full, two_sample, weighted_median)
from lib.rating.table import PAPER_BIN_COUNTS, PAPER_OVERLAPS, RATING_COLUMNS, rate, rate_row, rate_suites  # noqa: F401
