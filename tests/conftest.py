"""Shared fixtures: the repository root on sys.path, small image folders made from the bundled real SDSS cutouts."""
import os
import shutil
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

torch.set_num_threads(min(2, os.cpu_count() or 1))

REAL_DIR = os.path.join(ROOT, "data", "sdss_real")
EXAMPLES_DIR = os.path.join(ROOT, "data", "examples")


def real_tiles() -> list[str]:
    return sorted(os.path.join(REAL_DIR, f) for f in os.listdir(REAL_DIR) if f.endswith(".png"))


@pytest.fixture
def sdss_dataset(tmp_path):
    """tmp/ds/{train,test}/0.normal/ with 16 and 4 real SDSS cutouts (64x64)."""
    tiles = real_tiles()
    root = tmp_path / "ds"
    for split, files in (("train", tiles[:16]), ("test", tiles[16:20])):
        d = root / split / "0.normal"
        d.mkdir(parents=True)
        for f in files:
            shutil.copy(f, d / os.path.basename(f))
    return root
