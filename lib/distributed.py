"""Several processes (torchrun) with the maths of one: world set-up, samplers, global BatchNorm, rank-0 duties.

``torchrun --nproc_per_node N train.py --batchsize B ...`` runs N processes; each takes ``B/N`` images of
every global batch of B and the step equals one process with B images (float tolerance):

* the data: :class:`ShardedBatchSampler` draws the single-process permutation (same generator, same seed)
  and cuts each global batch of B into N contiguous slices, one per rank: every image once per epoch;
* BatchNorm: batch statistics over the global batch (``nn.SyncBatchNorm`` with NCCL on GPUs; on CPU/gloo,
  where SyncBatchNorm refuses CPU tensors, :class:`GlobalBatchNorm2d`, a differentiable all-reduce of the
  per-channel moments);
* gradients: averaged by DistributedDataParallel (each rank's loss is a mean over its B/N images);
* D's re-initialisation: decided on the all-reduced err_d and broadcast from rank 0 (:meth:`World.broadcast_module`).

Rank 0 alone writes checkpoints, ``loss_log.txt``, images and the live display (``World.is_main``).
This module is the plumbing only: which files a sharded scoring run writes, and their merge, belong to
lib/evaluate.py.
"""
from __future__ import annotations

import datetime
import os
import random
import signal
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["World", "init_world", "env_world_size", "GlobalBatchNorm2d", "convert_batchnorm", "ShardedBatchSampler", "shard_range",
           "parse_shard"]


