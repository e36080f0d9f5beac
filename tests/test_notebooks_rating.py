"""paper_plots.ipynb runs headless on the bundled data (real Jupyter kernel) and shows the paper's numbers."""
import shutil
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _outputs(nb):
    text, images, errors = [], 0, []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                text.append(o.text)
            elif o.output_type in ("display_data", "execute_result"):
                images += "image/png" in o.data
                text.append(o.data.get("text/plain", ""))
            elif o.output_type == "error":
                errors.append(f"{o.ename}: {o.evalue}")
    return "".join(text), images, errors


@pytest.fixture
def repo_copy(tmp_path):
    """The notebook, lib/ and the bundled table in a temporary tree (no demo outputs)."""
    shutil.copy(ROOT / "paper_plots.ipynb", tmp_path)
    shutil.copytree(ROOT / "lib", tmp_path / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "data").mkdir()
    shutil.copytree(ROOT / "data" / "paper", tmp_path / "data" / "paper")
    return tmp_path


def _run(path: Path):
    nb = nbformat.read(path / "paper_plots.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path)}}).execute()
    return nb


def test_paper_plots_notebook_runs_and_reproduces_paper_numbers(repo_copy):
    text, images, errors = _outputs(_run(repo_copy))
    assert not errors
    assert "1540 images, 77 galaxies, 20-20 orientations each" in text
    assert "bin counts agree with the paper" in text
    assert "1519 of 1540 images pass the cuts" in text
    assert "9 of 9 Pearson coefficients agree with the paper to 2 decimals" in text
    assert "-0.479" in text and "+0.529" in text  # computed gini and deviation correlations
    assert "0.7181" in text  # the published AGN overlap is quoted
    assert "section skipped" in text  # no demo outputs in the copy
    assert images == 4
    for f in ["agn_hist_massbins.png", "agn_galaxy_means.png", "agn_statmorph_trends.png",
              "agn_statmorph_correlations.png"]:
        assert (repo_copy / "output" / "paper_plots" / f).stat().st_size > 10_000


def test_paper_plots_notebook_rates_demo_suites_when_present(repo_copy):
    import numpy as np
    import pandas as pd

    demo = repo_copy / "output" / "demo"
    demo.mkdir(parents=True)
    rng = np.random.default_rng(0)
    obs = rng.lognormal(-4, 0.5, 300)
    pd.DataFrame({"filename": [f"o{i}.png" for i in range(300)], "ascore": obs}).to_csv(demo / "observed.csv",
                                                                                       index=False)
    pd.DataFrame({"filename": [f"n{i}.png" for i in range(300)], "ascore": obs * 2}).to_csv(demo / "noise_0.5.csv",
                                                                                           index=False)
    for name, prefix, shift in (("observed", "o", 0.0), ("noise_0.5", "n", 0.8)):  # test.py --save_latents
        z = rng.normal(size=(300, 16))
        z[:, 3] += shift
        np.savez(demo / f"{name}_latents.npz", filenames=np.array([f"{prefix}{i}.png" for i in range(300)]),
                 latent_i=z, latent_o=z, ascore=np.zeros(300))
    text, images, errors = _outputs(_run(repo_copy))
    assert not errors
    assert "section skipped" not in text
    assert "noise_0.5" in text and "observed" in text
    assert "latents for 2 of 2 tables" in text and "C2ST AUROC [95%]" in text
    assert "harder to reconstruct" in text and "separable in latent space" in text
    assert images == 6
    assert (demo.parent / "paper_plots" / "demo_ranking.png").is_file()
    assert (demo.parent / "paper_plots" / "demo_ecdf.png").is_file()
