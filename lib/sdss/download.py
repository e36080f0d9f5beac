"""Concurrent, rate-limited, resumable download of SDSS ImgCutout JPEGs.

One request per galaxy to the SkyServer ``getjpeg`` service (sdss.md section 1):
``ra``, ``dec`` (deg), ``scale`` (arcsec/px, 0.396127 = native SDSS pixel),
``width``, ``height`` (px) always sent explicitly. Files are
``<outdir>/<galcount>.jpg``.

Guarantees
----------
- A response counts only if the status is 200, the content type is an image
  and the body is a complete JPEG (SOI..EOI markers, full Pillow decode) of the
  requested size. Everything else is retried with exponential backoff and
  jitter; ``Retry-After`` on 429/503 pauses all workers. 400 and 404 (outside
  the footprint) are permanent failures.
- Images are written to ``<outdir>/.partial/`` and renamed into place
  (``os.replace``), so ``<outdir>`` never holds a partial image.
- ``<outdir>/download_status.sqlite`` (WAL) records each galaxy's state. A
  re-run skips saved and permanently failed galaxies, retries the rest, and
  adopts a valid image found on disk without a record (the process was killed
  between the rename and the next commit) instead of downloading it again.
- Permanent failures are listed in ``<outdir>/failed.csv`` (galcount, reason);
  almost all-black images (no data) are kept and listed in ``flagged.csv``.

Modules
-------
This module reads the catalogue and runs the download: the status database,
the output folder and the thread pool.  What happens to one galaxy (request
settings, rate limit, retries, JPEG validation) is in ``http.py``.
"""
from __future__ import annotations

import csv
import os
import sqlite3
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import pandas as pd

from lib.fileio import atomic_write
from lib.sdss.catalog import valid_coordinates
from lib.sdss.http import Outcome, RateLimiter, Settings, Worker, check_jpeg

__all__ = ["DownloadError", "load_targets", "StatusDB", "download_all", "Summary"]

STATUS_DB = "download_status.sqlite"


class DownloadError(ValueError):
    """Bad input (catalogue, options, output folder): reported in one line, nothing written."""


def load_targets(path: str, limit: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the download list: columns ``galcount, ra, dec`` (deg); others ignored.

    ``limit`` keeps only the first rows (a trial run).

    Returns ``(good, bad)``: ``bad`` holds rows with non-numeric, non-finite or
    out-of-range coordinates. Raises DownloadError for a missing file or
    column, a non-integer galcount or duplicate galcounts.
    """
    try:
        df = pd.read_csv(path, usecols=lambda c: c.strip() in ("galcount", "ra", "dec"), dtype=str,
                         nrows=limit)
    except FileNotFoundError:
        raise DownloadError(f"catalogue not found: {path}") from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DownloadError(f"cannot read catalogue {path}: {exc}") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in ("galcount", "ra", "dec") if c not in df.columns]
    if missing:
        raise DownloadError(f"catalogue {path} lacks column(s) {missing} (needs galcount, ra, dec)")
    gal = pd.to_numeric(df["galcount"], errors="coerce")
    if gal.isna().any() or (gal != gal.round()).any():
        bad_rows = df.index[gal.isna() | (gal != gal.round())][:5].tolist()
        raise DownloadError(f"catalogue {path}: galcount must be an integer (data rows {bad_rows})")
    gal = gal.astype(np.int64)
    dup = gal[gal.duplicated()].unique()
    if dup.size:
        raise DownloadError(f"catalogue {path}: {dup.size} duplicate galcount(s), e.g. {dup[:5].tolist()}")
    out = pd.DataFrame({"galcount": gal, "ra": pd.to_numeric(df["ra"], errors="coerce"),
                        "dec": pd.to_numeric(df["dec"], errors="coerce")})
    ok = valid_coordinates(out["ra"], out["dec"])
    return out[ok].reset_index(drop=True), out[~ok].reset_index(drop=True)


class StatusDB:
    """SQLite record of every attempted galaxy, owned by the main thread."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA journal_mode=WAL")      # a crash loses at most the last uncommitted batch
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("CREATE TABLE IF NOT EXISTS status (galcount INTEGER PRIMARY KEY, state TEXT NOT NULL,"
                          " attempts INTEGER, http_status INTEGER, reason TEXT, nbytes INTEGER, blank INTEGER,"
                          " updated REAL)")
        self.conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.conn.commit()

    def check_identity(self, identity: dict) -> None:
        stored = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        current = {k: repr(v) for k, v in identity.items()}
        if stored and stored != current:
            diff = {k: (stored.get(k), v) for k, v in current.items() if stored.get(k) != v}
            raise DownloadError(f"this folder was filled with other settings {diff} (recorded, now); "
                                "use the same options or another --outdir")
        self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", current.items())
        self.conn.commit()

    def states(self) -> dict[int, str]:
        return dict(self.conn.execute("SELECT galcount, state FROM status").fetchall())

    def record(self, outcomes: list[Outcome]) -> None:
        now = time.time()
        self.conn.executemany(
            "INSERT INTO status VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(galcount) DO UPDATE SET "
            "state=excluded.state, attempts=status.attempts + excluded.attempts, http_status=excluded.http_status,"
            " reason=excluded.reason, nbytes=excluded.nbytes, blank=excluded.blank, updated=excluded.updated",
            [(o.galcount, o.state, o.attempts, o.http_status, o.reason, o.nbytes, int(o.blank), now)
             for o in outcomes])
        self.conn.commit()

    def rows(self, where: str) -> list[tuple]:
        return self.conn.execute(f"SELECT galcount, reason FROM status WHERE {where} ORDER BY galcount").fetchall()

    def close(self) -> None:
        self.conn.close()


