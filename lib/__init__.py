"""GANomaly for rating galaxy simulations against SDSS (Jin et al. 2024, MNRAS 529, 3536).

The map of the package: the original's six modules first, then the few on the same
train/score path, then one subpackage per concept.  Arrows point down: entry scripts ->
subpackages -> these top modules -> torch / numpy / astropy.  The code-to-paper table
(netG, netD, latent_i, latent_o, w_adv, w_con, w_enc, A) is in lib/networks.py's docstring.

Top modules
    networks.py    Encoder, Decoder, NetG, NetD, weights_init (state_dict-compatible with the original);
                   the precisions (dtype, autocast, where bf16 runs)
    loss.py        the generator's L_adv, L_con, L_enc and the discriminator's BCE loss
    model.py       Ganomaly: one optimisation step; train(): the epoch loop
    data.py        folders, globs and packed arrays -> batches; open_images() is the one entrance; list_images()
    loaders.py     batches at the network's rate: decoding threads, prefetching, uint8 -> device normalisation
    distributed.py torchrun plumbing: world set-up, sharded samplers, global BatchNorm on CPU/gloo, rank-0 duties
    evaluate.py    a trained model on a set -> the anomaly_scores file family (names, side files, shards, merge);
                   AUROC/AP/EER/ROC
    visualizer.py  loss_log.txt, image grids; forwards to the live sinks
    checkpoint.py  the checkpoint dict written and read, weights_only load, architecture from shapes, resume
    scoring.py     the score A, the paper's BatchNorm mode, normalisation, calibration
    health.py      training health checks (collapse, non-finite losses)
    fileio.py      atomic writes (JSON, CSV, tables); run records (write_run_record, RUN_RECORDS); read_jpeg()

Subpackages (each __init__ documents its data flow and is its one facade)
    galaxies/      synthetic SDSS-like populations: configs and knobs, population model, SDSS imaging model
    mocks/         simulation particles -> SDSS-like images: readers, orientation, SSP light, projection, dust
    sdss/          the SDSS pipeline: catalogue, cutout downloader, train/test split, packed-array writer
    rating/        score tables -> rating: inputs, statistics, table, report, figures, morphology
    live/          visdom and TensorBoard sinks behind one interface
"""
