"""split_train_test.py and pack.py on real JPEG files; PackedImages against the folder transform."""
from __future__ import annotations

import io
import os
import pickle
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lib.data import build_transform, load_image  # noqa: E402
from lib.data import PackedImages, PackError, is_packed  # noqa: E402
from lib.sdss import plan_split  # noqa: E402
from SDSS_cutouts import pack, split_train_test  # noqa: E402

N_GOOD = 31


def galaxy(seed: int, w: int = 64, h: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy, s = rng.uniform(20, 44), rng.uniform(20, 44), rng.uniform(3, 10)
    blob = 230 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s ** 2))
    return np.clip(blob[..., None] * rng.uniform(0.5, 1, 3) + rng.normal(15, 6, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def cutouts(tmp_path):
    """31 good cutouts named by galcount, plus the junk a real download folder can hold."""
    d = tmp_path / "cutouts"
    d.mkdir()
    for g in range(100, 100 + N_GOOD):
        Image.fromarray(galaxy(g)).save(d / f"{g}.jpg", quality=75)
    (d / "900.jpg").write_text("<html>Server Error</html>")             # an error page saved as .jpg
    buf = io.BytesIO()
    Image.fromarray(galaxy(1)).save(buf, format="JPEG")
    (d / "901.jpg").write_bytes(buf.getvalue()[:400])                       # truncated
    Image.fromarray(galaxy(2)).save(d / "902.png")                         # a real PNG: not a cutout
    (d / "download_status.sqlite").write_bytes(b"SQLite format 3\0")
    (d / "failed.csv").write_text("galcount,reason\n")
    (d / ".partial").mkdir()                                                # the downloader's temporary area
    return d


@pytest.fixture
def catalog(tmp_path):
    g = np.arange(100, 100 + N_GOOD + 5)  # 5 catalogue galaxies without an image (failed downloads)
    df = pd.DataFrame({"galcount": g, "ra": 150 + g / 1000, "dec": 2.0, "z": 0.1, "logmstar": 9 + (g % 20) / 10})
    path = tmp_path / "catalog.csv"
    df.to_csv(path, index=False)
    return path, df


def run_split(cutouts, root, *extra):
    return split_train_test.main(["--images", str(cutouts), "--dataroot", str(root), "--name", "SDSS", *extra])


def listing(root, split):
    return sorted(os.listdir(root / "SDSS" / split / "0.normal"))


def test_split_counts_match_the_paper_sample():
    names = [f"{i}.jpg" for i in range(1, 643_664)]
    plan = plan_split(names, 0.10, seed=0)
    assert (len(plan["test"]), len(plan["train"])) == (64_367, 579_296)
    assert len(plan_split([f"{i}.jpg" for i in range(30)], 0.1)["test"]) == 3   # not 4 from 30*0.1 > 3


def test_split_links_manifest_and_reproducibility(cutouts, catalog, tmp_path, capsys):
    cat_path, cat = catalog
    root = tmp_path / "data"
    assert run_split(cutouts, root, "--catalog", str(cat_path), "--seed", "7") == 0
    out, err = capsys.readouterr()
    assert "skipped 900.jpg" in err and "skipped 901.jpg" in err and "skipped 902.png" in err
    assert "5 catalogue galaxies have no image" in out and "ignored 2 non-image file(s)" in out
    test, train = listing(root, "test"), listing(root, "train")
    assert len(test) == 4 and len(train) == 27 and not set(test) & set(train)   # ceil(31 * 0.1) = 4
    assert set(test) | set(train) == {f"{g}.jpg" for g in range(100, 100 + N_GOOD)}
    assert not (root / "SDSS" / "test" / "1.abnormal").exists()
    src, dst = os.stat(cutouts / test[0]), os.stat(root / "SDSS" / "test" / "0.normal" / test[0])
    assert src.st_ino == dst.st_ino and dst.st_nlink == 2                      # hard link, no second copy
    man = pd.read_csv(root / "SDSS" / "manifest.csv")
    assert list(man.columns[:3]) == ["galcount", "filename", "split"] and "logmstar" in man.columns
    assert len(man) == N_GOOD and (man["split"] == "test").sum() == 4
    merged = man.merge(cat, on="galcount", suffixes=("", "_cat"))
    assert np.array_equal(merged["logmstar"], merged["logmstar_cat"])
    assert sorted(man.loc[man["split"] == "test", "filename"]) == test
    # same seed again: nothing changes; the same seed on a fresh root gives the same split
    assert run_split(cutouts, root, "--catalog", str(cat_path), "--seed", "7") == 0
    assert "31 already there" in capsys.readouterr().out
    assert run_split(cutouts, tmp_path / "again", "--seed", "7") == 0
    assert listing(tmp_path / "again", "test") == test
    assert run_split(cutouts, tmp_path / "other", "--seed", "8") == 0
    assert listing(tmp_path / "other", "test") != test
    # another seed into the existing split is refused, and nothing is touched
    capsys.readouterr()
    assert run_split(cutouts, root, "--seed", "8") == 2
    assert "of another split" in capsys.readouterr().err
    assert listing(root, "test") == test


def test_split_copy_mode_and_bad_input(cutouts, tmp_path, capsys):
    root = tmp_path / "data"
    assert run_split(cutouts, root, "--copy", "--test-frac", "0.2") == 0
    test = listing(root, "test")
    assert len(test) == 7                                                      # ceil(31 * 0.2)
    f = root / "SDSS" / "test" / "0.normal" / test[0]
    assert os.stat(f).st_ino != os.stat(cutouts / test[0]).st_ino
    assert f.read_bytes() == (cutouts / test[0]).read_bytes()
    assert run_split(tmp_path / "nowhere", root) == 2
    assert "image folder not found" in capsys.readouterr().err
    assert run_split(cutouts, tmp_path / "d2", "--test-frac", "1.5") == 2
    assert "test fraction" in capsys.readouterr().err
    (tmp_path / "nocat.csv").write_text("id,logmstar\n1,10\n")
    assert run_split(cutouts, tmp_path / "d3", "--catalog", str(tmp_path / "nocat.csv")) == 2
    assert "no galcount column" in capsys.readouterr().err


def test_pack_matches_the_folder_transform(cutouts, tmp_path, capsys):
    (cutouts / "903.jpg").write_bytes(b"")                                      # empty file
    Image.fromarray(galaxy(5, 100, 80)).save(cutouts / "904.png")             # other size: resized like the loader
    out = tmp_path / "packed"
    assert pack.main([str(cutouts), str(out), "--no-progress"]) == 0
    o, e = capsys.readouterr()
    assert "skipped 900.jpg" in e and "skipped 901.jpg" in e and "skipped 903.jpg" in e
    assert f"{N_GOOD + 2} images" in o and "3 unreadable" in o
    ds = PackedImages(str(out))
    assert len(ds) == N_GOOD + 2 and ds.shape == (N_GOOD + 2, 64, 64, 3)
    assert ds.array.dtype == np.uint8 and isinstance(ds.array, np.memmap)
    transform = build_transform(64, 3)
    for i, name in enumerate(ds.filenames):
        x, label = ds[i]
        ref = transform(load_image(str(cutouts / name), 3))
        assert x.dtype == torch.float32 and x.shape == (3, 64, 64) and label == -1
        assert torch.equal(x, ref), name                                          # bit-identical to the folder path
    idx = [5, 0, 32, 7]
    assert torch.equal(ds.batch(idx), torch.stack([ds[i][0] for i in idx]))
    seen = np.concatenate([b[2] for b in ds.iter_batches(8, shuffle=True, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(len(ds)))
    assert sum(len(b[2]) for b in ds.iter_batches(8, drop_last=True)) == 32
    # the .npy form, pickling for DataLoader workers, and a DataLoader
    assert is_packed(str(out)) and is_packed(str(out / "pack.npy")) and not is_packed(str(cutouts))
    assert torch.equal(PackedImages(str(out / "pack.npy"))[3][0], ds[3][0])
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[4][0], ds[4][0])
    x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=6)))
    assert x.shape == (6, 3, 64, 64) and torch.equal(x, ds.batch(range(6)))


def test_pack_imagefolder_layout_and_errors(cutouts, tmp_path, capsys):
    root = tmp_path / "data"
    assert run_split(cutouts, root) == 0
    out = tmp_path / "packed_train"
    assert pack.main([str(root / "SDSS" / "train"), str(out), "--no-progress"]) == 0
    ds = PackedImages(str(out))
    assert len(ds) == 27 and set(ds.labels.tolist()) == {0} and ds.classes == ["0.normal"]
    assert all(f.startswith("0.normal" + os.sep) for f in ds.filenames)
    capsys.readouterr()
    assert pack.main([str(tmp_path / "nowhere"), str(tmp_path / "p2")]) == 2
    assert "image folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert pack.main([str(tmp_path / "empty"), str(tmp_path / "p3")]) == 2
    assert pack.main([str(cutouts), str(cutouts / "inside")]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    # an index that does not match the array is refused with a clear message
    pd.read_csv(out / "index.csv").head(5).to_csv(out / "index.csv", index=False)
    with pytest.raises(PackError, match="27 images but"):
        PackedImages(str(out))
