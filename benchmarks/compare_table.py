"""The README's side-by-side table of several ``hsi compare`` folders (same models, other splits).

    python benchmarks/compare_table.py comparisons/ip-random-10 comparisons/ip-disjoint-10

One row per model: for each folder OA / AA / kappa (mean ± std over its seeds) and the leakage, then the
parameters (first folder) and the mean training and map seconds over every run.
"""
import argparse
import csv
from pathlib import Path

import numpy as np

from hsi.experiments import format_mean_std


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def table(folders):
    results = {folder: read(folder / "results.csv") for folder in folders}
    timing = [row for folder in folders for row in read(folder / "timing.csv")]
    models = list(dict.fromkeys(row["model"] for row in results[folders[0]]))
    head = " | ".join(f"{folder.name}: OA / AA / κ | leakage" for folder in folders)
    lines = [f"| model | {head} | parameters | training (s) | map (s) |",
             "|---|" + "---|---|" * len(folders) + "---|---|---|"]
    for model in models:
        cells = []
        for folder in folders:
            rows = [row for row in results[folder] if row["model"] == model]
            scores = " / ".join(format_mean_std([float(r[key]) for r in rows]) for key in ("oa", "aa", "kappa"))
            leak = f"{100 * np.mean([float(r['leakage']) for r in rows]):.1f} %"
            if rows[0]["transductive"] == "True":
                leak += ", transductive"
            cells += [scores, leak]
        mine = [row for row in timing if row["model"] == model]
        parameters = int(next(r for r in results[folders[0]] if r["model"] == model)["parameters"])
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
