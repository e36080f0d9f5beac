"""mock_observation.py: the three input paths agree, outputs are complete, bad input is one line and exit 2."""
import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

import mock_observation
from lib import mocks


def galaxy(n=3000, seed=0, gas=True):
    """A small example galaxy whose values survive float32 (Tipsy stores float32)."""
    arrays = mocks.make_galaxy(10.4, 0.2, 2.5, 0.1 if gas else 0.0, n_star=n, rng=np.random.default_rng(seed),
                               n_gas=800)
    arrays.pop("massform")  # Tipsy has no formation mass: every path falls back to 'mass'
    return {k: np.asarray(v, dtype=np.float32).astype(np.float64) for k, v in arrays.items()}


def write_tipsy(folder, name, arrays, with_halo_file=False):
    """A Tipsy snapshot (+ .param giving kpc and Msun units) written by pynbody itself."""
    pynbody = pytest.importorskip("pynbody")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.param"), "w") as fh:
        fh.write(f"dKpcUnit = 1\ndMsolUnit = 1\nbComove = 0\nachOutName = {name}\n")
    path = os.path.join(folder, name)

    def write(v_unit, t_unit_gyr):
        n, ng = len(arrays["pos"]), len(arrays["gas_pos"])
        s = pynbody.new(star=n, gas=ng)
        s.s["pos"], s.s["vel"], s.s["mass"] = arrays["pos"], arrays["vel"] / v_unit, arrays["mass"]
        s.s["metals"] = arrays["metals"]
        s.properties["time"] = 14.0 / t_unit_gyr
        s.s["tform"] = (14.0 - arrays["age"]) / t_unit_gyr
        s.g["pos"], s.g["vel"], s.g["mass"] = arrays["gas_pos"], arrays["gas_vel"] / v_unit, arrays["gas_mass"]
        s.g["temp"] = arrays["gas_temp"]
        for fam in (s.s, s.g):  # fields Tipsy always stores; left unset they hold garbage
            fam["eps"], fam["phi"] = np.full(len(fam), 0.1), np.zeros(len(fam))
        s.g["rho"], s.g["metals"] = np.ones(ng), np.full(ng, 0.01)
        s.write(fmt=pynbody.snapshot.tipsy.TipsySnap, filename=path)

    write(1.0, 1.0)  # once to learn the velocity and time units pynbody derives from the .param (G = 1)
    probe = pynbody.load(path)
    write(float(probe.s["vel"].units.in_units("km s**-1")), float(probe.s["tform"].units.in_units("Gyr")))
    n, ng = len(arrays["pos"]), len(arrays["gas_pos"])
    if with_halo_file:  # every particle in halo 1 (pynbody reads <name>.grp as a halo catalogue)
        np.savetxt(path + ".grp", np.concatenate([[n + ng], np.ones(n + ng, int)]), fmt="%d")
    return path


def write_gadget_hdf(path, arrays, h=0.7, om=0.3):
    """An IllustrisTNG-style GadgetHDF snapshot at z = 0 (Gadget units: kpc/h, 1e10 Msun/h, km/s)."""
    import h5py
    from astropy.cosmology import FlatLambdaCDM
    cos = FlatLambdaCDM(H0=100 * h, Om0=om)
    zgrid = np.linspace(0, 30, 20001)
    tgrid = cos.age(zgrid).to_value("Gyr")  # decreasing with z
    t0 = tgrid[0]
    aform = 1 / (1 + np.interp(-(t0 - arrays["age"]), -tgrid, zgrid))
    n, ng = len(arrays["pos"]), len(arrays["gas_pos"])
    with h5py.File(path, "w") as f:
        hd = f.create_group("Header")
        npart = np.array([ng, 0, 0, 0, n, 0], dtype=np.uint32)
        hd.attrs.update(NumPart_ThisFile=npart, NumPart_Total=npart, NumPart_Total_HighWord=np.zeros(6, np.uint32),
                        MassTable=np.zeros(6), Time=1.0, Redshift=0.0, BoxSize=1000.0, NumFilesPerSnapshot=1,
                        Omega0=om, OmegaLambda=1 - om, HubbleParam=h, Flag_Sfr=1, Flag_Cooling=1,
                        Flag_StellarAge=1, Flag_Metals=1, Flag_Feedback=1, Flag_DoublePrecision=1)
        un = f.create_group("Units")  # kpc/h, 1e10 Msun/h, km/s (the Gadget defaults, said explicitly)
        un.attrs.update(UnitLength_in_cm=3.085678e21, UnitMass_in_g=1.989e43, UnitVelocity_in_cm_per_s=1e5,
                        UnitTime_in_s=3.085678e16)
        s = f.create_group("PartType4")
        s["Coordinates"] = arrays["pos"] * h
        s["Velocities"] = arrays["vel"]
        s["Masses"] = arrays["mass"] * h / 1e10
        s["GFM_StellarFormationTime"] = aform
        s["GFM_Metallicity"] = arrays["metals"]
        s["ParticleIDs"] = np.arange(n, dtype=np.uint64)
        g = f.create_group("PartType0")
        g["Coordinates"] = arrays["gas_pos"] * h
        g["Velocities"] = arrays["gas_vel"]
        g["Masses"] = arrays["gas_mass"] * h / 1e10
        # u (km/s)^2 from T for a fully ionised gas (mu ~ 0.59), as pynbody inverts it with ElectronAbundance
        g["InternalEnergy"] = arrays["gas_temp"] * 1.380649e-23 / (0.5926 * 1.6726e-27 * (5 / 3 - 1)) / 1e6
        g["ElectronAbundance"] = np.full(ng, 1.158)
        g["GFM_Metallicity"] = np.full(ng, 0.01)
        g["ParticleIDs"] = np.arange(n, n + ng, dtype=np.uint64)


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def pixels(path):
    return np.asarray(Image.open(path))


