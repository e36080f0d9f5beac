"""GANomaly training: one optimisation step with the original's maths and update order, and the epoch loop.

Names follow the paper and the original (netg, netd, latent_i, latent_o, w_adv, w_con,
w_enc); the code-to-paper table is in lib/networks.py.

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

Precision (``precision``): ``fp32`` is the default and the faithful one; ``bf16`` runs the networks under
autocast (CPU or CUDA) and the losses in float32; ``fp64`` runs everything in float64 (a check mode: it lets
tests compare world sizes below Adam's float32 amplification of rounding). Under torchrun
(``world.size > 1``) the networks are wrapped in DistributedDataParallel, BatchNorm is global across ranks
and D's re-initialisation is decided on the all-reduced err_d (lib/distributed.py).
"""
from __future__ import annotations

import inspect
import random
import time
from typing import Iterable

import numpy as np
import torch
from torch import nn

from lib.checkpoint import epoch_paths, save_epoch
from lib.loaders import normalize_uint8
from lib.distributed import World, convert_batchnorm, shard_range
from lib.health import NonFiniteLossError
from lib.loss import discriminator_loss, generator_loss
from lib.networks import NetD, NetG, autocast, check_precision, weights_init

__all__ = ["Ganomaly", "seed_everything", "train", "LOSS_KEYS"]

