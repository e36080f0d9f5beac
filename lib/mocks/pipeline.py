"""Running a set of galaxies: images, maps, ``metadata.csv`` and the run JSON.

Each galaxy is one task (in parallel with ``workers`` > 1): read, :func:`recipes.prepare`,
render every view *in memory*, and only then write its files, each atomically; if any
write fails, the files already written for that galaxy are removed.  A bad galaxy gives
one line naming its file and the problem and is left out; the others are still done.

Random streams are keyed by (seed, galaxy name): orientations, redshift and the SDSS
observing conditions of a galaxy do not depend on the other galaxies or on ``workers``.
"""
from __future__ import annotations

import csv
import io
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field

import numpy as np

from lib.fileio import atomic_write, atomic_write_bytes, write_csv, write_json
from lib.mocks import recipes
from lib.evaluate import shard_path
from lib.fileio import package_versions
from lib.mocks.kcorrection import DEFAULT_KCORR, KCorrector, load_kcorr
from lib.mocks.light import DEFAULT_SSP, SSPError, load_ssp
from lib.mocks.orientation import OrientationError, directions
from lib.mocks.plausibility import check_field, check_particles
from lib.mocks.readers import MockInputError
from lib.mocks.sources import Source, read_source
from lib.mocks.redshift import COSMOLOGY_NAME, Z_MAX, Z_MIN, redshift_window, sample_redshift

METADATA_COLUMNS = ("file", "galaxy", "orientation", "theta_deg", "phi_deg", "pa_deg", "redshift", "z_flag", "k_r",
                    "logmstar", "logmstar_field", "n_star", "n_gas", "n_wind", "n_clipped_age", "n_clipped_metals")
RUN_JSON = "mock_observation_run.json"
METADATA_CSV = "metadata.csv"
SPIN_DEFAULT = {"sdss": "stars", "paper": "gas"}
"""``spin='auto'``: the inner stars for the sdss recipe; the gas for the paper recipe, as the paper's engine."""


@dataclass(frozen=True)
class Options:
    """What a run does (the command-line options, validated by mock_observation.py)."""

    out: str
    run: str
    recipe: str = "sdss"
    orientations: str = "random:20"
    dust: str = "none"
    redshift: str = "sample"  # 'sample' or a number (sdss recipe)
    seed: int = 0
    save_maps: bool = False
    workers: int = 1
    ssp: str = DEFAULT_SSP
    kcorr: str = DEFAULT_KCORR  # 'none': rest-frame magnitudes as observed (the behaviour before K-corrections)
    spin: str = "auto"  # 'auto', 'stars' or 'gas': where the face-on axis comes from
    force: bool = False  # implausible units and blank cutouts: warn and go on instead of stopping
    field_sources: bool = False  # sdss recipe: add neighbours and foreground stars as the observed population's
    galactic_extinction: bool = False  # sdss recipe: dim by a Milky Way E(B-V) drawn as over the SDSS footprint

    @property
    def spin_from(self) -> str:
        return SPIN_DEFAULT[self.recipe] if self.spin == "auto" else self.spin


@dataclass
class GalaxyResult:
    """Outcome of one galaxy: metadata rows, a log line and warnings, or one error line."""

    label: str
    rows: list
    log: str = ""
    error: str = ""
    unexpected: bool = False
    warnings: list = field(default_factory=list)
    z_flag: str = ""
    n_wind: int = 0


