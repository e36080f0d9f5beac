"""Closure test: a simulation that *is* the synthetic SDSS population, observed by mock_observation.py, rated as SDSS?

    python benchmarks/closure.py                    # 400 mock galaxies, 400 reference images, three cameras
    python benchmarks/closure.py --quick            # plumbing check (60 + 60, the field camera only, ~2 min)
    python benchmarks/closure.py --weights output/demo/model/train/weights/netG_7.pth

1. Draws ``--n`` galaxies of the ``observed`` population (lib/galaxies ``draw_galaxy``: galaxy k of seed S is
   galaxy k of ``make_galaxies.py --seed S``) and realises each as star particles (lib/mocks/synthetic.py:
   deprojected Sersic bulge, thick Sersic disc, ages and metallicities whose observed-frame g-r at the drawn z is
   the drawn one, r-i as close as the SSPs allow, current mass = the drawn catalogue mass, M/L giving the drawn r
   magnitude), written as particle NPZ files.
2. Observes each with ``mock_observation.py --recipe sdss --redshift z --orientations THETA,PHI,PA`` (its
   ``main()``): the inclination that gives the drawn axis ratio, a random azimuth and the drawn (uniform)
   position angle, once with the sky's other sources and Galactic extinction (``--field-sources
   --galactic-extinction``, camera ``sky``) and once with the particles alone (``now``).  ``--legacy`` also observes them as the camera did before issue 21's items 1-2: no
   K-correction (``--kcorr none``) and PA = 0 (every line of nodes along the image x axis).
3. Reference: ``make_galaxies``' ``observed`` images of ``--n-ref`` independent draws (seed + 2000); as a
   diagnostic also the same draws without neighbours and foreground stars, which the ``now`` camera does not add.
4. Scores every folder with ``test.py --save_latents`` (the demo's newest netG when there is one, else a small
   model trained here on an ``observed`` set as benchmarks/ladder.py does) and rates the mocks against the
   reference as ``rate.py`` does.  Prints C2ST AUROC and the KS test of A for all masses and per paper mass bin
   beside their permutation null bands and the reference's own half-vs-half row; then statmorph G, M20, C, A
   medians per bin (benchmarks/realism_morphology.py's measurement) of mocks and reference, against a third of
   the paper's 16-84 % half-width (data/anchors/imagebasedA_sdss.csv).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import mock_observation  # noqa: E402
import rate  # noqa: E402
from benchmarks.ladder import newest_netg  # noqa: E402
from benchmarks.realism_morphology import GOAL_PARAMS, LABELS, load_anchors, measure_rgb  # noqa: E402
from lib import galaxies, mocks  # noqa: E402
from lib.galaxies.relations import BULGE_N, DISC_N, MASS_BINS  # noqa: E402
from lib.mocks import synthetic  # noqa: E402
from lib.mocks.readers import write_npz  # noqa: E402
from lib.mocks.redshift import kpc_per_arcsec  # noqa: E402

DEMO_WEIGHTS = os.path.join(ROOT, "output", "demo", "model", "train", "weights")
REF_SEED_OFFSET = 2000
ISOLATED = {"name": "isolated", "description": "observed without neighbours and foreground stars",
            "knobs": {}, "params": {"neighbour_rate": 0.0, "star_rate": 0.0}}
"""Diagnostic reference: the same galaxies as the reference without the sky's other sources, which
mock_observation.py does not draw (it observes the particles it is given, nothing else)."""


def galaxy_rng(seed: int, index: int) -> np.random.Generator:
    """The stream make_image draws galaxy ``index`` of ``seed`` from (population.py: the first of six)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]).spawn(6)[0])


def realise_all(n: int, seed: int, n_star: int, folder: str) -> pd.DataFrame:
    """Draw and realise ``n`` galaxies into ``folder``/g<k>.npz; one row per galaxy (what was drawn and chosen)."""
    os.makedirs(folder, exist_ok=True)
    ssp, ktab = mocks.load_ssp(), mocks.load_kcorr()
    rows = []
    for k in range(n):
        gal = galaxies.draw_galaxy(galaxy_rng(seed, k))
        model = synthetic.ColourModel(ssp, ktab, gal["z"])
        rng = np.random.default_rng([seed, k, 7])
        fields, info = synthetic.realise(gal, model, n_star, rng, kpc_per_arcsec(gal["z"]), BULGE_N[gal["early"]],
                                         DISC_N[gal["early"]])
        name = f"g{k:05d}"
        write_npz(os.path.join(folder, f"{name}.npz"), fields)
        rows.append({"galaxy": name, "z": gal["z"], "early": gal["early"], "logmstar": gal["logmstar"], "bt": gal["bt"],
                     "q": gal["q"], "pa_deg": gal["pa_deg"], "phi_deg": float(rng.uniform(0, 360)),
                     "gr_bulge_drawn": gal["gr_bulge"], "gr_disc_drawn": gal["gr_disc"],
                     "ri_bulge_drawn": gal["ri_bulge"], "ri_disc_drawn": gal["ri_disc"], "r_mag": gal["r_mag"], **info})
    return pd.DataFrame(rows)


