"""Readers of real codes' outputs (lib/mocks/tng.py, eagle.py, fire.py) on small files in each code's layout.

Each file is written here with h5py with the group and field names, and the unit attributes, as the
code writes them; the checks are known answers (Msun, kpc, Gyr from the flat-LCDM age formula,
counts of wind particles, the subhalo's own particles, initial- against current-mass light).
"""
import csv
import os

import numpy as np
import pytest

import mock_observation
from lib import mocks
from lib.mocks import gadget

H, A, OM = 0.6774, 0.9, 0.3089  # TNG's Planck 2015 h and Omega_m; the snapshot at a = 0.9 (z = 0.111)
BOX = 35000.0  # ckpc/h (TNG50)


def flat_age_gyr(a, h=H, om=OM):
    """Cosmic time at scale factor a in flat LCDM without radiation (analytic; 1/H0 = 9.7779 Gyr / h)."""
    ol = 1 - om
    return 2 / (3 * np.sqrt(ol)) * 9.777922 / h * np.arcsinh(np.sqrt(ol / om) * np.asarray(a) ** 1.5)


def tng_header(f, npart, nfiles=1):
    hd = f.create_group("Header")
    hd.attrs.update(NumPart_ThisFile=np.asarray(npart, np.int32), NumPart_Total=np.asarray(npart, np.uint32),
                    NumFilesPerSnapshot=nfiles, Time=A, Redshift=1 / A - 1, HubbleParam=H, Omega0=OM,
                    OmegaLambda=1 - OM, OmegaBaryon=0.0486, BoxSize=BOX, MassTable=np.zeros(6),
                    UnitLength_in_cm=3.085678e21, UnitMass_in_g=1.989e43, UnitVelocity_in_cm_per_s=1e5)


def tng_stars(rng, n, centre, metals, aform=None):
    """Star fields in TNG's stored units (ckpc/h, km/s sqrt(a), 1e10 Msun/h) around ``centre``."""
    return {"Coordinates": centre + rng.normal(0, 3.0, (n, 3)), "Velocities": rng.normal(0, 100, (n, 3)),
            "Masses": np.full(n, 1e-4), "GFM_InitialMass": np.full(n, 1.5e-4),
            "GFM_StellarFormationTime": rng.uniform(0.2, 0.85, n) if aform is None else aform,
            "GFM_Metallicity": np.full(n, metals), "ParticleIDs": np.arange(n, dtype=np.uint64)}


def write_fields(group, fields):
    for k, v in fields.items():
        group[k] = v


