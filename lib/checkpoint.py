"""Checkpoints: atomic saving, safe loading, and the architecture read back from tensor shapes.

File format (as the original, so files move both ways): ``torch.save`` of a
dict with at least ``epoch`` (1-based count of finished epochs) and
``state_dict``. Our training adds ``optimizer``, ``opt``, ``versions``,
``fixed_input``, ``rng_state`` and ``total_steps`` for ``--resume``; the
original loader reads only ``state_dict`` and ignores them. This module writes the dict
(:func:`save_epoch`) and reads it back (:func:`load_checkpoint`, :func:`load_resume`), and names the
files (:func:`epoch_paths`: ``netG_<epoch>.pth``, ``netD_<epoch>.pth``, 0-based epoch).

Loading always uses ``weights_only=True``: a checkpoint is data, never code.
:func:`find_last_checkpoint` and :func:`load_resume` serve ``train.py --resume``; they take
the networks and optimisers, not the model object, so this module never imports lib/model.py.
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
from typing import Any

import torch

from lib.fileio import atomic_write, package_versions
from lib.networks import NetG

__all__ = ["CheckpointError", "atomic_save", "epoch_paths", "save_epoch", "load_checkpoint", "netg_config_from_state_dict", "load_netg",
           "find_last_checkpoint", "load_resume", "PAPER_NETG_BLOB_SHA1", "git_blob_sha1", "is_paper_netg"]


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not what was expected (one-line message)."""


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to a hidden temporary file in the same folder, then rename over ``path``.

    A kill at any moment leaves either the old file or the complete new one.
    """
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def epoch_paths(weights_dir: str, epoch: int) -> tuple[str, str]:
    """``(netG_<epoch>.pth, netD_<epoch>.pth)`` in ``weights_dir`` (``epoch`` 0-based, as the original)."""
    return os.path.join(weights_dir, f"netG_{epoch}.pth"), os.path.join(weights_dir, f"netD_{epoch}.pth")


def save_epoch(netg: torch.nn.Module, netd: torch.nn.Module, optimizer_g: torch.optim.Optimizer,
               optimizer_d: torch.optim.Optimizer, epoch: int, weights_dir: str, *, fixed_input: torch.Tensor,
               total_steps: int, opt_dict: dict | None, world_size: int = 1, backend: str = "none") -> tuple[str, str]:
    """Write netD_<epoch>.pth then netG_<epoch>.pth, each atomically; returns their paths.

    The unwrapped networks (no DDP ``module.`` prefix), so a checkpoint moves between world sizes;
    ``fixed_input`` is the global fixed batch (the caller gathered it over the ranks).
    """
    g_path, d_path = epoch_paths(weights_dir, epoch)
    common = dict(epoch=epoch + 1, opt=opt_dict or {}, versions=package_versions(), world_size=world_size,
                  backend=backend)
    # D first: a netG_k file is only ever paired with a complete netD_k (resume looks for pairs)
    atomic_save(dict(common, state_dict=netd.state_dict(), optimizer=optimizer_d.state_dict()), d_path)
    atomic_save(dict(common, state_dict=netg.state_dict(), optimizer=optimizer_g.state_dict(),
                     fixed_input=fixed_input, total_steps=total_steps, rng_state=torch.get_rng_state()), g_path)
    return g_path, d_path


#: git blob SHA-1 of the paper's ``netG_43.pth`` (as recorded in the paper's repository)
PAPER_NETG_BLOB_SHA1 = "5823f39169a2ce95c0ea9cc6910179e28c7e52c8"


def git_blob_sha1(path: str) -> str:
    """The git blob hash of a file, as ``git hash-object`` computes it."""
    h = hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_paper_netg(path: str) -> bool:
    """True if ``path`` is, byte for byte, the paper's trained generator."""
    return os.path.isfile(path) and git_blob_sha1(path) == PAPER_NETG_BLOB_SHA1


def _load_failure(exc: Exception) -> str:
    """Why torch.load refused a file, in our words: torch's own text advises ``weights_only=False`` (unsafe)."""
    text = str(exc)
    if "weights_only" in text or "Weights only load failed" in text:
        return ("it holds Python objects besides tensors, which are never unpickled here (weights_only=True); "
                "re-save its state_dict with torch.save({'state_dict': net.state_dict()}, path)")
    first = text.strip().splitlines()[0][:120] if text.strip() else ""
    return f"not a PyTorch checkpoint ({type(exc).__name__}{': ' + first if first else ''})"


def load_checkpoint(path: str, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict with ``weights_only=True``; a bare state_dict is wrapped as ``{'state_dict': ...}``."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_load_failure(exc)}") from None
    if isinstance(obj, dict) and "state_dict" in obj:
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"state_dict": obj}
    raise CheckpointError(f"{path} is not a GANomaly checkpoint (expected a dict with a 'state_dict')")


