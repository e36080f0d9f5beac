"""read_catalog.py on small CAST FITS and Mstar .dat files written in the real formats."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from SDSS_cutouts import read_catalog  # noqa: E402

N = 60
# UPenn_PhotDec_CAST.fits columns and types (sdss.md section 3)
CAST_DTYPES = [("galcount", "i4"), ("objid", "i8"), ("SDSSIAU", "U24"), ("badflag", "i4"), ("nchild", "i2"),
               ("mode", "i2"), ("run", "i2"), ("rerun", "i2"), ("camCol", "i2"), ("field", "i2"), ("obj", "i2"),
               ("stripe", "i4"), ("startmu", "f8"), ("specobjid", "i8"), ("plate", "i2"), ("mjd", "f8"),
               ("fiberid", "i2"), ("ra", "f4"), ("dec", "f4"), ("z", "f4"), ("veldisp", "f4"), ("veldispErr", "f4"),
               ("eclass", "f4"), ("p_el_debiased", "f4"), ("p_cs_debiased", "f4"), ("spiral", "i4"),
               ("elliptical", "i4"), ("uncertain", "i4")]


def make_cast(path, n=N, drop=(), edit=None):
    rng = np.random.default_rng(1)
    cols = {}
    for name, dt in CAST_DTYPES:
        if name in drop:
            continue
        if dt.startswith("U"):
            cols[name] = np.array([f"SDSS J{i:06d}.00+000000.0" for i in range(n)])
        else:
            cols[name] = rng.integers(1, 1000, n).astype(dt) if dt[0] == "i" else rng.uniform(0, 1, n).astype(dt)
    cols["galcount"] = np.arange(1, n + 1, dtype="i4")
    if "ra" in cols:
        cols["ra"] = rng.uniform(0, 360, n).astype("f4")
    if "dec" in cols:
        cols["dec"] = rng.uniform(-10, 70, n).astype("f4")
    cols["z"] = rng.uniform(0.005, 0.4, n).astype("f4")
    if edit:
        edit(cols)
    Table(cols).write(path, format="fits", overwrite=True)
    return cols


def mass_col4(n=N):
    """log M* in column 4: a spread around 9, exactly 9.0 twice, and the last 4 rows missing (-999)."""
    m = 8.0 + (np.arange(n) % 30) / 10.0        # 8.0 .. 10.9
    m[-4:] = -999.0
    return m


def make_dat(path, n=N, ncols=10, galcount=None):
    g = np.arange(1, n + 1) if galcount is None else galcount
    m4 = mass_col4(n)
    flag = np.where(m4 == -999, -999, 0)
    cols = [g, flag] + [m4 + 0.01 * (j - 3) for j in range(2, 10)]   # column 4 (j = 3) is m4 itself
    cols = [np.where(m4 == -999, -999.0, c) if i >= 2 else c for i, c in enumerate(cols)]
    np.savetxt(path, np.column_stack(cols)[:, :ncols],
               fmt=["%8d", "%5d"] + ["%10.5f"] * (ncols - 2))


@pytest.fixture
def files(tmp_path):
    cast, dat = tmp_path / "UPenn_PhotDec_CAST.fits", tmp_path / "UPenn_PhotDec_Mstar_mlMendel14.dat"
    cols = make_cast(cast)
    make_dat(dat)
    return str(cast), str(dat), cols


def run(cast, dat, outdir, *extra):
    return read_catalog.main(["--cast", cast, "--mstar", dat, "--outdir", str(outdir), *extra])


def test_join_cut_and_outputs(files, tmp_path, capsys):
    cast, dat, cols = files
    out = tmp_path / "out"
    assert run(cast, dat, out) == 0
    m = mass_col4()
    keep = m >= 9.0
    n_keep = int(keep.sum())
    assert n_keep == 36                                     # 20 of each 30 (9.0 .. 10.9) minus 4 missing
    stdout = capsys.readouterr().out
    assert f"joined {N}" in stdout and f"{N} -> {n_keep} rows" in stdout and "4 row(s) without a mass" in stdout
    cat = pd.read_csv(out / "catalog.csv")
    assert {"galcount", "ra", "dec", "z", "logmstar", "orig_index"} <= set(cat.columns)
    assert cat["galcount"].tolist() == (np.arange(1, N + 1)[keep]).tolist()
    assert cat["orig_index"].tolist() == list(range(n_keep))
    assert np.allclose(cat["logmstar"], m[keep], atol=1e-5) and cat["logmstar"].min() == 9.0
    # RA/Dec: the file's float32 carried exactly into float64 (CSV round-trips float64)
    assert np.array_equal(cat["ra"].to_numpy(), cols["ra"][keep].astype(np.float64))
    coord = np.load(out / "coord.npy")
    assert coord.dtype == np.float64 and coord.shape == (n_keep, 2)
    assert np.array_equal(coord[:, 0], cols["ra"][keep].astype(np.float64))
    assert np.array_equal(coord[:, 1], cols["dec"][keep].astype(np.float64))
    rec = json.load(open(out / "catalog_counts.json"))
    assert rec["counts"]["rows_joined"] == N and rec["counts"]["rows_after_cut"] == n_keep
    assert rec["options"]["min_logmstar"] == 9.0 and "astropy" in rec["versions"]
    assert not (out / "bad_coordinates.csv").exists()
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


def test_cut_and_column_are_configurable(files, tmp_path):
    cast, dat, _ = files
    assert run(cast, dat, tmp_path / "a", "--min-logmstar", "10") == 0
    assert len(pd.read_csv(tmp_path / "a" / "catalog.csv")) == 2 * 10 - 4   # 10.0 .. 10.9 twice, minus missing
    assert run(cast, dat, tmp_path / "b", "--mass-col", "3") == 0          # column 3 = column 4 - 0.01
    assert len(pd.read_csv(tmp_path / "b" / "catalog.csv")) == 2 * 19 - 4  # 9.0 no longer passes
    assert run(cast, dat, tmp_path / "c", "--mass-column", "3") == 0       # the old spelling still works
    assert (tmp_path / "c" / "catalog.csv").read_bytes() == (tmp_path / "b" / "catalog.csv").read_bytes()


def test_partial_mass_file_inner_join(files, tmp_path, capsys):
    cast, _, _ = files
    dat = tmp_path / "half.dat"
    make_dat(dat, n=30)                                      # only galcount 1..30
    assert run(cast, str(dat), tmp_path / "out") == 0
    assert "joined 30" in capsys.readouterr().out


def test_bad_coordinates_reported_and_skipped(tmp_path, capsys):
    cast, dat = tmp_path / "c.fits", tmp_path / "m.dat"

    def spoil(cols):
        cols["ra"][10] = np.nan
        cols["dec"][11] = 95.0
        cols["ra"][12] = 361.0
    make_cast(cast, edit=spoil)
    make_dat(dat)
    assert run(str(cast), str(dat), tmp_path / "out") == 0
    assert "skipped 3 row(s) with non-finite or out-of-range RA/Dec, e.g. galcount [11, 12, 13]" in \
        capsys.readouterr().out
    cat = pd.read_csv(tmp_path / "out" / "catalog.csv")
    assert not {11, 12, 13} & set(cat["galcount"]) and len(cat) == 36 - 3   # all three pass the mass cut
    assert pd.read_csv(tmp_path / "out" / "bad_coordinates.csv")["galcount"].tolist() == [11, 12, 13]


@pytest.mark.parametrize("case, message", [
    ("missing_dec", "missing required column(s) ['dec']"),
    ("dup_cast", "duplicate galcount"),
    ("dup_dat", "duplicate galcount"),
    ("narrow_dat", "need at least 4"),
    ("not_fits", "cannot read"),
    ("no_file", "not found"),
    ("bad_outdir", "Not a directory"),
])
def test_bad_input_one_line_error(tmp_path, capsys, case, message):
    cast, dat, out = tmp_path / "c.fits", tmp_path / "m.dat", tmp_path / "out"

    def dup(cols):
        cols["galcount"][5] = 3
    make_cast(cast, drop=("dec",) if case == "missing_dec" else (), edit=dup if case == "dup_cast" else None)
    galcount = np.r_[np.arange(1, N), 7] if case == "dup_dat" else None
    make_dat(dat, ncols=3 if case == "narrow_dat" else 10, galcount=galcount)
    if case == "not_fits":
        cast.write_text("<html>not a table</html>")
    if case == "no_file":
        dat = tmp_path / "absent.dat"
    if case == "bad_outdir":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "sub"
    assert run(str(cast), str(dat), out) == 2
    err = capsys.readouterr().err
    assert err.startswith("read_catalog: error:") and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists() or not os.listdir(out)
