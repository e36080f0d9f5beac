"""Accuracy of the observed-frame light: this project's K-corrections against the published calibration.

    python benchmarks/kcorr_accuracy.py

For a red population (one 10 Gyr burst, Z = 0.02) and a blue one (constant star formation
over 10 Gyr, Z = 0.02) the K-corrections in g and r that the sdss recipe applies
(data/ssp/kcorr_sdss2010_bc03.npz: BC03 spectra x SDSS 2010 responses, summed over the
population's particles with their BPASS light) at z = 0.02-0.20, against Chilingarian, Melchior
& Zolotukhin (2010) / Chilingarian & Zolotukhin (2012) evaluated at the observed g - r that the
population has here (the calibration's coefficients as tests/test_mocks_kcorr.py holds them).
The calibration is a fit to real galaxies (mixtures of ages, dust), not to SSPs: differences of
a few hundredths to ~0.1 mag are the expected size of "same colour, different spectrum".
"""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from lib import mocks  # noqa: E402
from tests.test_mocks_kcorr import CHIL_G_GR, CHIL_R_GR, chilingarian, chilingarian_gr_shift  # noqa: E402

REDSHIFTS = (0.02, 0.05, 0.10, 0.15, 0.20)


def main() -> int:
    table, ssp = mocks.load_kcorr(), mocks.load_ssp()
    pops = {"red: 10 Gyr burst": np.full(10, 10.0), "blue: constant SFR 10 Gyr": np.linspace(0.001, 10.0, 2000)}
    print(f"{'population':27} {'z':>5} {'rest g-r':>8} {'K_g here':>8} {'K_g C10':>8} {'dK_g':>6} "
          f"{'K_r here':>8} {'K_r C10':>8} {'dK_r':>6}")
    worst = {}
    for name, ages in pops.items():
        met = np.full(ages.size, 0.02)
        kc, light = mocks.KCorrector(table, ages, met), mocks.star_light(ssp, np.ones(ages.size), ages, met)
        rest = float(light.abs_mag("g") - light.abs_mag("r"))
        for z in REDSHIFTS:
            kg, kr = (float(kc.total_k(light.lum[b], b, [z])[0]) for b in ("g", "r"))
            obs = rest + chilingarian_gr_shift(rest, z)
            cg, cr = chilingarian(CHIL_G_GR, z, obs), chilingarian(CHIL_R_GR, z, obs)
            worst[name] = max(worst.get(name, 0.0), abs(kg - cg), abs(kr - cr))
            print(f"{name:27} {z:5.2f} {rest:8.2f} {kg:8.3f} {cg:8.3f} {kg - cg:+6.3f} {kr:8.3f} {cr:8.3f} "
                  f"{kr - cr:+6.3f}")
    for name, w in worst.items():
        print(f"largest |difference| at z = 0.02-0.20, {name}: {w:.3f} mag")
    return 0


if __name__ == "__main__":
    sys.exit(main())
