"""Every command-line option of train.py and test.py, validated before anything is built.

The original's options keep their names, types and defaults (Jin et al. 2024
repository, ``options.py``), except ``--device`` (default ``auto``). New options
are marked "(new)" in their help. ``python train.py -h`` lists them all.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

__all__ = ["train_parser", "test_parser", "parse_train", "parse_test", "OptionError", "resolve_device",
           "write_opt_txt", "fail", "dataroot", "one_line_warnings", "parse_shard", "model_args", "train_args",
           "architecture_args", "scoring_args", "bf16_cpu_warning"]

PRECISION_CHOICES = ("fp32", "bf16", "fp64")  # the keys of lib.networks.PRECISIONS (not imported: -h stays fast)
ARCHITECTURE = ("isize", "nc", "nz", "ngf", "extralayers")  # what a NetG checkpoint fixes (lib/checkpoint.py)


class OptionError(ValueError):
    """An invalid option value (reported as one line, exit status 2)."""


def _one_line(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def _show(message, category, filename, lineno, file=None, line=None) -> None:
    from tqdm import tqdm  # tqdm.write keeps the line clear of an active progress bar
    tqdm.write(_one_line(message, category, filename, lineno).rstrip("\n"), file=file or sys.stderr)


def one_line_warnings() -> None:
    """Print every Python warning as ``warning: <message>``, one line, like this project's own messages.

    Python's default adds ``lib/model.py:188: UserWarning:`` and the source line, which tells a user
    nothing.  Entry scripts call this when run from the command line (``if __name__ == "__main__"``),
    not in ``main()``, so that a caller of ``main()`` (a test, a notebook) keeps its own warning handling.
    """
    import warnings
    warnings.formatwarning = _one_line
    warnings.showwarning = _show


def fail(message: str, status: int = 2) -> int:
    """Print a one-line user error to stderr and return the exit status."""
    print(f"error: {message}", file=sys.stderr)
    return status


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data and network")
    g.add_argument("--dataset", default="test", help="folder name under data/ (data/<dataset>/{train,test}/<class>/)")
    g.add_argument("--dataroot", default="", help="dataset root; empty means ./data/<dataset>. Its train/ and test/ "
                   "may be packed datasets (SDSS_cutouts/pack.py), or it may be one itself")
    g.add_argument("--batchsize", type=int, default=64, help="images per batch")
    g.add_argument("--workers", type=int, default=8, help="at most this many image decoding workers; the number "
                   "used is chosen for the device and printed (CUDA: processes, up to the CPUs per GPU less one; "
                   "CPU: training decodes in-process, scoring uses 1-4 threads, so decoding does not compete with "
                   "the network for cores)")
    g.add_argument("--droplast", action=argparse.BooleanOptionalAction, default=True,
                   help="drop the last incomplete training batch (the original could not turn this off)")
    g.add_argument("--isize", type=int, default=32, help="input image size in pixels (power of two >= 16; the paper used 64)")
    g.add_argument("--nc", type=int, default=3, help="input image channels")
    g.add_argument("--nz", type=int, default=128, help="size of the latent vector z")
    g.add_argument("--ngf", type=int, default=64, help="generator width (channels of the first conv)")
    g.add_argument("--ndf", type=int, default=64, help="discriminator width (the original ignored it and used ngf)")
    g.add_argument("--extralayers", type=int, default=0, help="extra 3x3 conv layers in encoders and decoder")
    g = p.add_argument_group("device")
    g.add_argument("--device", default="auto", help="auto (CUDA, else Apple MPS, else CPU), cpu, cuda, cuda:N, mps, "
                   "or gpu (= cuda:<first gpu_id>)")
    g.add_argument("--gpu_ids", default="0", help="GPU ids, e.g. 0 or 0,1 (first one used for --device gpu)")
    g.add_argument("--ngpu", type=int, default=1, help="number of GPUs for data parallel training in one process "
                   "(for several processes or machines use torchrun: docs/scaling.md)")
    g.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                   help="(new) fp32: the faithful default; bf16: autocast on CPU or CUDA (faster, scores within "
                   "docs/scaling.md's figures); fp64: a check mode for tests")
    g.add_argument("--amp", action="store_true", help="(new) alias of --precision bf16")
    g.add_argument("--channels_last", action="store_true", help="(new) channels-last memory format (faster on most "
                   "CPUs and GPUs; same maths)")
    g = p.add_argument_group("run")
    g.add_argument("--name", default="experiment_name", help="run name; default <model>/<dataset>")
    g.add_argument("--model", default="ganomaly", help="model name (only used to build the run name)")
    g.add_argument("--outf", default="./output", help="output root: runs go to <outf>/<name>/")
    g.add_argument("--manualseed", type=int, default=-1, help="random seed; -1 = not seeded (not reproducible)")
    g = p.add_argument_group("live display")
    g.add_argument("--display_server", default="http://localhost", help="visdom server URL")
    g.add_argument("--display_port", type=int, default=8097, help="visdom server port")
    g.add_argument("--display_id", type=int, default=0, help="visdom window id offset (kept for compatibility)")
    g.add_argument("--display", action="store_true", help="stream losses and images to visdom")
    g.add_argument("--logger", choices=["none", "tensorboard"], default="none",
                   help="(new) also write TensorBoard logs to <outf>/<name>/tensorboard")
    g = p.add_argument_group("kept for compatibility (cifar/mnist in the original; unused for folders)")
    g.add_argument("--abnormal_class", default="car", help="unused: anomaly class for cifar10/mnist")
    g.add_argument("--proportion", type=float, default=0.1, help="unused: proportion of anomalies (mnist2)")
    g.add_argument("--metric", default="roc", help="evaluation metric for labelled test sets (roc)")


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train.py", description="Train GANomaly (Jin et al. 2024 configuration with "
                                "--isize 64 --niter 50).", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _common(p)
    g = p.add_argument_group("training")
    g.add_argument("--print_freq", type=int, default=100, help="log/plot losses when total images seen %% print_freq == 0")
    g.add_argument("--save_image_freq", type=int, default=100, help="save image grids when total images seen %% "
                   "save_image_freq == 0")
    g.add_argument("--save_test_images", action="store_true", help="unused in training (see test.py)")
    g.add_argument("--load_weights", action="store_true", help="unused in training (see test.py --weights)")
    g.add_argument("--resume", nargs="?", const="last", default="",
                   help="continue an interrupted run: --resume alone takes the last checkpoint of this run's "
                   "weights folder; --resume PATH takes a weights folder or a netG_<epoch>.pth file")
    g.add_argument("--phase", default="train", help="train, val, test (cosmetic)")
    g.add_argument("--iter", type=int, default=0, help="start epoch")
    g.add_argument("--niter", type=int, default=15, help="number of epochs (the paper used 50)")
    g.add_argument("--beta1", type=float, default=0.5, help="Adam beta1")
    g.add_argument("--lr", type=float, default=0.0002, help="Adam learning rate (both networks)")
    g.add_argument("--w_adv", type=float, default=1, help="weight of the adversarial (feature matching) loss")
    g.add_argument("--w_con", type=float, default=50, help="weight of the L1 reconstruction loss")
    g.add_argument("--w_enc", type=float, default=1, help="weight of the latent (encoder) L2 loss")
    return p


def test_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="test.py", description="Score images with a trained GANomaly generator: "
                                "A = mean over nz of (latent_i - latent_o)^2.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _common(p)
    p.set_defaults(isize=None, nc=None, nz=None, ngf=None, extralayers=None)  # read from the checkpoint
    g = p.add_argument_group("scoring")
    g.add_argument("--weights", default="output/ganomaly/SDSS/train/weights/netG_43.pth",
                   help="generator checkpoint (default: where the paper's netG_43.pth lives; get it with "
                   "`make paper-weights`). The architecture is read from it")
    g.add_argument("--load_weights", action="store_true", help="kept for compatibility: weights are always loaded")
    g.add_argument("--images", default="", help="a folder (searched recursively), an image file or a glob; "
                   "overrides --dataset/--dataroot")
    g.add_argument("--score_mode", choices=["paper", "eval"], default="paper",
                   help="paper: BatchNorm with each image's own statistics (the paper's batch-1 train-mode "
                   "protocol); eval: BatchNorm running statistics")
    g.add_argument("--normalize", choices=["none", "paper", "reference"], default="none",
                   help="add ascore_norm: paper = (A - 0.0007747652)/(0.93256927 - 0.0007747652); "
                   "reference = calibration stored next to the weights (see --calibrate)")
    g.add_argument("--calibrate", action="store_true", help="score the given images as the reference set and store "
                   "their score quantiles next to the weights (<weights>.calib.json)")
    g.add_argument("--out_csv", default="", help="output CSV; default <outf>/<name>/test/anomaly_scores.csv")
    g.add_argument("--save_test_images", action="store_true", help="write real | reconstruction | |difference| "
                   "panels per image and a grid of the most anomalous images")
    g.add_argument("--n_worst", type=int, default=64, help="images in the most-anomalous grid")
    g.add_argument("--save_latents", action="store_true", help="write latent_i and latent_o per image (.npz)")
    g.add_argument("--strict", action="store_true", help="exit non-zero if any image could not be scored")
    g.add_argument("--shard", default="", metavar="I/N", help="(new) score only shard I of N (I from 0: contiguous "
                   "blocks of the input order) into <out_csv stem>.shard-I-of-N.csv; join with --merge_shards. "
                   "Under torchrun every process takes its shard and rank 0 merges")
    g.add_argument("--merge_shards", "--merge-shards", dest="merge_shards", default="", metavar="OUT_CSV",
                   help="(new) join OUT_CSV's shard files (scores, errors, latents) into OUT_CSV, then exit "
                   "(--merge-shards: the earlier spelling, still accepted)")
    g.add_argument("--phase", default="test", help="cosmetic")
    return p


def resolve_device(device: str, gpu_ids: str = "0") -> str:
    """Map the --device value to a torch device string, or raise OptionError."""
    import torch

    d = device.strip().lower()
    if d == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if d == "cpu":
        return "cpu"
    if d == "mps":
        if not torch.backends.mps.is_available():
            raise OptionError("--device mps: Apple MPS is not available on this machine; use --device cpu or auto")
        return "mps"
    if d == "gpu" or d == "cuda" or d.startswith("cuda:"):
        if d == "gpu":
            ids = [int(i) for i in gpu_ids.split(",") if i.strip() and int(i) >= 0]
            d = f"cuda:{ids[0]}" if ids else "cuda:0"
        if not torch.cuda.is_available():
            raise OptionError(f"--device {device}: CUDA is not available on this machine; use --device cpu or auto")
        if ":" in d:
            idx = d.split(":", 1)[1]
            if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
                raise OptionError(f"--device {device}: no such CUDA device ({torch.cuda.device_count()} visible)")
        return d
    raise OptionError(f"--device {device}: expected auto, cpu, cuda, cuda:N, mps or gpu")


def parse_shard(spec: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N; raises ValueError with the bad value."""
    try:
        i, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard {spec}: expected I/N, e.g. 0/4 (I counts from 0)") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard {spec}: need 0 <= I < N")
    return i, n


