"""Synthetic SDSS-like galaxy populations: what plays "SDSS" where the real cutouts are not at hand.

Data flow::

    relations.py   the published SDSS relations, each once with its reference (mass function,
        |          flux limit, early fraction, colours, B/T, axis ratios, Shen sizes, Petrosian radii)
    config.py      a population config (observed parameters + knobs, named presets)
        |
    population.py  draws galaxies from relations.py (mass, redshift, type, size, B/T, colours),
        |          neighbours and stars per image from seeded streams, renders them with GalSim
    imaging.py     the SDSS imaging model: g, r, i maps -> PSF, sky noise, SDSS colour JPEG (64x64)
        |
    generate.py    n images -> out/<class_dir>/<name>_<index>.jpg + metadata.csv (logmstar, z, type,
                   r50, bt, q, g_r ... per galaxy) + generation.json

``from lib import galaxies`` is the one import callers need: this facade re-exports the
public names of the modules (``galaxies.generate``, ``galaxies.make_image``,
``galaxies.load_config``, ``galaxies.imaging`` ...).
"""
from dataclasses import fields  # noqa: F401 - make_galaxies.py lists fields(galaxies.Params)

from lib.galaxies import imaging, relations  # noqa: F401
from lib.galaxies.config import (  # noqa: F401
    CONFIG_KEYS, KNOB_DOC, KNOBS, RANKED_KNOBS, ConfigError, Params, load_config, presets, resolve, validate_config)
from lib.galaxies.generate import METADATA, RUN_INFO, default_class_dir, generate  # noqa: F401
from lib.galaxies.population import (  # noqa: F401
    EXTINCTION_COEFF, R_LIMIT, draw_galaxy, draw_neighbours, draw_stars, make_image)
