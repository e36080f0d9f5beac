"""GANomaly training: one optimisation step with the original's maths and update order, and the epoch loop.

Code vs paper (Akcay et al. 2018, Jin et al. 2024, eq. numbers of Akcay):
``netg`` = G = (G_E ``encoder1``, G_D ``decoder``, E ``encoder2``); ``netd`` = D;
``latent_i`` = z, ``latent_o`` = z_hat; ``err_g_adv`` = L_adv (eq. 1, feature
matching), ``err_g_con`` = L_con (eq. 2, L1), ``err_g_enc`` = L_enc (eq. 3, L2),
``err_g`` = w_adv L_adv + w_con L_con + w_enc L_enc (eq. 4); ``err_d`` = BCE of D.

One step, exactly as the original (``optimize_params``):

1. ``fake, latent_i, latent_o = netg(x)``                    (BatchNorm in training mode)
2. D on x and on fake (each pass with its own batch statistics)
3. G step: ``err_g`` -> gradients of G only -> Adam step of G
4. D step: ``err_d`` from the predictions of step 2 (D unchanged by step 3) -> Adam step of D
5. if ``err_d < 1e-5``: re-initialise D's weights (Adam state and BN buffers kept)

The original ran D four times per step (twice more inside the generator loss,
with identical parameters and inputs, hence identical values) and
back-propagated the generator loss into D's weights only to zero those
gradients before D's step. Here D runs twice and each backward pass is
restricted to the parameters it updates (``backward(inputs=...)``): same
updates, fewer FLOPs. The only visible difference is D's BatchNorm running
statistics, which take 2 momentum updates per step instead of 4 (they are
never used: D always runs in training mode).
"""
from __future__ import annotations

import os
import random
import time
from contextlib import nullcontext
from typing import Iterable

import numpy as np
import torch
from torch import nn

from lib.checkpoint import atomic_save
from lib.fileio import package_versions
from lib.health import NonFiniteLossError
from lib.loss import discriminator_loss, generator_loss
from lib.networks import NetD, NetG, weights_init

__all__ = ["Ganomaly", "seed_everything", "train"]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA); -1 leaves everything unseeded (as the original)."""
    if seed == -1:
        return
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True


class Ganomaly:
    """The two networks, their Adam optimisers and one training step.

    Parameters are the original's options (see options.py): isize, nc, nz,
    ngf, ndf, extralayers; lr and beta1 for Adam(betas=(beta1, 0.999)); the
    loss weights w_adv, w_con, w_enc.
    """

    def __init__(self, *, isize: int, nc: int, nz: int, ngf: int, ndf: int, extralayers: int,
                 lr: float, beta1: float, w_adv: float, w_con: float, w_enc: float,
                 device: str = "cpu", ngpu: int = 1, amp: bool = False, channels_last: bool = False) -> None:
        self.device = torch.device(device)
        self.w = dict(w_adv=float(w_adv), w_con=float(w_con), w_enc=float(w_enc))
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.netg = NetG(isize, nc, nz, ngf, extralayers).to(self.device, memory_format=self.memory_format)
        self.netd = NetD(isize, nc, ndf, extralayers).to(self.device, memory_format=self.memory_format)
        self.netg.apply(weights_init)
        self.netd.apply(weights_init)
        self.netg.train()
        self.netd.train()
        # ngpu > 1: data parallel over the first ngpu GPUs (as the original)
        use_dp = ngpu > 1 and self.device.type == "cuda"
        self._g = nn.DataParallel(self.netg, list(range(ngpu))) if use_dp else self.netg
        self._d = nn.DataParallel(self.netd, list(range(ngpu))) if use_dp else self.netd
        self.optimizer_g = torch.optim.Adam(self.netg.parameters(), lr=lr, betas=(beta1, 0.999))
        self.optimizer_d = torch.optim.Adam(self.netd.parameters(), lr=lr, betas=(beta1, 0.999))
        self._g_params = list(self.netg.parameters())
        self._d_params = list(self.netd.parameters())
        self.amp = amp and self.device.type == "cuda"
        self.d_reinits = 0

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def optimize_params(self, x: torch.Tensor) -> dict[str, float]:
        """One G step then one D step on the batch x (B, nc, isize, isize) in [-1, 1].

        Returns the losses as floats, plus ``d_real`` / ``d_fake`` (D's mean
        output on real and reconstructed images).
        """
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()
        with autocast:
            fake, latent_i, latent_o = self._g(x)
            pred_real, feat_real = self._d(x)
            pred_fake, feat_fake = self._d(fake)
            losses = generator_loss(x, fake, latent_i, latent_o, feat_real.detach(), feat_fake, **self.w)
        err_d = discriminator_loss(pred_real.float(), pred_fake.float())
        self.optimizer_g.zero_grad(set_to_none=True)
        self.optimizer_d.zero_grad(set_to_none=True)
        # G's gradient must not reach D's weights, D's must not reach G: restrict each backward
        losses["err_g"].backward(inputs=self._g_params, retain_graph=True)
        err_d.backward(inputs=self._d_params)
        self.optimizer_g.step()
        self.optimizer_d.step()
        out = {"err_d": err_d.item(), **{k: v.item() for k, v in losses.items()}}
        if out["err_d"] < 1e-5:
            self.netd.apply(weights_init)
            self.d_reinits += 1
            print("   Reloading net d")
        out["d_real"] = pred_real.detach().float().mean().item()
        out["d_fake"] = pred_fake.detach().float().mean().item()
        return out

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(x) in training mode, as the original's image grids (updates BN running stats, as it did)."""
        return self._g(x)[0]

    def state(self) -> dict:
        return dict(netg=self.netg.state_dict(), netd=self.netd.state_dict(),
                    optimizer_g=self.optimizer_g.state_dict(), optimizer_d=self.optimizer_d.state_dict())


