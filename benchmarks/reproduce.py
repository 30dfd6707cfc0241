"""Reproduce the HybridSN paper's protocols (and leak-free ones, and SSFTT's own) through the public API.

    python benchmarks/reproduce.py ip-paper-30 ip-paper-10 ip-disjoint salinas-a   # run (or resume) them
    python benchmarks/reproduce.py ip-paper-10 --models resnet18,densenet_bc       # other registered models
    python benchmarks/reproduce.py ip-disjoint --models spectral_cnn,spectralformer_pixel   # a label of MODELS
    python benchmarks/reproduce.py ip-ssftt                                        # ssftt, its authors' protocol
    python benchmarks/reproduce.py ip-blocks --folds 0 --epochs 20                 # one block fold
    python benchmarks/reproduce.py --table                                         # only rebuild the tables

Each run trains in ``runs/reproduce/<protocol>/seed-<N>`` (the protocol's own model: HybridSN, or the one its row
names) or ``runs/reproduce/<protocol>/<model>/seed-<N>`` (a ``fold-<K>/`` level above ``seed-<N>`` for the block
folds; resumed from its ``last.pt`` if it was stopped) and writes ``benchmarks/results/<protocol>-seed-<N>.json``
or ``<protocol>-<model>[-fold-<K>]-seed-<N>.json``: config, per-class accuracy, OA, AA, kappa, training time
(wall clock summed over the epochs, pauses included, and the median epoch), epochs and host. Every model gets the
protocol's preprocessing, optimiser settings and, seed for seed, the same split, at its own window where
:data:`MODELS` gives one (its authors'). ``benchmarks/results/results.md``
tabulates them beside the paper, one row per protocol and model (``ip-paper-10/resnet18``);
``benchmarks/results/zoo.md`` puts every patch network's seed-0 scores on ``ip-paper-10`` and ``ip-disjoint`` (the
same two splits for all) beside its parameter count and median epoch time. ``scripts/results_pages.py`` copies
both into the docs.
"""
import argparse
import json
import logging
import platform
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

import hsi
from hsi.config import FitOptions, RunConfig
from hsi.data.splits import is_folded
from hsi.experiments import format_mean_std
from hsi.pipeline import resume, train
from hsi.runfolder import read_history

RESULTS = Path(__file__).resolve().parent / "results"
PAPER_FIT = dict(epochs=100, batch_size=256, lr=1e-3)
PAPER_PREP = dict(pca=30, pca_fit="scene", whiten=True, patch=25, padding="zero")
# The official HybridSN code trains on every training pixel and keeps the epoch with the best training accuracy.
FAITHFUL = dict(val_ratio=0.0, fit=dict(checkpoint_on="train"))
# hsi's default: 10 % of the training pixels held out for validation, best.pt by validation OA.
HELD_OUT = dict(val_ratio=0.1, fit=dict(checkpoint_on="val"))