def netg_config_from_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, int]:
    """Architecture of a NetG from its tensor shapes: isize, nc, nz, ngf, extralayers."""
    first = [k for k in sd if re.fullmatch(r"encoder1\.main\.initial-conv-\d+-\d+\.weight", k)]
    final = [k for k in sd if re.fullmatch(r"encoder1\.main\.final-\d+-1-conv\.weight", k)]
    if len(first) != 1 or len(final) != 1 or not any(k.startswith("decoder.") for k in sd):
        raise CheckpointError("not a GANomaly generator (NetG) state_dict: encoder1/decoder keys missing")
    ngf, nc = sd[first[0]].shape[:2]
    nz = sd[final[0]].shape[0]
    n_pyramid = sum(1 for k in sd if re.fullmatch(r"encoder1\.main\.pyramid-\d+-\d+-conv\.weight", k))
    extralayers = sum(1 for k in sd if re.fullmatch(r"encoder1\.main\.extra-layers-\d+-\d+-conv\.weight", k))
    # encoder halves isize/2 down to 4 once per pyramid layer
    return dict(isize=2 ** (n_pyramid + 3), nc=int(nc), nz=int(nz), ngf=int(ngf), extralayers=extralayers)


def load_netg(path: str, device: str | torch.device = "cpu", **expected: int | None) -> tuple[NetG, dict]:
    """Build a NetG from a checkpoint file and load its weights (``strict=True``).

    Parameters
    ----------
    path : checkpoint file (``netG_<epoch>.pth``).
    device : where to put the network.
    **expected : options the user gave explicitly (isize, nc, nz, ngf,
        extralayers; None = not given); a contradiction with the file is a
        ``CheckpointError`` naming the mismatch.

    Returns
    -------
    (netg, checkpoint dict)
    """
    ckpt = load_checkpoint(path)
    config = netg_config_from_state_dict(ckpt["state_dict"])
    wrong = [f"--{k} {v} but the checkpoint has {config[k]}" for k, v in expected.items()
             if v is not None and k in config and config[k] != v]
    if wrong:
        raise CheckpointError(f"{path}: " + "; ".join(wrong))
    netg = NetG(**config)
    try:
        netg.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: tensor shapes do not fit a NetG{tuple(config.values())}: "
                              f"{str(exc).splitlines()[-1].strip()}") from None
    return netg.to(device), ckpt


def find_last_checkpoint(path: str) -> tuple[str, str]:
    """The newest (netG_k.pth, netD_k.pth) pair in a weights folder, or the pair of a netG file."""
    if os.path.isfile(path):
        g = path
        d = os.path.join(os.path.dirname(path), os.path.basename(path).replace("netG", "netD"))
        if not os.path.isfile(d):
            raise CheckpointError(f"--resume {path}: the matching discriminator file {d} is missing")
        return g, d
    epochs = sorted(int(m.group(1)) for f in glob.glob(os.path.join(path, "netG_*.pth"))
                    if (m := re.search(r"netG_(\d+)\.pth$", f)) and os.path.isfile(os.path.join(path, f"netD_{m.group(1)}.pth")))
    if not epochs:
        raise CheckpointError(f"--resume: no netG_<epoch>.pth / netD_<epoch>.pth pair in {path}")
    return epoch_paths(path, epochs[-1])


def load_resume(netg: torch.nn.Module, netd: torch.nn.Module, optimizer_g: torch.optim.Optimizer,
                optimizer_d: torch.optim.Optimizer, g_path: str, d_path: str,
                device: str | torch.device = "cpu") -> dict:
    """Restore weights and optimizer states; return ``{'epoch', 'total_steps', 'fixed_input', 'world_size'}``.

    A checkpoint moves between world sizes (torchrun N -> M, 1 included): rank 0 wrote the unwrapped
    networks (no ``module.`` prefix, BatchNorm keys as ``nn.BatchNorm2d``), the optimiser states (the same on
    every rank) and the global fixed batch; every rank of the new run loads the same file.
    """
    g, d = load_checkpoint(g_path, device), load_checkpoint(d_path, device)
    try:
        netg.load_state_dict(g["state_dict"])
        netd.load_state_dict(d["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"--resume {g_path}: checkpoint does not fit the network options "
                              f"({str(exc).splitlines()[-1].strip()})") from None
    if "optimizer" in g and "optimizer" in d:
        optimizer_g.load_state_dict(g["optimizer"])
        optimizer_d.load_state_dict(d["optimizer"])
    if "rng_state" in g:
        torch.set_rng_state(g["rng_state"])
    return dict(epoch=int(g["epoch"]), total_steps=int(g.get("total_steps", 0)), fixed_input=g.get("fixed_input"),
                world_size=int(g.get("world_size", 1)))