def write_tng_box(root, rng):
    """A TNG tree: snapdir_099/snap_099.{0,1}.hdf5 and groups_099/fof_subhalo_tab_099.{0,1}.hdf5.

    FoF group 0: subhalos 0 (200 stars, 10 of them wind particles) and 1 (50 stars); group 1: subhalo 2
    (80 stars, near the box corner so that it straddles the periodic boundary); 30 fuzz stars after
    group 0's subhalos. Each subhalo's stars have their own metallicity: 0.01, 0.02, 0.03 (fuzz 0.05).
    """
    snapdir, groups = os.path.join(root, "snapdir_099"), os.path.join(root, "groups_099")
    os.makedirs(snapdir)
    os.makedirs(groups)
    centres = [np.array([10000.0, 12000, 9000]), np.array([10020.0, 12010, 9005]), np.array([1.0, 1.0, BOX - 1])]
    wind_a = np.r_[np.full(5, -0.3), np.zeros(5), np.full(190, 0.5)]  # GFM: <= 0 marks wind-phase cells
    parts = [tng_stars(rng, 200, centres[0], 0.01, aform=wind_a), tng_stars(rng, 50, centres[1], 0.02),
             tng_stars(rng, 30, centres[0], 0.05), tng_stars(rng, 80, centres[2], 0.03)]
    parts[3]["Coordinates"] = np.mod(parts[3]["Coordinates"], BOX)  # the subhalo wraps around the box
    stars = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    n_gas = [40, 0, 0, 20]  # gas of subhalo 0 and subhalo 2
    gas_all = {"Coordinates": np.concatenate([centres[0] + rng.normal(0, 4, (40, 3)),
                                              np.mod(centres[2] + rng.normal(0, 4, (20, 3)), BOX)]),
               "Velocities": rng.normal(0, 50, (60, 3)), "Masses": np.full(60, 2e-4),
               "InternalEnergy": np.full(60, 1.2e4), "ElectronAbundance": np.full(60, 1.1),
               "GFM_Metallicity": np.full(60, 0.01)}
    cut4, cut0 = 230, 40  # chunk 0 ends inside group 0's fuzz (stars) / after subhalo 0's gas
    for i, (s4, s0) in enumerate(((slice(0, cut4), slice(0, cut0)), (slice(cut4, None), slice(cut0, None)))):
        with __import__("h5py").File(os.path.join(snapdir, f"snap_099.{i}.hdf5"), "w") as f:
            n4, n0 = len(stars["Masses"][s4]), len(gas_all["Masses"][s0])
            tng_header(f, [n0, 0, 0, 0, n4, 0], nfiles=2)
            write_fields(f.create_group("PartType4"), {k: v[s4] for k, v in stars.items()})
            write_fields(f.create_group("PartType0"), {k: v[s0] for k, v in gas_all.items()})
    glen = np.zeros((2, 6), np.int32)
    glen[0, 4], glen[1, 4], glen[0, 0], glen[1, 0] = 280, 80, n_gas[0], n_gas[3]
    slen = np.zeros((3, 6), np.int32)
    slen[:, 4], slen[:, 0] = [200, 50, 80], [40, 0, 20]
    cat = [{"Group": {"GroupLenType": glen[:1], "GroupFirstSub": np.array([0], np.int32), "GroupNsubs": [2],
                      "GroupPos": centres[:1]},
            "Subhalo": {"SubhaloLenType": slen[:2], "SubhaloGrNr": np.array([0, 0], np.int32),
                        "SubhaloPos": np.array(centres[:2])}},
           {"Group": {"GroupLenType": glen[1:], "GroupFirstSub": np.array([2], np.int32), "GroupNsubs": [1],
                      "GroupPos": centres[2:]},
            "Subhalo": {"SubhaloLenType": slen[2:], "SubhaloGrNr": np.array([1], np.int32),
                        "SubhaloPos": np.array(centres[2:])}}]
    for i, c in enumerate(cat):
        with __import__("h5py").File(os.path.join(groups, f"fof_subhalo_tab_099.{i}.hdf5"), "w") as f:
            f.create_group("Header").attrs.update(Ngroups_ThisFile=1, Nsubgroups_ThisFile=len(c["Subhalo"]["SubhaloGrNr"]),
                                                  Ngroups_Total=2, Nsubgroups_Total=3, NumFiles=2)
            for grp, fields in c.items():
                write_fields(f.create_group(grp), fields)
    return os.path.join(snapdir, "snap_099.1.hdf5"), stars