#: CPU features that decide whether bf16 is a speed-up (/proc/cpuinfo flag names)
AMX_FLAGS = ("amx_bf16", "amx_tile")


def bf16_cpu_warning(flags: set[str] | None = None) -> str:
    """The warning for ``--precision bf16`` on a CPU without AMX ("" where AMX is there or the flags are unknown).

    bf16 is a sure speed-up only where the hardware multiplies bf16 matrices (CUDA, or a CPU with AMX
    tiles). With AVX-512-BF16 alone it depends on the CPU: faster than fp32 on the reference machine, slower on
    another (docs/scaling.md); with neither, bf16 is converted in software.
    """
    from lib.fileio import cpu_features

    flags = cpu_features() if flags is None else flags
    if not flags or any(f in flags for f in AMX_FLAGS):
        return ""
    import torch

    kernels = torch.backends.cpu.get_cpu_capability()
    if "avx512_bf16" in flags:
        return (f"--precision bf16 on a CPU without AMX (no amx_bf16; avx512_bf16 only, torch kernels {kernels}): "
                "bf16 may be slower than fp32 here; time both (docs/scaling.md)")
    return (f"--precision bf16 on a CPU without AMX or AVX-512-BF16 (torch kernels {kernels}): bf16 is converted "
            "in software and slower than fp32 here; use --precision fp32 (docs/scaling.md)")


