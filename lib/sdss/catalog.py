"""Meert et al. UPenn PhotDec catalogue -> the paper's SDSS galaxy sample.

Reads ``UPenn_PhotDec_CAST.fits`` (binary table, HDU 1: galcount, ra, dec, z, ...)
and ``UPenn_PhotDec_Mstar_mlMendel14.dat`` (whitespace-separated, no header,
10 columns; column 4 = ``Mstar_Tab5_Truncated``, log10(M*/Msun), -999 missing),
joins them on ``galcount`` (inner join, as the original notebook's
``astropy.table.join``) and keeps log M* >= 9 (Jin et al. 2024, Sec. 2.1).
For the real files: 670,722 joined rows -> 643,663 after the cut.

References: Meert, Vikram & Bernardi 2015, MNRAS 446, 3943; Mendel et al. 2014,
ApJS 210, 3.
"""
from __future__ import annotations


import numpy as np
import pandas as pd
from astropy.io import ascii as astropy_ascii
from astropy.table import Table

__all__ = ["CatalogError", "read_cast", "read_mstar", "join_catalogues",
           "valid_coordinates", "build_sample", "CAST_COLUMNS"]

# Columns taken from CAST; galcount, ra, dec and z are required, the others kept when present
CAST_COLUMNS = ("galcount", "objid", "ra", "dec", "z", "run", "rerun", "camCol", "field")
REQUIRED_CAST = ("galcount", "ra", "dec", "z")
MISSING_MASS = -999.0  # the .dat files' missing-value marker


class CatalogError(ValueError):
    """The catalogue files are missing, malformed or inconsistent (one-line message)."""


def _check_unique(galcount: np.ndarray, what: str) -> None:
    uniq, counts = np.unique(galcount, return_counts=True)
    dup = uniq[counts > 1]
    if dup.size:
        raise CatalogError(f"{what}: {dup.size} duplicate galcount value(s), e.g. {dup[:5].tolist()}")


def read_cast(path: str) -> pd.DataFrame:
    """Read the CAST FITS table.

    Parameters
    ----------
    path : str
        ``UPenn_PhotDec_CAST.fits``; the binary table is read from the first
        table HDU.

    Returns
    -------
    pandas.DataFrame
        One row per galaxy, columns from ``CAST_COLUMNS`` that exist; ``ra``
        and ``dec`` (deg) cast from the file's float32 to float64.
    """
    try:
        tab = Table.read(path, format="fits")
    except FileNotFoundError:
        raise CatalogError(f"CAST file not found: {path}") from None
    except Exception as exc:  # astropy raises several types for non-FITS input
        raise CatalogError(f"cannot read {path} as a FITS table: {exc}") from None
    names = {n.lower(): n for n in tab.colnames}  # FITS column names are case-insensitive
    missing = [c for c in REQUIRED_CAST if c.lower() not in names]
    if missing:
        raise CatalogError(f"{path}: missing required column(s) {missing}; found {tab.colnames[:12]}")
    out = {}
    for col in CAST_COLUMNS:
        if col.lower() in names:
            values = np.asarray(tab[names[col.lower()]])
            out[col] = values.astype(values.dtype.newbyteorder("="))  # FITS is big-endian
    df = pd.DataFrame(out)
    df["galcount"] = df["galcount"].astype(np.int64)
    # float32 in the file gives ~0.05 arcsec at RA ~ 360 deg; float64 so URLs/coord.npy carry it exactly
    df["ra"] = df["ra"].astype(np.float64)
    df["dec"] = df["dec"].astype(np.float64)
    df["z"] = df["z"].astype(np.float64)
    _check_unique(df["galcount"].to_numpy(), path)
    return df