@pytest.mark.parametrize("recipe,ext", [("sdss", "jpg"), ("paper", "png")])
def test_npz_hdf5_and_pynbody_paths_give_identical_images(tmp_path, recipe, ext):
    original = galaxy()
    snap = write_tipsy(str(tmp_path / "tipsy"), "g1", original)
    # pynbody converts Tipsy's float32 simulation units to kpc, km/s, Gyr: the same particles to ~1e-7
    arrays = mocks.read_snapshot(snap).arrays
    for k, v in original.items():
        np.testing.assert_allclose(arrays[k], v, rtol=2e-6, atol=1e-6 * np.abs(v).max(), err_msg=k)
    mocks.write_npz(str(tmp_path / "npz" / "g1.npz"), arrays)
    mocks.write_hdf5(str(tmp_path / "h5" / "sims.h5"), {"g1": arrays})
    common = ["--recipe", recipe, "--orientations", "random:2", "--seed", "3", "--save-maps"]
    outs = {}
    for kind, src in (("npz", ["--particles", str(tmp_path / "npz")]),
                      ("h5", ["--particles", str(tmp_path / "h5" / "sims.h5")]), ("tipsy", ["--snapshot", snap])):
        out = tmp_path / f"out-{kind}"
        assert mock_observation.main([*src, "--out", str(out), "--run", "sim", *common]) == 0
        outs[kind] = out
    files = sorted(f for f in os.listdir(outs["npz"]) if f.endswith(ext))
    assert files == [f"sim_g1_00.{ext}", f"sim_g1_01.{ext}"]
    for f in files:
        ref = pixels(outs["npz"] / f)
        assert np.array_equal(ref, pixels(outs["h5"] / f))
        assert np.array_equal(ref, pixels(outs["tipsy"] / f))
    from astropy.io import fits
    with fits.open(outs["npz"] / "maps" / "sim_g1_00.fits") as a, fits.open(outs["tipsy"] / "maps" / "sim_g1_00.fits") as b:
        assert [h.name for h in a] == ["PRIMARY", "G", "R", "I"]
        assert np.array_equal(a["R"].data, b["R"].data)
    meta = [read_rows(o / "metadata.csv") for o in outs.values()]
    assert [r["theta_deg"] for r in meta[0]] == [r["theta_deg"] for r in meta[1]] == [r["theta_deg"] for r in meta[2]]


