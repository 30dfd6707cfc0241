"""The side-by-side table of several ``hsi compare`` folders (other splits of the same scene; docs/results.md).

    python benchmarks/compare_table.py comparisons/ip-random-10 comparisons/ip-disjoint-10

One row per model of any folder: for each folder OA / AA / kappa (mean ± std over its seeds) and the leakage
("—" where the folder lacks the model), then the parameters (first folder holding it) and the mean training and
map seconds over every run. :func:`folder_table` rebuilds a folder's own ``results.md`` from its ``results.csv``
and ``timing.csv``, as ``hsi compare`` wrote it.
"""
import argparse
import csv
import json
from pathlib import Path

import numpy as np

import hsi
from hsi.experiments import format_mean_std, format_results


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def result_rows(folder):
    """The rows ``hsi compare`` tabulated in ``folder``, read back from its ``results.csv`` and ``timing.csv``."""
    timing = {(row["model"], row["seed"], row.get("fold", "")): row for row in read(folder / "timing.csv")}
    rows = []
    for row in read(folder / "results.csv"):
        seconds = timing[row["model"], row["seed"], row.get("fold", "")]
        rows.append({"model": row["model"], "seed": int(row["seed"]), "fold": int(row["fold"]) if row.get("fold")
                     else None, **{key: float(row[key]) for key in ("oa", "aa", "kappa", "leakage")},
                     "pca_saw_test": row["pca_saw_test"] == "True", "transductive": row["transductive"] == "True",
                     "parameters": int(row["parameters"]), "best_epoch": int(row["best_epoch"]),
                     "val_oa": float(row["val_oa"]) if row.get("val_oa") else None,
                     "run_dir": row["run_dir"], "split": {}, "train_seconds": float(seconds["train_seconds"]),
                     "map_seconds": float(seconds["map_seconds"]) if seconds["map_seconds"] else None,
                     "per_class_accuracy": [float(v) if v else None for k, v in row.items() if k.startswith("acc:")]})
    return rows


def folder_table(folder):
    """``folder``'s ``results.md`` (:func:`hsi.experiments.format_results`) from its CSV files and its scene's
    class ids (the scene of its ``experiment.json``)."""
    if (folder / "results.csv").read_text().startswith("model,seed,fold,"):
        raise SystemExit(f"{folder}: block folds name their held-out blocks in results.md only; not rebuilt")
    rows = result_rows(folder)
    base = json.loads((folder / "experiment.json").read_text())["base"]
    scene = hsi.load_scene(base["dataset"]) if base["dataset"] else hsi.load_scene(base["cube"], base["gt"])
    labels = list(dict.fromkeys(row["model"] for row in rows))
    return format_results(rows, list(scene.class_names), scene.label_ids, labels)


def table(folders):
    results = {folder: read(folder / "results.csv") for folder in folders}
    timing = [row for folder in folders for row in read(folder / "timing.csv")]
    models = list(dict.fromkeys(row["model"] for folder in folders for row in results[folder]))
    head = " | ".join(f"{folder.name}: OA / AA / κ | leakage" for folder in folders)
    lines = [f"| model | {head} | parameters | training (s) | map (s) |",
             "|---|" + "---|---|" * len(folders) + "---|---|---|"]
    for model in models:
        cells = []
        for folder in folders:
            rows = [row for row in results[folder] if row["model"] == model]
            if not rows:                    # a model compared in some folders only
                cells += ["—", "—"]
                continue
            scores = " / ".join(format_mean_std([float(r[key]) for r in rows]) for key in ("oa", "aa", "kappa"))
            leak = f"{100 * np.mean([float(r['leakage']) for r in rows]):.1f} %"
            if rows[0]["transductive"] == "True":
                leak += ", transductive"
            cells += [scores, leak]
        mine = [row for row in timing if row["model"] == model]
        parameters = int(next(r for f in folders for r in results[f] if r["model"] == model)["parameters"])
        lines.append(f"| `{model}` | " + " | ".join(cells) + f" | {parameters:,} | "
                     f"{np.mean([float(r['train_seconds']) for r in mine]):.0f} | "
                     f"{np.mean([float(r['map_seconds']) for r in mine]):.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="hsi compare output folders")
    print(table(parser.parse_args(argv).folders), end="")


if __name__ == "__main__":
    main()
