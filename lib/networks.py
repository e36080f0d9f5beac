"""GANomaly networks: DCGAN encoder, decoder, generator NetG and discriminator NetD.

Akcay et al. 2018 (GANomaly), as used by Jin et al. 2024 (MNRAS 529, 3536).

Code vs paper (the one table of it in the project)
-------------------------------------------------
=====================  ========================  ==================================================
code                   paper (Jin+24, Akcay+18)  role
=====================  ========================  ==================================================
``netg.encoder1``      G_E                       image x -> latent z (``latent_i``)
``netg.decoder``       G_D                       z -> reconstruction x_hat (``fake``)
``netg.encoder2``      E                         x_hat -> z_hat (``latent_o``)
``netd`` (``NetD``)    D                         real/fake classifier + feature extractor
``err_g_adv``, w_adv   L_adv (Akcay eq. 1)       mean squared difference of D's last features, x vs x_hat
``err_g_con``, w_con   L_con (eq. 2)             mean absolute difference of x and x_hat (w_con = 50)
``err_g_enc``, w_enc   L_enc (eq. 3)             mean squared difference of z and z_hat
``err_g``              L = sum w L (eq. 4)       the generator's loss (lib/loss.py)
``err_d``              L_D                       binary cross-entropy of D on x and x_hat, halved
``ascore``             A (Jin+24 eq. 5)          mean over the nz = 128 channels of (z - z_hat)^2 (lib/scoring.py)
``ascore_norm``        A normalised              (A - A_min) / (A_max - A_min), the paper's constants
``overlap``            the rating                shared area of A histograms on [0, 0.1] (lib/rating/)
=====================  ========================  ==================================================

The module names, their order and so the ``state_dict`` keys are identical to
the original implementation, so checkpoints move both ways (``netG_43.pth`` of
the paper loads with ``strict=True``). All convolutions are bias-free,
LeakyReLU slopes are 0.2 and BatchNorm uses the PyTorch defaults
(eps 1e-5, momentum 0.1).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Encoder", "Decoder", "NetG", "NetD", "weights_init", "check_isize", "PRECISIONS", "check_precision",
           "autocast"]

#: How the networks run (``--precision``): the parameters' dtype. bf16 keeps float32 parameters and runs the
#: forward passes under bf16 autocast (:func:`autocast`); fp64 is a check mode for tests.
PRECISIONS = {"fp32": torch.float32, "bf16": torch.float32, "fp64": torch.float64}


def check_isize(isize: int) -> None:
    """Raise ValueError unless ``isize`` is a power of two >= 16.

    The decoder doubles its spatial size from 4 until it reaches ``isize``;
    any other size never reaches it (the original loops forever on 48).
    """
    if isize < 16 or isize & (isize - 1):
        raise ValueError(f"isize must be a power of two >= 16 (16, 32, 64, 128, ...), got {isize}")


def check_precision(precision: str, device: str | torch.device) -> torch.dtype:
    """The parameter dtype of ``precision`` on ``device``; ValueError for an unknown precision, or bf16 where
    autocast does not run here (anything but CPU and CUDA, e.g. Apple MPS)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "bf16" and torch.device(device).type not in ("cpu", "cuda"):
        raise ValueError(f"bf16 autocast runs on CPU and CUDA here, not {torch.device(device).type}")
    return PRECISIONS[precision]


def autocast(precision: str, device: str | torch.device):
    """The context the forward passes of ``precision`` run in: bf16 autocast on this device, else nothing."""
    from contextlib import nullcontext

    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return nullcontext()