LOSS_KEYS = ("err_d", "err_g", "err_g_adv", "err_g_con", "err_g_enc", "d_real", "d_fake")


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

    D_REINIT_BELOW = 1e-5  # the original's threshold on err_d

    def __init__(self, *, isize: int, nc: int, nz: int, ngf: int, ndf: int, extralayers: int,
                 lr: float, beta1: float, w_adv: float, w_con: float, w_enc: float,
                 device: str = "cpu", ngpu: int = 1, channels_last: bool = False,
                 precision: str = "fp32", world: World | None = None, sync_bn: bool = True) -> None:
        self.device = torch.device(device)
        self.precision, self.dtype = precision, check_precision(precision, self.device)
        self.world = world or World()
        self.w = dict(w_adv=float(w_adv), w_con=float(w_con), w_enc=float(w_enc))
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.netg = NetG(isize, nc, nz, ngf, extralayers).to(self.device, self.dtype, memory_format=self.memory_format)
        self.netd = NetD(isize, nc, ndf, extralayers).to(self.device, self.dtype, memory_format=self.memory_format)
        self.netg.apply(weights_init)
        self.netd.apply(weights_init)
        self.netg.train()
        self.netd.train()
        self._g, self._d = self.netg, self.netd
        if self.world.distributed:
            if ngpu > 1:
                raise ValueError("--ngpu > 1 (DataParallel) cannot be combined with torchrun: one GPU per process")
            if sync_bn:  # sync_bn=False (per-rank statistics) exists only to show what the sync is for
                convert_batchnorm(self.netg, self.world.backend)
                convert_batchnorm(self.netd, self.world.backend)
            from torch.nn.parallel import DistributedDataParallel as DDP
            # the constructor broadcasts rank 0's weights; BN buffers stay identical by construction (global BN),
            # so no buffer broadcast at every forward (the keyword changed name in torch 2.14)
            sync_kw = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP).parameters
                       else "broadcast_buffers")
            ids = [self.device] if self.device.type == "cuda" else None
            self._g = DDP(self.netg, device_ids=ids, **{sync_kw: False})
            self._d = DDP(self.netd, device_ids=ids, **{sync_kw: False})
        elif ngpu > 1 and self.device.type == "cuda":  # data parallel over the first ngpu GPUs (as the original)
            self._g = nn.DataParallel(self.netg, list(range(ngpu)))
            self._d = nn.DataParallel(self.netd, list(range(ngpu)))
        self.optimizer_g = torch.optim.Adam(self.netg.parameters(), lr=lr, betas=(beta1, 0.999))
        self.optimizer_d = torch.optim.Adam(self.netd.parameters(), lr=lr, betas=(beta1, 0.999))
        self._g_params = list(self.netg.parameters())
        self._d_params = list(self.netd.parameters())
        self.d_reinits = 0

    def autocast(self):
        """bf16 autocast on this device for ``precision="bf16"``, else nothing (lib.networks.autocast)."""
        return autocast(self.precision, self.device)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch on the device in the model's dtype and memory format; uint8 (B, C, H, W) is normalised there."""
        x = x.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:  # ToTensor + Normalize(0.5, 0.5), the same float32 operations, on the device
            x = normalize_uint8(x)
        return x.to(self.dtype).contiguous(memory_format=self.memory_format)

    def optimize_params(self, x: torch.Tensor, weight: float = 1.0) -> dict[str, float]:
        """One G step then one D step on the batch x (B, nc, isize, isize) in [-1, 1].

        Returns the losses as floats, plus ``d_real`` / ``d_fake`` (D's mean
        output on real and reconstructed images). Under torchrun they are the means over the global batch,
        the same on every rank; ``weight`` = (this rank's images x ranks / global batch) makes the averaged
        gradients those of the global mean when ranks hold unequal numbers of images (1.0 when equal).
        """
        dt = self.dtype
        with self.autocast():
            fake, latent_i, latent_o = self._g(x)
            pred_real, feat_real = self._d(x)
            pred_fake, feat_fake = self._d(fake)
        # losses in the parameters' dtype (float32, or float64 for checks), never in bf16
        losses = generator_loss(x, fake.to(dt), latent_i.to(dt), latent_o.to(dt), feat_real.detach().to(dt),
                                feat_fake.to(dt), **self.w)
        err_d = discriminator_loss(pred_real.to(dt), pred_fake.to(dt))
        self.optimizer_g.zero_grad(set_to_none=True)
        self.optimizer_d.zero_grad(set_to_none=True)
        scale = weight if weight != 1.0 else None
        # G's gradient must not reach D's weights, D's must not reach G: restrict each backward
        (losses["err_g"] * scale if scale else losses["err_g"]).backward(inputs=self._g_params, retain_graph=True)
        (err_d * scale if scale else err_d).backward(inputs=self._d_params)
        self.optimizer_g.step()
        self.optimizer_d.step()
        vals = torch.stack([err_d.detach(), *(losses[k].detach() for k in LOSS_KEYS[1:5]),
                            pred_real.detach().to(dt).mean(), pred_fake.detach().to(dt).mean()])
        if self.world.distributed:  # global means: every rank logs and decides alike
            vals = self.world.all_reduce_((vals * weight).to(torch.float64)) / self.world.size
        out = dict(zip(LOSS_KEYS, vals.tolist()))
        if out["err_d"] < self.D_REINIT_BELOW:
            if self.world.is_main:
                self.netd.apply(weights_init)
            self.world.broadcast_module(self.netd)  # decided collectively, drawn once on rank 0
            self.d_reinits += 1
            if self.world.is_main:
                print("   Reloading net d")
        return out

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(x) in training mode, as the original's image grids (updates BN running stats, as it did).

        Under torchrun every rank must call it (global BatchNorm is a collective).
        """
        with self.autocast():
            return self.netg(x)[0].to(self.dtype)

    def state(self) -> dict:
        return dict(netg=self.netg.state_dict(), netd=self.netd.state_dict(),
                    optimizer_g=self.optimizer_g.state_dict(), optimizer_d=self.optimizer_d.state_dict())


def _step_size(world: World, x: torch.Tensor | None) -> tuple[int, float] | None:
    """``(images in the global step, this rank's gradient weight)``, or None when the step is skipped.

    One process: the batch's size and 1.0, None for an empty batch. Under torchrun the ranks agree (one
    all-reduce): the step is skipped by all when any rank holds no image, and a rank holding n of the N
    images weighs its mean loss by n x ranks / N, so that the averaged gradients are those of the global mean.
    """
    n_local = 0 if x is None else int(x.shape[0])
    if not world.distributed:
        return (n_local, 1.0) if n_local else None
    counts = world.all_reduce_(torch.tensor([n_local, int(n_local == 0)], dtype=torch.int64))
    if counts[1] > 0:
        return None
    n_global = int(counts[0])
    return n_global, n_local * world.size / n_global


def _end_epoch(model: Ganomaly, epoch: int, niter: int, means: dict[str, float], images_per_s: float, *,
               weights_dir: str, visualizer, health, fixed_input: torch.Tensor, total_steps: int,
               opt_dict: dict | None) -> str:
    """Health checks, the epoch's log lines and rank 0's checkpoint pair; returns the generator's path."""
    world = model.world
    warns = health.end_epoch(epoch, means) if health is not None else []
    global_fixed = world.gather_cat(fixed_input.detach().cpu())  # a collective: every rank
    if not world.is_main:
        return epoch_paths(weights_dir, epoch)[0]
    print(f">> Training model Ganomaly. Epoch {epoch + 1}/{niter}  ({images_per_s:.1f} images/s)")
    print(visualizer.print_epoch_errors(epoch, niter, {k: means[k] for k in LOSS_KEYS[:5]}))
    for w in warns:
        print(f"warning: {w}")
        visualizer.log(f"warning: {w}")
    g_path, _ = save_epoch(model.netg, model.netd, model.optimizer_g, model.optimizer_d, epoch, weights_dir,
                           fixed_input=global_fixed, total_steps=total_steps, opt_dict=opt_dict,
                           world_size=world.size, backend=world.backend)
    return g_path


