"""test.ipynb runs headless in a real Jupyter kernel, reproduces the batch-1 protocol and shows the rating."""
import os

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT


def test_test_notebook_runs_and_scores_the_examples():
    nb = nbformat.read(os.path.join(ROOT, "test.ipynb"), as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "apple.jpg" in text and "NIHAO_example.png" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images == 4 + 2  # one panel per example image, then the rating's forest plot and latent PCA
    assert any(os.path.basename(f).startswith("panel_") for f in os.listdir(os.path.join(ROOT, "output/notebooks/test")))
    # the rating: both ratings with intervals and a verdict, for the demo's suites or the notebook's own
    assert "C2ST AUROC [95%]" in text and "half vs half" in text and "verdict" in text
    assert "blue_colours_3" in text