def _validate_common(opt: argparse.Namespace) -> None:
    if opt.isize is not None:
        from lib.networks import check_isize
        try:
            check_isize(opt.isize)
        except ValueError as exc:
            raise OptionError(f"--isize {opt.isize}: {exc}") from None
    for key in ("nc", "nz", "ngf", "ndf", "batchsize", "ngpu"):
        val = getattr(opt, key)
        if val is not None and val < 1:
            raise OptionError(f"--{key} {val}: must be >= 1")
    for key in ("ngf", "ndf"):
        val = getattr(opt, key)
        if val is not None and val % 2:
            raise OptionError(f"--{key} {val}: must be even (the decoder starts at ngf/2 * isize/4 channels)")
    if opt.extralayers is not None and opt.extralayers < 0:
        raise OptionError(f"--extralayers {opt.extralayers}: must be >= 0")
    if opt.workers < 0:
        raise OptionError(f"--workers {opt.workers}: must be >= 0")
    if opt.amp:
        opt.precision = "bf16"
    try:
        [int(i) for i in opt.gpu_ids.split(",") if i.strip()]
    except ValueError:
        raise OptionError(f"--gpu_ids {opt.gpu_ids}: expected comma-separated integers, e.g. 0 or 0,1") from None
    if not 1 <= opt.display_port <= 65535:
        raise OptionError(f"--display_port {opt.display_port}: not a TCP port")
    if opt.name == "experiment_name":
        opt.name = f"{opt.model}/{opt.dataset}"
    # the requested --device stays as given (opt.txt records it); the resolved one is torch_device
    opt.torch_device = resolve_device(opt.device, opt.gpu_ids)
    from lib.networks import check_precision
    try:
        check_precision(opt.precision, opt.torch_device)
    except ValueError as exc:
        raise OptionError(f"--precision {opt.precision}: {exc}; use --device cpu or cuda") from None
    if opt.precision == "bf16" and opt.torch_device == "cpu" and (why := bf16_cpu_warning()):
        print(f"warning: {why}", file=sys.stderr)


