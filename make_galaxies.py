"""Generate a synthetic galaxy population as SDSS-like 64x64 JPEG cutouts.

    python make_galaxies.py --preset observed --n 2000 --seed 1 --out data/demo/train
    python make_galaxies.py --preset large_sizes_2 --n 500 --seed 2 --out data/demo/suites/large_sizes_2
    python make_galaxies.py --config my_population.yaml --n 100 --seed 3 --out data/mine
    python make_galaxies.py --list-presets

Images go to ``OUT/<class>/<name>_<index>.jpg`` (``0.normal`` for observed, ``1.abnormal``
otherwise, or --class-dir), with ``OUT/metadata.csv`` (every drawn parameter per image)
and ``OUT/generation.json``.  Same seed, same images; an interrupted run is completed by
running the same command again.  The population model is lib/galaxies/ (relations.py,
population.py), the SDSS imaging model lib/galaxies/imaging.py; docs/synthetic_galaxies.md.
"""

from __future__ import annotations

import argparse
import sys
import time

from lib import galaxies


def list_presets() -> str:
    lines = [f"{'preset':<24} description", f"{'observed':<24} SDSS-like reference population (train on this)"]
    for knob in galaxies.KNOBS:
        lines.append(f"{knob + '_{1,2,3}':<24} {galaxies.KNOB_DOC[knob]}")
    lines.append("config file keys: name, description, knobs {knob: 0..3}, params {" +
                 ", ".join(f.name for f in galaxies.fields(galaxies.Params)) + "}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--preset", help="named population (see --list-presets)")
    src.add_argument("--config", help="YAML or JSON population config")
    ap.add_argument("--n", type=int, help="number of images")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--out", help="output folder")
    ap.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    ap.add_argument("--class-dir", default=None, help="class folder under OUT (default 0.normal / 1.abnormal)")
    ap.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    opt = ap.parse_args(argv)
    if opt.list_presets:
        print(list_presets())
        return 0
    missing = [flag for flag, val in (("--n", opt.n), ("--out", opt.out)) if val is None]
    if missing or not (opt.preset or opt.config):
        missing += [] if (opt.preset or opt.config) else ["--preset or --config"]
        print(f"error: missing {', '.join(missing)} (see --help)", file=sys.stderr)
        return 2
    if opt.class_dir is not None and (not opt.class_dir or "/" in opt.class_dir or opt.class_dir in (".", "..")):
        print(f"error: --class-dir must be a plain folder name, got {opt.class_dir!r}", file=sys.stderr)
        return 2
    t0 = time.time()
    try:
        df = galaxies.generate(opt.preset, opt.n, opt.seed, opt.out, workers=opt.workers,
                               class_dir=opt.class_dir, config_path=opt.config)
    except galaxies.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc.filename or opt.out}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"done in {time.time() - t0:.1f} s")
    return 1 if df.attrs.get("failures") else 0


if __name__ == "__main__":
    from options import one_line_warnings
    one_line_warnings()
    sys.exit(main())
