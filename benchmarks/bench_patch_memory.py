"""Extra memory for a dataset of all 10,249 labelled Indian Pines patches (25x25x30), against the
seed-style stack of every patch in float64.

    python benchmarks/bench_patch_memory.py
"""
import resource

import numpy as np

import hsi
from hsi.data.patches import PatchDataset, pad_cube
from hsi.data.preprocess import fit_pca


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def main():
    scene = hsi.load_scene("indian_pines")
    reduced = fit_pca(scene.cube, 30).transform(scene.cube)
    before, before_peak = rss_mb(), peak_rss_mb()
    padded = pad_cube(reduced, 25)
    rows, cols = np.nonzero(scene.labels >= 0)
    dataset = PatchDataset(padded, np.stack([rows, cols], 1), scene.labels[rows, cols], 25)
    for start in range(0, len(dataset), 256):          # touch every patch, batch by batch, as training does
        dataset.__getitems__(np.arange(start, min(start + 256, len(dataset))))
    held = rss_mb() - before
    peak = peak_rss_mb() - before_peak
    stack_gib = len(dataset) * 25 * 25 * 30 * 8 / 2**30
    print(f"patches: {len(dataset)} of 25x25x30")
    print(f"lazy dataset, every batch of 256 drawn once: {held:+.0f} MB resident afterwards, "
          f"peak RSS {peak:+.0f} MB above the load/PCA peak of {before_peak:.0f} MB")
    print(f"seed-style float64 stack would hold: {stack_gib:.2f} GiB (all 21,025 scene patches: "
          f"{21025 * 25 * 25 * 30 * 8 / 2**30:.2f} GiB)")


if __name__ == "__main__":
    main()
