#!/usr/bin/env python
"""Measure statmorph's morphology parameters for every image of a folder.

Example::

    python morphology.py data/mocks/AGN --out output/morph_AGN.csv --workers 16

writes one row per image (``filename``: the folder as given joined with the
file's relative path, the form test.py writes, so the CSV joins with a score
CSV on ``filename``; ``name``: the relative path), statmorph's flags and parameters,
and an ``error`` column for images that could not be measured.  Needs the
optional packages statmorph and photutils.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lib.fileio import record_beside, write_run_record, write_table
from lib.rating import morphology as M
from options import one_line_warnings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="morphology.py", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="folder of images (PNG/JPEG colour cutouts or FITS), searched recursively")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all CPU cores)")
    p.add_argument("--channel", type=int, default=0,
                   help="colour channel of RGB images (default 0 = R, the i band of (i,r,g) cutouts)")
    p.add_argument("--gain", type=float, default=1.0, help="counts per pixel unit for statmorph's noise (default 1)")
    p.add_argument("--nsigma", type=float, default=2.0, help="detection threshold in sky sigmas (default 2)")
    p.add_argument("--npixels", type=int, default=5, help="minimum source area in pixels (default 5)")
    p.add_argument("--no-deblend", action="store_true",
                   help="do not split overlapping sources (a touching neighbour then joins the galaxy's segment)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, measure, write the CSV atomically; return the exit code."""
    try:
        opt = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        M.require_statmorph()
    except M.MorphologyUnavailable as exc:
        print(f"morphology.py: error: {exc}", file=sys.stderr)
        return 3
    folder = Path(opt.folder)
    if not folder.is_dir():
        print(f"morphology.py: error: no such folder {str(folder)!r}", file=sys.stderr)
        return 2
    if opt.workers is not None and opt.workers < 1:
        print("morphology.py: error: --workers must be >= 1", file=sys.stderr)
        return 2
    from lib.data import list_images
    n = len(list_images(str(folder), M.IMAGE_EXTENSIONS))
    if n == 0:
        print(f"morphology.py: error: no images in {str(folder)!r}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    table = M.measure_folder(folder, workers=opt.workers, channel=opt.channel, gain=opt.gain,
                             nsigma=opt.nsigma, npixels=opt.npixels, progress=not opt.no_progress,
                             deblend=not opt.no_deblend)
    dt = time.perf_counter() - t0
    out = Path(opt.out)
    write_table(out, table)
    failed = int((table["error"] != "").sum())
    flags = table["flag"].value_counts(dropna=True).sort_index()
    record = {"folder": str(folder), "n_images": len(table), "n_failed": failed,
              "flags": {str(int(k)): int(v) for k, v in flags.items()}, "seconds": round(dt, 2),
              "options": {k: v for k, v in vars(opt).items() if k not in ("folder", "out")}}
    write_run_record(record_beside(out), record, indent=1)  # <stem>_run.json, with the package versions
    print(f"measured {len(table)} images in {dt:.1f} s ({failed} failed); flags "
          + ", ".join(f"{k}: {v}" for k, v in record["flags"].items()) + f"; wrote {out}")
    return 0


if __name__ == "__main__":
    one_line_warnings()
    sys.exit(main())
