"""False-alarm benchmark of the rating's verdict: K simulations that do not differ from the reference.

    python benchmarks/rating_null.py                 # K = 40 null suites (about 2 min on 2 CPU cores)
    python benchmarks/rating_null.py --k 8 --shift 0.5

Each suite is the paper's design: ``--galaxies`` simulated galaxies x ``--views`` correlated views (the
views of one galaxy share a galaxy term, intra-galaxy correlation ``--rho``), against a reference of
``--n-ref`` single images; every image has an anomaly score A (log-normal), a latent vector (d = 16) and
a stellar mass (uniform over the paper's four bins).  Null suites are drawn from the reference's own
distribution, so every flag is a false alarm; shifted suites move the latents and log A by ``--shift``
standard deviations, so their flags are the power.  Every suite is rated exactly as ``rate.py`` does
(:func:`lib.rating.table.rate`, one table with all suites) and the fraction of suites flagged anywhere (the
rule's unit: Benjamini-Hochberg over each suite's tests) and the fraction of rows flagged, all masses and per
mass bin, are printed with their 95 % binomial intervals beside the rule's stated rate
(:data:`lib.rating.verdict.ALPHA`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lib.rating.inputs import PAPER_MASS_EDGES  # noqa: E402
from lib.rating.latent import LatentConfig  # noqa: E402
from lib.rating.table import rate  # noqa: E402
from lib.rating.verdict import ALPHA  # noqa: E402

D = 16  # latent dimension of the toy encoder


def draw_suite(rng: np.random.Generator, n_gal: int, n_views: int, rho: float, shift: float):
    """One suite: (table with ascore/logmstar/galaxy, latents (n_gal*n_views, D))."""
    n = n_gal * n_views
    gal = np.repeat(np.arange(n_gal), n_views)
    # each galaxy's own term (shared by its views) plus the view's term: variance 1 per coordinate
    lat = (np.sqrt(rho) * rng.normal(size=(n_gal, D)))[gal] + np.sqrt(1 - rho) * rng.normal(size=(n, D)) + shift
    log_a = (np.sqrt(rho) * rng.normal(size=n_gal))[gal] + np.sqrt(1 - rho) * rng.normal(size=n) + shift
    mass = rng.uniform(PAPER_MASS_EDGES[0], PAPER_MASS_EDGES[-1], n_gal)[gal]  # a galaxy's views share its mass
    table = pd.DataFrame({"ascore": 0.02 * np.exp(0.3 * log_a), "logmstar": mass,
                          "galaxy": [f"g{g}" for g in gal]})
    return table, lat


def draw_reference(rng: np.random.Generator, n: int):
    """Single images (one per galaxy), the null distribution."""
    table, lat = draw_suite(rng, n, 1, 0.0, 0.0)
    return table, lat


def flagged_fraction(table: pd.DataFrame, names: list[str]) -> dict[str, tuple[int, int]]:
    """(flagged rows, tested rows) per mass bin (and 'all') over the suites ``names``."""
    rows = table[table["suite"].isin(names)]
    tested = rows[~rows["verdict"].str.startswith("not tested")]
    flagged = ~tested["verdict"].str.endswith("no difference detected")  # also "too few images (n=..): no ..."
    return {str(b): (int(flagged[tested["mass_bin"] == b].sum()), int((tested["mass_bin"] == b).sum()))
            for b in tested["mass_bin"].unique()}


def flagged_suites(table: pd.DataFrame, names: list[str]) -> tuple[int, int]:
    """(suites with any flag, tested suites) among ``names``."""
    rows = table[table["suite"].isin(names) & ~table["verdict"].str.startswith("not tested")]
    flagged = ~rows["verdict"].str.endswith("no difference detected")
    per_suite = flagged.groupby(rows["suite"]).any()
    return int(per_suite.sum()), int(per_suite.size)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=40, help="null suites (default 40)")
    ap.add_argument("--k-shift", type=int, default=8, help="shifted suites for the power (default 8)")
    ap.add_argument("--shift", type=float, default=0.3, help="shift of the power suites, in sd (default 0.3)")
    ap.add_argument("--galaxies", type=int, default=20, help="galaxies per suite (default 20)")
    ap.add_argument("--views", type=int, default=20, help="views per galaxy (default 20)")
    ap.add_argument("--rho", type=float, default=0.5, help="intra-galaxy correlation of the views (default 0.5)")
    ap.add_argument("--n-ref", type=int, default=1000, help="reference images (default 1000)")
    ap.add_argument("--n-perm", type=int, default=500, help="permutations per test (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    opt = ap.parse_args(argv)
    rng = np.random.default_rng(opt.seed)
    t0 = time.perf_counter()
    ref, ref_lat = draw_reference(rng, opt.n_ref)
    suites, latents = {}, {"reference": ref_lat}
    for kind, k, shift in (("null", opt.k, 0.0), ("shift", opt.k_shift, opt.shift)):
        for i in range(k):
            suites[f"{kind}_{i}"], latents[f"{kind}_{i}"] = draw_suite(rng, opt.galaxies, opt.views, opt.rho, shift)
    cfg = LatentConfig(n_perm=opt.n_perm, n_boot=0, seed=opt.seed, mmd=True)
    table = rate(ref, suites, reference_name="reference", mass_col="logmstar", group_col="galaxy",
                 n_boot=0, seed=opt.seed, latents=latents, latent_config=cfg, include_null=False)
    dt = time.perf_counter() - t0
    print(f"rating_null: {opt.k} null and {opt.k_shift} shifted ({opt.shift} sd) suites of {opt.galaxies} galaxies x "
          f"{opt.views} views (rho {opt.rho}) against {opt.n_ref} single images; {opt.n_perm} permutations; "
          f"rated in {dt:.0f} s")
    print(f"stated rate (Benjamini-Hochberg over all KS, C2ST and MMD tests of a suite): at most {ALPHA:.0%} of "
          f"null suites flagged anywhere (so at most that of null rows)")
    for kind in ("null", "shift"):
        names = [n for n in suites if n.startswith(kind)]
        what = "false-alarm fraction" if kind == "null" else f"power at {opt.shift} sd"
        counts = {"any row": flagged_suites(table, names), **flagged_fraction(table, names)}
        for b, (f, n) in counts.items():
            lo, hi = stats.binomtest(f, n).proportion_ci(0.95) if n else (np.nan, np.nan)
            unit = "suites" if b == "any row" else "rows"
            print(f"{kind:5s} {b:>14s}: {what} {f}/{n} {unit} = {f / max(n, 1):.3f} [{lo:.3f}, {hi:.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
