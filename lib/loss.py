"""GANomaly losses, as in the original implementation (Akcay et al. 2018; Jin et al. 2024).

Generator loss (the paper's weights w_adv = 1, w_con = 50, w_enc = 1)::

    err_g = w_adv * L_adv + w_con * L_con + w_enc * L_enc
    L_adv = mean((f(x) - f(x_hat))^2)        feature matching on D's last features
    L_con = mean(|x - x_hat|)                L1 reconstruction ("contextual") loss
    L_enc = mean((z - z_hat)^2)              latent consistency, z = latent_i, z_hat = latent_o

Discriminator loss::

    err_d = 0.5 * (BCE(D(x), 1) + BCE(D(x_hat), 0))

``nn.BCELoss`` clamps log() at -100, so a saturated D sits at exactly 50.0
(the paper's run did from epoch 4 on).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["l1_loss", "l2_loss", "generator_loss", "discriminator_loss", "BCE_CEILING"]

BCE_CEILING = 50.0  # 0.5 * (100 + 0): err_d of a fully saturated discriminator


def l1_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference (scalar)."""
    return torch.mean(torch.abs(a - b))


def l2_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference (scalar); the original's ``l2_loss(size_average=True)``."""
    return torch.mean(torch.pow(a - b, 2))


def generator_loss(x: torch.Tensor, fake: torch.Tensor, latent_i: torch.Tensor, latent_o: torch.Tensor,
                   feat_real: torch.Tensor, feat_fake: torch.Tensor,
                   w_adv: float = 1.0, w_con: float = 50.0, w_enc: float = 1.0) -> dict[str, torch.Tensor]:
    """The weighted generator loss and its three terms.

    Parameters
    ----------
    x, fake : (B, nc, isize, isize) real images and reconstructions, in [-1, 1].
    latent_i, latent_o : (B, nz, 1, 1) latent codes of x and of fake.
    feat_real, feat_fake : D's features of x and of fake, e.g. (B, 512, 4, 4).
        Only ``feat_fake`` needs a graph back to the generator.

    Returns
    -------
    dict with ``err_g, err_g_adv, err_g_con, err_g_enc`` (scalar tensors).
    """
    err_g_adv = l2_loss(feat_real, feat_fake)
    err_g_con = F.l1_loss(fake, x)  # nn.L1Loss() in the original: mean |fake - x|
    err_g_enc = l2_loss(latent_o, latent_i)  # latent_i not detached: encoder1 gets this gradient too
    err_g = err_g_adv * w_adv + err_g_con * w_con + err_g_enc * w_enc
    return dict(err_g=err_g, err_g_adv=err_g_adv, err_g_con=err_g_con, err_g_enc=err_g_enc)


def discriminator_loss(pred_real: torch.Tensor, pred_fake: torch.Tensor) -> torch.Tensor:
    """0.5 * (BCE(pred_real, 1) + BCE(pred_fake, 0)); preds are sigmoid outputs (B,)."""
    bce = nn.functional.binary_cross_entropy
    return 0.5 * (bce(pred_real, torch.ones_like(pred_real)) + bce(pred_fake, torch.zeros_like(pred_fake)))
