"""The README's main job, measured: OA, AA, kappa, wall time and peak RSS of

    hsi train --dataset indian_pines --pca 15 --patch 15 --train-ratio 0.3 --epochs 40 --out <tmp>

run in a child process under ``/usr/bin/time -v`` (peak RSS = its "Maximum resident set size"; without GNU time,
``resource.getrusage(RUSAGE_CHILDREN)``). Prints one Markdown table row, the figures the README quotes:

    python benchmarks/main_job.py                 # the README command, run folder in a temporary folder
    python benchmarks/main_job.py --keep runs/ip  # keep the run folder there instead

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


def run(out):
    """Run the main job into ``out``; return (wall seconds, peak RSS in MB)."""
    command = [sys.executable, "-m", "hsi.cli", *COMMAND, "--out", str(out)]
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
