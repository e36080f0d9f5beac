"""Build the paper's SDSS sample from the Meert et al. UPenn PhotDec catalogue.

Reads ``UPenn_PhotDec_CAST.fits`` and ``UPenn_PhotDec_Mstar_mlMendel14.dat``,
joins them on galcount and keeps log M* >= 9. Writes into ``--out``:

- ``catalog.csv``: galcount, orig_index, objid, ra, dec (deg, float64), z,
  run, rerun, camCol, field, logmstar (log10 Msun), one row per galaxy;
- ``coord.npy``: (N, 2) float64 [ra, dec], the original's file, same order;
- ``catalog_counts.json``: the counts below, the options and package versions;
- ``bad_coordinates.csv`` only if some rows had non-finite/out-of-range RA/Dec.

Expected counts for the real files: 670,722 rows -> 643,663 with log M* >= 9.

    python SDSS_cutouts/read_catalog.py --cast UPenn_PhotDec_CAST.fits \\
        --mstar UPenn_PhotDec_Mstar_mlMendel14.dat --out SDSS_cutouts
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root, for lib/

from options import one_line_warnings  # noqa: E402
from lib.fileio import RUN_RECORDS, atomic_write, run_record, write_run_record, write_table  # noqa: E402
from lib.sdss import CatalogError, build_sample, read_cast, read_mstar  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cast", required=True, help="UPenn_PhotDec_CAST.fits (galcount, ra, dec, z, ...)")
    p.add_argument("--mstar", required=True, help="UPenn_PhotDec_Mstar_mlMendel14.dat (no header, 10 columns)")
    p.add_argument("--out", "--outdir", dest="outdir", default="SDSS_cutouts",
                   help="where catalog.csv, coord.npy and the counts go (--outdir: old spelling)")
    p.add_argument("--min-logmstar", type=float, default=9.0,
                   help="keep galaxies with log10(M*/Msun) >= this (paper: 9)")
    p.add_argument("--mass-col", "--mass-column", dest="mass_column", type=int, default=4,
                   help="1-based column of the .dat file holding log M* (4 = Mstar_Tab5_Truncated, as the paper; "
                   "rate.py's --mass-col names a column too; --mass-column: old spelling)")
    return p.parse_args(argv)


def _save_npy(path: str, arr: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to the temporary name
        np.save(f, arr)



def main(argv=None) -> int:
    opt = parse_args(argv)
    try:
        if opt.mass_column < 2:
            raise CatalogError(f"--mass-col must be >= 2 (column 1 is galcount), got {opt.mass_column}")
        cast = read_cast(opt.cast)
        mstar = read_mstar(opt.mstar, opt.mass_column)
        sample, counts, bad = build_sample(cast, mstar, opt.min_logmstar)
        os.makedirs(opt.outdir, exist_ok=True)
        out_csv = os.path.join(opt.outdir, "catalog.csv")
        write_table(out_csv, sample)
        coord = np.stack([sample["ra"].to_numpy(np.float64), sample["dec"].to_numpy(np.float64)], axis=1)  # (N, 2) deg
        atomic_write(os.path.join(opt.outdir, "coord.npy"), lambda t: _save_npy(t, coord))
        if len(bad):
            write_table(os.path.join(opt.outdir, "bad_coordinates.csv"), bad)
        record = run_record(options=vars(opt), counts=counts, outputs=[out_csv])
        write_run_record(os.path.join(opt.outdir, RUN_RECORDS["catalog"]), record)
    except (CatalogError, OSError) as exc:
        print(f"read_catalog: error: {exc}", file=sys.stderr)
        return 2
    print(f"read_catalog: CAST {counts['rows_cast']:,} rows, mass file {counts['rows_mstar']:,} rows, "
          f"joined {counts['rows_joined']:,}")
    if counts["rows_bad_coordinates"]:
        print(f"read_catalog: skipped {counts['rows_bad_coordinates']:,} row(s) with non-finite or out-of-range "
              f"RA/Dec, e.g. galcount {bad['galcount'].head(5).tolist()} (see bad_coordinates.csv)")
    print(f"read_catalog: {counts['rows_missing_mass']:,} row(s) without a mass; "
          f"log M* >= {opt.min_logmstar:g}: {counts['rows_joined']:,} -> {counts['rows_after_cut']:,} rows")
    print(f"read_catalog: wrote {out_csv}, coord.npy and catalog_counts.json in {opt.outdir}")
    return 0


if __name__ == "__main__":
    one_line_warnings()
    sys.exit(main())
