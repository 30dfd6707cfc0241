"""Peak RSS of training and of mapping on a flight line, across patch sizes, PCA bands and model kinds.

    python benchmarks/bench_memory.py --dir /big/tmp                      # 5000-line AVIRIS-NG-like line, 2.7 GB
    python benchmarks/bench_memory.py --dir /tmp/x --lines 400 --models hybridsn --patches 9   # a smoke run

The line is written as bench_scale.py writes it (int16 BIL, 640 samples x 425 bands, resampled and mirrored
Indian Pines), with a ground truth labelled on its first 145 x 145 tile only (0 elsewhere). For every case,
``hsi train`` runs one epoch with the default budget (``--memory-mb``) on that labelled tile of the whole line
(``--cube line.hdr``: the PCA, the reduced and padded line and the test pass are the line's), then ``hsi predict``
maps the whole line; each in its own process, whose peak RSS (``ru_maxrss``) is printed as a table row as soon as
it is known. A scene model (``fcn8s``) reads its whole training scene at every step and at the test pass, so it
trains on the labelled 145 x 145 crop and maps the line. Models that read no window (``svm``) run once per PCA
size. Acceptance (issue 28): every case <= 2 GB. The files are deleted afterwards unless ``--keep``.
"""
import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_scale import build as build_line

SAMPLES, BANDS, TILE = 640, 425, 145
WINDOWLESS = {"svm", "rf", "fcn8s", "fcn16s", "fcn32s", "fcn_jpu"}     # no --patch to sweep
SCENE_MODELS = {"fcn8s", "fcn16s", "fcn32s", "fcn_jpu"}


def build(folder, lines):
    """The line ``scene.hdr/.img``, its tile-labelled ground truth ``gt.npy`` and the labelled crop."""
    labels = build_line(folder, lines, SAMPLES, BANDS)
    gt = np.zeros((lines, SAMPLES), dtype=np.uint8)
    gt[:TILE, :TILE] = labels
    np.save(folder / "gt.npy", gt)


def child(argv):
    """Run one ``hsi`` command in this process; print its exit code, wall time and peak RSS as JSON."""
    from hsi.cli import main

    start = time.perf_counter()
    code = main(argv)
    print(json.dumps({"code": code, "seconds": time.perf_counter() - start,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(argv):
    done = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"code": done.returncode, "seconds": float("nan"), "rss_mb": float("nan"),
                "error": done.stderr.strip().splitlines()[-1:]}


def cases(models, patches, pcas):
    for model in models:
        for pca in pcas:
            for patch in ([None] if model in WINDOWLESS else patches):
                yield model, pca, patch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="folder for the line's files (needs its size free)")
    parser.add_argument("--lines", type=int, default=5000, help="lines of the flight line (5000: 2.72 GB)")
    parser.add_argument("--models", default="hybridsn,svm,fcn8s,resnet18")
    parser.add_argument("--patches", default="9,15,25")
    parser.add_argument("--pcas", default="15,30")
    parser.add_argument("--memory-mb", type=int, default=None, help="budget of every command (default: hsi's)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2:])
    args = parser.parse_args()
    folder = Path(args.dir) / "hsi-bench-memory"
    folder.mkdir(parents=True, exist_ok=True)
    budget = [] if args.memory_mb is None else ["--memory-mb", str(args.memory_mb)]
    try:
        start = time.perf_counter()
        build(folder, args.lines)
        size = (folder / "scene.img").stat().st_size
        print(f"line: {SAMPLES} samples x {args.lines} lines x {BANDS} bands int16 BIL, {size / 1e9:.2f} GB "
              f"({size / 2**30:.2f} GiB) on disk, written in {time.perf_counter() - start:.0f} s", flush=True)
        print("| model | PCA | patch | train peak RSS | train time | predict peak RSS | predict time |")
        print("|---|---|---|---|---|---|---|", flush=True)
        worst = 0.0
        for model, pca, patch in cases(args.models.split(","), [int(p) for p in args.patches.split(",")],
                                       [int(p) for p in args.pcas.split(",")]):
            run = folder / f"run-{model}-{pca}-{patch}"
            cube, gt = ("crop.npy", "crop_gt.npy") if model in SCENE_MODELS else ("scene.hdr", "gt.npy")
            scene = ["--cube", str(folder / cube), "--gt", str(folder / gt)]
            trained = measure(["train", *scene, "--model", model, "--pca", str(pca),
                               *([] if patch is None else ["--patch", str(patch)]), "--epochs", "1",
                               "--train-ratio", "0.1", "--no-map", "-q", *budget, "--out", str(run)])
            mapped = measure(["predict", str(run), "--cube", str(folder / "scene.hdr"), "--format", "envi",
                              "--out", str(folder / f"map-{model}-{pca}-{patch}"), "-q", *budget]) \
                if trained["code"] == 0 else {"code": "-", "seconds": float("nan"), "rss_mb": float("nan")}
            worst = max(worst, trained["rss_mb"], mapped["rss_mb"])
            print(f"| {model} | {pca} | {patch or '-'} | {_rss(trained)} | {trained['seconds']:.0f} s | "
                  f"{_rss(mapped)} | {mapped['seconds']:.0f} s |", flush=True)
            shutil.rmtree(run, ignore_errors=True)
            for path in folder.glob(f"map-{model}-{pca}-{patch}*"):
                path.unlink()
        print(f"largest peak RSS: {worst:,.0f} MB (target <= 2,048 MB)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def _rss(result):
    if result["code"] != 0:
        return f"failed ({result['code']}: {' '.join(result.get('error', []))})"
    return f"{result['rss_mb']:,.0f} MB"


if __name__ == "__main__":
    main()