def train(model: Ganomaly, loader: Iterable, *, niter: int, start_epoch: int, batchsize: int, weights_dir: str,
          visualizer, health=None, bad_files=None, print_freq: int = 100, save_image_freq: int = 100,
          seed: int = -1, generator: torch.Generator | None = None, resume_state: dict | None = None,
          opt_dict: dict | None = None, progress: bool = True) -> dict:
    """Run epochs ``start_epoch .. niter-1``; checkpoint after each; return a summary dict.

    ``loader`` yields ``(x, labels, paths, bad)`` batches (``lib.loaders.collate_skip_bad``).
    With ``seed != -1`` the shuffle order of epoch e depends only on (seed, e),
    so a resumed run sees the same batches as an uninterrupted one. ``batchsize`` is the global batch.
    Under torchrun (``model.world``) every rank runs this loop on its slices of the global batches; rank 0
    alone logs, draws and saves (``visualizer`` may be None on the other ranks). A step that leaves some rank
    without an image is skipped by all ranks together.
    """
    from tqdm import tqdm

    world = model.world
    main = world.is_main
    total_steps = resume_state.get("total_steps", 0) if resume_state else 0
    fixed_input = resume_state.get("fixed_input") if resume_state else None
    if fixed_input is not None:  # the global fixed batch, whatever world size wrote it: take this rank's slice
        a, b = shard_range(len(fixed_input), world.rank, world.size)
        fixed_input = model.to_input(fixed_input[a:b])
    n_images = len(loader.dataset) if hasattr(loader, "dataset") else 0
    summary = dict(epochs_run=0, stopped=None, last_checkpoint=None, images_per_s=0.0)
    for epoch in range(start_epoch, niter):
        if generator is not None and seed != -1:
            generator.manual_seed(seed * 100003 + epoch)
        sums: dict[str, float] = {}
        steps, epoch_iter, seen, t0 = 0, 0, 0, time.perf_counter()
        saved_images, last_x = False, None
        # disable=None: no bar when stderr is not a terminal (logs, CI), as test.py
        bar = tqdm(loader, leave=False, disable=None if (progress and main) else True, desc=f"epoch {epoch + 1}/{niter}")
        for x, _, _, bad in bar:
            if bad and bad_files is not None:
                bad_files.add(bad)
            if (size := _step_size(world, x)) is None:
                continue
            n_global, weight = size
            x = last_x = model.to_input(x)
            total_steps += batchsize
            epoch_iter += batchsize
            if fixed_input is None:  # the first batch of the run, kept for the fixed_fakes grids
                fixed_input = x.clone()
            errors = model.optimize_params(x, weight)
            steps += 1
            seen += n_global
            for k, v in errors.items():
                sums[k] = sums.get(k, 0.0) + v
            if health is not None:
                try:
                    health.step(errors)
                except NonFiniteLossError as exc:  # stop cleanly: the last epoch's checkpoint stays the good one
                    summary["stopped"] = str(exc)
                    if main:
                        visualizer.log(f"STOPPED at epoch {epoch} step {steps}: {exc}")
                    return summary
            if total_steps % print_freq == 0 and main:
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                visualizer.plot_errors(epoch + epoch_iter / max(n_images, 1), {**errors, "images_per_s": rate})
            if total_steps % save_image_freq == 0:
                fakes, fixed = model.reconstruct(x), model.reconstruct(fixed_input)  # every rank: global BN
                if main:
                    visualizer.save_images(epoch, x, fakes, fixed, fixed_reals=fixed_input)
                saved_images = True
        if steps == 0:
            raise RuntimeError("no trainable batch in this epoch: every image was unreadable, or the training set "
                               "is smaller than --batchsize with --droplast (use --no-droplast)")
        if not saved_images:  # small datasets never hit the frequency condition: still give one grid per epoch
            fakes, fixed = model.reconstruct(last_x), model.reconstruct(fixed_input)
            if main:
                visualizer.save_images(epoch, last_x, fakes, fixed, fixed_reals=fixed_input)
        elapsed = time.perf_counter() - t0
        means = {k: v / steps for k, v in sums.items()}
        g_path = _end_epoch(model, epoch, niter, means, seen / elapsed, weights_dir=weights_dir, visualizer=visualizer,
                            health=health, fixed_input=fixed_input, total_steps=total_steps, opt_dict=opt_dict)
        summary.update(epochs_run=summary["epochs_run"] + 1, last_checkpoint=g_path, images_per_s=seen / elapsed,
                       last_errors=means)
    return summary
