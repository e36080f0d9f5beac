"""Download one SDSS colour JPEG cutout per catalogue galaxy, concurrently, politely, resumably.

Reads ``--catalog`` (CSV with galcount, ra, dec in degrees; other columns
ignored, e.g. read_catalog.py's catalog.csv). Writes ``<outdir>/<galcount>.jpg``
(64x64 px at 0.396127 arcsec/px by default), ``download_status.sqlite``
(resume record), ``failed.csv`` (permanent failures: galcount, reason),
``flagged.csv`` (all-black images) and ``download_run.json`` (options, counts,
versions). Kill it at any time and run the same command again to resume.

Exit status: 0 when every row is saved or permanently failed; 1 when some
rows are left to retry (server trouble) or the run was stopped (re-run);
2 for bad input.

    python SDSS_cutouts/download_cutouts.py --catalog SDSS_cutouts/catalog.csv --out cutouts
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root, for lib/

from options import one_line_warnings  # noqa: E402
from lib.fileio import RUN_RECORDS, run_record, write_run_record  # noqa: E402
from lib.sdss import DEFAULT_BASE_URL, DownloadError, Settings, download_all, load_targets  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--catalog", required=True, help="CSV with columns galcount, ra, dec (deg)")
    p.add_argument("--out", "--outdir", dest="outdir", required=True,
                   help="folder for <galcount>.jpg and the status files (--outdir: old spelling)")
    p.add_argument("--base-url", default=DEFAULT_BASE_URL, help="ImgCutout getjpeg endpoint (default: DR17)")
    p.add_argument("--scale", type=float, default=0.396127, help="arcsec per pixel (0.396127 = native SDSS)")
    p.add_argument("--width", type=int, default=64, help="pixels, 64..2048 (the service clamps other values)")
    p.add_argument("--height", type=int, default=64, help="pixels, 64..2048")
    p.add_argument("--opt", default="", help="SkyServer drawing flags; empty = clean image, no overlays")
    p.add_argument("--workers", type=int, default=4, help="concurrent connections")
    p.add_argument("--rate", type=float, default=4.0, help="maximum requests per second, all workers together")
    p.add_argument("--retries", type=int, default=5, help="retries per galaxy after the first try")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds allowed for one whole response")
    p.add_argument("--backoff", type=float, default=1.0,
                   help="first retry delay in seconds; doubles each retry (jittered, capped at 600 s)")
    p.add_argument("--limit", type=int, default=None, help="only the first N catalogue rows (a trial run)")
    p.add_argument("--retry-failed", action="store_true", help="also retry earlier permanent failures")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p.parse_args(argv)


def check_options(opt: argparse.Namespace) -> None:
    if not (64 <= opt.width <= 2048 and 64 <= opt.height <= 2048):
        raise DownloadError(f"--width/--height must be 64..2048 (got {opt.width}x{opt.height}): "
                            "the service silently clamps other sizes")
    for name in ("workers", "rate", "timeout", "scale"):
        if not getattr(opt, name) > 0:
            raise DownloadError(f"--{name} must be positive, got {getattr(opt, name)}")
    if opt.retries < 0 or opt.backoff < 0 or (opt.limit is not None and opt.limit < 1):
        raise DownloadError("--retries and --backoff must be >= 0 and --limit >= 1")



def main(argv=None) -> int:
    opt = parse_args(argv)
    settings = Settings(base_url=opt.base_url, scale=opt.scale, width=opt.width, height=opt.height, opt=opt.opt,
                        workers=opt.workers, rate=opt.rate, retries=opt.retries, timeout=opt.timeout,
                        backoff=opt.backoff)
    try:
        check_options(opt)
        targets, bad = load_targets(opt.catalog, limit=opt.limit)
        if len(targets) + len(bad) == 0:
            raise DownloadError(f"catalogue {opt.catalog} has no rows")
        print(f"download: {len(targets) + len(bad):,} catalogue rows -> {opt.outdir} "
              f"({opt.workers} workers, <= {opt.rate:g} requests/s)", flush=True)
        summary = download_all(targets, bad, opt.outdir, settings, retry_failed=opt.retry_failed,
                               progress=opt.progress)
    except DownloadError as exc:
        print(f"download_cutouts: error: {exc}", file=sys.stderr)
        return 2
    record = run_record(options=vars(opt), settings=settings.identity(), summary=summary.as_dict())
    try:
        write_run_record(os.path.join(opt.outdir, RUN_RECORDS["download"]), record)
    except OSError as exc:
        print(f"download_cutouts: warning: cannot write download_run.json: {exc}", file=sys.stderr)
    print(summary.line(), flush=True)
    if summary.stopped:
        print("download_cutouts: stopped early; run the same command again to resume", file=sys.stderr)
        return 130 if "interrupted" in summary.stopped else 1
    if summary.to_retry:
        print(f"download_cutouts: {summary.to_retry:,} row(s) still failing with temporary errors; "
              "run the same command again later", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    one_line_warnings()
    sys.exit(main())
