"""The null benchmark (benchmarks/rating_null.py) reduced: the verdict's false-alarm fraction is its stated rate."""
import numpy as np
from scipy import stats

from benchmarks.rating_null import draw_reference, draw_suite, flagged_fraction, flagged_suites
from lib.rating.latent import LatentConfig
from lib.rating.table import rate
from lib.rating.verdict import ALPHA


def _rate(k_null: int, k_shift: int, shift: float, seed: int = 3):
    rng = np.random.default_rng(seed)
    ref, ref_lat = draw_reference(rng, 600)
    suites, latents = {}, {"reference": ref_lat}
    for kind, k, s in (("null", k_null, 0.0), ("shift", k_shift, shift)):
        for i in range(k):
            suites[f"{kind}_{i}"], latents[f"{kind}_{i}"] = draw_suite(rng, 20, 20, 0.5, s)
    cfg = LatentConfig(n_perm=100, n_boot=0, seed=seed, mmd=True)
    return rate(ref, suites, mass_col="logmstar", group_col="galaxy", n_boot=0, seed=seed, latents=latents,
                latent_config=cfg, include_null=False), list(suites)


def test_false_alarm_fraction_is_at_most_the_stated_rate_and_a_large_shift_is_flagged():
    table, names = _rate(k_null=30, k_shift=4, shift=1.5)
    null = flagged_fraction(table, [n for n in names if n.startswith("null")])
    f = sum(v[0] for v in null.values())
    n = sum(v[1] for v in null.values())
    assert n >= 30 * 3  # every null suite tested overall and in its bins
    assert f <= stats.binom.ppf(0.995, n, ALPHA)  # within the 99 % binomial interval of the stated rate
    fs, ns = flagged_suites(table, [n for n in names if n.startswith("null")])
    assert ns == 30 and fs <= stats.binom.ppf(0.995, ns, ALPHA)  # the rule's unit: suites flagged anywhere
    power = flagged_fraction(table, [n for n in names if n.startswith("shift")])
    assert power["all"][0] == power["all"][1] == 4  # 1.5 sd on 20 galaxies: every suite flagged overall
    assert flagged_suites(table, [n for n in names if n.startswith("shift")]) == (4, 4)
