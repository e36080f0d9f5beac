"""--field-sources: mock cutouts get the sky's other sources as the synthetic observed population has them.

Known answers: a foreground star rendered by ``field_images`` carries exactly its drawn flux and colour; the
option off leaves every byte as before (same images as a run that never heard of it); on, it is seeded (two
runs identical), adds light in the border where the particles put none, and is refused with the paper recipe.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

import mock_observation
from lib import mocks
from lib.galaxies import imaging, population


def test_a_field_star_carries_its_drawn_flux_and_colour():
    cond = imaging.Conditions(seeing=1.4)
    for seed in range(200):  # the first draw with exactly one star near the centre (no neighbours: rate 0)
        probe = np.random.default_rng(seed)
        population.draw_neighbours(probe, 0.0)
        stars = population.draw_stars(probe, 1.0)
        if len(stars) == 1 and abs(stars[0]["x"]) < 3 and abs(stars[0]["y"]) < 3:
            break
    images, n_neigh, n_stars = population.field_images(np.random.default_rng(seed), cond, neighbour_rate=0.0,
                                                       star_rate=1.0)
    st = stars[0]
    r_flux = 10 ** (-0.4 * (st["r_mag"] - 22.5))  # nMgy
    assert (n_neigh, n_stars) == (0, 1)
    assert images["r"].shape == (population.CANVAS, population.CANVAS)
    # the Moffat's wings beyond the canvas (>= 10 arcsec from the star) hold < 1e-3 of the flux
    assert images["r"].sum() == pytest.approx(r_flux, rel=2e-3)
    assert -2.5 * np.log10(images["g"].sum() / images["r"].sum()) == pytest.approx(st["gr"], abs=3e-3)
    assert -2.5 * np.log10(images["r"].sum() / images["i"].sum()) == pytest.approx(st["ri"], abs=3e-3)
    peak = np.unravel_index(np.argmax(images["r"]), images["r"].shape)  # where it was drawn (rows run with y)
    centre = (population.CANVAS - 1) / 2
    assert abs(peak[1] - (centre + st["x"] / imaging.SDSS_PIXEL_SCALE)) <= 1
    assert abs(peak[0] - (centre + st["y"] / imaging.SDSS_PIXEL_SCALE)) <= 1


def _run(tmp_path, name, *extra):
    out = tmp_path / name
    args = ["--particles", str(tmp_path / "p"), "--out", str(out), "--run", "sim", "--orientations", "random:6",
            "--redshift", "0.08", "--seed", "4", *extra]
    assert mock_observation.main(args) == 0
    return out, sorted(f for f in os.listdir(out) if f.endswith(".jpg"))


def test_field_sources_are_seeded_add_border_light_and_leave_the_default_alone(tmp_path):
    arrays = mocks.make_galaxy(10.4, 0.2, 2.5, 0.0, n_star=3000, rng=np.random.default_rng(0))
    mocks.write_npz(str(tmp_path / "p" / "gal.npz"), arrays)
    plain, files = _run(tmp_path, "plain")
    again, _ = _run(tmp_path, "again")
    field, files_f = _run(tmp_path, "field", "--field-sources")
    field2, _ = _run(tmp_path, "field2", "--field-sources")
    assert files == files_f and len(files) == 6
    for f in files:
        assert (plain / f).read_bytes() == (again / f).read_bytes()
        assert (field / f).read_bytes() == (field2 / f).read_bytes()  # seeded per view
    assert any((plain / f).read_bytes() != (field / f).read_bytes() for f in files)

    def border_light(folder):  # summed 8-bit R level of the outer 12-pixel frame, where the galaxy is faint
        px = [np.asarray(Image.open(folder / f), dtype=float)[..., 0] for f in files]
        frame = np.ones((64, 64), bool)
        frame[12:-12, 12:-12] = False
        return float(np.mean([p[frame].sum() for p in px]))
    # 8 background galaxies and 0.45 stars per cutout on average: the frame holds clearly more light
    assert border_light(field) > 1.1 * border_light(plain)
    record = json.loads((field / "mock_observation_run.json").read_text())
    assert record["options"]["field_sources"] is True


def test_field_sources_with_the_paper_recipe_is_one_line(tmp_path, capsys):
    mocks.write_npz(str(tmp_path / "g.npz"), mocks.make_galaxy(10.4, 0.2, 2.5, 0.0, n_star=500,
                                                               rng=np.random.default_rng(1)))
    code = mock_observation.main(["--particles", str(tmp_path / "g.npz"), "--out", str(tmp_path / "o"),
                                  "--recipe", "paper", "--field-sources"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--field-sources applies to --recipe sdss only" in err[0]
    assert not (tmp_path / "o").exists()


def test_galactic_extinction_reddens_and_dims_as_schlegel_and_is_wired_into_the_view():
    ebv = np.array([population.draw_ebv(np.random.default_rng(k)) for k in range(2000)])
    assert 0.005 <= ebv.min() and ebv.max() <= 0.25 and abs(np.median(ebv) - 0.03) < 0.003
    f = {b: population.extinction_factor(b, 0.1) for b in "gri"}
    # E(g-r) = (3.793 - 2.751) E(B-V), A_r = 2.751 E(B-V) (Schlegel et al. 1998 SDSS coefficients)
    assert -2.5 * np.log10(f["g"] / f["r"]) == pytest.approx(0.1042, abs=1e-6)
    assert -2.5 * np.log10(f["r"]) == pytest.approx(0.2751, abs=1e-6)

    arrays = mocks.make_galaxy(10.4, 0.2, 2.5, 0.0, n_star=2000, rng=np.random.default_rng(2))
    prep = mocks.prepare(mocks.validate(arrays, "g", "g"), mocks.load_ssp(), with_dust=False)
    view = mocks.sdss_view(prep, 30.0, 0.0, 0.06, np.random.default_rng(5), 10.0, galactic_extinction=True)
    # the same view by hand: E(B-V) drawn first from the view's stream, every band dimmed, then the camera
    rng = np.random.default_rng(5)
    maps = mocks.sdss_maps(prep, 30.0, 0.0, 0.06, 10.0)[0]
    e = population.draw_ebv(rng)
    scene = {b: m[::-1] * population.extinction_factor(b, e) for b, m in maps.items()}
    assert np.array_equal(view.image, imaging.observe(scene, imaging.SDSS_PIXEL_SCALE, rng))
    plain = mocks.sdss_view(prep, 30.0, 0.0, 0.06, np.random.default_rng(5), 10.0)
    assert not np.array_equal(view.image, plain.image)
