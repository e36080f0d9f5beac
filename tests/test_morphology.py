"""morphology.py: statmorph on analytic Sersic images (GalSim), in parallel, CSV joinable with scores."""
import numpy as np
import pandas as pd
import pytest

import morphology
from lib.rating import morphology as M

statmorph = pytest.importorskip("statmorph", reason="statmorph not installed (pip install statmorph photutils)")
pytest.importorskip("photutils", reason="photutils not installed (pip install statmorph photutils)")
galsim = pytest.importorskip("galsim")


@pytest.fixture(scope="module")
def sersic_folder(tmp_path_factory):
    """Noisy Sersic profiles n = 1, 2.5, 4 (FITS), one as the R channel of an RGB PNG, and a broken file."""
    from astropy.io import fits
    from PIL import Image

    folder = tmp_path_factory.mktemp("sersic")
    rng = galsim.BaseDeviate(1234)
    for n in (1.0, 2.5, 4.0):
        gal = galsim.Sersic(n=n, half_light_radius=1.0, flux=2e4).shear(q=0.7, beta=30 * galsim.degrees)
        im = gal.drawImage(nx=64, ny=64, scale=0.2)
        im.addNoise(galsim.GaussianNoise(rng, sigma=2.0))
        fits.writeto(folder / f"sersic_n{n}.fits", im.array)
    # PNG: the galaxy in R only; G and B hold a bright off-centre blob that must be ignored
    disc = galsim.Exponential(half_light_radius=1.5, flux=2e4).drawImage(nx=64, ny=64, scale=0.2).array
    r = np.clip(disc * 4 + 5 + np.random.default_rng(0).normal(0, 1, disc.shape), 0, 255).astype(np.uint8)
    gb = np.zeros_like(r)
    gb[5:15, 5:15] = 250
    Image.fromarray(np.stack([r, gb, gb], -1)).save(folder / "disc_rgb.png")
    (folder / "broken.png").write_text("not an image")
    return folder


def test_morphology_cli_concentration_ordering_and_csv(sersic_folder, tmp_path, capsys):
    out = tmp_path / "morph.csv"
    assert morphology.main([str(sersic_folder), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    assert "measured 5 images" in capsys.readouterr().out
    t = pd.read_csv(out, keep_default_na=False, na_values=[""])
    names = ["broken.png", "disc_rgb.png", "sersic_n1.0.fits", "sersic_n2.5.fits", "sersic_n4.0.fits"]
    assert t["name"].tolist() == names
    assert t["filename"].tolist() == [str(sersic_folder / n) for n in names]
    assert set(M.STATMORPH_PARAMS) <= set(t.columns)
    assert "UnidentifiedImageError" in t.loc[0, "error"] and np.isnan(t.loc[0, "gini"])
    s = t.set_index("name")
    c = s.loc[["sersic_n1.0.fits", "sersic_n2.5.fits", "sersic_n4.0.fits"], "concentration"].to_numpy()
    g = s.loc[["sersic_n1.0.fits", "sersic_n2.5.fits", "sersic_n4.0.fits"], "gini"].to_numpy()
    assert c[0] < c[1] < c[2]
    assert g[0] < g[1] < g[2]
    # an exponential disc has C ~ 2.7 (Lotz et al. 2004); n = 4 has C ~ 4+ on a resolved image
    assert 2.3 < c[0] < 3.1 and c[2] > 3.6
    assert (s.loc[["sersic_n1.0.fits", "sersic_n2.5.fits", "sersic_n4.0.fits"], "flag"] == 0).all()
    # the R channel was measured: the centred disc, not the G/B corner blob
    assert abs(s.loc["disc_rgb.png", "xc_centroid"] - 32) < 3 and abs(s.loc["disc_rgb.png", "yc_centroid"] - 32) < 3
    assert (tmp_path / "morph_run.json").is_file()
    # joinable with a score table on filename
    scores = pd.DataFrame({"filename": t["filename"], "ascore": np.arange(5.0)})
    assert len(scores.merge(t, on="filename")) == 5


def test_parallel_and_serial_give_the_same_numbers(sersic_folder):
    a = M.measure_folder(sersic_folder, workers=1, progress=False)
    b = M.measure_folder(sersic_folder, workers=2, progress=False)
    pd.testing.assert_frame_equal(a, b)


def test_bad_folder_and_missing_statmorph_messages(tmp_path, capsys, monkeypatch):
    assert morphology.main([str(tmp_path / "nope"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert morphology.main([str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 2
    assert "no images" in capsys.readouterr().err
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "statmorph":
            raise ImportError("No module named 'statmorph'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert morphology.main([str(tmp_path), "--out", str(tmp_path / "x.csv")]) == 3
    err = capsys.readouterr().err.strip()
    assert err == "morphology.py: error: " + M.INSTALL_HINT and "pip install statmorph photutils" in err


def test_deblending_keeps_a_touching_neighbour_out_of_the_galaxy():
    """A disc with a bright neighbour touching it: without deblending the neighbour joins the galaxy's
    segment and inflates its asymmetry and Gini; deblended, the neighbour is masked and the numbers are
    those of the disc alone (which deblending leaves untouched)."""
    def draw(with_neighbour):
        scene = galsim.Exponential(half_light_radius=1.2, flux=2e4)
        if with_neighbour:
            scene = scene + galsim.Gaussian(sigma=0.25, flux=6e3).shift(2.6, 0.4)
        im = scene.drawImage(nx=64, ny=64, scale=0.2)
        im.addNoise(galsim.GaussianNoise(galsim.BaseDeviate(7), sigma=2.0))
        return im.array.astype(np.float64)
    alone = M.measure_image(draw(False))
    assert M.measure_image(draw(False), deblend=False)["gini"] == pytest.approx(alone["gini"], abs=1e-12)
    merged, deblended = M.measure_image(draw(True), deblend=False), M.measure_image(draw(True))
    assert merged["asymmetry"] > alone["asymmetry"] + 0.1 and merged["gini"] > alone["gini"] + 0.02
    assert deblended["asymmetry"] == pytest.approx(alone["asymmetry"], abs=0.03)
    assert deblended["gini"] == pytest.approx(alone["gini"], abs=0.02)
