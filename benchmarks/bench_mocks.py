"""Mock-observation speed: star particles/s and images/s for 1e5 and 1e6 star particles.

    python benchmarks/bench_mocks.py [--sizes 1e5 1e6] [--views 20] [--dust]

Each case runs one galaxy (the embedded example's Milky-Way-like disc + bulge, gas 25%
of the star particle number) through ``lib.mocks.render_galaxy`` exactly as
``mock_observation.py`` does: read the NPZ, find the frame, smoothing lengths once, SSP
light, then ``--views`` random orientations rendered and written (JPEG / PNG).  Reports
the wall time per galaxy and per image (and the CPU time, which the load of other jobs on a
shared machine changes much less), and compares the paper recipe with the paper's
engine as measured on this machine (original_mock_engine.md section 8; not re-run here):
13.5 s per 500x500 image for 1e5 star particles and 23.5 s for 1e6 (a per-pixel Python
dust loop), 0.8 s for 1e5 without it.  Goals (issue 16): sdss recipe, 1e6 x 20 views in
under 60 s; paper recipe >= 10x the engine as it ran and >= 2x its dust-free core.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from lib import mocks  # noqa: E402

ENGINE_S_PER_IMAGE = {100_000: 13.5, 1_000_000: 23.5}
"""The paper's engine as it ran (with its inert dust loop), seconds per 500x500 image."""
ENGINE_CORE_S_PER_IMAGE = {100_000: 0.8}
"""The engine without the dust loop (gas-free galaxy), seconds per image."""


def make_particles(folder: str, n_star: int, seed: int = 0) -> str:
    arrays = mocks.make_galaxy(10.6, 0.2, 3.0, 0.12, n_star=n_star, rng=np.random.default_rng(seed),
                               n_gas=n_star // 4)
    path = os.path.join(folder, f"bench{n_star}.npz")
    mocks.write_npz(path, arrays)
    return path


def time_case(path: str, out: str, recipe: str, views: int, dust: str) -> tuple[float, float, float]:
    """(wall seconds for the whole galaxy, wall seconds of the per-galaxy preparation, CPU seconds of the galaxy).

    CPU seconds (all threads of this process) hardly change with the load of other jobs on a
    shared machine; wall seconds do.
    """
    opts = mocks.Options(out=out, run="bench", recipe=recipe, orientations=f"random:{views}", dust=dust,
                         redshift="0.1" if recipe == "sdss" else "sample")
    p = mocks.read_npz(path)
    t = time.perf_counter()
    mocks.prepare(p, mocks.load_ssp(), with_dust=dust == "paper")
    t_prep = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    res = mocks.render_galaxy(mocks.Source("npz", path), opts)
    if res.error:
        raise RuntimeError(res.error)
    return time.perf_counter() - t, t_prep, time.process_time() - c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e5, 1e6], help="star particles per galaxy")
    ap.add_argument("--views", type=int, default=20, help="orientations per galaxy (the paper: 20)")
    ap.add_argument("--dust", action="store_true", help="also time --dust paper")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPU cores, load average {load:.2f} at start; {args.views} views per galaxy")
    header = (f"{'recipe':6} {'dust':5} {'n_star':>9} {'prep s':>7} {'galaxy s':>9} {'CPU s':>7} {'s/image':>8} "
              f"{'images/s':>9} {'star-particles/s':>17}  vs the paper's engine (wall time)")
    print(header)
    cases = [("sdss", "none"), ("paper", "none")] + ([("sdss", "paper"), ("paper", "paper")] if args.dust else [])
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes):
            path = make_particles(tmp, n)
            for recipe, dust in cases:
                total, prep, cpu = time_case(path, os.path.join(tmp, f"out-{recipe}-{dust}-{n}"), recipe, args.views,
                                             dust)
                per = total / args.views
                note = ""
                if recipe == "paper" and n in ENGINE_S_PER_IMAGE:
                    note = f"{ENGINE_S_PER_IMAGE[n] / per:5.1f}x faster than as it ran ({ENGINE_S_PER_IMAGE[n]} s)"
                    if n in ENGINE_CORE_S_PER_IMAGE:
                        note += f", {ENGINE_CORE_S_PER_IMAGE[n] / per:.1f}x its dust-free core ({ENGINE_CORE_S_PER_IMAGE[n]} s)"
                if recipe == "sdss" and dust == "none" and n == 1_000_000:
                    note = f"goal: 1e6 x 20 views < 60 s -> {'met' if total < 60 and args.views >= 20 else 'NOT met'}"
                print(f"{recipe:6} {dust:5} {n:9d} {prep:7.2f} {total:9.2f} {cpu:7.2f} {per:8.3f} {args.views / total:9.2f} "
                      f"{n * args.views / total:17.3g}  {note}")
    print(f"load average at the end: {os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan'):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
