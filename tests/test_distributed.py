"""torchrun maths on CPU/gloo: 2 ranks x 32 images == 1 process x 64 images (float64), and the sampler.

The two ranks run in processes started with torch.multiprocessing (gloo on 127.0.0.1, a free port); the
one-process reference runs here. In float32 Adam's first steps amplify rounding to 1e-3, as far apart as
per-rank BatchNorm, so the comparison runs in float64 (``precision="fp64"``), where synchronised BatchNorm
agrees to ~1e-15 and per-rank BatchNorm is 1e-2 away (checked in the same run).
"""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from lib.distributed import ShardedBatchSampler, World, init_world, shard_range
from options import parse_shard
from lib.model import Ganomaly

NET = dict(isize=32, nc=3, nz=16, ngf=8, ndf=8, extralayers=0, lr=2e-4, beta1=0.5, w_adv=1, w_con=50, w_enc=1)
STEPS, GLOBAL_B = 3, 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return [torch.rand(GLOBAL_B, 3, 32, 32, generator=g, dtype=torch.float64) * 2 - 1 for _ in range(STEPS)]


def snapshot(m: Ganomaly) -> dict:
    """Every number the step changes: weights, BN running statistics, Adam moments."""
    out = {f"g.{k}": v.clone() for k, v in m.netg.state_dict().items()}
    out.update({f"d.{k}": v.clone() for k, v in m.netd.state_dict().items()})
    for name, o in (("og", m.optimizer_g), ("od", m.optimizer_d)):
        for i, st in o.state_dict()["state"].items():
            out.update({f"{name}.{i}.{k}": v.clone() for k, v in st.items() if k != "step"})
    return out


def run_steps(world: World | None, sync: bool, reinit_always: bool = False) -> tuple[dict, list]:
    torch.manual_seed(0)
    m = Ganomaly(**NET, precision="fp64", world=world, sync_bn=sync)
    if reinit_always:
        m.D_REINIT_BELOW = float("inf")
    rank, size = (world.rank, world.size) if world else (0, 1)
    losses = []
    for x in batches():
        a, b = shard_range(len(x), rank, size)
        losses.append(m.optimize_params(x[a:b]))
    return snapshot(m), losses


def _worker(rank: int, size: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(size),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    world, _ = init_world("cpu", timeout_s=120)
    res = {key: run_steps(world, sync, reinit) for key, sync, reinit in
           (("sync", True, False), ("per_rank", False, False), ("sync_reinit", True, True))}
    if rank == 0:  # written whole, then renamed: the file exists only once every collective has finished
        torch.save(res, out + ".tmp")
        os.replace(out + ".tmp", out)
    world.barrier()
    world.close()


def max_diff(a: dict, b: dict, prefix: str = "") -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a if k.startswith(prefix) and a[k].is_floating_point())


@pytest.fixture(scope="module")
def two_rank_results(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ddp") / "res.pt")
    try:
        mp.spawn(_worker, args=(2, free_port(), out), nprocs=2, join=True)
    except mp.ProcessExitedException as exc:
        # gloo can abort a process while it tears its sockets down (seen once in CI under load, SIGABRT
        # "terminate called without an active exception"); the results are whole if rank 0 wrote them,
        # because that happens after the last collective. Without them the fixture fails as before.
        if not os.path.exists(out):
            raise
        print(f"a rank stopped after the results were written ({exc}); they are complete")
    return torch.load(out, weights_only=False)


def test_two_ranks_equal_one_process_in_float64(two_rank_results):
    ref, ref_losses = run_steps(None, True)
    got, got_losses = two_rank_results["sync"]
    assert set(ref) == set(got)
    # parameters, Adam moments and BN running statistics: 2 x 32 == 1 x 64
    print(f"2 ranks vs 1 process, float64: max |diff| {max_diff(ref, got):.2e} (all), "
          f"{max_diff(ref, got, 'g.encoder1.main.pyramid-16-batchnorm.running'):.2e} (BN running stats)")
    assert max_diff(ref, got) < 1e-10  # the issue asks 1e-5; global BN in float64 gives ~1e-15
    assert max_diff(ref, got, "g.encoder1.main.pyramid-16-batchnorm.running") < 1e-12
    for step, (a, b) in enumerate(zip(ref_losses, got_losses)):  # logged losses: global means, every rank
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-9, abs=1e-12), (step, k)


def test_per_rank_batchnorm_would_be_caught(two_rank_results):
    """The same comparison fails by orders of magnitude when each rank normalises with its own 32 images."""
    ref, _ = run_steps(None, True)
    print(f"per-rank BatchNorm: max |diff| {max_diff(ref, two_rank_results['per_rank'][0]):.2e}")
    assert max_diff(ref, two_rank_results["per_rank"][0]) > 1e-3
    assert max_diff(ref, two_rank_results["per_rank"][0], "g.encoder1.main.pyramid-16-batchnorm.running") > 1e-6


def test_d_reinit_is_collective_and_drawn_once(two_rank_results):
    """D re-initialised every step: rank 0 draws the weights (as the one process) and broadcasts them."""
    ref, _ = run_steps(None, True, reinit_always=True)
    print(f"D re-initialised every step: max |diff| {max_diff(ref, two_rank_results['sync_reinit'][0]):.2e}")
    assert max_diff(ref, two_rank_results["sync_reinit"][0]) < 1e-9


def test_sharded_sampler_covers_every_image_once_in_the_single_process_order():
    n, b = 23, 8
    g = torch.Generator().manual_seed(5)
    perm = torch.randperm(n, generator=g.manual_seed(5)).tolist()
    for drop_last in (True, False):
        per_rank = [list(ShardedBatchSampler(n, b, World(rank=r, size=3), drop_last=drop_last,
                                             generator=torch.Generator().manual_seed(5))) for r in range(3)]
        assert len({len(p) for p in per_rank}) == 1  # same number of steps on every rank
        glob = [sum((p[k] for p in per_rank), []) for k in range(len(per_rank[0]))]
        expect = [perm[i:i + b] for i in range(0, n - (n % b if drop_last else 0), b)]
        assert glob == expect
    assert [len(x) for x in per_rank[2]] == [3, 3, 3]  # 8 = 2 + 3 + 3; the last 7 = 2 + 2 + 3


def test_shard_spec_and_ranges():
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "-1/2", "1/0"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)
    assert [shard_range(10, i, 3) for i in range(3)] == [(0, 3), (3, 6), (6, 10)]


def test_packed_training_loader_shards_every_row_once(tmp_path):
    """Packed arrays under torchrun: each rank reads its slices (uint8, channels-last views) of the global batches."""
    import numpy as np

    from lib.data import open_images
    arr = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "pack.npy", arr)
    (tmp_path / "index.csv").write_text("index,filename,label,class\n" + "".join(
        f"{i},img{i}.png,0,0.normal\n" for i in range(10)))
    src = open_images(str(tmp_path), 16, 3, classes=True)
    seen = []
    for r in range(2):
        loader = src.training_loader(4, drop_last=False, generator=torch.Generator().manual_seed(1),
                                     world=World(rank=r, size=2), raw=True)
        for x, labels, names, _ in loader:
            assert x.dtype == torch.uint8 and x.shape[1:] == (3, 16, 16)
            for img, name in zip(x, names):
                assert torch.equal(img, torch.from_numpy(arr[int(name[3:-4])]).permute(2, 0, 1))
            seen += names
    assert sorted(seen) == sorted(f"img{i}.png" for i in range(10))  # every row once per epoch
