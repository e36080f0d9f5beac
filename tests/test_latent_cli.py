"""rate.py with latents and metadata beside the score CSVs (as test.py and make_galaxies.py write them)."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest

import rate


def _suite(root, name, n_gal, per_gal, shift, rng, latents=True, run_json=True, score_scale=1.0):
    """images/<name>/{metadata.csv, 1.abnormal/...}, scores/<name>.csv (+ _latents.npz, _run.json)."""
    folder = root / "images" / name
    files = [f"1.abnormal/{name}_{i:06d}.jpg" for i in range(n_gal * per_gal)]
    gal = np.repeat([f"{name}-g{i}" for i in range(n_gal)], per_gal)
    logm = np.repeat(rng.uniform(9.2, 11.2, n_gal), per_gal)
    folder.mkdir(parents=True)
    pd.DataFrame({"file": files[::-1], "galaxy": gal[::-1], "logmstar": logm[::-1]}).to_csv(
        folder / "metadata.csv", index=False)  # metadata in another order than the scores
    scores = root / "scores" / f"{name}.csv"
    scores.parent.mkdir(exist_ok=True)
    fn = [str(folder / f) for f in files]
    a = score_scale * rng.lognormal(-4, 0.4, len(fn))
    pd.DataFrame({"filename": fn, "ascore": a}).to_csv(scores, index=False)
    if run_json:
        (root / "scores" / f"{name}_run.json").write_text(json.dumps({"options": {"images": str(folder)}}))
    if latents:
        z = rng.normal(size=(len(fn), 12))
        z[:, 0] += shift
        order = rng.permutation(len(fn))  # rows in another order than the CSV
        np.savez(root / "scores" / f"{name}_latents.npz", filenames=np.array(fn)[order], latent_i=z[order],
                 latent_o=z[order] * 0.9, ascore=a[order])
    return scores


@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(0)
    return {"obs": _suite(tmp_path, "observed", 120, 2, 0.0, rng),
            "sim": _suite(tmp_path, "sim", 60, 4, 1.0, rng),
            "plain": _suite(tmp_path, "plain", 60, 4, 0.0, rng, latents=False), "root": tmp_path}


def test_rate_reads_latents_and_finds_metadata_through_the_run_record(tree, capsys):
    out = tree["root"] / "rating"
    code = rate.main(["--reference", f"observed={tree['obs']}", "--suite", f"sim={tree['sim']}",
                      "--suite", f"plain={tree['plain']}", "--out", str(out), "--n-boot", "50", "--n-perm", "200"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "note: plain: no latents beside" in printed and "A statistics only" in printed
    assert "mass bins by 'logmstar'" in printed and "grouped by 'galaxy'" in printed
    t = pd.read_csv(out / "rating.csv")
    sim = t[(t.suite == "sim") & (t.mass_bin == "all")].iloc[0]
    assert sim.n_groups == 60 and sim.n_images == 240
    assert sim.c2st_auroc > 0.65 and sim.c2st_p < 0.05 and "separable in latent space" in sim.verdict
    assert sim.c2st_auroc_lo <= sim.c2st_auroc <= sim.c2st_auroc_hi
    plain = t[(t.suite == "plain") & (t.mass_bin == "all")].iloc[0]
    assert np.isnan(plain.c2st_auroc) and "no latents: A statistics only" in plain.warnings
    assert set(t.mass_bin) == {"all", "9.00-10.29", "10.29-11.39", "11.39-12.50"}
    run = json.loads((out / "rating_run.json").read_text())
    assert run["mass_col"] == "logmstar" and run["group_col"] == "galaxy"
    assert run["latent"]["n_folds"] == 5 and run["latent"]["seed"] == 0 and "ridge" in run["latent"]["classifier"]
    assert run["tables_with_latents"] == ["observed", "sim"]
    for f in ["ranking.png", "latent_pca.png", "score_ecdf_all.png", "summary.md"]:
        assert (out / f).stat().st_size > 1000


def test_latents_that_do_not_match_the_csv_are_an_error_naming_the_file(tree, capsys):
    npz = tree["sim"].with_name("sim_latents.npz")
    d = dict(np.load(npz))
    np.savez(npz, **{k: v[:-1] for k, v in d.items()})
    out = tree["root"] / "never"
    code = rate.main(["--reference", f"observed={tree['obs']}", "--suite", f"sim={tree['sim']}", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("rate.py: error: sim: latents") and "sim_latents.npz" in err and "do not match" in err
    assert not out.exists()


def test_explicit_metadata_and_its_errors(tree, capsys):
    tree["sim"].with_name("sim_run.json").unlink()
    meta = tree["root"] / "images" / "sim" / "metadata.csv"
    out = tree["root"] / "r"
    base = ["--reference", f"observed={tree['obs']}", "--suite", f"sim={tree['sim']}", "--out", str(out),
            "--n-boot", "20", "--n-perm", "20", "--no-figures"]
    # without the run record the suite has no masses while the reference has: no automatic mass bins
    assert rate.main(base) == 0
    assert set(pd.read_csv(out / "rating.csv").mass_bin) == {"all"}
    assert rate.main(base + ["--metadata", f"sim={meta}"]) == 0
    assert "mass bins by 'logmstar'" in capsys.readouterr().out
    assert rate.main(base + ["--metadata", f"nope={meta}"]) == 2
    assert "no --reference or --suite of that name" in capsys.readouterr().err
    bad = tree["root"] / "bad.csv"
    pd.read_csv(meta).iloc[:10].to_csv(bad, index=False)
    assert rate.main(base + ["--metadata", f"sim={bad}"]) == 2
    err = capsys.readouterr().err
    assert "230 of 240 scored images are not in --metadata" in err and len(err.strip().splitlines()) == 1


def test_no_numpy_or_scipy_warning_when_every_score_is_above_the_paper_range(tmp_path, capsys):
    rng = np.random.default_rng(1)
    obs = _suite(tmp_path, "observed", 100, 1, 0.0, rng, score_scale=20)  # every A > 0.1
    sim = _suite(tmp_path, "sim", 100, 1, 0.5, rng, score_scale=25)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = rate.main(["--reference", f"observed={obs}", "--suite", f"sim={sim}", "--out", str(tmp_path / "o"),
                          "--n-boot", "30", "--n-perm", "30"])
    assert code == 0
    t = pd.read_csv(tmp_path / "o" / "rating.csv")
    row = t[(t.suite == "sim") & (t.mass_bin == "all")].iloc[0]
    assert np.isnan(row.overlap_paper) and "no score inside the paper's overlap range" in row.warnings
