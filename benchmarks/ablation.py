"""Ablation of the generalisation options on the leak-free Indian Pines protocol: option -> mean ± std test OA.

    OMP_NUM_THREADS=1 python benchmarks/ablation.py --out /work/runs/abl3 \\
        --models rf,svm,spectral_cnn --options none,flip,brightness,noise,spectral_shift,spectral_smooth,mix

Every seed (0-4 by default) draws one ``disjoint`` split at ``--train-ratio`` with the buffer of a
``--split-patch`` window (25: no test pixel has a training or validation pixel within 12 pixels), and every model
and option trains and is tested on that same split. The models read one spectrum (pixel models and ``rf``/``svm``),
so they run on 1x1 windows (``--patch 1``); the split keeps the 25x25 buffer, and the table gives the leakage at
both the model's input (radius 0) and a 25x25 window. An option is a comma-separated list of augmentation names
(``none`` for none), optionally followed by ``+ls=EPS`` (label smoothing), ``+wd=W`` (weight decay) or any
``+field=value`` of FitOptions, or ``+pca=N``, ``+whiten=0``, ``+standardize=1``. Finished runs are read back.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import hsi
from hsi.config import FitOptions, RunConfig
from hsi.data.splits import make_split
from hsi.leakage import window_leakage
from hsi.pipeline import train

# networks' settings for the ablation (the same for every option); rf / svm ignore them
NETWORK_FIT = {"spectral_cnn": {"epochs": 200, "batch_size": 64, "lr": 1e-3},
               "spectralformer": {"epochs": 60, "batch_size": 64, "lr": 5e-4}}
MODEL_OPTIONS = {"spectralformer": {"pixelwise": True}}


SHORT = {"ls": "label_smoothing", "wd": "weight_decay"}
RUN_FIELDS = ("pca", "whiten", "standardize")


def parse_option(text: str) -> tuple[str, dict]:
    """``"flip,noise+ls=0.1+epochs=50"`` -> (``"flip,noise"``, ``{"label_smoothing": 0.1, "epochs": 50}``): the
    augmentations, then FitOptions fields (``ls`` label smoothing, ``wd`` weight decay) that override the model's,
    or the RunConfig fields ``pca``, ``whiten`` and ``standardize`` (0 / 1)."""
    augment, *changes = text.split("+")
    fit = {}
    for change in changes:
        key, _, value = change.partition("=")
        fit[SHORT.get(key, key)] = int(value) if value.isdigit() else float(value)
    return augment, fit


def run_one(model: str, option: str, seed: int, split, scene, args) -> dict:
    out = args.out / option.replace(",", "+") / model / f"seed-{seed}"
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    if out.exists():
        shutil.rmtree(out)
    augment, changes = parse_option(option)
    run = {key: changes.pop(key) for key in RUN_FIELDS if key in changes}
    run = {key: bool(value) if key != "pca" else value for key, value in run.items()}
    fit = {**NETWORK_FIT.get(model, {}), **changes, "device": "cpu"}
    settings = {"pca": args.pca, "whiten": True, **run}
    config = RunConfig(dataset="indian_pines", model=model, split="disjoint", train_ratio=args.train_ratio,
                       val_ratio=0.1, pca_fit="train", patch=args.patch, augment=augment, seed=seed, write_map=False,
                       model_kwargs=dict(MODEL_OPTIONS.get(model, {})), fit=FitOptions(**fit), **settings)
    return train(config, out, scene=scene, split=split, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the run folders (reused when rerun)")
    parser.add_argument("--models", default="rf,svm,spectral_cnn")
    parser.add_argument("--options", default="none,flip,brightness,noise,spectral_shift,spectral_smooth,mix",
                        help="semicolon-separated options; each a comma-separated augmentation list, then "
                             "+ls=EPS (label smoothing), +wd=W (weight decay), +epochs=N, ...")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--train-ratio", type=float, default=0.1)
    parser.add_argument("--split-patch", type=int, default=25, help="window whose buffer the split keeps")
    parser.add_argument("--patch", type=int, default=1, help="window the models read")
    parser.add_argument("--pca", type=int, default=30)
    args = parser.parse_args()
    logging.getLogger("hsi").setLevel(logging.WARNING)
    scene = hsi.load_scene("indian_pines")
    seeds = [int(s) for s in args.seeds.split(",")]
    splits = {s: make_split(scene.labels, "disjoint", train_ratio=args.train_ratio, val_ratio=0.1,
                            patch_size=args.split_patch, seed=s, class_names=scene.class_names) for s in seeds}
    wide = {s: window_leakage(split, args.split_patch // 2)["fraction"] for s, split in splits.items()}
    options = [o.strip() for o in args.options.split(";") if o.strip()]
    print(f"| model | option | test OA (%) mean ± std | val OA (%) mean | leakage at input | leakage "
          f"{args.split_patch}x{args.split_patch} | s/run |")
    print("|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        for option in options:
            rows, start = [], time.perf_counter()
            for seed in seeds:
                rows.append(run_one(model, option, seed, splits[seed], scene, args))
            oa = 100 * np.array([r["oa"] for r in rows])
            val = [r["val_oa"] for r in rows if r["val_oa"] is not None]
            leak = max(r["leakage"]["fraction"] for r in rows)
            print(f"| {model} | {option} | {oa.mean():.2f} ± {oa.std(ddof=1):.2f} | "
                  f"{100 * np.mean(val):.2f} | {100 * leak:.1f} % | {100 * max(wide.values()):.1f} % | "
                  f"{(time.perf_counter() - start) / len(seeds):.1f} |", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
