"""The README's walkthrough on a small scale: particles -> mock_observation.py -> test.py -> rate.py."""
import csv
import os
import shutil

import torch

import mock_observation
import rate
import test as test_script
from lib import mocks
from tests.conftest import real_tiles
from tests.test_scoring import trained_like_netg


def test_example_particles_to_a_rating_table(tmp_path):
    parts = tmp_path / "particles"
    assert mock_observation.main(["--make-example", str(parts), "--example-stars", "3000"]) == 0
    assert sorted(os.listdir(parts)) == sorted(f"{n}.npz" for n in mocks.EXAMPLES)
    sim = tmp_path / "mocks" / "toy"
    assert mock_observation.main(["--particles", str(parts), "--out", str(sim), "--orientations", "random:3",
                                  "--workers", "2"]) == 0
    assert len([f for f in os.listdir(sim) if f.endswith(".jpg")]) == 12

    # a tiny generator, and real SDSS cutouts with a metadata.csv of their own as the reference
    weights = tmp_path / "netG_0.pth"
    torch.save({"epoch": 1, "state_dict": trained_like_netg(isize=32, nz=16, ngf=16).state_dict()}, weights)
    ref = tmp_path / "sdss"
    ref.mkdir()
    with open(ref / "metadata.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "galaxy", "logmstar"])
        for k, f in enumerate(real_tiles()[:12]):
            shutil.copy(f, ref)
            w.writerow([os.path.basename(f), f"sdss{k}", 9.5 + 0.15 * k])
    scores = tmp_path / "scores"
    for name, folder in (("sdss", ref), ("toy", sim)):
        assert test_script.main(["--weights", str(weights), "--images", str(folder), "--out_csv",
                                 str(scores / f"{name}.csv"), "--save_latents"]) == 0

    # rate.py finds each table's metadata.csv through the image folder test.py recorded
    out = tmp_path / "rating"
    assert rate.main(["--reference", f"SDSS={scores / 'sdss.csv'}", "--suite", f"Toy={scores / 'toy.csv'}",
                      "--mass-col", "logmstar", "--out", str(out), "--n-boot", "20", "--n-perm", "10",
                      "--no-figures"]) == 0
    with open(out / "rating.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["suite"] == "Toy"]
    by_bin = {r["mass_bin"]: int(r["n_images"]) for r in rows}
    # example masses 10^9.6, 10^10.6, 10^10.8, 10^11.1, 3 views each, in the paper's bins
    assert by_bin["all"] == 12 and by_bin["9.00-10.29"] == 3 and by_bin["10.29-11.39"] == 9
    assert {r["mass_bin"]: int(r["n_groups"]) for r in rows}["10.29-11.39"] == 3  # grouped by galaxy