def observe_all(table: pd.DataFrame, particles: str, out: str, seed: int, legacy: bool,
                sky: bool = False) -> int:
    """mock_observation.py on every galaxy at its z and view; returns the number of failed galaxies."""
    os.makedirs(out, exist_ok=True)
    failed = 0
    with open(os.path.join(out, "closure_mock_log.txt"), "w") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        for r in table.itertuples():
            view = f"{r.incl_deg:.4f},{r.phi_deg:.4f},{0.0 if legacy else r.pa_deg:.4f}"
            argv = ["--particles", os.path.join(particles, f"{r.galaxy}.npz"), "--out", out,
                    "--run", "legacy" if legacy else "closure", "--redshift", f"{r.z:.6f}", "--orientations", view,
                    "--seed", str(seed)] + (["--kcorr", "none"] if legacy else []) \
                + (["--field-sources", "--galactic-extinction"] if sky else [])
            failed += mock_observation.main(argv) != 0
    return failed


def run(cmd: list[str], log: str) -> None:
    """A script as its own process (as benchmarks/ladder.py), output to ``log``."""
    with open(log, "a") as fh:
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=fh, stderr=subprocess.STDOUT)


def score(weights: str, folder: str, csv: str, device: str, log: str) -> None:
    os.makedirs(os.path.dirname(csv), exist_ok=True)
    run([sys.executable, "test.py", "--weights", weights, "--images", folder, "--out_csv", csv, "--device", device,
         "--save_latents", "--workers", "1"], log)


def morphology(folder: str) -> pd.DataFrame:
    """statmorph (R channel = i band, as the paper) of every image listed in ``folder``/metadata.csv."""
    from PIL import Image
    meta = pd.read_csv(os.path.join(folder, "metadata.csv"))
    rows = []
    for r in meta.itertuples():
        rgb = np.asarray(Image.open(os.path.join(folder, r.file)).convert("RGB"))
        rows.append({"logmstar": r.logmstar, **measure_rgb(rgb)})
    df = pd.DataFrame(rows)
    df["mass_bin"] = "out"
    for b, (lo, hi) in MASS_BINS.items():
        df.loc[(df["logmstar"] >= lo) & (df["logmstar"] < hi), "mass_bin"] = b
    return df


def rating_lines(table: pd.DataFrame, suites: list[str]) -> list[str]:
    """C2ST AUROC and KS of A per suite and mass bin, with their null bands and the half-vs-half row."""
    head = (f"{'camera':<8}{'mass bin':<14}{'n':>5}  {'C2ST AUROC [null 95%]':<24}{'in':>4}  "
            f"{'KS D [null 95%]':<22}{'in':>4}{'KS p':>8}  {'half-vs-half AUROC, KS p':<25}verdict")
    lines = [head]
    for b in table["mass_bin"].drop_duplicates():
        null = table[(table["mass_bin"] == b) & (table["role"] == "half_vs_half")]
        hv = (f"{null['c2st_auroc'].iloc[0]:.3f}, {null['ks_pvalue'].iloc[0]:.3f}"
              + (" (few)" if bool(null["too_few"].iloc[0]) else "")) if len(null) else "-"
        for s in suites:
            r = table[(table["mass_bin"] == b) & (table["suite"] == s)]
            if not len(r):
                continue
            r = r.iloc[0]
            a, alo, ahi = r["c2st_auroc"], r["c2st_auroc_null_q025"], r["c2st_auroc_null_q975"]
            d, dlo, dhi = r["ks_stat"], r["ks_stat_null_q025"], r["ks_stat_null_q975"]
            ina = "yes" if alo <= a <= ahi else "no"
            ind = "yes" if dlo <= d <= dhi else "no"
            lines.append(f"{s:<8}{b:<14}{int(r['n_images']):>5}  {f'{a:.3f} [{alo:.3f}, {ahi:.3f}]':<24}{ina:>4}  "
                         f"{f'{d:.3f} [{dlo:.3f}, {dhi:.3f}]':<22}{ind:>4}{r['ks_pvalue']:>8.3f}  {hv:<25}"
                         f"{r['verdict']}")
    return lines