def _save(outdir: str, galcount: int, body: bytes) -> None:
    """Write to .partial/ and rename: the image appears complete or not at all."""
    tmp = os.path.join(outdir, ".partial", f"{galcount}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())  # the rename must never publish data still only in the page cache
        os.replace(tmp, os.path.join(outdir, f"{galcount}.jpg"))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@dataclass
class Summary:
    rows: int = 0
    saved: int = 0
    saved_this_run: int = 0
    adopted: int = 0
    failed: int = 0
    to_retry: int = 0
    blank: int = 0
    seconds: float = 0.0
    stopped: str = ""

    def line(self) -> str:
        rate = self.saved_this_run / self.seconds if self.seconds > 0 else 0.0
        text = (f"download: {self.rows:,} rows: {self.saved:,} saved ({self.saved_this_run:,} this run, "
                f"{rate:.2f} img/s), {self.failed:,} failed permanently, {self.to_retry:,} left to retry, "
                f"{self.blank:,} blank flagged")
        return text + (f"; stopped: {self.stopped}" if self.stopped else "")

    def as_dict(self) -> dict:
        return asdict(self)


def _prepare_outdir(outdir: str) -> None:
    """Create the folder and its .partial/ area; clear temporary files a killed run left behind."""
    try:
        os.makedirs(os.path.join(outdir, ".partial"), exist_ok=True)
        for name in os.listdir(os.path.join(outdir, ".partial")):
            os.remove(os.path.join(outdir, ".partial", name))
        probe = os.path.join(outdir, ".partial", "write-test")
        with open(probe, "wb") as f:
            f.write(b"x")
        os.remove(probe)
    except OSError as exc:
        raise DownloadError(f"output folder {outdir} is not writable: {exc}") from None


def _existing_images(outdir: str) -> set[int]:
    return {int(e.name[:-4]) for e in os.scandir(outdir)
            if e.name.endswith(".jpg") and e.name[:-4].isdigit() and e.is_file()}


def _write_lists(db: StatusDB, outdir: str) -> None:
    for name, where in (("failed.csv", "state = 'failed'"), ("flagged.csv", "state = 'ok' AND blank = 1")):
        rows = db.rows(where)
        if name == "flagged.csv":
            rows = [(g, "almost all black (no data?)") for g, _ in rows]

        def write(tmp: str, rows=rows) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["galcount", "reason"])
                w.writerows(rows)
        atomic_write(os.path.join(outdir, name), write)


