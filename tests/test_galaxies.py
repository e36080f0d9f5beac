"""Tests of the synthetic populations (lib/galaxies/) and make_galaxies.py."""

import hashlib
import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import make_galaxies
from lib import galaxies
from lib.galaxies import imaging


def digest(folder):
    out = {}
    for dirpath, _, files in os.walk(folder):
        for f in files:
            if f.endswith(".jpg"):
                with open(os.path.join(dirpath, f), "rb") as fh:
                    out[os.path.relpath(os.path.join(dirpath, f), folder)] = hashlib.sha1(fh.read()).hexdigest()
    return out


# ------------------------------------------------------------------ determinism
def test_make_image_deterministic_per_seed_and_index():
    _, p = galaxies.load_config("observed")
    a, ra = galaxies.make_image(p, 11, 4)
    b, rb = galaxies.make_image(p, 11, 4)
    c, _ = galaxies.make_image(p, 12, 4)
    d, _ = galaxies.make_image(p, 11, 5)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and ra == rb
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    none, rn = galaxies.make_image(p, 11, 4, render=False)
    assert none is None and rn == ra


def test_generate_same_seed_same_bytes_and_workers(tmp_path):
    galaxies.generate("observed", 6, 3, tmp_path / "a", verbose=False)
    galaxies.generate("observed", 6, 3, tmp_path / "b", workers=2, verbose=False)
    da, db = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert len(da) == 6 and da == db
    assert pd.read_csv(tmp_path / "a" / "metadata.csv").equals(pd.read_csv(tmp_path / "b" / "metadata.csv"))


# ------------------------------------------------------------------ metadata
def test_metadata_rows_match_files(tmp_path):
    df = galaxies.generate("large_sizes_2", 7, 5, tmp_path, verbose=False)
    meta = pd.read_csv(tmp_path / "metadata.csv")
    files = sorted(os.path.relpath(os.path.join(d, f), tmp_path).replace(os.sep, "/")
                   for d, _, fs in os.walk(tmp_path) for f in fs if f.endswith(".jpg"))
    assert sorted(meta["file"]) == files == sorted(df["file"])
    assert all(f.startswith("1.abnormal/large_sizes_2_") for f in files)
    for col in ("logmstar", "z", "seeing", "r_mag", "bt", "disc_re_arcsec", "n_neighbours", "population", "knobs"):
        assert col in meta.columns
    assert (meta["population"] == "large_sizes_2").all() and (meta["knobs"] == "large_sizes=2").all()
    assert meta["index"].tolist() == list(range(7))
    # the row describes the image it names: same as drawing that index again
    _, p = galaxies.load_config("large_sizes_2")
    _, row = galaxies.make_image(p, 5, 3, render=False)
    assert meta.loc[3, "logmstar"] == pytest.approx(row["logmstar"])
    assert meta.loc[3, "seeing"] == pytest.approx(row["seeing"])
    info = json.loads((tmp_path / "generation.json").read_text())
    assert info["seed"] == 5 and info["config"]["knobs"] == {"large_sizes": 2} and "galsim" in info["versions"]
    for f in files:
        assert Image.open(tmp_path / f).size == (64, 64)


# ------------------------------------------------------------------ resume
def test_interrupted_generation_resumes_identically(tmp_path, monkeypatch):
    ref = tmp_path / "ref"
    galaxies.generate("observed", 8, 9, ref, verbose=False)
    want = digest(ref)

    out = tmp_path / "out"
    real_save, calls = imaging.save_jpeg, []

    def dying_save(rgb, path, quality=imaging.JPEG_QUALITY):
        if len(calls) == 5:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during image 6
        calls.append(path)
        real_save(rgb, path, quality)

    monkeypatch.setattr(imaging, "save_jpeg", dying_save)
    with pytest.raises(KeyboardInterrupt):
        galaxies.generate("observed", 8, 9, out, verbose=False)
    monkeypatch.setattr(imaging, "save_jpeg", real_save)
    assert len(digest(out)) == 5 and not (out / "metadata.csv").exists()
    # also: a half-written file and a stale temporary, as a hard kill would leave
    cls = out / "0.normal"
    (cls / "observed_000001.jpg").write_bytes((cls / "observed_000001.jpg").read_bytes()[:100])
    (cls / ".observed_000005.jpg.abc.part").write_bytes(b"junk")
    df = galaxies.generate("observed", 8, 9, out, verbose=False)
    assert digest(out) == want
    assert sorted(os.listdir(cls)) == sorted(f"observed_{k:06d}.jpg" for k in range(8))
    assert pd.read_csv(out / "metadata.csv").equals(pd.read_csv(ref / "metadata.csv")) and len(df) == 8


def test_other_population_in_same_folder_is_refused(tmp_path):
    galaxies.generate("observed", 2, 1, tmp_path, verbose=False)
    with pytest.raises(galaxies.ConfigError, match="^out: .*seed 1"):
        galaxies.generate("observed", 2, 2, tmp_path, verbose=False)
    galaxies.generate("observed", 3, 1, tmp_path, verbose=False)  # extending the same set is fine
    assert len(digest(tmp_path)) == 3