@dataclass
class World:
    """Where this process stands: ``rank`` of ``size`` processes (``size`` 1: no process group)."""
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str = "none"
    device: str = "cpu"  # where collective tensors must live (NCCL: this rank's GPU)
    reported: bool = False  # this rank's failure line is on stderr

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def all_reduce_(self, t: torch.Tensor, op=None) -> torch.Tensor:
        """In-place sum (or ``op``) over ranks; a no-op for one process. Not differentiable (see ``_AllReduceSum``)."""
        if self.distributed:
            on = t.to(self.device) if self.backend == "nccl" else t
            dist.all_reduce(on, op=op or dist.ReduceOp.SUM)
            if on is not t:
                t.copy_(on)
        return t

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (e.g. after rank 0 re-initialised D)."""
        if self.distributed:
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def shared_seed(self) -> int:
        """A random seed drawn on rank 0 and the same on every rank (for unseeded runs: one shuffle order)."""
        seed = torch.tensor([random.SystemRandom().randrange(2 ** 62)], dtype=torch.int64)
        if self.distributed:
            seed = seed.to(self.device) if self.backend == "nccl" else seed
            dist.broadcast(seed, src=0)
        return int(seed.item())

    def gather_lists(self, items: list) -> list:
        """Every rank's ``items`` (picklable), concatenated in rank order; ``items`` itself in one process."""
        if not self.distributed:
            return list(items)
        parts: list = [None] * self.size
        dist.all_gather_object(parts, list(items))
        return [x for part in parts for x in part]

    def gather_cat(self, t: torch.Tensor) -> torch.Tensor:
        """Concatenate each rank's ``t`` along dim 0 in rank order (rank 0 = first rows); CPU tensors."""
        if not self.distributed:
            return t
        parts: list = [None] * self.size
        dist.all_gather_object(parts, t.detach().cpu())
        return torch.cat(parts)

    def stop_on_sigterm(self, hint: str) -> None:
        """Under torchrun, turn the SIGTERM that torchrun sends when another rank failed into one line on stderr
        and a clean exit (``finally`` blocks run: atomic writes leave no partial file)."""
        if not self.distributed:
            return

        def handler(signum, frame):
            if self.reported:  # the failure is already on stderr: just go
                os._exit(128 + signum)
            self.reported = True
            print(f"error: rank {self.rank} of {self.size} stopped: another process failed or the job was "
                  f"cancelled; {hint}", file=sys.stderr, flush=True)
            raise SystemExit(128 + signum)
        signal.signal(signal.SIGTERM, handler)

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def env_world_size() -> int:
    """The number of processes torchrun started (WORLD_SIZE), 1 without torchrun."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


def init_world(device: str = "cpu", backend: str = "", timeout_s: float = 1800.0) -> tuple[World, str]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

    Returns ``(world, device)``: without torchrun (no WORLD_SIZE, or 1) a one-process World and the device
    unchanged; on CUDA each process takes ``cuda:<LOCAL_RANK>`` and NCCL, elsewhere gloo (``backend``
    overrides). A rank that stops answering makes the others fail after ``timeout_s`` at most.
    """
    size = env_world_size()
    if size <= 1:
        return World(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local}"
        torch.cuda.set_device(device)
    backend = backend or ("nccl" if device.startswith("cuda") else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return World(rank=rank, size=size, local_rank=local, backend=backend,
                 device=device if backend == "nccl" else "cpu"), device


class _AllReduceSum(torch.autograd.Function):
    """y = sum over ranks of x; backward: the gradient w.r.t. each rank's x is the sum of every rank's dL/dy."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        g = g.contiguous().clone()
        dist.all_reduce(g)
        return g


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics cover the images of every rank (CPU/gloo SyncBatchNorm).

    Same parameters, buffers and ``state_dict`` keys as ``nn.BatchNorm2d`` (checkpoints move freely). Two
    differentiable all-reduces per call: (sum, count), then the sum of squared deviations from the global
    mean (two passes, as accurate as one process's batch norm). Running statistics are updated with the
    unbiased global variance, exactly as one process with the whole batch.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        xs = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # moments in >= float32
        c = xs.shape[1]
        local_n = xs.numel() // c
        head = torch.cat([xs.sum(dim=(0, 2, 3)), xs.new_full((1,), float(local_n))])
        head = _AllReduceSum.apply(head)                   # (C + 1,): global sums, global count
        n = head[c].detach()
        mean = head[:c] / n                                 # (C,)
        dev = xs - mean.view(1, c, 1, 1)
        var = _AllReduceSum.apply((dev * dev).sum(dim=(0, 2, 3))) / n  # biased, as the normalisation uses
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var.detach() * (n / torch.clamp(n - 1, min=1))
                self.running_mean.mul_(1 - m).add_(mean.detach().to(self.running_mean.dtype), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var.dtype), alpha=m)
        y = dev * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1).to(y.dtype) + self.bias.view(1, c, 1, 1).to(y.dtype)
        return y.to(x.dtype)


def convert_batchnorm(module: nn.Module, backend: str) -> nn.Module:
    """Make every BatchNorm2d global across ranks: SyncBatchNorm for NCCL, GlobalBatchNorm2d otherwise (in place)."""
    if backend == "nccl":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm2d:
                new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                        child.track_running_stats)
                new.to(device=child.weight.device, dtype=child.weight.dtype)  # before copying: no float32 detour
                new.load_state_dict(child.state_dict())
                setattr(parent, name, new)
    return module


def shard_range(n: int, index: int, count: int) -> tuple[int, int]:
    """``[start, stop)`` of shard ``index`` of ``count`` over n items: contiguous, sizes differ by at most 1."""
    return index * n // count, (index + 1) * n // count


def parse_shard(spec: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N; raises ValueError with the bad value."""
    try:
        i, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard {spec}: expected I/N, e.g. 0/4 (I counts from 0)") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard {spec}: need 0 <= I < N")
    return i, n


class ShardedBatchSampler:
    """This rank's slice of each global batch of the single-process shuffle order.

    The permutation is ``torch.randperm(n, generator=generator)``, the draw of a one-process
    ``RandomSampler`` with the same generator; global batch k is ``perm[k*B:(k+1)*B]`` and rank r takes its
    r-th contiguous slice (sizes differ by at most one; a short last batch may give a rank no image, which the
    training loop treats collectively). Every rank yields the same number of (possibly empty) index lists.
    """

    def __init__(self, n: int, batchsize: int, world: World, *, shuffle: bool = True, drop_last: bool = True,
                 generator: torch.Generator | None = None) -> None:
        self.n, self.batchsize, self.world = n, batchsize, world
        self.shuffle, self.drop_last, self.generator = shuffle, drop_last, generator

    def __len__(self) -> int:
        return self.n // self.batchsize if self.drop_last else -(-self.n // self.batchsize)

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator).tolist() if self.shuffle else list(range(self.n))
        for k in range(len(self)):
            batch = order[k * self.batchsize:(k + 1) * self.batchsize]
            a, b = shard_range(len(batch), self.world.rank, self.world.size)
            yield batch[a:b]