def test_tng_subhalo_own_particles_units_ages_and_winds(tmp_path):
    snap, stars = write_tng_box(str(tmp_path), np.random.default_rng(1))
    p0 = mocks.read_source(mocks.snapshot_source(snap, subhalo=0))
    assert p0.name == "snap_099-s0" and p0.n_wind == 10 and p0.n_star == 190
    np.testing.assert_allclose(p0["metals"], 0.01)  # only subhalo 0's stars, winds left out
    np.testing.assert_allclose(p0["mass"], 1e-4 * 1e10 / H)  # 1e10 Msun/h -> Msun
    np.testing.assert_allclose(p0["massform"], 1.5e-4 * 1e10 / H)  # GFM_InitialMass: the light's mass
    np.testing.assert_allclose(p0["age"], flat_age_gyr(A) - flat_age_gyr(0.5), rtol=1e-6)
    np.testing.assert_allclose(p0["pos"], stars["Coordinates"][10:200] * A / H)  # ckpc/h -> kpc
    np.testing.assert_allclose(p0["vel"], stars["Velocities"][10:200] * np.sqrt(A))
    assert p0.n_gas == 40  # gas: u = 1.2e4 (km/s)^2, x_e = 1.1, X_H = 0.76 (TNG's documented formula)
    mu = 4 / (1 + 3 * 0.76 + 4 * 0.76 * 1.1) * 1.67262178e-24
    np.testing.assert_allclose(p0["gas_temp"], (5 / 3 - 1) * 1.2e4 * 1e10 / 1.38065e-16 * mu, rtol=1e-9)
    p1 = mocks.read_source(mocks.snapshot_source(snap, subhalo=1))  # across the chunk boundary, no gas
    assert (p1.n_star, p1.n_gas, p1.n_wind) == (50, 0, 0)
    np.testing.assert_allclose(p1["metals"], 0.02)
    p2 = mocks.read_source(mocks.snapshot_source(snap, subhalo=2))  # straddles the periodic boundary
    assert p2.n_star == 80 and np.ptp(p2["pos"], axis=0).max() < 40 * A / H
    np.testing.assert_allclose(p2["metals"], 0.03)
    g0 = mocks.read_source(mocks.snapshot_source(snap, halo=0))  # the FoF group: both subhalos and the fuzz
    assert (g0.n_star, g0.n_wind) == (270, 10)
    assert sorted(np.unique(g0["metals"]).round(3)) == [0.01, 0.02, 0.05]