# name -> (description, RunConfig settings (``fit``: FitOptions on top of PAPER_FIT; ``model``: the protocol's own
# model, whose paper the figures are from, HybridSN when absent), seeds, paper (OA, kappa, AA))
PROTOCOLS = {
    "ip-paper-30": ("Indian Pines, random 30 % train, PCA 30 on the scene, all training pixels, checkpoint on "
                    "training OA (paper Table II, official code)",
                    dict(dataset="indian_pines", split="random", train_ratio=0.3, **PAPER_PREP, **FAITHFUL),
                    [0, 1, 2], (99.75, 99.71, 99.63)),
    "ip-paper-10": ("Indian Pines, random 10 % train, PCA 30 on the scene, all training pixels, checkpoint on "
                    "training OA (paper Table V, official code)",
                    dict(dataset="indian_pines", split="random", train_ratio=0.1, **PAPER_PREP, **FAITHFUL),
                    [0, 1, 2], (98.39, 98.16, 98.01)),
    "ip-paper-30-val": ("as ip-paper-30 but 10 % of the training pixels held out, checkpoint on validation OA",
                        dict(dataset="indian_pines", split="random", train_ratio=0.3, **PAPER_PREP, **HELD_OUT),
                        [0], (99.75, 99.71, 99.63)),
    "ip-paper-10-val": ("as ip-paper-10 but 10 % of the training pixels held out, checkpoint on validation OA",
                        dict(dataset="indian_pines", split="random", train_ratio=0.1, **PAPER_PREP, **HELD_OUT),
                        [0, 1, 2], (98.39, 98.16, 98.01)),
    "ip-disjoint": ("Indian Pines, spatially disjoint 10 % train with a 12-pixel buffer, PCA 30 on train only",
                    dict(dataset="indian_pines", split="disjoint", train_ratio=0.1,
                         **{**PAPER_PREP, **HELD_OUT, "pca_fit": "train"}), [0, 1, 2, 3, 4], None),
    "salinas-a": ("Salinas-A, random 10 % train, PCA 15 on the scene",
                  dict(dataset="salinas_a", split="random", train_ratio=0.1, **{**PAPER_PREP, **HELD_OUT, "pca": 15}),
                  [0], None),
    "ip-blocks": ("Indian Pines, spatial block cross-validation, 4 blocks (one run per held-out block, mean ± std "
                  "over the folds), a 12-pixel buffer, validation from a block of its own, PCA 30 on train only",
                  dict(dataset="indian_pines", split="blocks", folds=4,
                       **{**PAPER_PREP, **HELD_OUT, "pca_fit": "train"}), [0, 1, 2, 3, 4], None),
    "salinas-a-disjoint": ("Salinas-A, spatially disjoint 10 % train with a 12-pixel buffer, PCA 15 on train only",
                           dict(dataset="salinas_a", split="disjoint", train_ratio=0.1,
                                **{**PAPER_PREP, **HELD_OUT, "pca": 15, "pca_fit": "train"}), [0, 1, 2, 3, 4], None),
    # zgr6010/HSI_SSFTT cls_SSFTT_IP/IP_train.py: whitened PCA 30 on the scene, zero-padded 13x13 windows, a
    # stratified 10 % train (test_size 0.9), no validation, Adam 1e-3, batch 64, 100 epochs, the last epoch tested
    "ip-ssftt": ("Indian Pines, random 10 % train, PCA 30 (whitened) on the scene, 13×13, all training pixels, "
                 "batch 64, last epoch (SSFTT authors' code and classification report)",
                 dict(dataset="indian_pines", split="random", train_ratio=0.1, model="ssftt",
                      **{**PAPER_PREP, "patch": 13}, val_ratio=0.0,
                      fit=dict(batch_size=64, checkpoint_on="last")),
                 [0, 1, 2], (98.62, 98.43, 97.94)),
}


# protocols whose split code is gone, kept in the tables for the record: name -> description
RETIRED = {"ip-disjoint-one-split": ("Indian Pines, the disjoint split as drawn before it varied with the seed (one "
                                     "split for every seed, validation pixels inside the training parcels); "
                                     "superseded by ip-disjoint, kept for the record, cannot be re-run")}

# label -> settings over the protocol's for that model: the model's own window (its authors') and builder options;
# ``model`` names the registered model when the label is not one. The disjoint split's buffer, so its test set,
# follows the window (see the test-pixel column); the pixel models keep the protocol's, of which they read the centre
MODELS = {"cnn3d": dict(patch=5), "a2s2k_resnet": dict(patch=9), "ssftt": dict(patch=13),
          "spectralformer": dict(patch=7),
          "spectralformer_pixel": dict(model="spectralformer", model_kwargs={"pixelwise": True}),
          # the ablation's best recipe (docs/ablation.md), as in the disjoint comparison: PCA of standardised bands,
          # not whitened, three spectral augmentations, 200 epochs at batch 64 (``fit``: over the protocol's)
          "spectral_cnn_tuned": dict(model="spectral_cnn", whiten=False, standardize=True,
                                     augment="brightness,noise,spectral_smooth", fit=dict(epochs=200, batch_size=64))}


def model_settings(label):
    """The RunConfig settings of model ``label``: ``model`` and any of MODELS' overrides (``fit``: FitOptions
    settings over the protocol's)."""
    return {"model": label, **MODELS.get(label, {})}


def own_model(protocol):
    """The model whose paper ``protocol`` follows (its figures are that model's): HybridSN unless it names one."""
    return PROTOCOLS[protocol][1].get("model", "hybridsn") if protocol in PROTOCOLS else "hybridsn"


def run_label(protocol, model):
    """``protocol`` for the protocol's own model (the paper's rows), ``protocol-model`` for any other model."""
    return protocol if model == own_model(protocol) else f"{protocol}-{model}"


