"""Networks and losses: state_dict compatibility with the original, hand-computed losses, the update order."""
import copy
import json
import os

import numpy as np
import pytest
import torch

from lib.checkpoint import CheckpointError, load_netg, netg_config_from_state_dict
from lib.loss import discriminator_loss, generator_loss
from lib.model import Ganomaly
from lib.networks import NetD, NetG, weights_init
from tests.reference_step import original_step

REF = json.load(open(os.path.join(os.path.dirname(__file__), "data", "state_dict_paper_config.json")))


@pytest.mark.parametrize("cls, key", [(NetG, "NetG"), (NetD, "NetD")])
def test_state_dict_keys_shapes_order_match_the_original(cls, key):
    net = NetG(64, 3, 128, 64, 0) if cls is NetG else NetD(64, 3, 64, 0)
    got = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in net.state_dict().items()]
    assert got == REF[key]


def test_parameter_counts_and_shapes():
    g, d = NetG(64, 3, 128, 64), NetD(64, 3, 64)
    assert sum(p.numel() for p in g.parameters()) == 11_417_984
    assert sum(p.numel() for p in d.parameters()) == 2_765_568
    fake, li, lo = g(torch.randn(2, 3, 64, 64))
    assert fake.shape == (2, 3, 64, 64) and li.shape == lo.shape == (2, 128, 1, 1)
    assert float(fake.detach().abs().max()) <= 1.0
    pred, feat = d(torch.randn(2, 3, 64, 64))
    assert pred.shape == (2,) and feat.shape == (2, 512, 4, 4)


@pytest.mark.parametrize("isize, nc, extra", [(16, 1, 0), (32, 5, 2), (128, 3, 1)])
def test_any_channels_and_extralayers(isize, nc, extra):
    g = NetG(isize, nc, 16, 8, extra)
    fake, li, _ = g(torch.randn(2, nc, isize, isize))
    assert fake.shape == (2, nc, isize, isize) and li.shape == (2, 16, 1, 1)
    assert netg_config_from_state_dict(g.state_dict()) == dict(isize=isize, nc=nc, nz=16, ngf=8, extralayers=extra)


def test_original_format_checkpoint_loads(tmp_path):
    """A file as the original wrote it ({'epoch', 'state_dict'}, keys from the reference list) loads strictly."""
    sd = {k: torch.randn(shape) if dtype == "float32" else torch.tensor(7) for k, shape, dtype in REF["NetG"]}
    path = tmp_path / "netG_43.pth"
    torch.save({"epoch": 44, "state_dict": sd}, path)
    netg, ckpt = load_netg(str(path))
    assert netg.config == dict(isize=64, nc=3, nz=128, ngf=64, extralayers=0) and ckpt["epoch"] == 44
    assert torch.equal(netg.state_dict()["decoder.main.final-64-3-convt.weight"], sd["decoder.main.final-64-3-convt.weight"])
    with pytest.raises(CheckpointError, match="--isize 32 but the checkpoint has 64"):
        load_netg(str(path), isize=32)
    torch.save({"epoch": 1, "state_dict": NetD().state_dict()}, tmp_path / "d.pth")
    with pytest.raises(CheckpointError, match="not a GANomaly generator"):
        load_netg(str(tmp_path / "d.pth"))


def test_weights_init_distribution():
    torch.manual_seed(0)
    g = NetG(64, 3, 128, 64)
    g.apply(weights_init)
    w = g.encoder1.main[0].weight.detach()
    bn = g.decoder.main[1]
    assert abs(float(w.mean())) < 2e-3 and abs(float(w.std()) - 0.02) < 1e-3
    assert abs(float(bn.weight.detach().mean()) - 1) < 5e-3 and float(bn.bias.detach().abs().max()) == 0.0


def test_generator_and_discriminator_losses_by_hand():
    rng = np.random.default_rng(1)
    x, fake = rng.uniform(-1, 1, (2, 1, 2, 2)), rng.uniform(-1, 1, (2, 1, 2, 2))
    li, lo = rng.normal(size=(2, 3, 1, 1)), rng.normal(size=(2, 3, 1, 1))
    fr, ff = rng.normal(size=(2, 4, 1, 1)), rng.normal(size=(2, 4, 1, 1))
    t = lambda a: torch.tensor(a, dtype=torch.float64)
    out = generator_loss(t(x), t(fake), t(li), t(lo), t(fr), t(ff), w_adv=2.0, w_con=50.0, w_enc=3.0)
    adv, con, enc = ((fr - ff) ** 2).mean(), np.abs(fake - x).mean(), ((lo - li) ** 2).mean()
    assert out["err_g_adv"].item() == pytest.approx(adv, rel=1e-12)
    assert out["err_g_con"].item() == pytest.approx(con, rel=1e-12)
    assert out["err_g_enc"].item() == pytest.approx(enc, rel=1e-12)
    assert out["err_g"].item() == pytest.approx(2 * adv + 50 * con + 3 * enc, rel=1e-12)
    pr, pf = np.array([0.9, 0.6]), np.array([0.2, 0.3])
    expect = 0.5 * (-np.log(pr).mean() - np.log(1 - pf).mean())
    assert discriminator_loss(t(pr), t(pf)).item() == pytest.approx(expect, rel=1e-12)
    # BCE clamps log at -100: a saturated D sits at exactly 50
    assert discriminator_loss(t(np.zeros(2)), t(np.zeros(2))).item() == pytest.approx(50.0)


def _pair(seed=0, isize=32):
    torch.manual_seed(seed)
    m = Ganomaly(isize=isize, nc=3, nz=16, ngf=16, ndf=16, extralayers=0, lr=2e-4, beta1=0.5,
                 w_adv=1, w_con=50, w_enc=1)
    return m, copy.deepcopy(m.netg), copy.deepcopy(m.netd)


def test_training_step_equals_the_original_update_order():
    """Our 2-pass step gives the same parameters as the literal original 4-pass step, over 3 steps."""
    model, g_ref, d_ref = _pair()
    opt_g = torch.optim.Adam(g_ref.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_ref.parameters(), lr=2e-4, betas=(0.5, 0.999))
    torch.manual_seed(5)
    for _ in range(3):
        x = torch.rand(8, 3, 32, 32) * 2 - 1
        ours = model.optimize_params(x)
        ref = original_step(g_ref, d_ref, opt_g, opt_d, x)
        for k in ref:
            assert ours[k] == pytest.approx(ref[k], rel=1e-5, abs=1e-7), k
    for (k, a), b in zip(model.netg.state_dict().items(), g_ref.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-6), k
    for a, b in zip(model.netd.parameters(), d_ref.parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    # the step changed something at all (otherwise the comparison above is empty)
    assert not torch.equal(model.netg.decoder.main[0].weight, _pair()[1].decoder.main[0].weight)


def test_d_reinitialised_only_below_threshold(monkeypatch):
    import lib.model as lm
    model, _, _ = _pair()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    for value, expect in ((1e-4, 0), (1e-6, 1)):
        monkeypatch.setattr(lm, "discriminator_loss", lambda pr, pf, v=value: (pr.sum() + pf.sum()) * 0 + v)
        before = [p.detach().clone() for p in model.netd.parameters()]
        torch.manual_seed(11)
        model.optimize_params(x)
        after = list(model.netd.parameters())
        assert model.d_reinits == expect
        if expect:  # fresh DCGAN init: conv weights ~ N(0, 0.02), nothing like the old weights
            w = after[0].detach()
            assert not torch.allclose(w, before[0]) and abs(float(w.std()) - 0.02) < 4e-3
