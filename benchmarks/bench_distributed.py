"""One process against two (torchrun, gloo) training HybridSN on Indian Pines on this machine's CPU cores:

    python benchmarks/bench_distributed.py                    # 10 epochs, random 10 % split, seed 0
    python benchmarks/bench_distributed.py --epochs 20 --out runs/bench-ddp

Runs the same ``hsi train`` three ways, the cores shared out (``OMP_NUM_THREADS``): one process with every
core; two processes with half each and per-process batch norm; two with ``--sync-bn``. Prints a Markdown table:
median epoch time, training time and test OA / AA / kappa of each (the README's "Scaling out" table).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SETTING = ["--dataset", "indian_pines", "--train-ratio", "0.1", "--pca", "30", "--whiten", "--patch", "25",
           "--device", "cpu", "--no-map", "-q"]


def run(label, processes, extra, out, epochs, cores):
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // processes))}
    launcher = [sys.executable, "-m", "hsi"] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), "-m", "hsi"]
    folder = out / label.replace(" ", "-").replace(",", "")
    subprocess.run([*launcher, "train", *SETTING, "--epochs", str(epochs), *extra, "--out", str(folder)],
                   check=True, env=env)
    seconds = [float(line.split(",")[-1]) for line in (folder / "history.csv").read_text().splitlines()[1:]]
    metrics = json.loads((folder / "metrics.json").read_text())
    return (f"| {label} | {env['OMP_NUM_THREADS']} | {statistics.median(seconds):.1f} s | {sum(seconds):.0f} s | "
            f"{100 * metrics['oa']:.2f} | {100 * metrics['aa']:.2f} | {metrics['kappa']:.4f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-ddp-"))
    rows = [run("1 process", 1, [], out, args.epochs, cores),
            run("2 processes", 2, [], out, args.epochs, cores),
            run("2 processes, --sync-bn", 2, ["--sync-bn"], out, args.epochs, cores)]
    print(f"HybridSN, Indian Pines, random 10 % split, PCA 30 whitened, 25x25, batch 256, {args.epochs} epochs, "
          f"seed 0, {cores} CPU cores\n")
    print("| launch | threads per process | median epoch | training | OA (%) | AA (%) | kappa |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
