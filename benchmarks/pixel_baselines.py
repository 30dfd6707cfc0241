"""Spectral-only reference classifiers on the split of a finished run: how hard is the split itself?

    python benchmarks/pixel_baselines.py runs/reproduce/ip-disjoint/seed-0 runs/reproduce/ip-paper-10/seed-0

For each run folder, reads its ``config.json`` (scene) and ``split.npz``, standardises the raw bands on the
training pixels, and fits an RBF SVM (C = 100) and a random forest (300 trees) on the training pixels alone:
no window, no PCA, so no test pixel can reach them. Prints the test OA beside the run's own.
"""
import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import hsi
from hsi.data.splits import Split


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders (config.json, split.npz)")
    parser.add_argument("--data-dir", help="folder holding the scene files")
    args = parser.parse_args()
    for run in args.runs:
        config = json.loads((run / "config.json").read_text())["config"]
        scene = hsi.load_scene(config["dataset"], data_dir=args.data_dir)
        split = Split.load(run / "split.npz")
        pixels = scene.cube.reshape(-1, scene.bands).astype(np.float64)
        train, test = split.train.ravel(), split.test.ravel()
        is_train, is_test = train >= 0, test >= 0
        scaler = StandardScaler().fit(pixels[is_train])
        x_train, x_test = scaler.transform(pixels[is_train]), scaler.transform(pixels[is_test])
        own = json.loads((run / "metrics.json").read_text())["oa"]
        print(f"{run}: {is_train.sum()} training, {is_test.sum()} test pixels; HybridSN run OA {100 * own:.2f}")
        for classifier in (SVC(C=100, gamma="scale"), RandomForestClassifier(300, random_state=0)):
            predicted = classifier.fit(x_train, train[is_train]).predict(x_test)
            print(f"  {type(classifier).__name__:24s} OA {100 * (predicted == test[is_test]).mean():.2f}")


if __name__ == "__main__":
    main()