def read_mstar(path: str, mass_column: int = 4) -> pd.DataFrame:
    """Read a Meert ``UPenn_PhotDec_Mstar_*.dat`` file.

    Parameters
    ----------
    path : str
        Whitespace-separated table without a header; column 1 is galcount.
    mass_column : int
        1-based column holding log10(M*/Msun); 4 (``Mstar_Tab5_Truncated``)
        is the one Jin et al. cut on.

    Returns
    -------
    pandas.DataFrame
        Columns ``galcount`` (int64) and ``logmstar`` (float64, log10 Msun;
        the file's -999 becomes NaN).
    """
    try:
        tab = astropy_ascii.read(path, format="no_header", guess=False, fast_reader=True)
    except FileNotFoundError:
        raise CatalogError(f"mass file not found: {path}") from None
    except Exception as exc:
        raise CatalogError(f"cannot read {path} as a whitespace-separated table: {exc}") from None
    if len(tab.colnames) < max(2, mass_column):
        raise CatalogError(f"{path}: has {len(tab.colnames)} column(s), need at least {max(2, mass_column)} "
                           f"(galcount in column 1, log M* in column {mass_column})")
    try:
        galcount = np.asarray(tab[tab.colnames[0]], dtype=np.float64)
        mass = np.asarray(tab[tab.colnames[mass_column - 1]], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"{path}: non-numeric galcount or mass column: {exc}") from None
    if not np.all(np.isfinite(galcount)) or np.any(galcount != np.round(galcount)):
        raise CatalogError(f"{path}: column 1 (galcount) holds non-integer values")
    mass[mass <= MISSING_MASS] = np.nan
    df = pd.DataFrame({"galcount": galcount.astype(np.int64), "logmstar": mass})
    _check_unique(df["galcount"].to_numpy(), path)
    return df


def join_catalogues(cast: pd.DataFrame, mstar: pd.DataFrame) -> pd.DataFrame:
    """Inner join on ``galcount``, keeping the CAST row order (= galcount order in the real files)."""
    return cast.merge(mstar, on="galcount", how="inner", sort=False, validate="one_to_one")


def valid_coordinates(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Boolean mask, shape (N,): finite, 0 <= ra < 360 deg and -90 <= dec <= 90 deg."""
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(ra) & np.isfinite(dec) & (ra >= 0) & (ra < 360) & (dec >= -90) & (dec <= 90)


def build_sample(cast: pd.DataFrame, mstar: pd.DataFrame, min_logmstar: float = 9.0
                 ) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Join, drop rows with bad coordinates, apply the mass cut.

    Parameters
    ----------
    cast, mstar : pandas.DataFrame
        From ``read_cast`` and ``read_mstar``.
    min_logmstar : float
        Keep log10(M*/Msun) >= this (the paper: 9). Missing masses never pass.

    Returns
    -------
    sample : pandas.DataFrame
        The cut table in catalogue order, with ``orig_index`` = the row number
        in the original's cut table (its cutout ``<orig_index>.png``).
    counts : dict
        Row counts at each step.
    bad : pandas.DataFrame
        Joined rows dropped for non-finite or out-of-range RA/Dec.
    """
    joined = join_catalogues(cast, mstar)
    ok = valid_coordinates(joined["ra"], joined["dec"])
    with np.errstate(invalid="ignore"):
        keep = joined["logmstar"].to_numpy() >= min_logmstar  # NaN (missing mass) compares False
    # the original numbered the rows of the mass-cut table; keep that index for compatibility
    orig_index = np.full(len(joined), -1, dtype=np.int64)
    orig_index[keep] = np.arange(int(keep.sum()))
    joined.insert(1, "orig_index", orig_index)
    sample = joined[keep & ok].reset_index(drop=True)
    counts = {"rows_cast": len(cast), "rows_mstar": len(mstar), "rows_joined": len(joined),
              "rows_bad_coordinates": int((~ok).sum()), "rows_missing_mass": int(joined["logmstar"].isna().sum()),
              "min_logmstar": float(min_logmstar), "rows_mass_cut": int(keep.sum()),
              "rows_after_cut": len(sample)}
    return sample, counts, joined[~ok].reset_index(drop=True)
