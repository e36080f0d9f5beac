"""Mock observations of simulated galaxies from their particles: the engine of mock_observation.py.

Data flow (one galaxy; ``pipeline.run`` does many, in parallel)::

    sources.py      inputs -> Source (npz, hdf5, tng, eagle, fire, pynbody), each to its reader:
        |           readers.py  particle file (NPZ / HDF5) or pynbody snapshot -> Particles (kpc, km/s, Msun, Gyr, K)
        |           tng.py, eagle.py, fire.py  those codes' HDF5 layouts and units (gadget.py: what they share)
        |
    orientation.py  shrinking-sphere centre, velocity centre, spin axis -> face-on frame;
        |           views (THETA, PHI, PA): faceon, edgeon, random:N, THETA,PHI[,PA]
    plausibility.py unit and range checks (positions in pc, masses in 1e10 Msun, ...): stop or --force
    light.py        SSP table (data/ssp) -> g, r, i luminosity per star particle, clipping counted
    kcorrection.py  sdss recipe: per-particle K-corrections (BC03 spectra x SDSS responses, data/ssp)
    projection.py   smoothing lengths (32 neighbours, once per galaxy); cubic-spline kernel
        |           integrated along the line of sight, flux-conserving, vectorised
    dust.py         optional: the paper's gas screen (Calzetti, R_V = 3.1), per pixel
        |
    recipes.py      paper: 50 kpc, 500x500, Lupton RGB PNG (the paper's mocks)
        |           sdss:  galaxy at redshift z (redshift.py) -> nanomaggies at 0.396"/px ->
        |                  lib/galaxies/imaging.py (PSF, sky noise, SDSS colour JPEG, 64x64)
    pipeline.py     images, optional FITS maps, metadata.csv, mock_observation_run.json
    shards.py       --shard I/N: which galaxies a shard renders, and the merge of the shards' files

``example.py`` writes particle realisations of a few toy galaxies (the embedded example).
This facade re-exports the public names: ``from lib import mocks`` is the one import callers need.
"""
from lib.mocks import projection, readers
from lib.mocks.example import EXAMPLES, make_galaxy, write_examples
from lib.mocks.kcorrection import DEFAULT_KCORR, KCorrector, KTable, load_kcorr
from lib.mocks.light import DEFAULT_SSP, Light, SSPError, SSPTable, load_ssp, ssp_magnitudes, star_light
from lib.mocks.orientation import (Frame, OrientationError, directions, faceon_matrix, find_frame,
                                   parse_orientations, random_directions, shrinking_sphere_centre, view_matrix)
from lib.mocks.pipeline import METADATA_COLUMNS, RUN_JSON, GalaxyResult, Options, render_galaxy, run
from lib.mocks.projection import Grid, project, smoothing_lengths
from lib.mocks.readers import (MockInputError, Particles, read_hdf5, read_npz, read_snapshot, validate, write_hdf5,
                               write_npz)
from lib.mocks.sources import Source, list_sources, read_source, snapshot_source
from lib.mocks.plausibility import check_field, check_particles
from lib.mocks.shards import merge_shards, select_shard
from lib.mocks.recipes import Prepared, View, observed_frame, paper_view, prepare, sdss_maps, sdss_view

__all__ = [
    "merge_shards", "select_shard",
    "projection", "readers", "EXAMPLES", "make_galaxy", "write_examples", "DEFAULT_SSP", "Light", "SSPError",
    "SSPTable", "load_ssp", "ssp_magnitudes", "star_light", "Frame", "OrientationError", "directions",
    "faceon_matrix", "find_frame", "parse_orientations", "random_directions", "shrinking_sphere_centre",
    "view_matrix", "METADATA_COLUMNS", "RUN_JSON", "GalaxyResult", "Options", "render_galaxy", "run", "Grid",
    "project", "smoothing_lengths", "MockInputError", "Particles", "Source", "list_sources", "read_hdf5",
    "read_npz", "read_snapshot", "read_source", "validate", "write_hdf5", "write_npz", "Prepared", "View",
    "paper_view", "prepare", "sdss_maps", "sdss_view", "DEFAULT_KCORR", "KCorrector", "KTable", "load_kcorr",
    "check_field", "check_particles", "observed_frame", "snapshot_source",
]