def dataroot(opt: argparse.Namespace) -> str:
    """The dataset root: --dataroot, or ./data/<dataset> when it is empty (as the original)."""
    return opt.dataroot or os.path.join(".", "data", opt.dataset)


def parse_train(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate train.py options (raises OptionError; argparse exits on syntax errors)."""
    opt = train_parser().parse_args(argv)
    _validate_common(opt)
    if not 0 <= opt.beta1 < 1:
        raise OptionError(f"--beta1 {opt.beta1}: must be in [0, 1)")
    if opt.lr <= 0:
        raise OptionError(f"--lr {opt.lr}: must be > 0")
    if opt.iter < 0 or opt.niter < 1:
        raise OptionError(f"--iter {opt.iter} --niter {opt.niter}: need iter >= 0 and niter >= 1")
    if opt.print_freq < 1 or opt.save_image_freq < 1:
        raise OptionError("--print_freq and --save_image_freq must be >= 1")
    if min(opt.w_adv, opt.w_con, opt.w_enc) < 0:
        raise OptionError("--w_adv, --w_con and --w_enc must be >= 0")
    opt.isTrain = True
    return opt


def parse_test(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate test.py options (raises OptionError)."""
    opt = test_parser().parse_args(argv)
    _validate_common(opt)
    if opt.n_worst < 1:
        raise OptionError(f"--n_worst {opt.n_worst}: must be >= 1")
    if opt.shard:
        try:
            opt.shard_index, opt.shard_count = parse_shard(opt.shard)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
    opt.isTrain = False
    return opt


def architecture_args(opt: argparse.Namespace) -> dict:
    """The network's shape options (None where test.py leaves them to the checkpoint)."""
    return {k: getattr(opt, k) for k in ARCHITECTURE}


def model_args(opt: argparse.Namespace) -> dict:
    """``lib.model.Ganomaly``'s keyword arguments from train.py's options (``world`` aside)."""
    return dict(architecture_args(opt), ndf=opt.ndf, lr=opt.lr, beta1=opt.beta1, w_adv=opt.w_adv, w_con=opt.w_con,
                w_enc=opt.w_enc, device=opt.torch_device, ngpu=opt.ngpu, precision=opt.precision,
                channels_last=opt.channels_last)


def train_args(opt: argparse.Namespace) -> dict:
    """``lib.model.train``'s keyword arguments that come from the options (the run's objects aside)."""
    return dict(niter=opt.niter, batchsize=opt.batchsize, print_freq=opt.print_freq,
                save_image_freq=opt.save_image_freq, seed=opt.manualseed, opt_dict=dict(vars(opt)))


def scoring_args(opt: argparse.Namespace) -> dict:
    """``lib.scoring.Scorer``'s keyword arguments (the network aside) from test.py's options."""
    return dict(mode=opt.score_mode, device=opt.torch_device, precision=opt.precision,
                channels_last=opt.channels_last)


def write_opt_txt(opt: argparse.Namespace, path: str) -> None:
    """Write options in the original's opt.txt format (sorted ``key: value`` lines), atomically."""
    values = dict(vars(opt))
    values["gpu_ids"] = [int(i) for i in str(values["gpu_ids"]).split(",") if i.strip() and int(i) >= 0]
    lines = ["------------ Options -------------"]
    lines += [f"{k}: {values[k] if values[k] is not None else ''}" for k in sorted(values)]
    lines.append("-------------- End ----------------")
    from lib.fileio import atomic_write_text
    atomic_write_text(path, "\n".join(lines) + "\n")
