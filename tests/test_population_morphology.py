"""The morphology report (benchmarks/realism_morphology.py, benchmarks/realism.py --quick) runs on small
sets and its numbers are statmorph's."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks import realism, realism_common as common, realism_morphology as morph
from lib import galaxies
from lib.rating.morphology import measure_image


def test_report_on_a_small_folder_matches_statmorph(tmp_path):
    galaxies.generate("observed", 5, 7, tmp_path, verbose=False)
    got = morph.measure_folder(str(tmp_path))
    meta = pd.read_csv(tmp_path / "metadata.csv")
    assert got["file"].tolist() == meta["file"].tolist() and got["mass_bin"].tolist() == meta["mass_bin"].tolist()
    for k in range(3):  # statmorph itself on the R channel of the stored JPEG
        want = measure_image(np.asarray(Image.open(tmp_path / meta.loc[k, "file"]).convert("RGB"))[..., 0].astype(float))
        for p in morph.PARAMS:
            assert got.loc[k, p] == pytest.approx(want[p], rel=1e-9, abs=1e-12)
    got["mass_bin"] = ["low", "mid", "high", "mid", "low"]  # every bin populated for the table
    got["flag"] = 0
    rep = morph.report(got, real=got)
    assert len(rep) == 3 * 6 + 6 and rep["goal"].sum() == 12
    low = got[got["mass_bin"] == "low"]
    g = rep[(rep["bin"] == "low") & (rep["param"] == "G")].iloc[0]
    assert g.syn_median == pytest.approx(np.median(low["gini"]))
    assert g.ref_median == pytest.approx(0.41, abs=0.001)  # Jin et al. 2024 SDSS, low-mass Gini
    assert "goal cells passing" in morph.format_table(rep)


def test_pass_rule():
    ref = pd.Series({"median": 0.41, "p16": 0.37, "p84": 0.46})  # half-width 0.045: a third is 0.015
    assert morph.passes(0.42, ref) == (True, True)
    assert morph.passes(0.43, ref) == (True, False)
    assert morph.passes(0.47, ref) == (False, False)


def test_whole_cutout_known_answers():
    # flat sky with one bright pixel at the centre: no border scatter, all light at radius ~0.7 px
    a = np.full((64, 64, 3), 20, np.uint8)
    a[31:33, 31:33] = 200
    st = common.whole_cutout(a)
    assert st["sigma_R"] == 0.0 and st["sigma_G"] == 0.0
    assert st["ln_r50"] == pytest.approx(np.log(np.sqrt(0.5)), abs=1e-6)
    # a border of alternating 0/2 levels in R only: robust sigma 1.4826 * 1/255, G and B untouched
    b = np.full((64, 64, 3), 20, np.uint8)
    b[..., 0] += (np.indices((64, 64)).sum(axis=0) % 2 * 2).astype(np.uint8)
    st = common.whole_cutout(b)
    assert st["sigma_R"] == pytest.approx(1.4826 / 255, rel=1e-6) and st["sigma_G"] == 0.0


def test_cv_auroc_null_and_shift():
    rng = np.random.default_rng(0)
    same = common.cv_auroc(rng.normal(size=(60, 3)), rng.normal(size=(60, 3)), seed=1)
    shifted = common.cv_auroc(rng.normal(size=(60, 3)), rng.normal(size=(60, 3)) + 3.0, seed=1)
    assert 0.3 < same < 0.7 and shifted > 0.97


def test_realism_quick_runs(capsys):
    assert realism.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "real vs real      AUROC mean" in out and "synthetic vs real AUROC mean" in out
    assert "whole-cutout statistics" in out and "ln_r80_r20" in out
    assert "goal cells passing" in out and "pooled G" in out