def morphology_lines(ref: pd.DataFrame, mocks_by_camera: dict[str, pd.DataFrame]) -> list[str]:
    """Per bin and parameter: median of each camera's mocks and of the reference, |difference| / (half-width/3)."""
    anchors = load_anchors()
    cams = list(mocks_by_camera)
    head = f"{'bin':<6}{'stat':<5}{'ref median':>11}" + "".join(f"{c + ' median':>17}{'|d|/(hw/3)':>11}{'ok':>4}"
                                                                   for c in cams) + f"{'paper hw':>10}"
    lines, n_ok = [head], {c: 0 for c in cams}
    n_cells = 0
    for b in MASS_BINS:
        r_ok = ref[(ref["mass_bin"] == b) & (ref["flag"] == 0)]
        for p in GOAL_PARAMS:
            a = anchors.loc[(p, b)]
            hw = 0.5 * (a["p84"] - a["p16"])
            mr = float(np.nanmedian(r_ok[p])) if len(r_ok) else np.nan
            line = f"{b:<6}{LABELS[p]:<5}{mr:>11.3f}"
            for c in cams:
                m = mocks_by_camera[c]
                m_ok = m[(m["mass_bin"] == b) & (m["flag"] == 0)]
                mm = float(np.nanmedian(m_ok[p])) if len(m_ok) else np.nan
                x = abs(mm - mr) / (hw / 3)
                ok = bool(x <= 1)
                n_ok[c] += ok
                line += f"{f'{mm:.3f} (n={len(m_ok)})':>17}{x:>11.2f}{'yes' if ok else 'no':>4}"
            lines.append(line + f"{hw:>10.3f}")
            n_cells += 1
    n_ref = {b: int(((ref['mass_bin'] == b) & (ref['flag'] == 0)).sum()) for b in MASS_BINS}
    lines.append("reference images with flag 0 per bin: " + ", ".join(f"{b} {n}" for b, n in n_ref.items()))
    lines.append("cells within a third of the paper's half-width: "
                 + "; ".join(f"{c} {n_ok[c]} / {n_cells}" for c in cams))
    return lines


