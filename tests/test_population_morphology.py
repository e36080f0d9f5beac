"""The morphology report (benchmarks/realism_morphology.py, benchmarks/realism.py --quick) runs on small
sets and its numbers are statmorph's."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks import realism, realism_morphology as morph
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


def test_auroc_standard_error():
    # Hanley & McNeil 1982: AUC 0.8 with 16 + 96 cases has SE ~0.06
    auc, se = realism.auroc_with_se(np.arange(16.0), np.arange(96.0) * 0.3 + 3)
    assert 0 <= auc <= 1 and 0.02 < se < 0.1
    assert realism.auroc_with_se(np.zeros(5), np.ones(5))[0] == 1.0


def test_realism_quick_runs(capsys):
    assert realism.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "realism classifier AUROC" in out and "+-" in out
    assert "goal cells passing" in out and "pooled G" in out
