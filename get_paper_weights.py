"""Download the paper's trained generator ``netG_43.pth`` (about 45.7 MB) and verify it.

    python get_paper_weights.py            # -> output/ganomaly/SDSS/train/weights/netG_43.pth

The file comes from the paper's GitHub repository (Jin et al. 2024); it is
accepted only if its git blob SHA-1 is the one recorded in that repository.
Interrupted downloads resume on the next run: the file is fetched to ``<dest>.part`` with
HTTP Range requests, checked against its git blob SHA-1 (``sha1(b"blob <size>\\0" +
content)``, what ``git hash-object`` prints), and only then renamed to ``dest``.  A file that
fails the check is deleted, never installed.
"""
from __future__ import annotations

import argparse
import os
import sys

import requests

from lib.checkpoint import PAPER_NETG_BLOB_SHA1 as PAPER_BLOB_SHA1, git_blob_sha1

PAPER_URL = ("https://github.com/ZehaoJin/Rate-galaxy-simulation-with-Anomaly-Detection/raw/main/"
             "output/ganomaly/SDSS/train/weights/netG_43.pth")
DEST = "output/ganomaly/SDSS/train/weights/netG_43.pth"


class FetchError(RuntimeError):
    """Download failed or gave the wrong content (one-line message)."""


def fetch_verified(url: str, dest: str, blob_sha1: str, *, timeout: float = 60.0, retries: int = 5,
                   progress: bool = True) -> str:
    """Download ``url`` to ``dest`` (resuming ``dest.part``) and accept it only if its git blob SHA-1 matches."""
    from tqdm import tqdm

    if os.path.isfile(dest) and git_blob_sha1(dest) == blob_sha1:
        return dest
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = dest + ".part"
    last_error = ""
    for _ in range(retries):
        have = os.path.getsize(part) if os.path.exists(part) else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=timeout) as r:
                if r.status_code == 416:  # nothing left to fetch: check what we have
                    break
                if r.status_code not in (200, 206):
                    raise FetchError(f"{url}: HTTP {r.status_code}")
                mode = "ab" if r.status_code == 206 else "wb"  # a server ignoring Range restarts from 0
                total = int(r.headers.get("Content-Length", 0)) + (have if mode == "ab" else 0)
                with open(part, mode) as fh, tqdm(total=total or None, initial=have if mode == "ab" else 0,
                                                  unit="B", unit_scale=True, disable=not progress) as bar:
                    for chunk in r.iter_content(1 << 13):
                        fh.write(chunk)
                        bar.update(len(chunk))
            break
        except FetchError:
            raise
        except requests.RequestException as exc:  # connection dropped: resume from what we have
            last_error = f"{type(exc).__name__}: {exc}"
    else:
        raise FetchError(f"download of {url} failed after {retries} tries ({last_error}); run again to resume")
    got = git_blob_sha1(part)
    if got != blob_sha1:
        os.unlink(part)
        raise FetchError(f"{url}: content has git blob SHA-1 {got}, expected {blob_sha1}; deleted, not installed")
    os.replace(part, dest)
    return dest


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
