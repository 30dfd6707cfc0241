"""The README's main job, measured: OA, AA, kappa, wall time and peak RSS of

    hsi train --dataset indian_pines --pca 15 --patch 15 --train-ratio 0.3 --epochs 40 --out <tmp>

run in a child process under ``/usr/bin/time -v`` (peak RSS = its "Maximum resident set size"; without GNU time,
``resource.getrusage(RUSAGE_CHILDREN)``). Prints one Markdown table row, the figures the README quotes:

    python benchmarks/main_job.py                 # the README command, run folder in a temporary folder
    python benchmarks/main_job.py --keep runs/ip  # keep the run folder there instead
    python benchmarks/main_job.py --check         # CI guard: a 2-epoch run against main_job_reference.json
    python benchmarks/main_job.py --record        # after a change that is meant to alter the results

The guard runs the same command for ``CHECK_EPOCHS`` epochs without the map (about 20 s on one thread) and
fails (exit 1) when OA, AA or kappa differ from the recorded ones by more than ``TOLERANCE``: some of the 7,174
test pixels changing class, which float rounding on another processor can do, passes; a change of the model,
split, PCA, data path or training loop that alters the result does not. When it fails and the change is meant,
re-run ``--record`` and the main job itself, and update the figures in docs/results.md.

The machine's load average (1 min) before and after is printed too: on a shared machine the wall time depends
on it, the metrics do not (seed 0, CPU).
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = ["train", "--dataset", "indian_pines", "--pca", "15", "--patch", "15", "--train-ratio", "0.3",
           "--epochs", "40"]
GNU_TIME = "/usr/bin/time"
CHECK_EPOCHS = 2
TOLERANCE = 0.01            # on OA, AA and kappa (fractions): about 70 of the 7,174 test pixels
REFERENCE = Path(__file__).with_name("main_job_reference.json")


def run(out, extra=()):
    """Run the main job (with ``extra`` options) into ``out``; return (wall seconds, peak RSS in MB)."""
    command = [sys.executable, "-m", "hsi.cli", *COMMAND, *extra, "--out", str(out)]
    timed = os.path.exists(GNU_TIME)
    report = Path(tempfile.mkstemp(suffix=".time")[1])
    if timed:
        command = [GNU_TIME, "-v", "-o", str(report), *command]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - start
    if timed:
        kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read_text()).group(1))
    else:
        kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report.unlink()
    return wall, kb / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="write the run folder here (must not exist) instead of a temporary folder")
    parser.add_argument("--check", action="store_true", help="compare a short run with main_job_reference.json")
    parser.add_argument("--record", action="store_true", help="record the short run as main_job_reference.json")
    args = parser.parse_args()
    if args.check or args.record:
        return check(record=args.record)
    load_before = os.getloadavg()[0]
    tmp = None if args.keep else tempfile.mkdtemp(prefix="hsi-main-job-")
    out = Path(args.keep) if args.keep else Path(tmp) / "run"
    try:
        wall, rss = run(out)
        metrics = json.loads((out / "metrics.json").read_text())
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    minutes, seconds = divmod(round(wall), 60)
    print(f"load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
          f"{os.cpu_count()} CPUs")
    print("| OA (%) | AA (%) | kappa | wall time | peak RSS |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    print(f"| {100 * metrics['oa']:.2f} | {100 * metrics['aa']:.2f} | {metrics['kappa']:.4f} | "
          f"{minutes} min {seconds:02d} s | {rss:.0f} MB |")


def check(record=False):
    """The short, fixed-seed, one-thread run; compared with (or, ``record``, written as) the reference."""
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    extra = ["--epochs", str(CHECK_EPOCHS), "--no-map", "-q"]
    with tempfile.TemporaryDirectory(prefix="hsi-main-job-check-") as tmp:
        run(Path(tmp) / "run", extra)
        metrics = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
    short = " ".join(["hsi", *COMMAND[:-1], str(CHECK_EPOCHS), "--no-map"])
    measured = {key: round(metrics[key], 6) for key in ("oa", "aa", "kappa")}
    if record:
        REFERENCE.write_text(json.dumps({"command": short, "threads": 1, **measured}, indent=2) + "\n")
        print(f"recorded {measured} in {REFERENCE.name}")
        return 0
    reference = json.loads(REFERENCE.read_text())
    off = {key: (value, reference[key]) for key, value in measured.items() if abs(value - reference[key]) > TOLERANCE}
    if off:
        print(f"main-job check FAILED: {short} gives " + ", ".join(f"{k} {v:.4f} (recorded {r:.4f})"
                                                                   for k, (v, r) in off.items())
              + f"; beyond the tolerance {TOLERANCE}. If the change is meant: python benchmarks/main_job.py "
                "--record, re-run the main job and update its figures in docs/results.md", file=sys.stderr)
        return 1
    print(f"main-job check passed: {measured} within {TOLERANCE} of {REFERENCE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