def train(model: Ganomaly, loader: Iterable, *, niter: int, start_epoch: int, batchsize: int, weights_dir: str,
          visualizer, health=None, bad_files=None, print_freq: int = 100, save_image_freq: int = 100,
          seed: int = -1, generator: torch.Generator | None = None, resume_state: dict | None = None,
          opt_dict: dict | None = None, progress: bool = True) -> dict:
    """Run epochs ``start_epoch .. niter-1``; checkpoint after each; return a summary dict.

    ``loader`` yields ``(x, labels, paths, bad)`` batches (``lib.data.collate_skip_bad``).
    With ``seed != -1`` the shuffle order of epoch e depends only on (seed, e),
    so a resumed run sees the same batches as an uninterrupted one.
    """
    from tqdm import tqdm

    total_steps = resume_state.get("total_steps", 0) if resume_state else 0
    fixed_input = resume_state.get("fixed_input") if resume_state else None
    if fixed_input is not None:
        fixed_input = model.to_input(fixed_input)
    n_images = len(loader.dataset) if hasattr(loader, "dataset") else 0
    summary = dict(epochs_run=0, stopped=None, last_checkpoint=None, images_per_s=0.0)
    for epoch in range(start_epoch, niter):
        if generator is not None and seed != -1:
            generator.manual_seed(seed * 100003 + epoch)
        sums: dict[str, float] = {}
        steps, epoch_iter, seen, t0 = 0, 0, 0, time.perf_counter()
        saved_images, last_x = False, None
        bar = tqdm(loader, leave=False, disable=not progress, desc=f"epoch {epoch + 1}/{niter}")
        for x, _, _, bad in bar:
            if bad and bad_files is not None:
                bad_files.add(bad)
            if x is None:
                continue
            x = last_x = model.to_input(x)
            total_steps += batchsize
            epoch_iter += batchsize
            if fixed_input is None:  # the first batch of the run, kept for the fixed_fakes grids
                fixed_input = x.clone()
            errors = model.optimize_params(x)
            steps += 1
            seen += x.shape[0]
            for k, v in errors.items():
                sums[k] = sums.get(k, 0.0) + v
            if health is not None:
                try:
                    health.step(errors)
                except NonFiniteLossError as exc:  # stop cleanly: the last epoch's checkpoint stays the good one
                    summary["stopped"] = str(exc)
                    visualizer.log(f"STOPPED at epoch {epoch} step {steps}: {exc}")
                    return summary
            if total_steps % print_freq == 0:
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                visualizer.plot_errors(epoch + epoch_iter / max(n_images, 1), {**errors, "images_per_s": rate})
            if total_steps % save_image_freq == 0:
                visualizer.save_images(epoch, x, model.reconstruct(x), model.reconstruct(fixed_input))
                saved_images = True
        if steps == 0:
            raise RuntimeError("no trainable batch in this epoch: every image was unreadable, or the training set "
                               "is smaller than --batchsize with --droplast (use --no-droplast)")
        if not saved_images:  # small datasets never hit the frequency condition: still give one grid per epoch
            visualizer.save_images(epoch, last_x, model.reconstruct(last_x), model.reconstruct(fixed_input))
        elapsed = time.perf_counter() - t0
        means = {k: v / steps for k, v in sums.items()}
        print(f">> Training model Ganomaly. Epoch {epoch + 1}/{niter}  ({seen / elapsed:.1f} images/s)")
        keys = ("err_d", "err_g", "err_g_adv", "err_g_con", "err_g_enc")
        print(visualizer.print_epoch_errors(epoch, niter, {k: means[k] for k in keys}))
        if health is not None:
            for w in health.end_epoch(epoch, means):
                print(f"WARNING: {w}")
                visualizer.log(f"WARNING: {w}")
        g_path = os.path.join(weights_dir, f"netG_{epoch}.pth")
        d_path = os.path.join(weights_dir, f"netD_{epoch}.pth")
        common = dict(epoch=epoch + 1, opt=opt_dict or {}, versions=package_versions())
        # D first: a netG_k file is only ever paired with a complete netD_k (resume looks for pairs)
        atomic_save(dict(common, state_dict=model.netd.state_dict(), optimizer=model.optimizer_d.state_dict()), d_path)
        atomic_save(dict(common, state_dict=model.netg.state_dict(), optimizer=model.optimizer_g.state_dict(),
                         fixed_input=fixed_input.detach().cpu(), total_steps=total_steps,
                         rng_state=torch.get_rng_state()), g_path)
        summary.update(epochs_run=summary["epochs_run"] + 1, last_checkpoint=g_path, images_per_s=seen / elapsed,
                       last_errors=means)
    return summary