def run_protocol(name, seeds, runs_dir, data_dir, epochs, model=None, results=RESULTS, folds=None):
    """Train (or resume, or read back) each seed of protocol ``name`` with ``model`` (default the protocol's own)
    and write its result JSON; a protocol of a folded split (``blocks``) trains each of ``folds`` (default all)."""
    description, settings, default_seeds, _ = PROTOCOLS[name]
    model = model or own_model(name)
    folded = is_folded(settings["split"])
    for seed, fold in ((s, f) for s in seeds or default_seeds
                       for f in ((folds or range(settings["folds"])) if folded else [None])):
        out = runs_dir / name if model == own_model(name) else runs_dir / name / model
        out = out / f"seed-{seed}" if fold is None else out / f"fold-{fold}" / f"seed-{seed}"
        overrides = model_settings(model)
        fit = {**PAPER_FIT, **settings.get("fit", {}), **overrides.pop("fit", {}),
               **({"epochs": epochs} if epochs else {})}
        config = RunConfig(**{**{k: v for k, v in settings.items() if k != "fit"}, **overrides},
                           **({} if fold is None else {"fold": fold}), seed=seed, data_dir=data_dir,
                           fit=FitOptions(**fit))
        if (out / "metrics.json").is_file():
            metrics = json.loads((out / "metrics.json").read_text())
        elif (out / "last.pt").is_file():
            metrics = resume(out, progress=False)
        else:
            metrics = train(config, out, progress=False)
        history = read_history(out / "history.csv")
        record = {"protocol": name, "description": description, "seed": seed, "fold": fold, "model": model,
                  "config": asdict(config), "oa": metrics["oa"], "aa": metrics["aa"], "kappa": metrics["kappa"],
                  "per_class_accuracy": dict(zip(metrics["class_names"], metrics["per_class_accuracy"])),
                  "n_test": metrics["n_test"], "best_epoch": metrics["best_epoch"], "val_oa": metrics.get("val_oa"),
                  "epochs": len(history),
                  "leakage": metrics.get("leakage"),
                  "train_seconds": round(sum(row["seconds"] for row in history), 1),
                  "median_epoch_seconds": round(float(np.median([row["seconds"] for row in history])), 2),
                  "host": host()}
        results.mkdir(parents=True, exist_ok=True)
        run = f"{run_label(name, model)}{'' if fold is None else f'-fold-{fold}'}-seed-{seed}"
        path = results / f"{run}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"{run}: OA {100 * record['oa']:.2f}  AA {100 * record['aa']:.2f}  "
              f"kappa {100 * record['kappa']:.2f}  ({record['train_seconds']:.0f} s)  -> {path}", flush=True)


ZOO = ("hybridsn", "resnet18", "resnet34", "resnet50", "preact_resnet18", "se_resnet18", "se_resnet50", "densenet_bc",
       "sknet", "resnest", "spectral_cnn", "cnn3d", "a2s2k_resnet", "ssftt", "spectralformer", "spectralformer_pixel")
ZOO_PROTOCOLS = ("ip-paper-10", "ip-disjoint", "ip-disjoint-one-split")


def host():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"platform": platform.platform(), "cpu": cpu, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__, "hsi": hsi.__version__}


def label_of(record):
    """The model label of a result record (older records name only the registered model)."""
    return record.get("model", record["config"]["model"])


