"""Population configs: the parameters, knobs and presets of population.py, and their checks.

A population is a config ``{"name", "description", "knobs": {knob: 1..3}, "params": {...}}``:
the ``observed`` parameters (:class:`Params` defaults: an SDSS-like population) plus
optional *knobs* that push one physical property away from it by a strength 1..3, then
explicit parameter overrides.  Named presets are ``observed`` and ``<knob>_<strength>``
for every knob in :data:`KNOBS`.  Every check raises :class:`ConfigError` with a one-line
message naming the field, before anything is generated.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

import numpy as np
import yaml

from lib.galaxies import imaging

class ConfigError(ValueError):
    """An invalid population config; the message is one line naming the field."""


@dataclass(frozen=True)
class Params:
    """Population parameters; defaults are the ``observed`` (SDSS-like) population."""

    size_scale: float = 1.0         # multiplies the size-mass relation (both components)
    bulge_n: float = 4.0            # early-type bulge Sersic index (late types: this - 2.5; GalSim 0.3..6.2)
    bulge_size_scale: float = 1.0   # extra factor on bulge r_e only
    bulge_fraction_shift: float = 0.0  # added to B/T (clipped to 0..1)
    bulge_flux_scale: float = 1.0   # multiplies the bulge light (extra central stars, disc unchanged)
    clump_fraction: float = 0.0     # fraction of disc light in star-forming knots
    n_clumps: int = 25              # knots per disc
    colour_shift_gr: float = 0.0    # added to observed g-r of the main galaxy (mag)
    colour_shift_ri: float = 0.0    # added to observed r-i of the main galaxy (mag)
    psf_scale: float = 1.0          # multiplies the PSF FWHM; 0 = no PSF
    noise_scale: float = 1.0        # multiplies the noise; 0 = noiseless
    neighbour_rate: float = 8.0     # mean number of neighbouring galaxies per cutout
    star_rate: float = 0.45         # mean number of foreground stars per cutout
    display_gain: float = imaging.DISPLAY_GAIN

    def check(self) -> None:
        """Raise ConfigError naming the first bad field."""
        positive = ("size_scale", "bulge_size_scale", "bulge_flux_scale", "display_gain")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"params.{name}: must be > 0, got {getattr(self, name)}")
        nonneg = ("psf_scale", "noise_scale", "neighbour_rate", "star_rate")
        for name in nonneg:
            if not getattr(self, name) >= 0:
                raise ConfigError(f"params.{name}: must be >= 0, got {getattr(self, name)}")
        if not 0.3 <= self.bulge_n <= 6.2:
            raise ConfigError(f"params.bulge_n: must be in [0.3, 6.2] (GalSim Sersic), got {self.bulge_n}")
        if not 0 <= self.clump_fraction < 1:
            raise ConfigError(f"params.clump_fraction: must be in [0, 1), got {self.clump_fraction}")
        if not 1 <= self.n_clumps <= 500:
            raise ConfigError(f"params.n_clumps: must be in [1, 500], got {self.n_clumps}")
        if not -1 <= self.bulge_fraction_shift <= 1:
            raise ConfigError(f"params.bulge_fraction_shift: must be in [-1, 1], got {self.bulge_fraction_shift}")
        for name in ("colour_shift_gr", "colour_shift_ri"):
            if abs(getattr(self, name)) > 2:
                raise ConfigError(f"params.{name}: must be within +-2 mag, got {getattr(self, name)}")


# Each knob: strength 1, 2, 3 -> parameter overrides. Strength 0 = observed.
# Strengths 2 and 3 were set with a demo-scale GANomaly (2,000 training images, 8 epochs, ngf 32) so that each
# step is a clear increase of the mean score: weaker bulge or compactness changes *lower* A at first (more
# concentrated light is easier to encode), hence the strong bulges. Strength 1 is a mild departure, near what
# 250 images detect (issue 22: the ranking must put the strength-1 suites beside the control); the sizes,
# bulges and colours were x1.4, n 5 with x3 bulge stars, and g-r -0.2 before (C2ST AUROC 0.65,
# 0.73 and 0.58 in the demo: ranked below other knobs' strength 3). RANKED_KNOBS are the ones the method
# ranks in order; GANomaly barely responds to colour shifts and scores cleaner images as *more* normal, so
# blue_colours and too_clean are kept as presets for users but left out of the ranking checks (docs/rating.md, "A rates blue_colours and too_clean backwards").
KNOBS: dict[str, tuple[dict[str, float], ...]] = {
    "large_sizes": ({"size_scale": 1.15}, {"size_scale": 1.9}, {"size_scale": 2.6}),
    "concentrated_bulges": ({"bulge_n": 4.4, "bulge_flux_scale": 1.5}, {"bulge_n": 5.6, "bulge_flux_scale": 4.5},
                            {"bulge_n": 6.2, "bulge_flux_scale": 6.5}),
    "clumpy_discs": ({"clump_fraction": 0.4, "n_clumps": 12}, {"clump_fraction": 0.65, "n_clumps": 10},
                     {"clump_fraction": 0.9, "n_clumps": 8}),
    "many_satellites": ({"neighbour_rate": 14.0}, {"neighbour_rate": 22.0}, {"neighbour_rate": 34.0}),
    "too_noisy": ({"noise_scale": 1.5}, {"noise_scale": 2.2}, {"noise_scale": 3.2}),
    "blue_colours": ({"colour_shift_gr": -0.1, "colour_shift_ri": -0.035},
                     {"colour_shift_gr": -0.4, "colour_shift_ri": -0.13},
                     {"colour_shift_gr": -0.65, "colour_shift_ri": -0.2}),
    "too_clean": ({"noise_scale": 0.5}, {"noise_scale": 0.2}, {"noise_scale": 0.0}),
}
RANKED_KNOBS = ("large_sizes", "concentrated_bulges", "clumpy_discs", "many_satellites", "too_noisy")
KNOB_DOC = {
    "large_sizes": "galaxies larger than the size-mass relation: sizes x1.15 / x1.9 / x2.6",
    "concentrated_bulges": "over-massive, concentrated bulges (overcooling): bulge n 4.4 / 5.6 / 6.2 "
                           "(disc galaxies' pseudo-bulges 1.9 / 3.1 / 3.7), bulge stars x1.5 / x4.5 / x6.5",
    "clumpy_discs": "40% / 65% / 90% of the disc light in 12 / 10 / 8 bright blue knots",
    "many_satellites": "too many companion galaxies around each galaxy: 14 / 22 / 34 neighbours per cutout "
                       "instead of 8",
    "too_noisy": "mock images noisier than SDSS (a shallower survey): noise x1.5 / x2.2 / x3.2",
    "blue_colours": "galaxy colours too blue: g-r -0.1 / -0.4 / -0.65 mag, r-i -0.035 / -0.13 / -0.2 "
                    "(not ranked by the method: see README)",
    "too_clean": "too little noise: noise x0.5 / x0.2 / none, PSF kept (scored as more normal: see README)",
}
CONFIG_KEYS = {"name", "description", "knobs", "params"}


def presets() -> dict[str, dict]:
    """All named presets: ``observed`` and ``<knob>_<strength>``."""
    out = {"observed": {"name": "observed", "description": "SDSS-like reference population",
                        "knobs": {}, "params": {}}}
    for knob in KNOBS:
        for s in (1, 2, 3):
            out[f"{knob}_{s}"] = {"name": f"{knob}_{s}", "description": f"{KNOB_DOC[knob]}: strength {s}",
                                  "knobs": {knob: s}, "params": {}}
    return out


def validate_config(cfg: Any) -> tuple[dict, Params]:
    """Check a config dict; return it (normalised) and the resulting Params.

    A config is ``{"name": str, "knobs": {knob: 1..3}, "params": {Params field: value}}``;
    knobs are applied first, then explicit params.  Raises ConfigError (one line, naming
    the field) before anything is generated.
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError("config: must be a mapping with keys name, knobs, params")
    extra = set(cfg) - CONFIG_KEYS
    if extra:
        raise ConfigError(f"{sorted(extra)[0]}: unknown config field; allowed: {sorted(CONFIG_KEYS)}")
    name = cfg.get("name", "custom")
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ \t\n"):
        raise ConfigError(f"name: must be a non-empty string without slashes or spaces, got {name!r}")
    knobs = cfg.get("knobs") or {}
    if not isinstance(knobs, Mapping):
        raise ConfigError("knobs: must be a mapping knob -> strength")
    values: dict[str, Any] = {}
    for knob, strength in knobs.items():
        if knob not in KNOBS:
            raise ConfigError(f"knobs.{knob}: unknown knob; known: {', '.join(KNOBS)}")
        if isinstance(strength, bool) or not isinstance(strength, (int, np.integer)) or not 0 <= strength <= 3:
            raise ConfigError(f"knobs.{knob}: strength must be an integer 0..3, got {strength!r}")
        if strength:
            values.update(KNOBS[knob][strength - 1])
    params = cfg.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError("params: must be a mapping field -> value")
    known = {f.name: f.type for f in fields(Params)}
    for key, val in params.items():
        if key not in known:
            raise ConfigError(f"params.{key}: unknown parameter; known: {', '.join(known)}")
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
            raise ConfigError(f"params.{key}: must be a finite number, got {val!r}")
        if key == "n_clumps" and int(val) != val:
            raise ConfigError(f"params.n_clumps: must be an integer, got {val!r}")
        values[key] = int(val) if key == "n_clumps" else float(val)
    p = replace(Params(), **values)
    p.check()
    norm = {"name": name, "description": str(cfg.get("description", "")),
            "knobs": {k: int(v) for k, v in knobs.items()}, "params": dict(params)}
    return norm, p


