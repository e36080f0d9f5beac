"""lib/health.py: non-finite losses stop training, a saturated D and a stalled reconstruction are reported."""
import math

import pytest
import torch

from lib.health import HealthMonitor, NonFiniteLossError
from lib.loss import discriminator_loss


def errs(err_d=0.5, err_g=1.2, adv=0.1, con=0.02, enc=0.1, **extra):
    return dict(err_d=err_d, err_g=err_g, err_g_adv=adv, err_g_con=con, err_g_enc=enc, **extra)


def run_epoch(monitor, epoch, d_values, con=0.02):
    for d in d_values:
        monitor.step(errs(err_d=d, con=con))
    return monitor.end_epoch(epoch, dict(err_d=sum(d_values) / len(d_values), err_g_con=con))


def test_the_real_bce_ceiling_of_a_dead_discriminator_is_50():
    # a D whose sigmoid answers 0 for every image: BCE(0, 1) is clamped at 100, BCE(0, 0) = 0
    dead = torch.zeros(8)
    err_d = discriminator_loss(dead, dead).item()
    assert err_d == 50.0
    monitor = HealthMonitor()
    new = run_epoch(monitor, 0, [err_d] * 5)
    assert len(new) == 1 and "D saturated" in new[0] and "50" in new[0] and "all 5 iterations" in new[0]


def test_paper_run_d_collapse_warns_once_at_epoch_4():
    # the paper's log: err_d 0.023, 0.002, 0.001, 0.000 then exactly 50.000 from epoch 4 to 49
    monitor = HealthMonitor()
    per_epoch = []
    for epoch in range(50):
        values = [0.03, 0.02, 0.01] if epoch < 4 else [50.0, 50.0, 50.0]
        per_epoch.append(run_epoch(monitor, epoch, values, con=0.02 - 1e-4 * epoch))
    assert [i for i, w in enumerate(per_epoch) if w] == [4]
    assert per_epoch[4][0].startswith("epoch 4: D saturated: err_d stayed at its ceiling 50")
    assert monitor.warnings == per_epoch[4]


def test_saturation_must_last_the_whole_epoch():
    monitor = HealthMonitor()
    assert run_epoch(monitor, 0, [50.0, 50.0, 0.7, 50.0]) == []
    assert run_epoch(monitor, 1, [1e-6, 1e-6, 2e-5]) == []
    assert monitor.warnings == []


def test_d_below_the_floor_for_a_whole_epoch_warns():
    monitor = HealthMonitor(floor=1e-5)
    new = run_epoch(monitor, 2, [1e-7, 5e-6, 0.0])
    assert len(new) == 1 and new[0].startswith("epoch 2: D saturated: err_d stayed below 1e-05 on all 3")


def test_a_new_saturation_streak_warns_again():
    monitor = HealthMonitor()
    run_epoch(monitor, 0, [50.0])
    run_epoch(monitor, 1, [50.0])
    run_epoch(monitor, 2, [0.5])
    again = [w for w in run_epoch(monitor, 3, [50.0]) if "D saturated" in w]
    assert len(again) == 1 and again[0].startswith("epoch 3:")
    assert sum("D saturated" in w for w in monitor.warnings) == 2


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_loss_raises_with_the_values(bad):
    monitor = HealthMonitor()
    monitor.step(errs())
    with pytest.raises(NonFiniteLossError) as info:
        monitor.step(errs(con=bad))
    text = str(info.value)
    assert "iteration 2" in text and "err_g_con" in text and f"err_g_con={bad}" in text
    assert isinstance(info.value, RuntimeError)
    assert monitor.warnings == [text]


def test_non_finite_d_outputs_are_caught_too():
    with pytest.raises(NonFiniteLossError, match="d_real"):
        HealthMonitor().step(errs(d_real=math.nan, d_fake=0.1))


def test_reconstruction_plateau_warns_after_patience_epochs_with_relative_change():
    monitor = HealthMonitor(patience=3)
    cons = [0.030, 0.025, 0.020, 0.0205, 0.021, 0.0202, 0.0203, 0.019]
    news = [run_epoch(monitor, e, [0.5], con=c) for e, c in enumerate(cons)]
    assert [i for i, w in enumerate(news) if w] == [5]
    msg = news[5][0]
    assert "err_g_con has not improved for 3 epochs" in msg
    assert "best 0.02 at epoch 2" in msg and "0.0202 now" in msg
    assert "+1.00% relative" in msg  # (0.0202 - 0.020) / 0.020
    # epoch 6 stays silent (same plateau); epoch 7 improves: the plateau ends
    assert news[6] == [] and news[7] == []


def test_plateau_warns_again_after_an_improvement_and_a_new_plateau():
    monitor = HealthMonitor(patience=1)
    cons = [0.02, 0.021, 0.019, 0.019]
    news = [run_epoch(monitor, e, [0.5], con=c) for e, c in enumerate(cons)]
    assert [bool(n) for n in news] == [False, True, False, True]
    assert "+5.00% relative" in news[1][0] and "+0.00% relative" in news[3][0]


def test_warnings_property_is_a_copy_and_patience_is_checked():
    monitor = HealthMonitor()
    monitor.warnings.append("x")
    assert monitor.warnings == []
    with pytest.raises(ValueError):
        HealthMonitor(patience=0)


def test_an_epoch_without_steps_claims_nothing():
    monitor = HealthMonitor()
    assert monitor.end_epoch(0, {}) == []
