"""Score images with a trained GANomaly generator; writes ``anomaly_scores.csv``.

Score your own images with the paper's model (``make paper-weights`` first)::

    python test.py --images path/to/mock_images/

or with your own run: ``python test.py --weights output/<name>/train/weights/netG_<epoch>.pth --images DIR``.
Without ``--images`` it reads ``data/<dataset>/test/<class>/*`` as the original
and writes ``output/ganomaly/<dataset>/test/anomaly_scores.csv``, plus ``anomaly_scores_run.json`` beside it
(options, weights, counts, package versions).
"""
from __future__ import annotations

import os
import sys

import numpy as np

import options
from lib.checkpoint import CheckpointError, load_netg
from lib.data import DatasetLayoutError, open_images
from lib.fileio import package_versions, write_json
from lib.evaluate import score_files
from lib.scoring import Calibration, Scorer, normalize_paper

PAPER_WEIGHTS = "output/ganomaly/SDSS/train/weights/netG_43.pth"


def select_inputs(opt, isize: int, nc: int):
    """``(batches, n_total, with_label)`` from --images, or from <dataroot>/test/<class>/ as the original.

    Either may also be a packed dataset (SDSS_cutouts/pack.py).
    """
    where = opt.images or os.path.join(options.dataroot(opt), "test")
    source = open_images(where, isize, nc, classes=not opt.images)
    return source.scoring_batches(opt.batchsize), len(source), source.with_label


def normalizers(opt) -> dict:
    if opt.normalize == "paper":
        return {"ascore_norm": normalize_paper}
    if opt.normalize == "reference":
        path = Calibration.path_for(opt.weights)
        if not os.path.isfile(path):
            raise CheckpointError(f"--normalize reference: no calibration {path}; make one with "
                                  f"`python test.py --weights {opt.weights} --images REFERENCE_DIR --calibrate`")
        cal = Calibration.load(path)
        return {"ascore_norm": cal.normalize, "ascore_pct": cal.percentile}
    return {}


def main(argv: list[str] | None = None) -> int:
    try:
        opt = options.parse_test(argv)
        if not os.path.isfile(opt.weights):
            hint = (" Get the paper's model with `make paper-weights` (or python get_paper_weights.py)."
                    if os.path.normpath(opt.weights) == os.path.normpath(PAPER_WEIGHTS) else "")
            raise CheckpointError(f"weights file not found: {opt.weights}.{hint} Or pass --weights "
                                  "output/<name>/train/weights/netG_<epoch>.pth from your own training run")
        netg, _ = load_netg(opt.weights, opt.torch_device, isize=opt.isize, nc=opt.nc, nz=opt.nz, ngf=opt.ngf,
                            extralayers=opt.extralayers)
        cfg = netg.config
        batches, n_total, with_label = select_inputs(opt, cfg["isize"], cfg["nc"])
        norm = normalizers(opt)
    except (options.OptionError, CheckpointError, DatasetLayoutError) as exc:
        return options.fail(str(exc))

    run_dir = os.path.join(opt.outf, opt.name, "test")
    out_csv = opt.out_csv or os.path.join(run_dir, "anomaly_scores.csv")
    panels = os.path.join(os.path.dirname(os.path.abspath(out_csv)), "images") if opt.save_test_images else ""
    if panels:
        os.makedirs(panels, exist_ok=True)
    latents = os.path.splitext(out_csv)[0] + "_latents.npz" if opt.save_latents else ""
    print(f"scoring {n_total} images with {opt.weights} (isize {cfg['isize']}, nz {cfg['nz']}, "
          f"mode {opt.score_mode}, {opt.torch_device})", file=sys.stderr)
    res = score_files(Scorer(netg, opt.score_mode, opt.torch_device), batches, n_total=n_total,
                      with_label=with_label, out_csv=out_csv, normalizers=norm, save_latents=latents,
                      panels_dir=panels, n_worst=opt.n_worst if opt.save_test_images else 0)
    if res.errors:
        print(f"warning: {len(res.errors)} of {n_total} files could not be scored "
              f"(listed in {os.path.splitext(out_csv)[0]}_errors.csv)", file=sys.stderr)
    if not res.n_scored:
        return options.fail("no image could be scored")
    print(f"{res.n_scored} images scored in {res.seconds:.1f} s ({res.n_scored / res.seconds:.0f} images/s) -> {out_csv}")
    if res.metrics:
        m = res.metrics
        print(f"AUROC {m['auroc']:.4f}  average precision {m['average_precision']:.4f}  EER {m['eer']:.4f} "
              f"({m['n_normal']} normal, {m['n_abnormal']} abnormal)")
    write_json(os.path.splitext(out_csv)[0] + "_run.json",
               dict(options=vars(opt), weights=os.path.abspath(opt.weights), architecture=cfg, n_inputs=n_total,
                    n_scored=res.n_scored, n_errors=len(res.errors), seconds=round(res.seconds, 3),
                    metrics=res.metrics, versions=package_versions()))
    if opt.calibrate:
        cal = Calibration.from_scores(np.array(res.scores), opt.weights)
        cal.save(Calibration.path_for(opt.weights))
        print(f"calibration from {cal.n} reference images -> {Calibration.path_for(opt.weights)}")
    return 1 if (opt.strict and res.errors) else 0


if __name__ == "__main__":
    sys.exit(main())
