"""Writing a synthetic population (population.py) to disk as an ImageFolder set.

:func:`generate` renders ``n`` cutouts (optionally in worker processes) into
``out/<class_dir>/<name>_<index:06d>.jpg`` with ``metadata.csv`` (one row per image) and
``generation.json`` (config, seed, package versions).  Files are written atomically, an
interrupted run is completed by running it again (valid images are kept, since image
``index`` is the same on every run), and per-image failures go to ``failures.csv``.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

import numpy as np

from lib.fileio import RUN_RECORDS, JpegError, read_jpeg, write_run_record, write_table
from lib.galaxies import imaging, population
from lib.galaxies.config import ConfigError, resolve

METADATA = "metadata.csv"
RUN_INFO = RUN_RECORDS["generate"]  # generation.json


def default_class_dir(name: str) -> str:
    """ImageFolder class folder: ``0.normal`` for observed, ``1.abnormal`` for the rest."""
    return "0.normal" if name == "observed" else "1.abnormal"


def _valid_jpeg(path: str) -> bool:
    try:  # the project's one JPEG rule (lib/fileio.py); an invalid file is simply redone
        read_jpeg(path, (imaging.CUTOUT_SIZE, imaging.CUTOUT_SIZE))
    except (JpegError, OSError):
        return False
    return True


def _work(args: tuple) -> tuple[list[dict], list[dict], int]:
    """Render (or, for existing valid files, only describe) a chunk of indices."""
    params, seed, indices, out_dir, rel_fmt = args
    rows, failures, made = [], [], 0
    for idx in indices:
        rel = rel_fmt.format(idx)
        path = os.path.join(out_dir, rel)
        try:
            done = _valid_jpeg(path)
            rgb, row = population.make_image(params, seed, idx, render=not done)
            if not done:
                imaging.save_jpeg(rgb, path)
                made += 1
            rows.append({"file": rel, "index": idx, **row})
        except Exception as exc:  # noqa: BLE001 - record and go on with the next image
            failures.append({"index": idx, "file": rel, "error": f"{type(exc).__name__}: {exc}"})
    return rows, failures, made


def generate(spec: str | Mapping | None, n: int, seed: int, out_dir: str | os.PathLike,
             workers: int = 1, class_dir: str | None = None, config_path: str | os.PathLike | None = None,
             verbose: bool = True):
    """Generate ``n`` cutouts of a population into ``out_dir`` (ImageFolder layout).

    Writes ``out_dir/<class_dir>/<name>_<index:06d>.jpg`` (class_dir defaults to
    ``0.normal`` for ``observed`` and ``1.abnormal`` otherwise), ``out_dir/metadata.csv``
    (one row per image: file, index, every drawn parameter incl. logmstar, z, seeing) and
    ``out_dir/generation.json`` (config, seed, package versions).  Re-running after an
    interruption keeps the valid images already written (images are written atomically
    and are identical on re-render) and completes the set; a different config or seed in
    the same folder is refused.  Per-image failures are recorded in ``failures.csv``.

    Returns
    -------
    pandas.DataFrame
        The metadata rows, sorted by index (also in ``metadata.csv``).
    """
    import pandas as pd

    cfg, params = resolve(spec, config_path)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n: must be a positive integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed: must be a non-negative integer, got {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ConfigError(f"workers: must be a positive integer, got {workers!r}")
    out_dir = os.fspath(out_dir)
    class_dir = class_dir or default_class_dir(cfg["name"])
    if os.path.isfile(out_dir):
        raise ConfigError(f"out: {out_dir} is a file, not a folder")
    info_path = os.path.join(out_dir, RUN_INFO)
    record = {"config": cfg, "seed": int(seed), "class_dir": class_dir}
    if os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as fh:
            old = json.load(fh)
        differs = [k for k, v in json.loads(json.dumps(record)).items() if old.get(k) != v]
        if differs:
            raise ConfigError(f"out: {out_dir} already holds population {old.get('config', {}).get('name')!r} "
                              f"seed {old.get('seed')} class_dir {old.get('class_dir')!r} (differs in "
                              f"{', '.join(differs)}); use another folder")
    target = os.path.join(out_dir, class_dir)
    os.makedirs(target, exist_ok=True)
    for leftover in os.listdir(target):  # temporary files of an interrupted run
        if leftover.startswith(".") and leftover.endswith(".part"):
            os.unlink(os.path.join(target, leftover))
    write_run_record(info_path, {**record, "n": int(n), "params": params.__dict__}, indent=1, end="")
    prefix = f"{cfg['name']}_"
    existing = {int(f[len(prefix):-4]) for f in os.listdir(target)
                if f.startswith(prefix) and f.endswith(".jpg") and f[len(prefix):-4].isdigit()}
    indices = sorted(set(range(n)) | existing)  # describe earlier, larger runs too
    rel_fmt = os.path.join(class_dir, prefix + "{:06d}.jpg").replace(os.sep, "/")
    chunks = [indices[k::max(1, workers * 4)] for k in range(max(1, workers * 4))] if workers > 1 else [indices]
    jobs = [(params, int(seed), c, out_dir, rel_fmt) for c in chunks if c]
    rows, failures, made = [], [], 0
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_work, jobs))
    else:
        results = [_work(j) for j in jobs]
    for r, f, m in results:
        rows += r
        failures += f
        made += m
    knobs = ";".join(f"{k}={v}" for k, v in cfg["knobs"].items() if v)
    df = pd.DataFrame(rows).sort_values("index").reset_index(drop=True)
    df.insert(1, "population", cfg["name"])
    df.insert(2, "knobs", knobs)
    df.insert(3, "seed", int(seed))
    write_table(os.path.join(out_dir, METADATA), df)
    fail_path = os.path.join(out_dir, "failures.csv")
    if failures:
        write_table(fail_path, pd.DataFrame(failures))
    elif os.path.exists(fail_path):
        os.unlink(fail_path)
    if verbose:
        print(f"{cfg['name']}: {len(df)} images in {target} ({made} generated, {len(df) - made} already there, "
              f"{len(failures)} failed); metadata: {os.path.join(out_dir, METADATA)}")
    df.attrs["failures"] = failures
    return df