def colour_lines(table: pd.DataFrame) -> list[str]:
    """How well the particles' populations reproduce the drawn colours and r magnitudes (the model's own figures)."""
    dgr = np.concatenate([table["gr_bulge"] - table["gr_bulge_drawn"], table["gr_disc"] - table["gr_disc_drawn"]])
    dri = np.concatenate([table["ri_bulge"] - table["ri_bulge_drawn"], table["ri_disc"] - table["ri_disc_drawn"]])
    w = np.concatenate([table["bt"], 1 - table["bt"]]) > 0
    dgr, dri = dgr[w], dri[w]
    return [f"particle populations (components with light): observed g-r minus drawn: median {np.median(dgr):+.3f}, "
            f"|.| > 0.02 mag in {int((np.abs(dgr) > 0.02).sum())} of {dgr.size}; r-i: median {np.median(dri):+.3f}, "
            f"16-84 % [{np.percentile(dri, 16):+.3f}, {np.percentile(dri, 84):+.3f}]"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "output", "closure"))
    ap.add_argument("--n", type=int, default=400, help="mock galaxies (one view each)")
    ap.add_argument("--n-ref", type=int, default=400, help="make_galaxies reference images")
    ap.add_argument("--n-star", type=int, default=20000, help="star particles per galaxy")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--legacy", choices=["both", "only", "no"], default="both",
                    help="also (both) or only observe with the camera before issue 21 (no K, PA 0)")
    ap.add_argument("--weights", default=None, help="netG to score with (default: the demo's newest, else train one)")
    ap.add_argument("--n-train", type=int, default=2000, help="training images when a model must be trained")
    ap.add_argument("--niter", type=int, default=4, help="epochs when a model must be trained")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=2, help="processes for make_galaxies' images")
    ap.add_argument("--quick", action="store_true", help="60 + 60 galaxies, 5000 stars, the sky camera only")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.n_ref, args.n_star, args.legacy = 60, 60, 5000, "no"
    # camera -> (legacy, sky): sky = today's camera with the sky's other sources and Galactic extinction,
    # now = the particles alone, legacy = the camera before K-corrections and position angles
    cameras = {"sky": (False, True), "now": (False, False), "legacy": (True, False)}
    if args.quick:
        cameras = {"sky": cameras["sky"]}
    cameras = {c: v for c, v in cameras.items() if args.legacy == "both" or (args.legacy == "only") == v[0]}
    t0 = time.time()
    out = args.out
    os.makedirs(out, exist_ok=True)
    for old in ("particles", "mocks_sky", "mocks_field", "mocks_now", "mocks_legacy", "reference", "reference_isolated", "scores",
                "rating_reference", "rating_isolated", "closure_log.txt"):  # a re-run starts afresh (a model stays)
        path = os.path.join(out, old)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.isfile(path):
            os.unlink(path)
    log = os.path.join(out, "closure_log.txt")
    weights = args.weights
    if weights is None and os.path.isdir(DEMO_WEIGHTS):
        weights = newest_netg(DEMO_WEIGHTS)
    if weights is None:
        data = os.path.join(out, "train_data")
        galaxies.generate("observed", args.n_train, args.seed + 5000, os.path.join(data, "train"),
                          workers=args.workers, verbose=False)
        run([sys.executable, "train.py", "--dataroot", data, "--isize", "64", "--niter", str(args.niter), "--name",
             "model", "--outf", out, "--ngf", "32", "--ndf", "32", "--manualseed", str(args.seed), "--device",
             args.device], log)
        weights = newest_netg(os.path.join(out, "model", "train", "weights"))
    if not os.path.isfile(weights):
        print(f"closure.py: error: --weights {weights}: no such file", file=sys.stderr)
        return 2
    table = realise_all(args.n, args.seed, args.n_star, os.path.join(out, "particles"))
    table.to_csv(os.path.join(out, "galaxies.csv"), index=False)
    t_real = time.time() - t0
    folders, failed = {}, {}
    t1 = time.time()
    for cam, (legacy, sky) in cameras.items():
        folders[cam] = os.path.join(out, f"mocks_{cam}")
        failed[cam] = observe_all(table, os.path.join(out, "particles"), folders[cam], args.seed, legacy,
                                  sky)
    t_mock = time.time() - t1
    ref, iso = os.path.join(out, "reference"), os.path.join(out, "reference_isolated")
    galaxies.generate("observed", args.n_ref, args.seed + REF_SEED_OFFSET, ref, workers=args.workers, verbose=False)
    galaxies.generate(ISOLATED, args.n_ref, args.seed + REF_SEED_OFFSET, iso, workers=args.workers, verbose=False)
    t2 = time.time()
    csvs = {}
    for name, folder in {"reference": ref, "isolated": iso, **folders}.items():
        csvs[name] = os.path.join(out, "scores", f"{name}.csv")
        score(weights, folder, csvs[name], args.device, log)
    t_score = time.time() - t2
    rated = {}
    for name in ("reference", "isolated"):
        rating = os.path.join(out, f"rating_{name}")
        with open(log, "a") as fh, contextlib.redirect_stdout(fh):
            code = rate.main(["--reference", f"{name}={csvs[name]}",
                              *sum((["--suite", f"{c}={csvs[c]}"] for c in folders), []),
                              "--out", rating, "--n-boot", "200", "--seed", str(args.seed), "--no-figures",
                              "--no-compare", "--quiet"])
        if code:
            print(f"closure.py: error: rate.py failed (see {log})", file=sys.stderr)
            return 1
        rated[name] = pd.read_csv(os.path.join(rating, "rating.csv"))
    t3 = time.time()
    morph_ref = morphology(ref)
    morph = {c: morphology(f) for c, f in folders.items()}
    t_morph = time.time() - t3
    print(f"closure: {args.n} galaxies of the observed population as {args.n_star} star particles each, one "
          f"mock_observation.py --recipe sdss view each (cameras: {', '.join(folders)}; failed: "
          + ", ".join(f"{c} {n}" for c, n in failed.items()) + f"), against {args.n_ref} make_galaxies images "
          f"(seed {args.seed + REF_SEED_OFFSET}); scored with {os.path.relpath(weights, ROOT)}")
    print("cameras: now = observed-frame K-corrections and the drawn position angle; sky = now with the sky's "
          "other sources and Milky Way dust as make_galaxies draws them (--field-sources --galactic-extinction); legacy = "
          "no K-correction (--kcorr none) and PA 0 (the camera before issue 21's items 1-2)")
    for line in colour_lines(table):
        print(line)
    print("\nlatent C2ST and KS of A against the reference (null 95 % = permutation band at the row's sizes; "
          "half-vs-half = the reference against itself):")
    for line in rating_lines(rated["reference"], list(folders)):
        print(line)
    print("\ndiagnostic, against the same reference galaxies without neighbours and foreground stars "
          "(make_galaxies neighbour_rate 0, star_rate 0):")
    for line in rating_lines(rated["isolated"], list(folders)):
        print(line)
    print("\nstatmorph medians (R channel, flag 0) per paper mass bin; ok = |mock - reference| <= 1/3 of the "
          "paper's 16-84 % half-width (hw):")
    for line in morphology_lines(morph_ref, morph):
        print(line)
    print(f"\ntimes: particles {t_real:.0f} s, mocks {t_mock:.0f} s, scoring {t_score:.0f} s, morphology "
          f"{t_morph:.0f} s, total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