def test_tng_selection_errors_are_one_line(tmp_path, capsys):
    snap, _ = write_tng_box(str(tmp_path), np.random.default_rng(1))
    with pytest.raises(mocks.MockInputError, match="subhalo 2 belongs to halo 1, not to --halo 0"):
        mocks.read_source(mocks.snapshot_source(snap, halo=0, subhalo=2))
    with pytest.raises(mocks.MockInputError, match=r"subhalo 7 does not exist \(3 subhalos\)"):
        mocks.read_source(mocks.snapshot_source(snap, subhalo=7))
    os.rename(tmp_path / "groups_099", tmp_path / "elsewhere")
    out = str(tmp_path / "out")
    assert mock_observation.main(["--snapshot", snap, "--subhalo", "0", "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no group catalogue fof_subhalo_tab_099.*.hdf5" in err[0] and "--groupcat" in err[0]
    assert mock_observation.main(["--snapshot", snap, "--subhalo", "0", "--groupcat",
                                  str(tmp_path / "elsewhere"), "--out", out, "--orientations", "faceon"]) == 0


def write_cutout(path, rng, with_initial=True, n=3000):
    """A TNG web-API cutout of one subhalo: Header, PartType0, PartType1 and PartType4 in one file."""
    import h5py
    arr = mocks.make_galaxy(10.3, 0.2, 2.5, 0.1, n_star=n, rng=rng, n_gas=600)
    centre = np.array([BOX - 2.0, 500.0, 700.0])  # ckpc/h, near the box edge
    with h5py.File(path, "w") as f:
        tng_header(f, [600, 100, 0, 0, n + 20, 0])
        aform = np.r_[np.full(n, 0.5), -np.ones(20)]  # 20 wind particles at the end
        s = f.create_group("PartType4")
        s["Coordinates"] = np.mod(np.r_[arr["pos"], np.zeros((20, 3))] * H / A + centre, BOX)
        s["Velocities"] = np.r_[arr["vel"], np.zeros((20, 3))] / np.sqrt(A)
        s["Masses"] = np.r_[arr["mass"], np.ones(20)] * H / 1e10
        if with_initial:
            s["GFM_InitialMass"] = np.r_[arr["mass"] * 1.5, np.ones(20)] * H / 1e10
        s["GFM_StellarFormationTime"] = aform
        s["GFM_Metallicity"] = np.r_[arr["metals"], np.zeros(20)]
        g = f.create_group("PartType0")
        g["Coordinates"] = np.mod(arr["gas_pos"] * H / A + centre, BOX)
        g["Velocities"], g["Masses"] = arr["gas_vel"] / np.sqrt(A), arr["gas_mass"] * H / 1e10
        g["InternalEnergy"], g["ElectronAbundance"] = np.full(600, 1e3), np.full(600, 1.16)
        f.create_group("PartType1")["Coordinates"] = rng.uniform(0, 10, (100, 3))
    return arr


def test_tng_cutout_is_one_galaxy_with_initial_mass_light(tmp_path, capsys):
    os.makedirs(tmp_path / "cutouts")
    arr = write_cutout(str(tmp_path / "cutouts" / "cutout_123.hdf5"), np.random.default_rng(2))
    write_cutout(str(tmp_path / "cutouts" / "cutout_124.hdf5"), np.random.default_rng(2), with_initial=False)
    sources, problems = mocks.list_sources([str(tmp_path / "cutouts")])
    assert problems == [] and [(s.kind, s.name) for s in sources] == [("tng", "cutout_123"), ("tng", "cutout_124")]
    p, q = (mocks.read_source(s) for s in sources)
    assert (p.n_star, p.n_wind, p.n_gas) == (3000, 20, 600)
    np.testing.assert_allclose(p["mass"], arr["mass"], rtol=1e-12)
    np.testing.assert_allclose(p["pos"] - p["pos"].mean(0), arr["pos"] - arr["pos"].mean(0), atol=1e-9)
    ssp = mocks.load_ssp()
    lp, lq = (mocks.prepare(x, ssp, with_dust=False).light.lum["r"].sum() for x in (p, q))
    assert -2.5 * np.log10(lp / lq) == pytest.approx(-2.5 * np.log10(1.5), abs=1e-9)  # -0.44 mag: initial mass
    out = str(tmp_path / "out")
    assert mock_observation.main(["--particles", str(tmp_path / "cutouts"), "--out", out, "--orientations",
                                  "faceon", "--redshift", "0.05"]) == 0
    err = capsys.readouterr().err
    assert "cutout_124.hdf5: no PartType4/GFM_InitialMass" in err and "cutout_123" not in err
    with open(os.path.join(out, "metadata.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["galaxy"], r["n_wind"], r["n_star"]) for r in rows] == [("cutout_123", "20", "3000"),
                                                                       ("cutout_124", "20", "3000")]


EAGLE_UNITS = {  # (CGSConversionFactor, h-scale-exponent, aexp-scale-exponent) as EAGLE writes them
    "Coordinates": (3.085678e24, -1.0, 1.0), "Velocity": (1e5, 0.0, 0.5), "Mass": (1.989e43, -1.0, 0.0),
    "InitialMass": (1.989e43, -1.0, 0.0), "StellarFormationTime": (1.0, 0.0, 0.0),
    "SmoothedMetallicity": (1.0, 0.0, 0.0), "Metallicity": (1.0, 0.0, 0.0),
    "SmoothingLength": (3.085678e24, -1.0, 1.0), "Temperature": (1.0, 0.0, 0.0), "GroupNumber": (1.0, 0.0, 0.0),
    "SubGroupNumber": (1.0, 0.0, 0.0)}


def write_eagle(folder, rng, drop_attr=None):
    """snap_028_z000p000.{0,1}.hdf5: FoF group 1 (subgroups 0: 120 stars, 1: 30) and group 2 (40 stars)."""
    import h5py
    os.makedirs(folder, exist_ok=True)
    h, a = 0.6777, 0.95
    groups = np.r_[np.ones(150, int), np.full(40, 2)]
    subs = np.r_[np.zeros(120, int), np.ones(30, int), np.zeros(40, int)]
    n = len(groups)
    stars = {"Coordinates": np.array([12.5, 3.0, 7.0]) + rng.normal(0, 0.004, (n, 3)),  # cMpc/h
             "Velocity": rng.normal(0, 100, (n, 3)), "Mass": np.full(n, 1.2e-4), "InitialMass": np.full(n, 1.8e-4),
             "StellarFormationTime": np.r_[np.full(150, 0.4), np.full(40, 0.7)],
             "SmoothedMetallicity": np.full(n, 0.012), "Metallicity": np.full(n, 0.5),
             "SmoothingLength": np.full(n, 0.002), "GroupNumber": groups, "SubGroupNumber": subs}
    gas = {"Coordinates": np.array([12.5, 3.0, 7.0]) + rng.normal(0, 0.004, (60, 3)),
           "Velocity": rng.normal(0, 50, (60, 3)), "Mass": np.full(60, 1.5e-4), "Temperature": np.full(60, 8e3),
           "SmoothingLength": np.full(60, 0.003), "GroupNumber": np.ones(60, int), "SubGroupNumber": np.zeros(60, int)}
    for i, (s4, s0) in enumerate(((slice(0, 100), slice(0, 60)), (slice(100, None), slice(60, None)))):
        with h5py.File(os.path.join(folder, f"snap_028_z000p000.{i}.hdf5"), "w") as f:
            n4, n0 = len(groups[s4]), len(gas["Mass"][s0])
            f.create_group("Header").attrs.update(
                NumPart_ThisFile=np.array([n0, 0, 0, 0, n4, 0], np.int32), NumFilesPerSnapshot=2, ExpansionFactor=a,
                Time=a, Redshift=1 / a - 1, HubbleParam=h, Omega0=0.307, OmegaLambda=0.693, BoxSize=25.0,
                MassTable=np.zeros(6))
            for name, fields, sl in (("PartType4", stars, s4), ("PartType0", gas, s0)):
                grp = f.create_group(name)
                for k, v in fields.items():
                    d = grp.create_dataset(k, data=v[sl])
                    cgs, hexp, aexp = EAGLE_UNITS[k]
                    units = {"CGSConversionFactor": cgs, "h-scale-exponent": hexp, "aexp-scale-exponent": aexp,
                             "VarDescription": np.bytes_(k)}
                    d.attrs.update({u: v for u, v in units.items() if not (k == "Mass" and u == drop_attr)})
    return os.path.join(folder, "snap_028_z000p000.0.hdf5"), stars, h, a


def test_eagle_units_from_the_attributes_smoothing_and_subgroups(tmp_path):
    snap, stars, h, a = write_eagle(str(tmp_path / "eagle"), np.random.default_rng(3))
    src = mocks.snapshot_source(snap, halo=1, subhalo=0)
    assert (src.kind, src.name) == ("eagle", "snap_028_z000p000-h1-s0")
    p = mocks.read_source(src)
    assert p.n_star == 120 and p.n_gas == 60
    np.testing.assert_allclose(p["pos"], stars["Coordinates"][:120] * a / h * 1000, rtol=1e-12)  # cMpc/h -> kpc
    np.testing.assert_allclose(p["vel"], stars["Velocity"][:120] * np.sqrt(a))
    np.testing.assert_allclose(p["mass"], 1.2e-4 * 1e10 / h)
    np.testing.assert_allclose(p["massform"], 1.8e-4 * 1e10 / h)  # InitialMass
    np.testing.assert_allclose(p["metals"], 0.012)  # SmoothedMetallicity, not the particle Metallicity
    np.testing.assert_allclose(p["smooth"], 0.002 * a / h * 1000 / 2)  # full support H -> pynbody's h = H/2
    np.testing.assert_allclose(p["gas_smooth"], 0.003 * a / h * 1000 / 2)
    np.testing.assert_allclose(p["gas_temp"], 8e3)
    np.testing.assert_allclose(p["age"], flat_age_gyr(a, h, 0.307) - flat_age_gyr(0.4, h, 0.307), rtol=1e-6)
    assert mocks.read_source(mocks.snapshot_source(snap, halo=1)).n_star == 150
    assert mocks.read_source(mocks.snapshot_source(snap, halo=2)).n_star == 40
    with pytest.raises(mocks.MockInputError, match="numbered within their group"):
        mocks.read_source(mocks.snapshot_source(snap, subhalo=0))
    snap2, *_ = write_eagle(str(tmp_path / "bad"), np.random.default_rng(3), drop_attr="h-scale-exponent")
    with pytest.raises(mocks.MockInputError, match="PartType4/Mass has no h-scale-exponent attribute"):
        mocks.read_source(mocks.snapshot_source(snap2))


def test_fire_metallicity_column_0_formation_scale_factor_and_gas(tmp_path):
    import h5py
    rng = np.random.default_rng(4)
    h, a, n = 0.702, 1.0, 500
    z = np.zeros((n, 11))
    z[:, 0], z[:, 1], z[:, 10] = 0.015, 0.27, 0.001  # total, He, ..., Fe (FIRE-2's 11 columns)
    zg = np.zeros((80, 11))
    zg[:, 0], zg[:, 1] = 0.01, 0.3
    path = str(tmp_path / "snapshot_600.hdf5")
    with h5py.File(path, "w") as f:
        f.create_group("Header").attrs.update(
            NumPart_ThisFile=np.array([80, 0, 0, 0, n, 0], np.int32), NumFilesPerSnapshot=1, Time=a, Redshift=0.0,
            HubbleParam=h, Omega0=0.272, OmegaLambda=0.728, BoxSize=60000.0, ComovingIntegrationOn=1)
        s = f.create_group("PartType4")
        s["Coordinates"] = 30000 + rng.normal(0, 3, (n, 3))
        s["Velocities"], s["Masses"] = rng.normal(0, 100, (n, 3)), np.full(n, 5e-6)
        s["StellarFormationTime"], s["Metallicity"] = np.full(n, 0.6), z
        g = f.create_group("PartType0")
        g["Coordinates"], g["Velocities"] = 30000 + rng.normal(0, 3, (80, 3)), rng.normal(0, 30, (80, 3))
        g["Masses"], g["InternalEnergy"], g["ElectronAbundance"] = np.full(80, 5e-6), np.full(80, 50.0), np.full(80, 0.0)
        g["SmoothingLength"], g["Metallicity"] = np.full(80, 0.4), zg
    assert gadget.detect_code(path) == "fire"
    p = mocks.read_source(mocks.snapshot_source(path))
    np.testing.assert_allclose(p["metals"], 0.015)  # column 0: the total
    np.testing.assert_allclose(p["mass"], 5e-6 * 1e10 / h)
    np.testing.assert_allclose(p["massform"], p["mass"])  # FIRE stores no initial mass: said in the notes
    assert any("no initial stellar mass" in note for note in p.notes)
    np.testing.assert_allclose(p["age"], flat_age_gyr(1.0, h, 0.272) - flat_age_gyr(0.6, h, 0.272), rtol=1e-6)
    np.testing.assert_allclose(p["gas_smooth"], 0.4 / h / 2)
    y = 0.3 / (4 * 0.7)  # neutral gas (x_e = 0) with its own helium: mu = (1 + 4y) / (1 + y)
    np.testing.assert_allclose(p["gas_temp"], (2 / 3) * 50 * 1e10 * (1 + 4 * y) / (1 + y) * 1.67262178e-24 / 1.38065e-16)
    with pytest.raises(mocks.MockInputError, match="no halo catalogue"):
        mocks.read_source(mocks.snapshot_source(path, halo=0))
