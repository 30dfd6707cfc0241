"""Whole flight lines: map realistic large ENVI scenes from disk, at 1/4, 1/2 and full length.

    python benchmarks/bench_scale.py --scene enmap  --dir /big/tmp      # 1200 x 1200 x 224 (0.6 GB int16)
    python benchmarks/bench_scale.py --scene aviris --dir /big/tmp      # 640 x 8000 x 425 BIL (4.4 GB int16)
    python benchmarks/bench_scale.py --scene enmap --lines 300 --dir /tmp/x   # a quick smoke run

The scene is written as an int16 ENVI BIL image with map info: Indian Pines spectra, linearly resampled
from 200 bands to the sensor's band count, tiled (mirrored) over the scene, with the ground truth tiled the same
way. A short run (1 epoch) is trained on a labelled 145 x 145 crop, then ``hsi predict`` maps the first 1/4,
1/2 and all lines of the scene, each in its own process, printing wall time, pixels/s and that process's peak
RSS. Acceptance (issue 17): peak RSS <= 2 GB for the AVIRIS-NG-like scene, full / quarter time 3.5x - 4.5x.
The files are deleted afterwards unless ``--keep``.
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

SCENES = {"enmap": (1200, 1200, 224), "aviris": (8000, 640, 425)}     # lines, samples, bands
MAP_INFO = "UTM, 1.000, 1.000, 523000.000, 4481000.000, 3.0000000000e+01, 3.0000000000e+01, 16, North, " \
           "WGS-84, units=Meters"


def resampled_indian_pines(bands):
    import hsi

    scene = hsi.load_scene("indian_pines")
    position = np.linspace(0, scene.bands - 1, bands)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, scene.bands - 1)
    frac = (position - low).astype(np.float32)
    cube = scene.cube[:, :, low] * (1 - frac) + scene.cube[:, :, high] * frac
    labels = np.where(scene.labels >= 0, scene.label_ids[np.maximum(scene.labels, 0)], 0)
    return np.round(cube).astype(np.int16), labels.astype(np.uint8)


def mirrored(index, size):
    """Indices 0..n-1 of a length-``size`` mirrored tiling (0 1 .. size-1 size-1 .. 0 0 1 ..)."""
    period = index % (2 * size)
    return np.where(period < size, period, 2 * size - 1 - period)


def header(lines, samples, bands):
    return (f"ENVI\ndescription = {{hsi bench_scale: resampled, tiled Indian Pines}}\nsamples = {samples}\n"
            f"lines = {lines}\nbands = {bands}\nheader offset = 0\nfile type = ENVI Standard\ndata type = 2\n"
            f"interleave = bil\nbyte order = 0\nmap info = {{{MAP_INFO}}}\n")


def build(folder, lines, samples, bands):
    cube, labels = resampled_indian_pines(bands)
    cols = mirrored(np.arange(samples), cube.shape[1])
    with open(folder / "scene.img", "wb") as f:
        for start in range(0, lines, 256):
            rows = mirrored(np.arange(start, min(start + 256, lines)), cube.shape[0])
            f.write(np.ascontiguousarray(cube[rows][:, cols].transpose(0, 2, 1)).astype("<i2").tobytes())
    (folder / "scene.hdr").write_text(header(lines, samples, bands))
    np.save(folder / "crop.npy", cube)
    np.save(folder / "crop_gt.npy", labels)


def map_one(run, hdr, out):
    from hsi.cli import main

    start = time.perf_counter()
    code = main(["predict", str(run), "--cube", str(hdr), "--format", "envi", "--out", str(out), "-q"])
    seconds = time.perf_counter() - start
    print(json.dumps({"code": code, "seconds": seconds,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", choices=SCENES, default="enmap")
    parser.add_argument("--dir", required=True, help="folder for the scene files (needs the scene's size free)")
    parser.add_argument("--lines", type=int, help="fewer lines than the sensor's scene (a smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--map-one", nargs=3, metavar=("RUN", "HDR", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.map_one:
        return map_one(*args.map_one)
    lines, samples, bands = SCENES[args.scene]
    lines = args.lines or lines
    folder = Path(args.dir) / f"hsi-bench-scale-{args.scene}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        build(folder, lines, samples, bands)
        size = (folder / "scene.img").stat().st_size
        print(f"{args.scene}: {samples} samples x {lines} lines x {bands} bands int16 BIL, {size / 2**30:.2f} GB, "
              f"written in {time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hsi.cli", "train", "--cube", str(folder / "crop.npy"), "--gt",
                        str(folder / "crop_gt.npy"), "--epochs", "1", "--train-ratio", "0.1", "--no-map", "-q",
                        "--out", str(folder / "run")], check=True)
        print(f"trained 1 epoch on the 145 x 145 crop in {time.perf_counter() - start:.0f} s")
        results = {}
        for fraction in (0.25, 0.5, 1.0):
            part = round(lines * fraction)
            hdr = folder / f"part-{part}.hdr"
            hdr.write_text(header(part, samples, bands))
            hdr.with_suffix(".img").symlink_to(folder / "scene.img")
            done = subprocess.run([sys.executable, __file__, "--dir", args.dir, "--map-one", str(folder / "run"),
                                   str(hdr), str(folder / f"map-{part}")], check=True, capture_output=True,
                                  text=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            results[fraction] = result
            pixels = part * samples
            print(f"{fraction:>5.2f} length: {part:>5} lines  {pixels / 1e6:6.2f} Mpixels  "
                  f"{result['seconds']:8.1f} s  {pixels / result['seconds']:8,.0f} pixels/s  "
                  f"peak RSS {result['rss_mb']:6.0f} MB")
        print(f"full / quarter time: {results[1.0]['seconds'] / results[0.25]['seconds']:.2f}x (linear: 4x)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
