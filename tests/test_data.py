"""The image transform equals torchvision's Resize + CenterCrop + ToTensor + Normalize, bit for bit."""
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from lib.data import build_transform, find_samples, list_images, load_image
from tests.conftest import EXAMPLES_DIR


def torchvision_transform(isize, nc):
    return transforms.Compose([transforms.Resize(isize), transforms.CenterCrop(isize), transforms.ToTensor(),
                               transforms.Normalize((0.5,) * nc, (0.5,) * nc)])


@pytest.mark.parametrize("size", [(64, 64), (500, 500), (256, 256), (100, 80), (81, 64), (63, 97)])
@pytest.mark.parametrize("nc, isize", [(3, 64), (1, 32), (3, 16)])
def test_transform_matches_torchvision(tmp_path, size, nc, isize):
    rng = np.random.default_rng(sum(size) + nc)
    path = tmp_path / "img.png"
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8), "RGBA").save(path)
    img = load_image(str(path), nc)
    ours, ref = build_transform(isize, nc)(img), torchvision_transform(isize, nc)(img)
    assert ours.shape == (nc, isize, isize) and ours.dtype == torch.float32
    assert torch.equal(ours, ref)


def test_real_examples_match_torchvision():
    for name in os.listdir(EXAMPLES_DIR):  # JPEG bytes under .png, a 500x500 RGBA mock, a 256x256 apple
        img = load_image(os.path.join(EXAMPLES_DIR, name), 3)
        assert torch.equal(build_transform(64, 3)(img), torchvision_transform(64, 3)(img)), name


def test_sample_order_is_imagefolder_order(tmp_path):
    for rel in ("b/10.png", "b/2.png", "a/x/Z.jpg", "a/x/a.JPG", "a/readme.txt"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    (tmp_path / "c").mkdir()  # empty class folder: allowed
    samples, classes = find_samples(str(tmp_path))
    assert classes == ["a", "b", "c"]
    assert [os.path.relpath(p, tmp_path) for p, _ in samples] == ["a/x/Z.jpg", "a/x/a.JPG", "b/10.png", "b/2.png"]
    assert [label for _, label in samples] == [0, 0, 1, 1]
    labelled = list_images(str(tmp_path / "b"))
    assert [label for _, label in labelled] == [-1, -1]
