"""Split downloaded cutouts into a seeded GANomaly train/test set, with a manifest.

Reads ``--images`` (the download folder: <galcount>.jpg) and optionally
``--catalog`` (read_catalog.py's catalog.csv). Writes
``<dataroot>/<name>/{train,test}/0.normal/<galcount>.jpg`` as hard links
(copies where linking is impossible), ``<dataroot>/<name>/manifest.csv``
(galcount, filename, split, catalogue columns: logmstar, z, ra, dec, ...) and
``split.json`` (seed, fraction, counts, versions). Files that are not complete
JPEGs are reported and left out. Re-running with the same inputs is a no-op.

Expected for the paper's sample: 643,663 images -> 64,367 test, 579,296 train.

    python SDSS_cutouts/split_train_test.py --images cutouts --catalog SDSS_cutouts/catalog.csv \\
        --dataroot data --name SDSS --seed 0
"""
from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root, for lib/

from options import one_line_warnings  # noqa: E402
from lib.fileio import RUN_RECORDS, run_record, write_run_record, write_table  # noqa: E402
from lib.sdss import SplitError, build_manifest, link_split, plan_split, scan_jpegs  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", required=True, help="folder of downloaded cutouts (<galcount>.jpg)")
    p.add_argument("--catalog", default=None, help="catalog.csv from read_catalog.py: adds logmstar etc.")
    p.add_argument("--dataroot", default="data", help="datasets folder")
    p.add_argument("--name", default="SDSS", help="dataset name: <dataroot>/<name>/{train,test}/0.normal")
    p.add_argument("--test-frac", type=float, default=0.10, help="fraction of images in the test set (paper 0.10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutation")
    p.add_argument("--copy", action="store_true", help="copy instead of hard-linking")
    p.add_argument("--workers", type=int, default=2, help="threads checking the JPEGs")
    return p.parse_args(argv)


def _read_catalog(path: str) -> pd.DataFrame:
    try:
        cat = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise SplitError(f"cannot read catalogue {path}: {exc}") from None
    if "galcount" not in cat.columns:
        raise SplitError(f"catalogue {path} has no galcount column")
    if cat["galcount"].duplicated().any():
        raise SplitError(f"catalogue {path} has duplicate galcounts, e.g. "
                         f"{cat.loc[cat['galcount'].duplicated(), 'galcount'].head(3).tolist()}")
    return cat



def main(argv=None) -> int:
    opt = parse_args(argv)
    out_dir = os.path.join(opt.dataroot, opt.name)
    try:
        catalog = _read_catalog(opt.catalog) if opt.catalog else None
        good, rejected, ignored = scan_jpegs(opt.images, opt.workers)
        print(f"split: {len(good):,} JPEG cutouts in {opt.images}")
        for name, reason in rejected[:10]:
            print(f"split: skipped {name}: {reason}", file=sys.stderr)
        if rejected:
            print(f"split: skipped {len(rejected):,} file(s) that are not complete JPEGs", file=sys.stderr)
        if ignored:
            print(f"split: ignored {len(ignored):,} non-image file(s), e.g. {ignored[:3]}")
        if not good:
            raise SplitError(f"no usable JPEG in {opt.images}")
        assignment = plan_split(good, opt.test_frac, opt.seed)
        manifest = build_manifest(assignment, catalog)
        if catalog is not None:
            n_missing = int((~manifest["galcount"].isin(set(catalog["galcount"].tolist()))).sum())
            n_absent = len(set(catalog["galcount"].tolist()) - set(manifest["galcount"].dropna().tolist()))
            print(f"split: {n_absent:,} catalogue galaxies have no image; {n_missing:,} image(s) not in the catalogue")
        counts = link_split(opt.images, out_dir, assignment, copy=opt.copy)
        write_table(os.path.join(out_dir, "manifest.csv"), manifest)
        record = run_record(options=vars(opt), n_train=len(assignment["train"]), n_test=len(assignment["test"]),
                            rejected=rejected, linked=counts.linked, copied=counts.copied, present=counts.present)
        write_run_record(os.path.join(out_dir, RUN_RECORDS["split"]), record)
    except (SplitError, OSError) as exc:
        print(f"split_train_test: error: {exc}", file=sys.stderr)
        return 2
    print(f"split: seed {opt.seed}, test fraction {opt.test_frac:g}: {len(assignment['test']):,} test, "
          f"{len(assignment['train']):,} train ({counts.linked:,} linked, {counts.copied:,} copied, "
          f"{counts.present:,} already there) -> {out_dir}")
    return 0


if __name__ == "__main__":
    one_line_warnings()
    sys.exit(main())
