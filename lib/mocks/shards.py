"""A whole box in N processes: which galaxies shard I of N renders, and the merge of the shards' files.

``mock_observation.py --shard I/N`` renders galaxies I, I+N, I+2N, ... of the inputs sorted by name, writes
its images as one process would (every random stream is keyed by (seed, galaxy name), so an image does not
depend on which process drew it) and its table and run record under shard names
(``metadata.shard-I-of-N.csv``, ``mock_observation_run.shard-I-of-N.json``). ``--merge_shards OUT`` then
writes ``metadata.csv`` and ``mock_observation_run.json`` of one process: the same rows, sorted by file,
and the summed counts. A job array (``I = $SLURM_ARRAY_TASK_ID``) or torchrun ranks both fit.
"""
from __future__ import annotations

import csv
import glob
import json
import os
import re
from collections.abc import Sequence

from lib.fileio import package_versions, write_csv, write_json
from lib.mocks.pipeline import METADATA_COLUMNS, METADATA_CSV, RUN_JSON, merge_metadata, shard_file
from lib.mocks.readers import MockInputError
from lib.mocks.sources import Source

__all__ = ["select_shard", "merge_shards"]

COUNTS = ("n_galaxies", "n_done", "n_images", "n_z_floor", "n_z_ceiling", "n_wind")


def select_shard(sources: Sequence[Source], index: int, count: int) -> list[Source]:
    """Galaxies ``index``, ``index + count``, ... of ``sources`` sorted by name (balanced: sizes differ by <= 1)."""
    return sorted(sources, key=lambda s: s.name)[index::count]


def _found(out: str) -> dict[int, int]:
    """{shard index: shard count} of the shard tables in ``out``."""
    found = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(out), shard_file(METADATA_CSV, ("*", "*"))))):
        name = os.path.basename(path)
        nums = re.findall(r"\d+", name)
        if len(nums) == 2 and name == shard_file(METADATA_CSV, (int(nums[0]), int(nums[1]))):
            found[int(nums[0])] = int(nums[1])
    return found


def merge_shards(out: str) -> dict:
    """Join the N shard tables and run records of ``out`` into ``metadata.csv`` and the run JSON; return the record.

    Raises :class:`MockInputError` (one line) when no shard is there, the shards disagree on N, or one is missing.
    """
    found = _found(out)
    if not found:
        raise MockInputError(f"{out}: no {shard_file(METADATA_CSV, ('I', 'N'))} to merge (run --shard I/N first)")
    counts = set(found.values())
    if len(counts) > 1:
        raise MockInputError(f"{out}: shard tables of different N ({sorted(counts)}): remove the stale ones")
    n = counts.pop()
    missing = sorted(set(range(n)) - set(found))
    if missing:
        raise MockInputError(f"{out}: shards {missing} of {n} missing: run them before merging")
    rows, records = [], []
    for i in range(n):
        with open(os.path.join(out, shard_file(METADATA_CSV, (i, n))), newline="") as fh:
            rows += [[r.get(c, "") for c in METADATA_COLUMNS] for r in csv.DictReader(fh)]
        run_json = os.path.join(out, shard_file(RUN_JSON, (i, n)))
        if not os.path.isfile(run_json):
            raise MockInputError(f"{run_json}: missing (shard {i} of {n} did not finish)")
        with open(run_json) as fh:
            records.append(json.load(fh))
    meta_path = os.path.join(out, METADATA_CSV)
    write_csv(meta_path, METADATA_COLUMNS, merge_metadata(meta_path, rows, out))
    record = {"options": records[0].get("options"), "merged_shards": n,
              **{k: sum(int(r.get(k, 0)) for r in records) for k in COUNTS},
              "seconds": round(sum(float(r.get("seconds", 0)) for r in records), 2),
              "cosmology": records[0].get("cosmology"),
              "errors": sorted(e for r in records for e in r.get("errors", [])),
              "warnings": sorted(w for r in records for w in r.get("warnings", [])),
              "versions": package_versions("h5py", "pynbody")}
    write_json(os.path.join(out, RUN_JSON), record)
    return record
