"""Helpers shared by the benchmark scripts: the machine's matmul rate and a folder of real-looking JPEG cutouts."""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    """Best-of-reps float32 n x n matmul rate in GFLOP/s (2 n^3 FLOP per product)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def make_jpeg_folder(folder: str, n: int, size: int = 64, seed: int = 0) -> list[str]:
    """n distinct 64x64 JPEG cutouts (the bundled real SDSS tiles, randomly flipped, rolled and re-encoded)."""
    real = os.path.join(ROOT, "data", "sdss_real")
    tiles = [np.asarray(Image.open(os.path.join(real, f)).convert("RGB")) for f in sorted(os.listdir(real))]
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        t = tiles[i % len(tiles)]
        t = np.roll(t[:, ::-1] if rng.random() < 0.5 else t, rng.integers(-3, 4, 2), axis=(0, 1))
        p = os.path.join(folder, f"{i:07d}.jpg")
        Image.fromarray(np.ascontiguousarray(t)).resize((size, size)).save(p, quality=90)
        paths.append(p)
    return paths