def _png_bytes(rgba: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    # compress_level 1: ~3x faster than the default 6, files ~1.4x larger, pixels identical
    Image.fromarray(rgba, "RGBA" if rgba.shape[2] == 4 else "RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _fits_writer(view: recipes.View, opts: Options, name: str):
    """A writer ``f(tmp_path)`` of the view's FITS file: empty primary HDU, then G, R, I."""
    from astropy.io import fits

    def write(tmp: str) -> None:
        primary = fits.PrimaryHDU()
        hdr = primary.header
        hdr["RUN"], hdr["GALAXY"], hdr["RECIPE"] = opts.run, name, opts.recipe
        hdr["ORIENT"], hdr["DUST"], hdr["SEED"] = opts.orientations, opts.dust, opts.seed
        hdr["SPIN"] = (opts.spin_from, "face-on axis from the inner stars or gas")
        hdr["KCORR"] = (os.path.basename(opts.kcorr) if opts.recipe == "sdss" else "none", "K-correction table")
        hdr["ZOPT"], hdr["SSP"] = str(opts.redshift), os.path.basename(opts.ssp)
        hdr["COSMO"] = (COSMOLOGY_NAME if opts.recipe == "sdss" else "none", "cosmology of the sdss recipe")
        hdus = [primary]
        for band in ("g", "r", "i"):
            ext = fits.ImageHDU(np.asarray(view.maps[band], dtype=np.float64), name=band.upper())
            h = ext.header
            h["BAND"], h["BUNIT"] = (f"SDSS {band}", "SSP band"), view.bunit
            h["PIXSCALE"], h["PIXUNIT"] = view.pixscale, view.pixunit
            h["THETA"], h["PHI"] = (view.theta, "deg, inclination from face-on"), (view.phi, "deg, azimuth")
            h["PA"] = (view.pa, "deg, line of nodes ccw from image +x")
            h["RECIPE"] = opts.recipe
            h["REDSHIFT"] = (view.redshift if view.redshift is not None else 0.0,
                             "0: not placed at a redshift (paper recipe)")
            hdus.append(ext)
        with open(tmp, "wb") as fh:
            fits.HDUList(hdus).writeto(fh)
    return write


def _redshift(prep: recipes.Prepared, kc: KCorrector | None, opts: Options, rng: np.random.Generator,
              label: str) -> tuple[float, str, list[str]]:
    """The galaxy's z, its flag ('' | 'floor' | 'ceiling') and warnings, from its observed-frame r magnitude."""
    if opts.redshift != "sample":
        return float(opts.redshift), "", []
    lum_r = prep.light.lum["r"]
    k_r = (lambda z: kc.total_k(lum_r, "r", z)) if kc is not None else None
    m_r = prep.light.abs_mag("r")
    window = redshift_window(m_r, k_r)
    z = sample_redshift(m_r, rng, k_r)
    if window == "ok":
        return z, "", []
    flag, where, limit = (("floor", Z_MIN, "fainter than r = 17.77") if window == "too faint"
                          else ("ceiling", Z_MAX, "brighter than r = 14.5"))
    return z, flag, [f"{label}: M_r = {m_r:.2f} is {limit} at every z of the SDSS main sample "
                     f"({Z_MIN}-{Z_MAX}): placed at z = {where}"]


def render_galaxy(src: Source, opts: Options, kd_workers: int = -1) -> GalaxyResult:
    """Read, render and write one galaxy; never raises for bad input (see :class:`GalaxyResult`)."""
    t0 = time.time()
    written: list[str] = []
    try:
        p = read_source(src)
        warnings = list(p.notes) + check_particles(p, force=opts.force)
        ssp = load_ssp(opts.ssp)
        prep = recipes.prepare(p, ssp, with_dust=opts.dust == "paper", workers=kd_workers, spin=opts.spin_from)
        key = p.seed_key()
        views_dirs = directions(opts.orientations, np.random.default_rng([opts.seed, key, 0]))
        z, z_flag, k_r = None, "", ""
        if opts.recipe == "sdss":
            kc = KCorrector(load_kcorr(opts.kcorr), p["age"], p["metals"]) if opts.kcorr != "none" else None
            z, z_flag, w = _redshift(prep, kc, opts, np.random.default_rng([opts.seed, key, 1]), src.label)
            warnings += w
            if kc is not None:
                k_r = round(float(kc.total_k(prep.light.lum["r"], "r", [z])[0]), 4)
                prep = recipes.observed_frame(prep, kc, z)
        views = []
        for nn, (theta, phi, pa) in enumerate(views_dirs):
            if opts.recipe == "paper":
                v = recipes.paper_view(prep, theta, phi, pa)
                what = f"{recipes.PAPER_WIDTH_KPC:g} kpc"
            else:
                v = recipes.sdss_view(prep, theta, phi, z, np.random.default_rng([opts.seed, key, 2, nn]), pa,
                                     field_sources=opts.field_sources,
                                     galactic_extinction=opts.galactic_extinction)
                what = f"64-pixel SDSS (z = {z:.3f})"
            warnings += check_field(f"{src.label} view {nn:02d}", v.mass_field, float(p["mass"].sum()), what,
                                    force=opts.force)
            views.append(v)
        ext = "png" if opts.recipe == "paper" else "jpg"
        rows = []
        for nn, v in enumerate(views):
            stem = f"{opts.run}_{p.name}_{nn:02d}"
            path = os.path.join(opts.out, f"{stem}.{ext}")
            if opts.recipe == "paper":
                atomic_write_bytes(path, _png_bytes(v.image))
            else:
                from lib.galaxies import imaging
                imaging.save_jpeg(v.image, path)
            written.append(path)
            if opts.save_maps:
                fpath = os.path.join(opts.out, "maps", f"{stem}.fits")
                atomic_write(fpath, _fits_writer(v, opts, p.name))
                written.append(fpath)
            rows.append([os.path.basename(path), p.name, nn, round(v.theta, 4), round(v.phi, 4), round(v.pa, 4),
                         "" if z is None else round(z, 5), z_flag, k_r, round(prep.logmstar, 4),
                         round(float(np.log10(v.mass_field)), 4), p.n_star, p.n_gas, p.n_wind,
                         prep.light.n_clipped_age, prep.light.n_clipped_metals])
        zs = "" if z is None else f", z = {z:.3f}" + (f" ({z_flag})" if z_flag else "")
        wind = f" ({p.n_wind} wind particles left out)" if p.n_wind else ""
        log = (f"{p.name}: {len(views)} images, {p.n_star} stars{wind}, {p.n_gas} gas, log M* = {prep.logmstar:.2f}{zs}, "
               f"clipped age/Z {prep.light.n_clipped_age}/{prep.light.n_clipped_metals}, {time.time() - t0:.1f} s")
        return GalaxyResult(src.label, rows, log=log, warnings=warnings, z_flag=z_flag, n_wind=p.n_wind)
    except (MockInputError, OrientationError, SSPError) as exc:
        error, unexpected = str(exc), False
    except OSError as exc:
        error, unexpected = f"cannot write the outputs ({exc})", False
    except Exception as exc:  # a bug, not bad input: still one line, and the other galaxies go on
        error, unexpected = f"unexpected {type(exc).__name__}: {exc}", True
    for path in written:  # no partial output for a failed galaxy
        if os.path.exists(path):
            os.unlink(path)
    if not error.startswith(src.label):  # every error line names its galaxy's file
        error = f"{src.label}: {error}"
    return GalaxyResult(src.label, [], error=error, unexpected=unexpected)


def merge_metadata(path: str, rows: list, out: str) -> list:
    """This run's rows plus earlier rows of the same folder whose images still exist and were not redone."""
    new_files = {r[0] for r in rows}
    old = []
    if os.path.isfile(path):
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                f = r.get("file", "")
                if f and f not in new_files and os.path.exists(os.path.join(out, f)):
                    old.append([r.get(c, "") for c in METADATA_COLUMNS])
    return sorted(old + rows, key=lambda r: r[0])


def shard_file(name: str, shard: tuple[int, int] | None) -> str:
    """``metadata.csv`` -> ``metadata.shard-I-of-N.csv`` for shard (I, N); the name itself without a shard."""
    return name if shard is None else shard_path(name, *shard)  # test.py's shard naming, one rule


def run(sources: list[Source], opts: Options, log=print, progress: bool = True,
        shard: tuple[int, int] | None = None) -> list[GalaxyResult]:
    """Render every galaxy of ``sources``; write ``metadata.csv`` and the run JSON; return the results.

    With ``shard = (I, N)`` the two files take the shard's names (:func:`shard_file`), so that N processes
    writing into one folder never share a file; :func:`lib.mocks.shards.merge_shards` joins them.
    """
    os.makedirs(opts.out, exist_ok=True)
    n_workers = max(1, min(opts.workers, len(sources) or 1))
    kd_workers = max(1, (os.cpu_count() or 1) // n_workers)
    results: list[GalaxyResult] = []
    bar = None
    if progress and len(sources) > 1:
        from tqdm import tqdm
        bar = tqdm(total=len(sources), unit="galaxy", desc="mock_observation", disable=None)  # off unless a terminal
        log = bar.write
    t0 = time.time()
    if n_workers == 1:
        for src in sources:
            results.append(render_galaxy(src, opts, kd_workers))
            if results[-1].log:
                log(results[-1].log)
            if bar:
                bar.update()
    else:
        with ProcessPoolExecutor(n_workers) as pool:
            futures = [pool.submit(render_galaxy, s, opts, kd_workers) for s in sources]
            for fut in as_completed(futures):
                results.append(fut.result())
                if results[-1].log:
                    log(results[-1].log)
                if bar:
                    bar.update()
    if bar:
        bar.close()
    rows = [r for res in results for r in res.rows]
    meta_path = os.path.join(opts.out, shard_file(METADATA_CSV, shard))
    write_csv(meta_path, METADATA_COLUMNS, merge_metadata(meta_path, rows, opts.out))
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "options": asdict(opts),
              "n_galaxies": len(sources), "n_done": sum(1 for r in results if not r.error),
              "n_images": len(rows), "seconds": round(time.time() - t0, 2),
              "cosmology": COSMOLOGY_NAME if opts.recipe == "sdss" else None,
              "n_z_floor": sum(1 for r in results if r.z_flag == "floor"),
              "n_z_ceiling": sum(1 for r in results if r.z_flag == "ceiling"),
              "n_wind": sum(r.n_wind for r in results),
              "errors": sorted(r.error for r in results if r.error),
              "warnings": sorted(w for r in results for w in r.warnings),
              "versions": package_versions("h5py", "pynbody")}
    if shard is not None:
        record["shard"] = list(shard)
    write_json(os.path.join(opts.out, shard_file(RUN_JSON, shard)), record)
    return results
