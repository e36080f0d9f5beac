"""A literal re-statement of the original GANomaly ``optimize_params`` (for tests and benchmarks only).

D runs four times per step and the generator loss back-propagates into D's
weights (gradients that are zeroed before D's step), exactly as
samet-akcay/ganomaly and Jin et al. 2024 did. Our ``lib.model.Ganomaly`` must
produce the same parameter updates with fewer passes.
"""
import torch
from torch import nn

from lib.networks import weights_init


def original_step(netg, netd, optimizer_g, optimizer_d, x, w_adv=1.0, w_con=50.0, w_enc=1.0):
    l2 = lambda a, b: torch.mean(torch.pow(a - b, 2))
    bce = nn.BCELoss()
    # forward_g, forward_d
    fake, latent_i, latent_o = netg(x)
    pred_real, _ = netd(x)
    pred_fake, _ = netd(fake.detach())
    # backward_g: two more D passes
    optimizer_g.zero_grad()
    err_g_adv = l2(netd(x)[1], netd(fake)[1])
    err_g_con = nn.L1Loss()(fake, x)
    err_g_enc = l2(latent_o, latent_i)
    err_g = err_g_adv * w_adv + err_g_con * w_con + err_g_enc * w_enc
    err_g.backward(retain_graph=True)
    optimizer_g.step()
    # backward_d
    optimizer_d.zero_grad()
    real_label = torch.ones(x.shape[0])
    fake_label = torch.zeros(x.shape[0])
    err_d = (bce(pred_real, real_label) + bce(pred_fake, fake_label)) * 0.5
    err_d.backward()
    optimizer_d.step()
    if err_d.item() < 1e-5:
        netd.apply(weights_init)
    return dict(err_d=err_d.item(), err_g=err_g.item(), err_g_adv=err_g_adv.item(),
                err_g_con=err_g_con.item(), err_g_enc=err_g_enc.item())