def load_config(preset: str | None = None, path: str | os.PathLike | None = None) -> tuple[dict, Params]:
    """Config from a preset name or a YAML/JSON file (exactly one of them)."""
    if (preset is None) == (path is None):
        raise ConfigError("config: give exactly one of a preset name or a config file")
    if preset is not None:
        table = presets()
        if preset not in table:
            raise ConfigError(f"preset: unknown preset {preset!r}; see --list-presets")
        return validate_config(copy.deepcopy(table[preset]))
    try:
        with open(path, encoding="utf-8") as fh:
            cfg = yaml.safe_load(fh)  # YAML is a superset of JSON
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if isinstance(cfg, Mapping) and "name" not in cfg:
        cfg = {**cfg, "name": os.path.splitext(os.path.basename(path))[0]}
    return validate_config(cfg)


def resolve(spec: str | Mapping | None = None, config_path: str | os.PathLike | None = None) -> tuple[dict, Params]:
    """A preset name, a config file path, or a config dict -> (config, Params)."""
    if isinstance(spec, Mapping):
        return validate_config(copy.deepcopy(dict(spec)))
    if config_path is not None:
        if spec is not None:
            raise ConfigError("config: give either a preset or a config file, not both")
        return load_config(path=config_path)
    if isinstance(spec, str) and spec not in presets() and os.path.isfile(spec):
        return load_config(path=spec)
    return load_config(preset=spec if spec is not None else "observed")

