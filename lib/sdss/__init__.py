"""The SDSS pipeline: catalogue -> cutouts -> train/test split -> packed arrays (the ``SDSS_cutouts/`` scripts).

Data flow::

    catalog.py   Meert et al. 2015 CAST + Mendel et al. 2014 masses -> the paper's sample (log M* >= 9)
        |
    http.py      one galaxy's SkyServer ``getjpeg`` request: settings, shared rate limit, retries, JPEG checks
    download.py  the resumable, concurrent download run (status database, thread pool) -> <galcount>.jpg
        |
    split.py     a seeded 90/10 train/test split into <out>/{train,test}/0.normal/ (links or copies)
        |
    pack.py      an image folder -> one memory-mappable uint8 array (read by lib.data.PackedImages)

Other packages import from here (``from lib.sdss import download_all``); the modules
import each other directly.
"""
from lib.sdss.catalog import CAST_COLUMNS, CatalogError, build_sample, read_cast, read_mstar  # noqa: F401
from lib.sdss.download import DownloadError, StatusDB, Summary, download_all, load_targets  # noqa: F401
from lib.sdss.http import DEFAULT_BASE_URL, RateLimiter, Settings, check_jpeg  # noqa: F401
from lib.sdss.pack import PackError, pack_folder  # noqa: F401
from lib.sdss.split import SplitError, build_manifest, link_split, plan_split, scan_jpegs  # noqa: F401