# ------------------------------------------------------------------ config validation
@pytest.mark.parametrize("cfg, field", [
    ({"name": "x", "knobs": {"large_size": 1}}, "knobs.large_size"),
    ({"name": "x", "knobs": {"large_sizes": 4}}, "knobs.large_sizes"),
    ({"name": "x", "knobs": {"large_sizes": 1.5}}, "knobs.large_sizes"),
    ({"name": "x", "params": {"size_scale": -1}}, "params.size_scale"),
    ({"name": "x", "params": {"bulge_n": 9}}, "params.bulge_n"),
    ({"name": "x", "params": {"sizes": 1}}, "params.sizes"),
    ({"name": "x", "params": {"noise_scale": "a"}}, "params.noise_scale"),
    ({"name": "x", "colour": 1}, "colour"),
    ({"name": "a/b"}, "name"),
])
def test_config_validation_names_the_field(tmp_path, cfg, field):
    with pytest.raises(galaxies.ConfigError) as err:
        galaxies.generate(cfg, 3, 0, tmp_path / "out", verbose=False)
    msg = str(err.value)
    assert msg.startswith(field + ":") and "\n" not in msg
    assert not (tmp_path / "out").exists()  # nothing generated


def test_config_file_yaml_and_json(tmp_path):
    y = tmp_path / "mine.yaml"
    y.write_text("knobs:\n  blue_colours: 2\nparams:\n  star_rate: 0\n")
    cfg, p = galaxies.resolve(None, y)
    assert cfg["name"] == "mine" and p.colour_shift_gr == -0.4 and p.star_rate == 0
    j = tmp_path / "c.json"
    j.write_text(json.dumps({"name": "c", "knobs": {"too_clean": 3}}))
    assert galaxies.resolve(str(j))[1].noise_scale == 0.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("knobs: [unclosed\n")
    with pytest.raises(galaxies.ConfigError, match="^config: .*not valid"):
        galaxies.resolve(None, bad)


def test_presets_cover_knobs_and_strengths():
    names = set(galaxies.presets())
    assert "observed" in names and len(galaxies.KNOBS) >= 4
    for knob in galaxies.KNOBS:
        assert {f"{knob}_{s}" for s in (1, 2, 3)} <= names


# ------------------------------------------------------------------ the population itself
def test_population_distributions():
    _, p = galaxies.load_config("observed")
    rows = pd.DataFrame([galaxies.make_image(p, 0, k, render=False)[1] for k in range(400)])
    # the main sample spans z ~ 0.005-0.3 (the old 0.02-0.25 window cut both tails); catalogue masses >= 10^9
    assert rows["z"].between(0.005, 0.35).all() and 0.07 < rows["z"].median() < 0.13
    assert rows["logmstar"].between(9, 12.5).all() and 10.3 < rows["logmstar"].median() < 11.0
    assert (rows["r_mag"] <= galaxies.R_LIMIT).all()
    # size-mass relation: more massive galaxies are larger (in kpc)
    kpc = rows["disc_re_arcsec"] * rows["kpc_per_arcsec"]
    assert np.corrcoef(rows["logmstar"], np.log(kpc))[0, 1] > 0.3
    # early types are redder and more bulge dominated
    early = rows["early_type"].astype(bool)
    assert rows.loc[early, "g_r"].median() > rows.loc[~early, "g_r"].median() + 0.15
    assert rows.loc[early, "bt"].median() > 0.5 > rows.loc[~early, "bt"].median()
    assert 0.5 < (rows["n_neighbours"] > 0).mean() <= 1.0
    assert rows["seeing"].median() == pytest.approx(1.43, abs=0.06)


def test_knobs_move_the_right_parameter():
    base = galaxies.load_config("observed")[1]
    for k in range(5):
        _, r0 = galaxies.make_image(base, 2, k, render=False)
        prev = r0
        for s in (1, 2, 3):
            _, r = galaxies.make_image(galaxies.load_config(f"large_sizes_{s}")[1], 2, k, render=False)
            assert r["disc_re_arcsec"] > prev["disc_re_arcsec"] and r["logmstar"] == r0["logmstar"]
            prev = r
            _, b = galaxies.make_image(galaxies.load_config(f"blue_colours_{s}")[1], 2, k, render=False)
            assert b["g_r"] - r0["g_r"] == pytest.approx(galaxies.KNOBS["blue_colours"][s - 1]["colour_shift_gr"])
            assert b["g_r"] - r0["g_r"] < -0.099  # every strength a visible shift


def test_too_clean_has_less_pixel_noise():
    from astropy.stats import sigma_clipped_stats
    from scipy import ndimage

    def pixel_noise(preset):  # pixel-to-pixel scatter of the luminance in the borders, mean of 8 cutouts
        p = galaxies.load_config(preset)[1]
        out = []
        for k in range(8):
            lum = galaxies.make_image(p, 4, k)[0].astype(float).mean(axis=2)
            hp = (lum - ndimage.median_filter(lum, 3))[np.r_[0:8, 56:64]]
            out.append(sigma_clipped_stats(hp, sigma=3.0)[2])  # continuous; a MAD of 8-bit values is not
        return np.mean(out)
    observed = pixel_noise("observed")
    assert observed > 0.6  # ~1.0 8-bit units (noise x 0.5 gives ~0.3: the JPEG quantisation eats it)
    assert pixel_noise("too_clean_1") < 0.6 * observed
    assert pixel_noise("too_clean_2") < 0.2 * observed
    assert pixel_noise("too_clean_3") < 0.1 * observed


# ------------------------------------------------------------------ CLI
def test_cli(tmp_path, capsys):
    assert make_galaxies.main(["--list-presets"]) == 0
    assert "too_clean_{1,2,3}" in capsys.readouterr().out
    assert make_galaxies.main(["--preset", "nope", "--n", "2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: preset:") and err.count("\n") == 1
    assert make_galaxies.main(["--preset", "observed", "--n", "0", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
    assert make_galaxies.main(["--preset", "too_clean_3", "--n", "2", "--seed", "4", "--out", str(tmp_path / "y"),
                               "--class-dir", "clean"]) == 0
    assert sorted(os.listdir(tmp_path / "y" / "clean")) == ["too_clean_3_000000.jpg", "too_clean_3_000001.jpg"]
