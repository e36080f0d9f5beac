"""mock_observation.py --shard I/N and --merge_shards: N processes give the metadata.csv of one."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import mock_observation

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def particles(tmp_path_factory):
    d = tmp_path_factory.mktemp("particles")
    assert mock_observation.main(["--make-example", str(d), "--example-stars", "1500"]) == 0
    return d


def _run(particles, out, *extra):
    return mock_observation.main(["--particles", str(particles), "--out", str(out), "--run", "box",
                                  "--orientations", "random:2", "--seed", "4", *extra])


def test_two_shards_merged_equal_one_process(particles, tmp_path):
    one, sharded = tmp_path / "one", tmp_path / "sharded"
    assert _run(particles, one) == 0
    assert _run(particles, sharded, "--shard", "1/2") == 0
    assert not (sharded / "metadata.csv").exists()  # a shard never writes the shared table
    assert _run(particles, sharded, "--shard", "0/2") == 0
    tables = sorted(p.name for p in sharded.glob("metadata.shard-*-of-2.csv"))
    assert tables == ["metadata.shard-0-of-2.csv", "metadata.shard-1-of-2.csv"]
    halves = [len((sharded / t).read_text().splitlines()) - 1 for t in tables]
    assert all(h > 0 for h in halves)  # each shard rendered some of the galaxies
    assert mock_observation.main(["--merge_shards", str(sharded)]) == 0
    assert (sharded / "metadata.csv").read_bytes() == (one / "metadata.csv").read_bytes()
    for img in one.glob("*.jpg"):  # every image byte-identical to the one process's
        assert (sharded / img.name).read_bytes() == img.read_bytes()
    rec, rec1 = (json.loads((d / "mock_observation_run.json").read_text()) for d in (sharded, one))
    assert rec["merged_shards"] == 2 and rec["n_images"] == rec1["n_images"] == sum(halves)
    assert rec["n_galaxies"] == rec1["n_galaxies"]


def test_merge_with_a_missing_shard_is_one_line_and_writes_nothing(particles, tmp_path):
    out = tmp_path / "partial"
    assert _run(particles, out, "--shard", "0/3") == 0
    proc = subprocess.run([sys.executable, str(ROOT / "mock_observation.py"), "--merge_shards", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "shards [1, 2] of 3 missing" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (out / "metadata.csv").exists()


def test_bad_shard_spec_is_a_usage_error(particles, tmp_path, capsys):
    assert _run(particles, tmp_path / "x", "--shard", "2/2") == 2
    assert "need 0 <= I < N" in capsys.readouterr().err
