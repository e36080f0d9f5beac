#!/usr/bin/env python
"""Run benchmark scripts and rewrite their sections of docs/benchmarks.md from their own output.

    python tools/bench_report.py                 # the default set (see BENCHMARKS; `make bench`)
    python tools/bench_report.py score mocks     # only these; the other sections are kept as they are
    python tools/bench_report.py --list

Each section holds the command, the machine (cores, CPU, load average before and after, date, torch
version), the wall time and the script's printed output, verbatim except for progress-bar lines.  So no
figure in the manual is typed by hand: a figure that changes is re-measured, never edited.  The file is
written atomically; a benchmark that fails leaves its old section in place and is reported.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from lib.fileio import CPU_FEATURES, atomic_write_text, cpu_features, package_versions  # noqa: E402

REPORT = ROOT / "docs" / "benchmarks.md"

# name: (command after the interpreter, what it measures, in the default set?)
BENCHMARKS: dict[str, tuple[list[str], str, bool]] = {
    "train": (["benchmarks/bench_train.py"], "training throughput, paper configuration, against the original's step",
              True),
    "score": (["benchmarks/bench_score.py"], "test.py end to end: JPEG files -> anomaly_scores.csv", True),
    "data": (["benchmarks/bench_data.py"], "image loaders: JPEG decoding against packed arrays", True),
    "scale": (["benchmarks/bench_scale.py"], "1 and 2 processes, fp32 and bf16, channels-last (and CUDA if present)",
              True),
    "scale_trained": (["benchmarks/bench_scale.py", "--scoring-only", "--weights",
                       "output/demo/model/train/weights/netG_7.pth", "--detection", "output/demo/suites/observed",
                       "output/demo/suites/large_sizes_3"],
                      "bf16 against fp32 scores with `make demo`'s trained model (run `make demo` first)", False),
    "mocks": (["benchmarks/bench_mocks.py"], "mock_observation.py: particles/s and images/s", True),
    "kcorr": (["benchmarks/kcorr_accuracy.py"], "the sdss recipe's K-corrections against Chilingarian et al. (2010)",
              True),
    "realism": (["benchmarks/realism.py"], "synthetic galaxies against real SDSS cutouts and the paper's "
                "per-mass-bin morphology", True),
    "rating_null": (["benchmarks/rating_null.py", "--k", "100", "--k-shift", "20", "--shift", "0.5"],
                    "the verdict's false-alarm fraction: 100 null suites of 20 galaxies x 20 views against 1000 "
                    "single images, and its power at a 0.5 sd shift", True),
    "closure": (["benchmarks/closure.py"], "closure test: particle realisations of the observed population through "
                "mock_observation.py, rated against make_galaxies' images (uses `make demo`'s model, else trains one)",
                True),
    "ladder": (["benchmarks/ladder.py"], "does every statistic order each knob's strengths? (tens of minutes)", False),
    # from nothing, in its own folder: `make demo` reuses what output/demo already holds
    "ladder_demo": (["benchmarks/ladder.py", "--weights", "output/bench_demo/model/train/weights/netG_7.pth",
                     "--n-suite", "500", "--out", "output/bench_ladder"],
                    "the ladder at 500 images per rung, scored with the `demo` section's freshly trained model "
                    "(run `make bench BENCH=demo` first)", False),
    "demo": (["demo.py", "--out", "output/bench_demo"], "`make demo` from nothing (after the install): its wall "
             "time and rating table", False),
    "tests": (["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], "`make test` after the install", False),
}

KEEP_LINES = {"realism": 130}
"""Printed lines kept per section (the last ones; 80 unless named here): realism prints its image statistics,
whole-cutout table, 20 splits, noise budget and morphology table, about 105 lines, all of which the manual quotes."""

HEADER = """# Benchmarks