def table(results=RESULTS):
    """Markdown table of every result JSON, mean ± std over seeds, beside the paper's figures (the rows of each
    protocol's own model)."""
    rows = ["| protocol | seeds | OA (%) | kappa (×100) | AA (%) | leakage (%) | paper OA / kappa / AA "
            "| test pixels (classes) | epochs | epoch time | training time |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    found = found_records(results)
    labels = sorted({label_of(r) for r in found})
    described = {**{name: (text, paper) for name, (text, _, _, paper) in PROTOCOLS.items()},
                 **{name: (text, None) for name, text in RETIRED.items()}}
    for (name, (description, paper)), model in (
            (p, m) for p in described.items() for m in [own_model(p[0]), *(m for m in labels if m != own_model(p[0]))]):
        records = [r for r in found if r["protocol"] == name and label_of(r) == model]
        if not records:
            continue
        if model != own_model(name):
            description, paper = f"{model}, same protocol", None
        cells, leakage_cell = score_cells(records)
        paper_cell = " / ".join(f"{v:.2f}" for v in paper) if paper else "—"
        epoch_seconds = np.median([r["median_epoch_seconds"] for r in records])
        tested = _span([sum(v is not None for v in r["per_class_accuracy"].values()) for r in records])
        n_test = _span([r["n_test"] for r in records])
        label = name if model == own_model(name) else f"{name}/{model}"
        rows.append(f"| `{label}`: {description} | {len(records)} | {' | '.join(cells)} | {leakage_cell} | "
                    f"{paper_cell} | {n_test} ({tested}) | {records[0]['epochs']} | "
                    f"{epoch_seconds:.1f} s | {np.mean([r['train_seconds'] for r in records]):.0f} s |")
    return "\n".join(rows) + "\n"


def _span(values):
    """``1,234`` when the runs agree, ``1,234–1,456`` (smallest–largest) when their splits differ."""
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def found_records(results=RESULTS):
    """Every result JSON of ``results``."""
    return [json.loads(p.read_text()) for p in sorted(results.glob("*-seed-*.json"))]


def score_cells(records):
    """The OA, kappa and AA cells (mean ± std over the records) and the leakage cell of a table row."""
    cells = [format_mean_std(r[key] for r in records) for key in ("oa", "kappa", "aa")]
    leaked = [r["leakage"]["fraction"] for r in records if r.get("leakage")]
    leakage = (f"{100 * np.mean(leaked):.1f}" if leaked else "—") + (
        ", PCA saw test" if records[0]["config"]["pca_fit"] == "scene" else "")
    return cells, leakage


def zoo_table(results=RESULTS):
    """Markdown table of the networks of :data:`ZOO`: window, parameters (30 bands, that window, 16 classes), median
    epoch time and OA / AA / kappa on each of :data:`ZOO_PROTOCOLS`, mean ± std over the seeds run ("—" where not
    run yet)."""
    head = " | ".join(f"`{name}` OA / AA / κ" for name in ZOO_PROTOCOLS)
    rows = [f"| model | window | parameters | epoch time (`{ZOO_PROTOCOLS[0]}`) | {head} |",
            "|---|---|---|---|" + "---|" * len(ZOO_PROTOCOLS)]
    found = found_records(results)
    for model in ZOO:
        settings = model_settings(model)
        window = settings.get("patch", PAPER_PREP["patch"])
        built = hsi.build_model(settings["model"], bands=30, n_classes=16, patch_size=window,
                                **settings.get("model_kwargs", {}))
        parameters = sum(p.numel() for p in built.parameters())
        runs = {name: [r for r in found if r["protocol"] == name and label_of(r) == model and r.get("fold") is None]
                for name in ZOO_PROTOCOLS}
        first = runs[ZOO_PROTOCOLS[0]]
        epoch = f"{np.median([r['median_epoch_seconds'] for r in first]):.1f} s" if first else "—"
        scores = [_zoo_cell(records) for records in runs.values()]
        rows.append(f"| `{model}` | {window}×{window} | {parameters:,} | {epoch} | {' | '.join(scores)} |")
    return "\n".join(rows) + "\n"


def _zoo_cell(records):
    """OA / AA / kappa (mean ± std over ``records``, with their count when more than one), or "—"."""
    if not records:
        return "—"
    cells = " / ".join(format_mean_std(r[key] for r in records) for key in ("oa", "aa", "kappa"))
    return cells + (f" ({len(records)} seeds)" if len(records) > 1 else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("protocols", nargs="*", metavar="PROTOCOL", help=f"any of: {', '.join(PROTOCOLS)}")
    parser.add_argument("--models",
                        help=f"comma-separated registered models or labels of MODELS (default: each protocol's own, "
                             f"hybridsn but for ip-ssftt): "
                             f"{', '.join(sorted({*hsi.list_models(), *MODELS}))}")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the protocol's seeds")
    parser.add_argument("--folds", type=int, nargs="+", help="folded protocols (ip-blocks): only these folds")
    parser.add_argument("--epochs", type=int, help="override the paper's 100 epochs (for a quick check)")
    parser.add_argument("--runs-dir", default="runs/reproduce", type=Path)
    parser.add_argument("--data-dir", help="folder holding the scene files (Salinas-A)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--results", default=RESULTS, type=Path,
                        help="folder of the result JSON files and results.md (default benchmarks/results)")
    parser.add_argument("--table", action="store_true",
                        help="only rebuild results.md and zoo.md from the JSON files")
    args = parser.parse_args(argv)
    unknown = [name for name in args.protocols if name not in PROTOCOLS]
    if unknown:
        parser.error(f"unknown protocol(s) {unknown}; known: {', '.join(PROTOCOLS)}")
    models = [model.strip() for model in (args.models or "").split(",") if model.strip()] or [None]
    unknown = [model for model in models if model and model_settings(model)["model"] not in hsi.list_models()]
    if unknown:
        parser.error(f"unknown model(s) {unknown or args.models!r}; known: "
                     f"{', '.join(sorted({*hsi.list_models(), *MODELS}))}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.table:
        for name in args.protocols:
            for model in models:
                run_protocol(name, args.seeds, args.runs_dir, args.data_dir, args.epochs, model, args.results,
                             args.folds)
    args.results.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.md", table(args.results)), ("zoo.md", zoo_table(args.results))):
        (args.results / name).write_text(text)
        print(text)


if __name__ == "__main__":
    main()
