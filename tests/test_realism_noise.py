"""benchmarks/realism_noise.py: the noise statistics measure what they claim (known answers)."""

import re

import numpy as np
import pytest

from benchmarks import realism_noise


def _cutout(rng, sigma, ramp=0.0):
    """(64, 64, 3) float: level 100 plus white noise ``sigma`` plus a horizontal ramp of ``ramp`` levels per
    pixel (not rounded to bytes: a median of integers is quantised, which is why the benchmark averages)."""
    x = np.arange(64)[None, :, None]
    return 100 + ramp * (x - 31.5) + rng.normal(0, sigma, (64, 64, 3))


def test_channel_noise_of_white_noise():
    rng = np.random.default_rng(3)
    border, pixel = realism_noise.channel_noise([_cutout(rng, 5.0) for _ in range(20)])
    assert border == pytest.approx([5.0] * 3, rel=0.05)
    assert pixel == pytest.approx([5.0] * 3, rel=0.05)  # 3-sigma clipping lowers a Gaussian's std by ~1.5 %


def test_pixel_noise_ignores_smooth_structure():
    # a ramp across the cutout (a gradient, a faint source's wing) widens the border distribution but
    # leaves the neighbour differences as they are: that is what tells white noise from structure
    rng = np.random.default_rng(4)
    border, pixel = realism_noise.channel_noise([_cutout(rng, 3.0, ramp=0.5) for _ in range(20)])
    assert np.all(border > 3 * 3.0)  # the ramp spans +-16 levels
    assert pixel == pytest.approx([3.0] * 3, rel=0.06)


def test_budget_ratios_are_the_published_ones():
    text = realism_noise.budget()
    rg, rb = (float(v) for v in re.search(r"R/G ([\d.]+), R/B ([\d.]+)", text).groups())
    # by hand from the published constants (tests/test_imaging.py): (2.0 x 0.04368) / (2.6 x 0.02830) etc.
    assert rg == pytest.approx(1.187, abs=0.003)
    assert rb == pytest.approx(1.345, abs=0.003)