Every figure in this project's documentation comes from a section below, and every section is the printed
output of a script in `benchmarks/` (or of `demo.py` / the test suite), with the machine and its load when it
ran. `make bench` re-runs the default set and rewrites this file (`make bench BENCH="ladder demo"` runs
others); nothing here is typed by hand. The reference machine is this project's development machine: 2 CPU
cores (AMD EPYC: AVX2, AVX-512F and AVX-512-BF16, no AMX), no GPU; a load average above 2 means other work
shared the cores, and the figures are then lower bounds. Each section's machine line names the CPU features
that change a figure (`lib.fileio.CPU_FEATURES`). Sections whose machine line reads "Intel(R) Xeon(R)
Processor" without features were measured on an earlier development machine whose CPU features were not
recorded; their bf16 figures (bf16 faster than fp32) hold only where the CPU multiplies bf16 in hardware
(AMX) or on CUDA: on the reference machine (AVX-512-BF16, no AMX) `options.py` warns that bf16 is slower.
"""

PROGRESS = re.compile(r"\r|\d+%\||^[.sFEx]+ +\[ *\d+%\]$")  # tqdm bars, carriage-return updates, pytest dots


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    v = package_versions()
    # the features that change a figure: vector width, bf16 arithmetic, AMX tiles (lib.fileio.CPU_FEATURES)
    have = cpu_features()
    feats = ", ".join(f if f in have else f"no {f}" for f in CPU_FEATURES) if have else "CPU features unknown"
    return f"{os.cpu_count()} cores ({cpu}; {feats}), Python {v['python']}, torch {v['torch']}"


def run(name: str) -> str | None:
    """Run one benchmark; its Markdown section, or None if the script failed."""
    args, what, _ = BENCHMARKS[name]
    if "--out" in args:  # a run that resumes from its output folder is timed from nothing
        shutil.rmtree(ROOT / args[args.index("--out") + 1], ignore_errors=True)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    # one stream, in the order it was printed: the script's closing lines stay at the end
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    seconds = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip() and not PROGRESS.search(ln)]
    if proc.returncode != 0:
        print(f"bench_report: {name} failed (exit {proc.returncode}); its section is kept:\n"
              + "\n".join(lines[-15:]), file=sys.stderr)
        return None
    cmd = " ".join(["python", *args])
    return (f"<!-- bench:{name} -->\n## {name}: {what}\n\n`{cmd}`, {time.strftime('%Y-%m-%d %H:%M')} UTC, "
            f"{machine()}; load average {load0:.1f} before, {load1:.1f} after; wall time {seconds:.0f} s.\n\n"
            "```\n" + "\n".join(lines[-KEEP_LINES.get(name, 80):]) + "\n```\n<!-- /bench:" + name + " -->\n")


def sections(text: str) -> dict[str, str]:
    found = re.findall(r"(<!-- bench:(\w+) -->.*?<!-- /bench:\2 -->\n)", text, flags=re.S)
    return {name: body for body, name in found}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="benchmarks to run (default: the default set)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    opt = p.parse_args(argv)
    if opt.list:
        for name, (args, what, default) in BENCHMARKS.items():
            print(f"{name:8s} {'default' if default else '       '}  {what}")
        return 0
    unknown = [n for n in opt.names if n not in BENCHMARKS]
    if unknown:
        print(f"bench_report: error: unknown benchmark {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    names = opt.names or [n for n, (_, _, default) in BENCHMARKS.items() if default]
    kept = sections(REPORT.read_text()) if REPORT.exists() else {}
    failed = []
    for name in names:
        print(f"bench_report: running {name} ...", flush=True)
        section = run(name)
        if section is None:
            failed.append(name)
        else:
            kept[name] = section
            atomic_write_text(REPORT, HEADER + "".join(f"\n{kept[n]}" for n in BENCHMARKS if n in kept))
    print(f"bench_report: {REPORT.relative_to(ROOT)} updated ({len(names) - len(failed)} of {len(names)} ran)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
