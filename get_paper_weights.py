"""Download the paper's trained generator ``netG_43.pth`` (about 45.7 MB) and verify it.

    python get_paper_weights.py            # -> output/ganomaly/SDSS/train/weights/netG_43.pth

The file comes from the paper's GitHub repository (Jin et al. 2024); it is
accepted only if its git blob SHA-1 is the one recorded in that repository.
Interrupted downloads resume on the next run.
"""
from __future__ import annotations

import argparse
import sys

from lib.fetch import FetchError, fetch_verified

PAPER_URL = ("https://github.com/ZehaoJin/Rate-galaxy-simulation-with-Anomaly-Detection/raw/main/"
             "output/ganomaly/SDSS/train/weights/netG_43.pth")
PAPER_BLOB_SHA1 = "5823f39169a2ce95c0ea9cc6910179e28c7e52c8"
DEST = "output/ganomaly/SDSS/train/weights/netG_43.pth"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--url", default=PAPER_URL, help="where to download from")
    p.add_argument("--dest", default=DEST, help="where to put the file")
    p.add_argument("--sha1", default=PAPER_BLOB_SHA1, help="expected git blob SHA-1 of the file")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a retry")
    opt = p.parse_args(argv)
    try:
        path = fetch_verified(opt.url, opt.dest, opt.sha1, timeout=opt.timeout)
    except (FetchError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: verified (git blob {opt.sha1})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
