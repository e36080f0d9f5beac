"""Noise budget and outskirts sensitivity of the realism benchmark (issue 23), printed by benchmarks/realism.py.

    python benchmarks/realism_noise.py [--n 64] [--seed 1]

1. The published per-band noise chain, band by band (g, r, i -> B, G, R), at the median r sky (20.86
   mag/arcsec^2, SDSS DR7 seeing/sky page) and camcol 3: sky in mag/arcsec^2, nMgy per pixel, DN and
   electrons; the per-pixel sigma sqrt(dn / gain + darkVariance) in DN and in nMgy (frame datamodel);
   the sdss_frame_jpg scale; and the sigma entering the asinh step in 8-bit levels (x 256) with the
   published display gain 1 and with the default ``imaging.DISPLAY_GAIN``.  The R/G and R/B ratios it
   predicts do not depend on the display gain.
2. Measured identically on the real tiles and on ``--n`` synthetic cutouts, per channel, as means over the
   cutouts (a median over cutouts of the 8-bit robust sigma only takes the values 1.48 k, k integer):
   the border's robust sigma (``realism_common.border_pixels``, 8-bit levels) and the pixel-to-pixel
   noise (3-sigma-clipped standard deviation of horizontal neighbour differences over sqrt 2 in the 4 top
   and 4 bottom rows, not quantised like a median of integers: the
   highest spatial frequencies, where faint sources and gradients add little), and real / synthetic; the
   same for the synthetic set with its noise x 1.2 (how each statistic responds to white noise).
3. The whole-cutout statistics (``realism_common.whole_cutout``) of one-ingredient variants of the
   observed population, same seed: a sensitivity (which ingredient moves which statistic); nothing is
   chosen from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from astropy.stats import sigma_clipped_stats  # noqa: E402

from benchmarks import realism_common as common  # noqa: E402
from lib import galaxies  # noqa: E402
from lib.galaxies import imaging  # noqa: E402

CHANNEL_BAND = (("R", "i"), ("G", "r"), ("B", "g"))
VARIANTS = (("observed", {}), ("no noise", {"noise_scale": 0.0}),
            ("no neighbours or stars", {"neighbour_rate": 0.0, "star_rate": 0.0}),
            ("neighbours x 2", {"neighbour_rate": 2 * galaxies.Params().neighbour_rate}),
            ("sizes x 1.25", {"size_scale": 1.25}))


def budget(conditions: imaging.Conditions | None = None) -> str:
    """Part 1's table (see the module docstring)."""
    c = conditions or imaging.Conditions(sky_mag_r=20.86, camcol=3)
    lines = [f"noise budget, published constants (r sky {c.sky_mag_r} mag/arcsec^2, camcol {c.camcol}):",
             f"{'ch':<3}{'band':<5}{'sky mag':>8}{'nMgy/px':>9}{'DN':>7}{'e-':>7}{'sig DN':>8}{'sig nMgy':>10}"
             f"{'scale':>7}{'8-bit g=1':>11}{f'g={imaging.DISPLAY_GAIN}':>8}"]
    lev = {}
    for ch, b in CHANNEL_BAND:
        sky = c.sky_per_pixel(b)
        dn = sky / imaging.NMGY_PER_COUNT[b]
        sig = c.noise_sigma(b)
        lev[ch] = 256 * imaging.channel_sigma(c, display_gain=1.0)[ch]
        lines.append(f"{ch:<3}{b:<5}{c.sky_mag_r + imaging.SKY_COLOUR[b]:>8.2f}{sky:>9.3f}{dn:>7.0f}"
                     f"{dn * c.gain(b):>7.0f}{sig / imaging.NMGY_PER_COUNT[b]:>8.2f}{sig:>10.4f}"
                     f"{imaging.RGB_SCALES[b]:>7.1f}{lev[ch]:>11.1f}{lev[ch] * imaging.DISPLAY_GAIN:>8.1f}")
    lines.append(f"predicted blank-sky ratios entering the asinh step: R/G {lev['R'] / lev['G']:.3f}, "
                 f"R/B {lev['R'] / lev['B']:.3f} (sigma_i / sigma_r in nMgy "
                 f"{c.noise_sigma('i') / c.noise_sigma('r'):.3f}, times the scales 2.0 / 2.6)")
    return "\n".join(lines)