def test_outputs_metadata_maps_and_run_record(tmp_path):
    mocks.write_npz(str(tmp_path / "p" / "gal-a.npz"), galaxy(seed=1))
    mocks.write_npz(str(tmp_path / "p" / "gal-b.npz"), galaxy(seed=2, gas=False))
    out = tmp_path / "my_mocks"
    args = ["--particles", str(tmp_path / "p"), "--out", str(out), "--recipe", "paper", "--orientations", "edgeon",
            "--save-maps", "--workers", "2"]
    assert mock_observation.main(args) == 0
    rows = read_rows(out / "metadata.csv")
    assert list(rows[0]) == list(mocks.METADATA_COLUMNS)
    assert [r["file"] for r in rows] == ["my-mocks_gal-a_00.png", "my-mocks_gal-b_00.png"]  # run = folder, '_' -> '-'
    a = rows[0]
    assert (a["galaxy"], a["orientation"], float(a["theta_deg"]), a["redshift"]) == ("gal-a", "0", 90.0, "")
    assert float(a["logmstar"]) == pytest.approx(np.log10(galaxy(seed=1)["mass"].sum()), abs=1e-4)
    assert int(a["n_star"]) == 3000 and int(a["n_gas"]) == 800 and int(rows[1]["n_gas"]) == 0
    img = Image.open(out / "my-mocks_gal-a_00.png")
    assert img.size == (500, 500) and img.mode == "RGBA"
    from astropy.io import fits
    with fits.open(out / "maps" / "my-mocks_gal-a_00.fits") as f:
        assert f[0].data is None and f[0].header["RECIPE"] == "paper"
        for band in "GRI":
            h = f[band].header
            assert (h["BAND"], h["PIXSCALE"], h["PIXUNIT"], h["THETA"]) == (f"SDSS {band.lower()}", 0.1, "kpc", 90.0)
        # the maps are surface brightness per pc^2: x 1e4 pc^2 per pixel = the light of the stars in the field
        p = mocks.read_npz(str(tmp_path / "p" / "gal-a.npz"))
        light = mocks.star_light(mocks.load_ssp(), p["massform"], p["age"], p["metals"])
        assert f["R"].data.sum() * 1e4 == pytest.approx(light.lum["r"].sum(), rel=1e-3)
    record = json.loads((out / "mock_observation_run.json").read_text())
    assert record["options"]["recipe"] == "paper" and record["n_images"] == 2 and "numpy" in record["versions"]
    # the same seed gives the same random views; another seed other views
    for seed, sub in ((5, "r1"), (5, "r2"), (6, "r3")):
        assert mock_observation.main(["--particles", str(tmp_path / "p" / "gal-a.npz"), "--out", str(tmp_path / sub),
                                      "--orientations", "random:3", "--seed", str(seed), "--redshift", "0.08"]) == 0
    angles = [[(r["theta_deg"], r["phi_deg"]) for r in read_rows(tmp_path / s / "metadata.csv")] for s in ("r1", "r2", "r3")]
    assert angles[0] == angles[1] != angles[2]
    assert np.array_equal(pixels(tmp_path / "r1" / "r1_gal-a_02.jpg"), pixels(tmp_path / "r2" / "r2_gal-a_02.jpg"))
    assert pixels(tmp_path / "r1" / "r1_gal-a_02.jpg").shape == (64, 64, 3)


def ring(n, radius):
    phi = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pos = radius * np.column_stack([np.cos(phi), np.sin(phi), np.zeros(n)])
    vel = 200.0 * np.column_stack([-np.sin(phi), np.cos(phi), np.zeros(n)])
    return {"pos": pos, "vel": vel, "mass": np.full(n, 1e6), "age": np.full(n, 3.0), "metals": np.full(n, 0.01)}


def bad_inputs(folder):
    good = galaxy(seed=4)
    cases = {
        "missing-field": {k: v for k, v in good.items() if k != "age"},
        "nan-positions": dict(good, pos=np.where(np.arange(len(good["pos"]))[:, None] == 5, np.nan, good["pos"])),
        "negative-ages": dict(good, age=good["age"] - 20.0),
        "negative-masses": dict(good, mass=-good["mass"]),
        "far-away": ring(60, 40.0),  # a sparse ring of radius 40 kpc: no star in the 50 kpc face-on field
    }
    for name, arrays in cases.items():
        mocks.write_npz(os.path.join(folder, f"{name}.npz"), arrays)
    with open(os.path.join(folder, "unreadable.npz"), "wb") as fh:
        fh.write(b"this is not a zip file")
    mocks.write_npz(os.path.join(folder, "good.npz"), good)
    return {"missing-field": "missing field(s) age", "nan-positions": "'pos' has 1 NaN",
            "negative-ages": "negative value(s) in 'age'", "negative-masses": "negative value(s) in 'mass'",
            "far-away": "no star particles in the 50 kpc field", "unreadable": "not an NPZ file"}


def test_bad_galaxies_are_one_line_each_and_the_others_are_done(tmp_path, capsys):
    expected = bad_inputs(str(tmp_path / "p"))
    out = tmp_path / "out"
    code = mock_observation.main(["--particles", str(tmp_path / "p"), "--out", str(out), "--recipe", "paper",
                                  "--orientations", "faceon", "--save-maps"])
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == len(expected)
    for name, problem in expected.items():
        line = next(e for e in err if f"{name}.npz" in e)
        assert line.startswith("mock_observation.py: error: ") and problem in line, line
    assert sorted(os.listdir(out)) == ["maps", "metadata.csv", "mock_observation_run.json", "out_good_00.png"]
    assert os.listdir(out / "maps") == ["out_good_00.fits"]  # nothing of the bad galaxies, no temporary files
    assert [r["galaxy"] for r in read_rows(out / "metadata.csv")] == ["good"]
    record = json.loads((out / "mock_observation_run.json").read_text())
    assert record["n_done"] == 1 and len(record["errors"]) == len(expected)


