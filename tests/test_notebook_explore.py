"""explore_features.ipynb runs headless in a real Jupyter kernel (demo model if present, else a small stand-in)."""
import os

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT


def test_explore_features_notebook_runs():
    nb = nbformat.read(os.path.join(ROOT, "explore_features.ipynb"), as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "\n".join(o.get("text", "") for o in outputs)
    for suite in ("observed", "large_sizes_3", "too_noisy_3"):
        assert suite in text and "mean A = " in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 5  # spectra, scatter, 2 strips, interpolation