def channel_noise(images: list[np.ndarray]) -> np.ndarray:
    """(2, 3): mean over cutouts of the border robust sigma and of the pixel-to-pixel noise, R, G, B (8-bit)."""
    out = []
    for a in images:
        a = np.asarray(a, dtype=np.float64)
        b = common.border_pixels(a)
        mad = 1.4826 * np.median(np.abs(b - np.median(b, axis=0)), axis=0)
        d = np.concatenate([np.diff(a[:common.BORDER], axis=1).reshape(-1, 3),
                            np.diff(a[-common.BORDER:], axis=1).reshape(-1, 3)])
        pix = np.array([sigma_clipped_stats(d[:, c], sigma=3.0)[2] for c in range(3)]) / np.sqrt(2)
        out.append([mad, pix])
    return np.mean(out, axis=0)


def measured(real: list[np.ndarray], syn: list[np.ndarray], seed: int) -> str:
    """Part 2's lines; a copy of the synthetic set with the noise x 1.2 shows how each statistic responds
    to white noise (the pixel-to-pixel noise more than proportionally: JPEG drops small coefficients)."""
    _, p = galaxies.load_config("observed")
    p = dataclasses.replace(p, noise_scale=1.2)
    r, s = channel_noise(real), channel_noise(syn)
    s12 = channel_noise([imaging.jpeg_roundtrip(galaxies.make_image(p, seed, k)[0]) for k in range(len(syn))])
    lines = [f"measured noise per channel, mean over cutouts (8-bit levels; {len(real)} real, {len(syn)} synthetic):",
             f"{'':<46}{'R':>7}{'G':>7}{'B':>7}{'R/G':>7}{'R/B':>7}"]
    for k, name in enumerate(("border robust sigma", "pixel-to-pixel noise")):
        for label, v in (("real", r[k]), ("synthetic", s[k]), ("synthetic, noise x 1.2", s12[k])):
            lines.append(f"{name + ', ' + label:<46}" + "".join(f"{x:>7.2f}" for x in v)
                         + f"{v[0] / v[1]:>7.2f}{v[0] / v[2]:>7.2f}")
        lines.append(f"{name + ', real/synthetic':<46}" + "".join(f"{x:>7.2f}" for x in r[k] / s[k]))
    return "\n".join(lines)


def sensitivity(n: int, seed: int, real: list[np.ndarray]) -> str:
    """Part 3's lines: whole-cutout medians of each variant (``n`` cutouts, same seed)."""
    _, base = galaxies.load_config("observed")
    lines = [f"whole-cutout statistics, medians, one ingredient changed ({n} cutouts each, seed {seed}):",
             f"{'variant':<26}" + "".join(f"{k:>12}" for k in common.WHOLE)]
    rows = [("real (bundled tiles)", [common.whole_cutout(a) for a in real])]
    for name, over in VARIANTS:
        p = dataclasses.replace(base, **over)
        rows.append((name, [common.whole_cutout(imaging.jpeg_roundtrip(galaxies.make_image(p, seed, k)[0]))
                            for k in range(n)]))
    for name, stats in rows:
        med = np.nanmedian([[s[k] for k in common.WHOLE] for s in stats], axis=0)
        lines.append(f"{name:<26}" + "".join(f"{v:>12.4f}" for v in med))
    return "\n".join(lines)


def report(real: list[np.ndarray], syn: list[np.ndarray], n: int, seed: int) -> str:
    """All three parts (``syn``: the observed cutouts part 2 is measured on)."""
    return "\n".join([budget(), measured(real, syn, seed), sensitivity(n, seed, real)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="synthetic cutouts per variant")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    real = common.load_images(common.real_files())
    _, p = galaxies.load_config("observed")
    syn = [imaging.jpeg_roundtrip(galaxies.make_image(p, args.seed, k)[0]) for k in range(args.n)]
    print(report(real, syn, args.n, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