def download_all(targets: pd.DataFrame, bad: pd.DataFrame, outdir: str, settings: Settings, *,
                 retry_failed: bool = False, progress: bool = True,
                 log: Callable[[str], None] = print) -> Summary:
    """Download every target not yet saved; see the module docstring for the guarantees.

    Parameters
    ----------
    targets : pandas.DataFrame
        Columns galcount (int), ra, dec (deg, valid), from ``load_targets``.
    bad : pandas.DataFrame
        Rows with unusable coordinates: recorded as permanent failures, never requested.
    outdir : str
        Folder for ``<galcount>.jpg``, the status database and the failure lists.
    settings : Settings
        Request parameters, concurrency, rate, retries.
    retry_failed : bool
        Also retry galaxies recorded as permanent failures by an earlier run.

    Returns
    -------
    Summary
        Counts over all catalogue rows; ``to_retry > 0`` or ``stopped`` means a re-run is needed.
    """
    from tqdm import tqdm

    _prepare_outdir(outdir)
    db = StatusDB(os.path.join(outdir, STATUS_DB))
    t0 = time.monotonic()
    summary = Summary(rows=len(targets) + len(bad))
    try:
        db.check_identity(settings.identity())
        states = db.states()
        on_disk = _existing_images(outdir)
        new_bad = [Outcome(int(r.galcount), "failed", 0, None, f"invalid coordinates ra={r.ra} dec={r.dec}")
                   for r in bad.itertuples() if states.get(int(r.galcount)) != "failed"]
        if len(bad):
            log(f"download: {len(bad):,} row(s) with missing or out-of-range RA/Dec skipped "
                f"(e.g. galcount {bad['galcount'].head(5).tolist()}); listed in failed.csv")
        db.record(new_bad)
        todo, adopted, missing = [], [], 0
        for g, ra, dec in zip(targets["galcount"].tolist(), targets["ra"].tolist(), targets["dec"].tolist()):
            state = states.get(g)
            if state == "failed" and not retry_failed:
                continue
            if g in on_disk:
                if state == "ok":
                    continue
                # saved by a run killed before its next commit: keep it if it is a valid image
                path = os.path.join(outdir, f"{g}.jpg")
                with open(path, "rb") as f:
                    body = f.read()
                reason, blank = check_jpeg(body, "image/jpeg", settings.width, settings.height)
                if reason is None:
                    adopted.append(Outcome(g, "ok", 0, 200, "found on disk", len(body), blank))
                    continue
            elif state == "ok":
                missing += 1
            todo.append((g, ra, dec))
        db.record(adopted)
        summary.adopted = len(adopted)
        if missing:
            log(f"download: {missing:,} image(s) recorded as saved are missing from {outdir}; downloading again")
        if adopted:
            log(f"download: {len(adopted):,} image(s) on disk without a record (interrupted run) kept, not re-fetched")
        summary.stopped = _run_pool(todo, db, outdir, settings, summary, progress,
                                    initial=len(targets) - len(todo), total=len(targets), tqdm=tqdm, log=log)
        _write_lists(db, outdir)
        wanted = set(targets["galcount"].tolist()) | set(bad["galcount"].tolist())
        for g, state, blank in db.conn.execute("SELECT galcount, state, blank FROM status"):
            if g in wanted:
                summary.saved += state == "ok"
                summary.failed += state == "failed"
                summary.blank += state == "ok" and blank == 1
        summary.to_retry = summary.rows - summary.saved - summary.failed
    finally:
        db.close()
    summary.seconds = time.monotonic() - t0
    return summary


def _run_pool(todo, db, outdir, settings, summary, progress, *, initial, total, tqdm, log) -> str:
    """Feed the thread pool with at most 2 x workers galaxies in flight; record outcomes in batches."""
    stop = threading.Event()
    # _save is looked up here, at run time, so that tests can replace lib.sdss.download._save
    worker = Worker(settings, outdir, RateLimiter(settings.rate), stop, _save)
    bar = tqdm(total=total, initial=initial, unit="img", disable=not progress, dynamic_ncols=True,
               mininterval=0.5, smoothing=0.05, desc="cutouts")
    pending, stopped, failed_now = [], "", 0
    last_commit = time.monotonic()
    queue = iter(todo)
    inflight: set = set()
    with ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="cutout") as pool:
        try:
            while True:
                while not stop.is_set() and len(inflight) < 2 * settings.workers:
                    item = next(queue, None)
                    if item is None:
                        break
                    inflight.add(pool.submit(worker, *item))
                if not inflight:
                    break
                done, inflight = wait(inflight, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    out = fut.result()
                    if out.state == "stopped":
                        continue
                    if out.state == "fatal":  # disk full, permissions gone: stop, keep what is done
                        stopped = stopped or out.reason
                        stop.set()
                        continue
                    pending.append(out)
                    summary.saved_this_run += out.state == "ok"
                    failed_now += out.state == "failed"
                    bar.update(out.state in ("ok", "failed"))
                bar.set_postfix_str(f"saved {summary.saved_this_run + initial:,} failed {failed_now:,} "
                                    f"errors {worker.transient_errors:,}", refresh=False)
                if pending and (len(pending) >= 500 or time.monotonic() - last_commit > 1.0):
                    db.record(pending)
                    pending, last_commit = [], time.monotonic()
        except KeyboardInterrupt:
            stopped = "interrupted by the user"
            stop.set()
            log("download: interrupted; finishing the requests in flight (re-run to resume)")
            for fut in inflight:
                out = fut.result()
                if out.state not in ("stopped", "fatal"):
                    pending.append(out)
        finally:
            db.record(pending)
            bar.close()
    return stopped