class Encoder(nn.Module):
    """DCGAN encoder: (B, nc, isize, isize) -> (B, nz, 1, 1).

    Parameters
    ----------
    isize : int
        Input size in pixels (power of two >= 16).
    nz : int
        Output channels (latent size; 1 for the discriminator).
    nc : int
        Input channels.
    ndf : int
        Width of the first convolution; doubled at every halving of the size.
    extralayers : int
        Extra 3x3 conv-BN-LeakyReLU blocks after the first convolution.
    """

    def __init__(self, isize: int, nz: int, nc: int, ndf: int, extralayers: int = 0) -> None:
        super().__init__()
        check_isize(isize)
        main = nn.Sequential()
        main.add_module(f"initial-conv-{nc}-{ndf}", nn.Conv2d(nc, ndf, 4, 2, 1, bias=False))
        main.add_module(f"initial-relu-{ndf}", nn.LeakyReLU(0.2, inplace=True))
        csize, cndf = isize // 2, ndf
        for t in range(extralayers):
            main.add_module(f"extra-layers-{t}-{cndf}-conv", nn.Conv2d(cndf, cndf, 3, 1, 1, bias=False))
            main.add_module(f"extra-layers-{t}-{cndf}-batchnorm", nn.BatchNorm2d(cndf))
            main.add_module(f"extra-layers-{t}-{cndf}-relu", nn.LeakyReLU(0.2, inplace=True))
        while csize > 4:
            main.add_module(f"pyramid-{cndf}-{cndf * 2}-conv", nn.Conv2d(cndf, cndf * 2, 4, 2, 1, bias=False))
            main.add_module(f"pyramid-{cndf * 2}-batchnorm", nn.BatchNorm2d(cndf * 2))
            main.add_module(f"pyramid-{cndf * 2}-relu", nn.LeakyReLU(0.2, inplace=True))
            cndf, csize = cndf * 2, csize // 2
        # 4x4 -> 1x1; the "-1-" in the name is the original's, the output has nz channels
        main.add_module(f"final-{cndf}-1-conv", nn.Conv2d(cndf, nz, 4, 1, 0, bias=False))
        self.main = main

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class Decoder(nn.Module):
    """DCGAN decoder: (B, nz, 1, 1) -> (B, nc, isize, isize) in [-1, 1] (tanh).

    The first transposed convolution has ``ngf * isize / 8`` channels (512 for
    isize 64, ngf 64); each upsampling step halves the width.
    """

    def __init__(self, isize: int, nz: int, nc: int, ngf: int, extralayers: int = 0) -> None:
        super().__init__()
        check_isize(isize)
        cngf, tisize = ngf // 2, 4
        while tisize != isize:
            cngf, tisize = cngf * 2, tisize * 2
        main = nn.Sequential()
        main.add_module(f"initial-{nz}-{cngf}-convt", nn.ConvTranspose2d(nz, cngf, 4, 1, 0, bias=False))
        main.add_module(f"initial-{cngf}-batchnorm", nn.BatchNorm2d(cngf))
        main.add_module(f"initial-{cngf}-relu", nn.ReLU(True))
        csize = 4
        while csize < isize // 2:
            main.add_module(f"pyramid-{cngf}-{cngf // 2}-convt", nn.ConvTranspose2d(cngf, cngf // 2, 4, 2, 1, bias=False))
            main.add_module(f"pyramid-{cngf // 2}-batchnorm", nn.BatchNorm2d(cngf // 2))
            main.add_module(f"pyramid-{cngf // 2}-relu", nn.ReLU(True))
            cngf, csize = cngf // 2, csize * 2
        for t in range(extralayers):
            main.add_module(f"extra-layers-{t}-{cngf}-conv", nn.Conv2d(cngf, cngf, 3, 1, 1, bias=False))
            main.add_module(f"extra-layers-{t}-{cngf}-batchnorm", nn.BatchNorm2d(cngf))
            main.add_module(f"extra-layers-{t}-{cngf}-relu", nn.ReLU(True))
        main.add_module(f"final-{cngf}-{nc}-convt", nn.ConvTranspose2d(cngf, nc, 4, 2, 1, bias=False))
        main.add_module(f"final-{nc}-tanh", nn.Tanh())
        self.main = main

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class NetG(nn.Module):
    """GANomaly generator: encoder1 -> decoder -> encoder2.

    ``forward(x)`` returns ``(fake, latent_i, latent_o)`` with shapes
    (B, nc, isize, isize), (B, nz, 1, 1), (B, nz, 1, 1).
    """

    def __init__(self, isize: int = 64, nc: int = 3, nz: int = 128, ngf: int = 64, extralayers: int = 0) -> None:
        super().__init__()
        self.config = dict(isize=isize, nc=nc, nz=nz, ngf=ngf, extralayers=extralayers)
        self.encoder1 = Encoder(isize, nz, nc, ngf, extralayers)
        self.decoder = Decoder(isize, nz, nc, ngf, extralayers)
        self.encoder2 = Encoder(isize, nz, nc, ngf, extralayers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latent_i = self.encoder1(x)
        fake = self.decoder(latent_i)
        latent_o = self.encoder2(fake)
        return fake, latent_i, latent_o


class NetD(nn.Module):
    """GANomaly discriminator: an encoder with nz=1 split into features and classifier.

    ``forward(x)`` returns ``(pred, features)``: pred (B,) is the sigmoid
    probability that x is real, features (B, 8*ndf, 4, 4) for isize 64 are
    the last LeakyReLU activations, used by the feature-matching loss.

    Note: the original builds D with ``ngf`` (its ``--ndf`` is unused); the
    caller passes the width explicitly (train.py passes ``ndf``, which equals
    ``ngf`` in the paper's configuration).
    """

    def __init__(self, isize: int = 64, nc: int = 3, ndf: int = 64, extralayers: int = 0) -> None:
        super().__init__()
        layers = list(Encoder(isize, 1, nc, ndf, extralayers).main.children())
        self.features = nn.Sequential(*layers[:-1])
        self.classifier = nn.Sequential(layers[-1])
        self.classifier.add_module("Sigmoid", nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(x)
        pred = self.classifier(features).view(-1, 1).squeeze(1)
        return pred, features


def weights_init(module: nn.Module) -> None:
    """DCGAN initialisation, applied with ``net.apply(weights_init)``.

    Conv / ConvTranspose weights ~ N(0, 0.02); BatchNorm weight ~ N(1, 0.02), bias 0.
    """
    name = type(module).__name__
    if "Conv" in name:
        module.weight.data.normal_(0.0, 0.02)
    elif "BatchNorm" in name:
        module.weight.data.normal_(1.0, 0.02)
        module.bias.data.fill_(0)