def test_snapshot_errors_are_one_line(tmp_path, capsys):
    snap = write_tipsy(str(tmp_path / "s"), "g1", galaxy(seed=5), with_halo_file=True)
    assert mock_observation.main(["--snapshot", snap, "--halo", "1", "--out", str(tmp_path / "ok"), "--orientations",
                                  "faceon", "--recipe", "paper"]) == 0
    assert os.listdir(tmp_path / "ok").count("ok_g1-h1_00.png") == 1
    capsys.readouterr()
    broken = tmp_path / "s" / "broken.std"
    broken.write_bytes(b"\x00\x01 garbage, not a snapshot" * 10)
    for args, problem in (([snap, "--halo", "7"], "halo 7 does not exist"),
                          ([str(broken)], "pynbody cannot read this snapshot"),
                          ([str(tmp_path / "nothing")], "no such snapshot")):
        out = tmp_path / "bad"
        assert mock_observation.main(["--snapshot", *args, "--out", str(out), "--orientations", "faceon"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("mock_observation.py: error: ") and problem in err[0], err
        assert not [f for f in os.listdir(out) if f.endswith((".jpg", ".png"))]


@pytest.mark.parametrize("args,message", [
    (["--out", "x"], "give --particles"),
    (["--particles", "p", "--out", "x", "--run", "a_b"], "without '_'"),
    (["--particles", "p", "--out", "x", "--orientations", "sideways"], "faceon, edgeon, random:N or THETA,PHI"),
    (["--particles", "p", "--out", "x", "--recipe", "paper", "--redshift", "0.1"], "--redshift applies to"),
    (["--particles", "p", "--out", "x", "--redshift", "-1"], "--redshift '-1'"),
    (["--particles", "p", "--out", "x", "--recipe", "hubble"], "invalid choice"),
    (["--particles", "p", "--out", "x", "--ssp", "nope.npz"], "cannot read the SSP table"),
])
def test_bad_command_lines_are_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert mock_observation.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mock_observation.py: error: ") and message in err[0], err
    assert not os.path.exists(tmp_path / "x" / "metadata.csv")


@pytest.mark.filterwarnings("ignore:Unable to:UserWarning")  # pynbody on each read: units from the Units group
def test_gadget_hdf5_snapshot_through_pynbody_and_the_tng_reader(tmp_path):
    """A second snapshot format: IllustrisTNG-style GadgetHDF (comoving kpc/h, 1e10 Msun/h, formation
    scale factors). pynbody reads it into the original particles; --snapshot takes the TNG reader
    (lib/mocks/tng.py), which reads the same particles and gives the images of its NPZ."""
    pytest.importorskip("pynbody")
    original = mocks.make_galaxy(10.4, 0.2, 2.5, 0.1, n_star=3000, rng=np.random.default_rng(4), n_gas=800)
    snap = str(tmp_path / "snap_099.hdf5")
    write_gadget_hdf(snap, original)
    with pytest.warns(UserWarning):  # pynbody: 'Unable to infer units from HDF attributes' (it uses Units)
        via_pynbody = mocks.read_snapshot(snap).arrays
    src = mocks.snapshot_source(snap)
    assert (src.kind, src.whole, src.name) == ("tng", True, "snap_099")
    via_tng = mocks.read_source(src).arrays
    tol = {"mass": 1e-3, "gas_mass": 1e-3, "gas_temp": 5e-3, "age": 1e-4}  # Msun in g; mu; cosmology tables
    for arrays in (via_pynbody, via_tng):
        for k in ("pos", "vel", "mass", "age", "metals", "gas_pos", "gas_vel", "gas_mass", "gas_temp"):
            np.testing.assert_allclose(arrays[k], original[k], rtol=tol.get(k, 1e-6),
                                       atol=tol.get(k, 1e-6) * np.abs(original[k]).max(), err_msg=k)
    mocks.write_npz(str(tmp_path / "npz" / "snap_099.npz"), via_tng)
    common = ["--recipe", "sdss", "--orientations", "random:2", "--seed", "5", "--run", "tng"]
    for kind, src in (("npz", ["--particles", str(tmp_path / "npz")]), ("gadget", ["--snapshot", snap])):
        assert mock_observation.main([*src, "--out", str(tmp_path / kind), *common]) == 0
    files = sorted(f for f in os.listdir(tmp_path / "npz") if f.endswith(".jpg"))
    assert files == ["tng_snap_099_00.jpg", "tng_snap_099_01.jpg"]
    for f in files:
        assert np.array_equal(pixels(tmp_path / "npz" / f), pixels(tmp_path / "gadget" / f))
