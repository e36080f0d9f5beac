"""GANomaly for rating galaxy simulations against SDSS (Jin et al. 2024, MNRAS 529, 3536).

The map of the package: the original's six modules first, then the few on the same
train/score path, then one subpackage per concept.  Arrows point down: entry scripts ->
subpackages -> these top modules -> torch / numpy / astropy.  The code-to-paper table
(netG, netD, latent_i, latent_o, w_adv, w_con, w_enc, A) is in lib/networks.py's docstring.

Top modules
    networks.py    Encoder, Decoder, NetG, NetD, weights_init (state_dict-compatible with the original)
    loss.py        the generator's L_adv, L_con, L_enc and the discriminator's BCE loss
    model.py       Ganomaly: one optimisation step; train(): the epoch loop
    data.py        folders, globs and packed arrays -> batches; open_images() is the one entrance
    loaders.py     batches at the network's rate: decoding threads, prefetching, uint8 -> device normalisation
    distributed.py torchrun: world set-up, sharded samplers, global BatchNorm on CPU/gloo, rank-0 duties
    evaluate.py    a trained model on a set -> anomaly_scores.csv, latents, panels; AUROC/AP/EER/ROC
    visualizer.py  loss_log.txt, image grids; forwards to the live sinks
    checkpoint.py  atomic save, weights_only load, architecture from tensor shapes, resume
    scoring.py     the score A, the paper's BatchNorm mode, normalisation, calibration
    health.py      training health checks (collapse, non-finite losses)
    fileio.py      atomic writes with ordinary file modes; package_versions(), run_record()

Subpackages (each __init__ documents its data flow and is its one facade)
    galaxies/      synthetic SDSS-like populations: configs and knobs, population model, SDSS imaging model
    mocks/         simulation particles -> SDSS-like images: readers, orientation, SSP light, projection, dust
    sdss/          the SDSS pipeline: catalogue, cutout downloader, train/test split, packed-array writer
    rating/        score tables -> rating: inputs, statistics, table, report, figures, morphology
    live/          visdom and TensorBoard sinks behind one interface

Old module paths (``lib.imaging``, ``lib.rating_plots``, ``lib.packed`` ...) still import for
one release, with a DeprecationWarning naming the new one (:data:`MOVED`).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: Modules that moved in the house-plan reorganisation: old name -> new name.
MOVED = {
    "lib.imaging": "lib.galaxies.imaging",
    "lib.galaxies_config": "lib.galaxies.config",
    "lib.galaxies_io": "lib.galaxies.generate",
    "lib.sdss_catalog": "lib.sdss.catalog",
    "lib.download": "lib.sdss.download",
    "lib.download_http": "lib.sdss.http",
    "lib.split": "lib.sdss.split",
    "lib.packed": "lib.data",
    "lib.rating_inputs": "lib.rating.inputs",
    "lib.rating_stats": "lib.rating.stats",
    "lib.rating_plots": "lib.rating.plots",
    "lib.rating_report": "lib.rating.report",
    "lib.morphology": "lib.rating.morphology",
    "lib.live_base": "lib.live.base",
    "lib.live_visdom": "lib.live.visdom_sink",
    "lib.score_run": "lib.evaluate",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as its new module, with a DeprecationWarning (one release only)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return None  # an ordinary empty module, filled below

    def exec_module(self, module) -> None:
        new_name = MOVED[module.__name__]
        warnings.warn(f"{module.__name__} moved to {new_name}; the old name goes away in the next release",
                      DeprecationWarning, stacklevel=2)
        new = importlib.import_module(new_name)
        # A forwarding module (PEP 562), not the new module itself: the import system
        # rewrites __spec__ of whatever object it is given.
        module.__doc__ = new.__doc__
        module.__all__ = getattr(new, "__all__", [n for n in vars(new) if not n.startswith("_")])
        module.__getattr__ = lambda name: getattr(new, name)
        module.__dir__ = lambda: dir(new)


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
