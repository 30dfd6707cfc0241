"""The experiment grid: models × seeds (× block folds), each cell a run folder, tabulated by one formatter.

``hsi train --runs N`` (:func:`train_many`), ``hsi train --split blocks --folds K`` (:func:`train_folds`) and
``hsi compare`` (:func:`compare`, models side by side on the same splits) are this one grid: the same parts
(:func:`grid_parts`), the same runner that reuses finished runs and resumes stopped ones (:func:`run_grid`) and
the same tables (:func:`format_results`).

Files of ``hsi.compare(config, models, out, runs=3)``:

``<out>/experiment.json``   what is compared (base settings, models, seeds); a rerun must ask for the same
``<out>/splits/seed-N.npz`` the split every model of seed N trains and is tested on
``<out>/<label>/seed-N/``   one run folder per model and seed: reused when finished, resumed when stopped
``<out>/results.csv``       one row per model × seed: scores, leakage, parameters (no clock times, so a comparison
                            stopped and resumed writes the same file); ``timing.csv``: training and map seconds
``<out>/results.md``        mean ± std per model with times, per-class accuracy
``<out>/maps.png``          every model's map of the first seed beside the ground truth
``<out>/per_class.png``     per-class accuracy of every model (mean over seeds)

With the ``blocks`` split (spatial block cross-validation, ``folds`` K) every seed runs every fold: splits,
folders and rows are per seed and fold (``seed-N-fold-F``, a ``fold`` column), and ``results.md`` names, fold by
fold, the held-out block and the classes it cannot train on (they score 0 there) or test.

Every score is reported with its leakage (see :mod:`hsi.leakage`): the share of test pixels whose model input
holds a training or validation pixel, and whether the PCA saw the test pixels.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import torch

try:
    import tomllib
except ModuleNotFoundError:          # Python 3.10
    import tomli as tomllib

from .atomic import write_json_atomic, write_text_atomic
from .checks import is_whole
from .claim import LOCK_NAME, claim
from .config import RunConfig
from .data.augment import augmentation_names
from .data.scenes import Scene, class_indices
from .data.splits import Split, folded_splits, is_folded, make_split
from .distributed import world
from .errors import ConfigError
from .metrics import format_folds, summarize_runs
from .models import list_models
from .pipeline import resume, train
from .runfolder import check_writable, default_out, scene_for
from .viz import comparison_maps_figure, per_class_figure, save_figure

log = logging.getLogger("hsi")

RESULT_FIELDS = ("model", "seed", "oa", "aa", "kappa", "leakage", "pca_saw_test", "transductive", "parameters",
                 "best_epoch", "val_oa", "run_dir")
TIMING_FIELDS = ("model", "seed", "train_seconds", "map_seconds")
MAX_LABEL = 100         # a label names a folder: well inside every file system's 255-byte name limit
Metrics = dict[str, Any]                    # a run's metrics.json
Row = dict[str, Any]                        # one run of the grid, as results.csv tabulates it
GridRun = tuple[RunConfig, Path, Split | None]     # settings, run folder and the shared split (None: its own)
Part = tuple[int, int | None]               # (seed, block fold or None)


@dataclass
class ModelSpec:
    """One column of the comparison: a registry model under a ``label``, with its own settings (any
    :class:`~hsi.runs.RunConfig` field, ``fit`` a dict of :class:`~hsi.engine.FitOptions` fields)."""

    model: str
    label: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for what, value in (("model name", self.model), ("model label", self.label)):
            if not isinstance(value, str):
                raise ConfigError(f"{what} must be text, got {type(value).__name__} {value!r}")
        self.label = self.label or self.model
        if not self.label.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ConfigError(f"model label {self.label!r} must be letters, digits, '-', '_' or '.' (it names a "
                              f"folder)")
        if len(self.label) > MAX_LABEL:
            raise ConfigError(f"model label {self.label[:20]!r}... is {len(self.label)} characters long; at most "
                              f"{MAX_LABEL} (it names a folder)")
        if not isinstance(self.options.get("fit", {}), dict):
            raise ConfigError(f"model {self.label!r}: setting 'fit' must be a table of optimisation settings, got "
                              f"{type(self.options['fit']).__name__} {self.options['fit']!r}")

    def config(self, base: RunConfig, seed: int, fold: int | None = None) -> RunConfig:
        """The run settings of this model for one seed (and block fold): the base settings with this model's on
        top."""
        if self.model not in list_models():
            raise ConfigError(f"unknown model {self.model!r} in the comparison; known models: "
                              f"{', '.join(list_models())}")
        values = asdict(base)
        unknown = sorted(set(self.options) - set(values))
        if unknown:
            raise ConfigError(f"model {self.label!r}: unknown setting(s) {unknown}; expected fields of hsi train's "
                              f"settings ({', '.join(sorted(values))})")
        values.update({k: v for k, v in self.options.items() if k != "fit"}, model=self.model, seed=seed)
        if fold is not None:
            values["fold"] = fold
        values["fit"] = {**values["fit"], **self.options.get("fit", {})}
        return RunConfig.from_dict(values)


def parse_models(text: str) -> list[ModelSpec]:
    """``"hybridsn,se_resnet18,svm"`` as model specs, one per name (each labelled by its name)."""
    names = [name.strip() for name in str(text).split(",") if name.strip()]
    if not names:
        raise ConfigError("--models needs at least one model name, e.g. hybridsn,svm")
    return [ModelSpec(name) for name in names]


def read_experiment(path: Path | str) -> tuple[RunConfig, list[ModelSpec], int, str | None]:
    """A TOML experiment: top-level ``hsi train`` settings (``fit`` a table), ``runs``, ``out``, and one
    ``[[models]]`` table per model with ``model``, an optional ``label`` and its own settings.

    Returns ``(base RunConfig, [ModelSpec], runs, out or None)``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: experiment file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    tables = data.pop("models", None)
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{path}: expected at least one [[models]] table with a model name")
    runs, out = data.pop("runs", 1), data.pop("out", None)
    fields_ = set(asdict(RunConfig()))
    unknown = sorted(set(data) - fields_)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {unknown}; expected runs, out, [[models]] or fields of "
                          f"hsi train's settings ({', '.join(sorted(fields_))})")
    if not is_whole(runs, 1):
        raise ConfigError(f"{path}: runs must be a whole number >= 1, got {runs!r}")
    if out is not None and not isinstance(out, str):
        raise ConfigError(f"{path}: out must be text (a folder), got {type(out).__name__} {out!r}")
    specs = []
    try:
        base = RunConfig.from_dict(data, str(path))
        for table in tables:
            table = dict(table) if isinstance(table, dict) else {}
            if "model" not in table:
                raise ConfigError("a [[models]] table has no model name (model = \"hybridsn\")")
            specs.append(ModelSpec(table.pop("model"), table.pop("label", ""), table))
            specs[-1].config(base, base.seed).check()       # every value of every run, before anything is written
    except ConfigError as exc:
        raise (exc if str(exc).startswith(str(path)) else ConfigError(f"{path}: {exc}")) from None
    return base, specs, runs, out


def compare(base: RunConfig, models: Sequence[ModelSpec], out: Path | str, *, runs: int = 3, scene: Scene | None = None,
            progress: bool | str = False, jobs: int = 1) -> list[Row]:
    """Train and test every model on the same split per seed (seeds ``base.seed .. base.seed + runs - 1``; with the
    ``blocks`` split, every fold of each); write the files listed in the module docstring and return the result
    rows.

    Finished runs are read back, stopped ones resumed, so a comparison killed at any moment and started again
    ends with the same ``results.csv``. ``jobs`` > 1 trains that many runs at once, each in its own process
    (:func:`run_grid`); the results do not depend on it."""
    labels = [spec.label for spec in models]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"model labels must differ, got {labels}; a model compared twice (say with two "
                          f"attention blocks) needs a label of its own: label = \"...\" in its [[models]] table "
                          f"of an experiment file (--config)")
    for name, value in (("runs", runs), ("jobs", jobs)):
        if not is_whole(value, 1):
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    seeds = list(range(base.seed, base.seed + runs))
    parts = grid_parts(base, runs)
    configs = {(spec.label, part): spec.config(base, *part) for spec in models for part in parts}
    for config in configs.values():
        config.check()
    given = scene
    scene = scene if scene is not None else scene_for(base)
    out = Path(out)
    experiment = {"base": asdict(base), "models": [asdict(spec) for spec in models], "seeds": seeds}
    _check_out(out, experiment)
    paths = [out / "splits" / f"{_part_name(*part)}.npz" for part in parts]
    splits = [_shared_split(base, scene, *part, path) for part, path in zip(parts, paths)]
    with claim(out):           # one comparison at a time writes here
        _check_out(out, experiment)     # again: one may have begun meanwhile
        _claim(out, experiment, dict(zip(paths, splits)))
        grid = [(configs[spec.label, part], out / spec.label / _part_name(*part), split)
                for part, split in zip(parts, splits) for spec in models]
        done = 0

        def report(index: int, metrics: Metrics) -> None:
            nonlocal done
            done += 1
            config, run_dir, _ = grid[index]
            log.info("[%d/%d] %s %s: OA %.2f%%  AA %.2f%%  kappa %.4f  leakage %s  (%s)", done, len(grid),
                     run_dir.parent.name, run_dir.name.replace("-", " "), 100 * metrics["oa"], 100 * metrics["aa"],
                     metrics["kappa"], _percent(metrics["leakage"]["fraction"]), run_dir)

        results = run_grid(grid, scene if jobs == 1 else given, jobs, progress, report)
        rows = [_row(run_dir.parent.name, config, metrics, run_dir, out)
                for (config, run_dir, _), metrics in zip(grid, results)]
        _write_results(out, rows, scene, labels)
        return rows


def grid_parts(base: RunConfig, runs: int) -> list[Part]:
    """The ``(seed, fold)`` parts of a grid: seeds ``base.seed .. base.seed + runs - 1``, each with every fold of
    the ``blocks`` split (fold None for the other splits)."""
    seeds = range(base.seed, base.seed + runs)
    folds = range(base.folds) if is_folded(base.split) and base.folds else [None]     # no folds: check() says so
    return [(seed, fold) for seed in seeds for fold in folds]


def run_grid(jobs_list: Sequence[GridRun], scene: Scene | None, jobs: int, progress: bool | str,
             report: Callable[[int, Metrics], object]) -> list[Metrics]:
    """Metrics of every ``(config, run_dir, split)`` run, in order, ``jobs`` at a time: in this process when
    ``jobs`` is 1, else each run in a worker process of its own (spawned, so nothing of this process's torch
    state is shared), the CPU threads divided between them and, with several GPUs, each worker on one GPU.
    ``scene`` None: each run reads its scene from its settings (a memory-mapped cube is never copied).
    ``report(index, metrics)`` is called as each run finishes."""
    if jobs == 1:
        results: list[Metrics] = []
        for index, (config, run_dir, split) in enumerate(jobs_list):
            metrics = _run(config, run_dir, scene, split, progress)
            assert metrics is not None      # outside torchrun (which hsi compare refuses) a run returns its metrics
            results.append(metrics)
            report(index, results[-1])
        return results
    threads = max(1, (os.cpu_count() or 1) // jobs)
    gpus = torch.cuda.device_count()
    context = multiprocessing.get_context("spawn")
    slots = context.Queue()
    for slot in range(jobs):
        slots.put(slot)
    done: list[Metrics | None] = [None] * len(jobs_list)
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker, initargs=(slots, threads, gpus))
    try:
        futures = {pool.submit(_run, config, run_dir, scene, split, False): index
                   for index, (config, run_dir, split) in enumerate(jobs_list)}
        for future in as_completed(futures):
            index = futures[future]
            done[index] = metrics = future.result()
            assert metrics is not None      # a worker is a process on its own, which returns its run's metrics
            report(index, metrics)
    finally:
        pool.shutdown(cancel_futures=True)      # after a failure: no new runs, the running ones finish
    return cast("list[Metrics]", done)         # every run's metrics: a failed run raised above


def _start_worker(slots: Queue[int], threads: int, gpus: int) -> None:
    """A comparison worker: its share of the CPU threads and, with several GPUs, its own one."""
    slot = slots.get()
    torch.set_num_threads(threads)
    if gpus > 1:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)


def _check_out(out: Path, experiment: dict[str, Any]) -> None:
    """Refuse an ``out`` that holds another comparison or other files (before anything is written)."""
    path = out / "experiment.json"
    if path.is_file():
        stored, wanted = json.loads(path.read_text()), json.loads(json.dumps(experiment))
        defaults = json.loads(json.dumps(asdict(RunConfig())))
        for record in (stored, wanted):         # augment: a bool before it named transforms (True: flip)
            record["base"]["augment"] = list(augmentation_names(record["base"].get("augment")))
            # a setting added since the comparison began is its default there
            record["base"] = {**defaults, **record["base"], "fit": {**defaults["fit"], **record["base"]["fit"]}}
        if stored != wanted:
            raise ConfigError(f"{out} holds another comparison (see {path}); choose another --out to start a new one")
    elif out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise ConfigError(f"output directory {out} is not empty and holds no comparison; choose another --out")


def _claim(out: Path, experiment: dict[str, Any], splits: dict[Path, Split]) -> None:
    """Start ``out`` for this experiment: ``experiment.json``, then the shared splits (``{path: Split}``) not saved
    yet. A comparison stopped in between makes the missing splits again (a seed's split is deterministic)."""
    if not (out / "experiment.json").is_file():
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "experiment.json", experiment)
    for path, split in splits.items():
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            split.save(path)


def _part_name(seed: int, fold: int | None) -> str:
    """The folder (and split file) name of one seed's runs, or of one fold of them."""
    return f"seed-{seed}" if fold is None else f"seed-{seed}-fold-{fold}"


def _shared_split(base: RunConfig, scene: Scene, seed: int, fold: int | None, path: Path) -> Split:
    """The base settings' split for one seed (and fold): the one saved at ``path`` by an earlier start, or made."""
    if path.is_file():
        return Split.load(path)
    return make_split(scene.labels, base.split, train_ratio=base.train_ratio, train_per_class=base.train_per_class,
                      val_ratio=base.val_ratio, patch_size=base.patch, seed=seed, class_names=scene.class_names,
                      folds=base.folds, fold=base.fold if fold is None else fold, label_ids=scene.label_ids,
                      parcels=getattr(scene, "parcels", None))


def _run(config: RunConfig, run_dir: Path, scene: Scene | None, split: Split | None,
         progress: bool | str) -> Metrics | None:
    if (run_dir / "metrics.json").is_file():
        return json.loads((run_dir / "metrics.json").read_text())
    if (run_dir / "last.pt").is_file():
        return resume(run_dir, progress=progress)
    if run_dir.exists():                      # stopped before its first checkpoint: start it again
        shutil.rmtree(run_dir)
    return train(config, run_dir, scene=scene, split=split, progress=progress)


def _row(label: str, config: RunConfig, metrics: Metrics, run_dir: Path, out: Path) -> Row:
    timing = json.loads((run_dir / "timing.json").read_text())
    leakage = metrics["leakage"]
    fold = config.fold if is_folded(config.split) else None
    return {"model": label, "seed": config.seed, "fold": fold, "split": metrics.get("split", {}),
            "oa": metrics["oa"], "aa": metrics["aa"], "kappa": metrics["kappa"],
            "leakage": leakage["fraction"], "pca_saw_test": leakage["pca_saw_test"],
            "transductive": leakage["transductive"], "parameters": metrics["parameters"],
            "train_seconds": timing["train_seconds"], "map_seconds": timing["map_seconds"],
            "best_epoch": metrics["best_epoch"], "val_oa": metrics.get("val_oa"),
            "run_dir": str(run_dir.relative_to(out)), "per_class_accuracy": metrics["per_class_accuracy"]}


def _with_fold(fields: tuple[str, ...], rows: Sequence[Row]) -> tuple[str, ...]:
    """``fields`` with a ``fold`` column after ``seed`` when the rows are block folds."""
    return (*fields[:2], "fold", *fields[2:]) if rows[0]["fold"] is not None else fields


def _write_results(out: Path, rows: Sequence[Row], scene: Scene, labels: Sequence[str]) -> None:
    buffer = io.StringIO()
    names = list(scene.class_names)
    fields, timing_fields = _with_fold(RESULT_FIELDS, rows), _with_fold(TIMING_FIELDS, rows)
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*fields, *(f"acc:{name}" for name in names)])
    for row in rows:
        cells = [row[key] for key in fields] + row["per_class_accuracy"]
        writer.writerow(["" if cell is None else cell for cell in cells])
    write_text_atomic(out / "results.csv", buffer.getvalue())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(timing_fields)
    writer.writerows([row[key] for key in timing_fields] for row in rows)
    write_text_atomic(out / "timing.csv", buffer.getvalue())
    write_text_atomic(out / "results.md", format_results(rows, names, scene.label_ids, labels))
    first = (rows[0]["seed"], rows[0]["fold"])
    shown = [row for row in rows if (row["seed"], row["fold"]) == first]
    maps = {f"{row['model']}: test OA {100 * row['oa']:.2f} %": _class_map(out / row["run_dir"], scene)
            for row in shown}
    if all(m is not None for m in maps.values()):
        split = Split.load(out / shown[0]["run_dir"] / "split.npz")       # the seed's split, shared by the models
        fold = "" if first[1] is None else f", fold {first[1]}"
        shown_maps = {name: m for name, m in maps.items() if m is not None}      # all of them
        save_figure(comparison_maps_figure(shown_maps, scene.labels, names, scene.palette, scene.label_ids,
                                           trained=(split.train >= 0) | (split.val >= 0),
                                           title=f"seed {first[0]}{fold}"), out / "maps.png")
    save_figure(per_class_figure({label: _mean_std([row["per_class_accuracy"] for row in rows
                                                    if row["model"] == label]) for label in labels},
                                 names, scene.label_ids), out / "per_class.png")


def _class_map(run_dir: Path, scene: Scene) -> npt.NDArray[np.int64] | None:
    """The run's map as class indices 0..K-1 (from ``map.npy``, which holds label ids), or None without a map."""
    path = run_dir / "map.npy"
    if not path.is_file():
        return None
    return class_indices(np.load(path), scene.label_ids)


def _mean_std(per_class_runs: Iterable[Sequence[float | None]]) -> list[tuple[float, float] | tuple[None, None]]:
    """Mean and sample std per class over runs (None where a class had no test pixel in any run)."""
    columns = list(zip(*per_class_runs))
    stats: list[tuple[float, float] | tuple[None, None]] = []
    for values in columns:
        present = np.array([v for v in values if v is not None], dtype=np.float64)
        stats.append((float(present.mean()), float(present.std(ddof=1)) if len(present) > 1 else 0.0)
                     if len(present) else (None, None))
    return stats


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def format_mean_std(values: Iterable[float | None], scale: float = 100.0) -> str:
    """``"mean ± std"`` (sample std) of ``values`` times ``scale``, None ignored; one value alone, ``-`` for none."""
    values = np.asarray([v for v in values if v is not None], dtype=np.float64) * scale
    if not len(values):
        return "-"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}" if len(values) > 1 else f"{values.mean():.2f}"


def format_results(rows: Sequence[Row], class_names: Sequence[str], label_ids: Sequence[int] | np.ndarray,
                   labels: Sequence[str]) -> str:
    """The comparison as Markdown: one line per model (mean ± std over seeds, or seeds and block folds), then
    per-class accuracy and, for block folds, what each fold held out and lacked."""
    folds = rows[0]["fold"] is not None
    lines = ["| model | runs | OA (%) | AA (%) | kappa (×100) | validation OA (%) | validation − test OA | "
             "leakage (% of test pixels) | PCA saw test | parameters | training (s) | map (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label in labels:
        mine = [row for row in rows if row["model"] == label]
        pca = "yes" if mine[0]["pca_saw_test"] else "no"
        transductive = " (transductive)" if mine[0]["transductive"] else ""
        seconds = [row["train_seconds"] for row in mine]
        maps = [row["map_seconds"] for row in mine if row["map_seconds"] is not None]
        oa, aa, kappa, leakage = (format_mean_std([r[key] for r in mine]) for key in ("oa", "aa", "kappa", "leakage"))
        val = format_mean_std([r.get("val_oa") for r in mine])        # None: no validation pixels
        gap = format_mean_std([None if r.get("val_oa") is None else r["val_oa"] - r["oa"] for r in mine])
        lines.append(f"| {label} | {len(mine)} | {oa} | {aa} | {kappa} | {val} | {gap} | {leakage}"
                     f"{transductive} | {pca} | {mine[0]['parameters']:,} | {np.mean(seconds):.1f} | "
                     + (f"{np.mean(maps):.2f} |" if maps else "- |"))
    lines += ["", f"Per-class accuracy (%), mean ± std over {'seeds and folds' if folds else 'seeds'}:", "",
              "| id | class | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for k, (name, label_id) in enumerate(zip(class_names, label_ids)):
        cells = [format_mean_std([row["per_class_accuracy"][k] for row in rows if row["model"] == label])
                 for label in labels]
        lines.append(f"| {label_id} | {name} | " + " | ".join(cells) + " |")
    if folds:
        lines += ["", "Spatial block folds (shared by every model): a class without training pixels in a fold scores "
                  "0 there, one without test pixels is left out of that fold's scores.", "", _fold_table(rows)]
    return "\n".join(lines) + "\n"


def _fold_table(rows: Sequence[Row]) -> str:
    several_seeds = len({row["seed"] for row in rows}) > 1
    folds: dict[str | int, dict[str, Any]] = {}
    for row in rows:
        name = f"{row['fold']} (seed {row['seed']})" if several_seeds else row["fold"]
        folds.setdefault(name, {"fold": name, **row["split"]})
    return format_folds(folds.values()).rstrip("\n")


def train_many(config: RunConfig, runs: int, out: Path | str | None = None, *,
               progress: bool | str = True) -> dict[str, Any] | None:
    """Repeat ``train`` with seeds ``seed .. seed + runs - 1`` into ``out/seed-N``; write ``summary.json`` (mean,
    std and values of OA, AA, kappa) and ``summary.md`` (the grid's table)."""
    return _repeat(config, runs, out, progress)


def train_folds(config: RunConfig, out: Path | str | None = None, *,
                progress: bool | str = True) -> dict[str, Any] | None:
    """Spatial block cross-validation: train every fold of the ``blocks`` split (``config.folds`` of them) into
    ``out/fold-N``; write a mean ± std summary that names the classes each fold could not train on or test."""
    if not is_folded(config.split) or not config.folds:
        names = " or ".join(folded_splits())
        raise ConfigError(f"cross-validation needs the {names} split and a number of folds (--split {names} --folds K)")
    return _repeat(config, 1, out, progress)


def _repeat(config: RunConfig, runs: int, out: Path | str | None, progress: bool | str) -> dict[str, Any] | None:
    """One model over the grid's parts (seeds, or block folds), a run folder each (``seed-N`` / ``fold-F``), with
    the split each run draws itself; summarised by :func:`summarize_runs` and tabulated by
    :func:`format_results`."""
    config.check()
    scene = scene_for(config)
    out = Path(world(config.fit.device).share(str(out or default_out(config, scene))))
    check_writable(out)
    spec = ModelSpec(config.model)
    grid = [(spec.config(config, seed, fold), out / (f"seed-{seed}" if fold is None else f"fold-{fold}"), None)
            for seed, fold in grid_parts(config, runs)]
    results = [_run(run_config, run_dir, scene, split, progress) for run_config, run_dir, split in grid]
    if results[0] is None:          # not rank 0 of a torchrun job
        return None
    finished = cast("list[Metrics]", results)     # rank 0: every run's metrics
    summary = summarize_runs(finished)
    if is_folded(config.split):
        summary["folds"] = [{"fold": fold, **r["split"]} for fold, r in enumerate(finished)]  # see _with_run_facts
    rows = [_row(spec.label, run_config, metrics, run_dir, out)
            for (run_config, run_dir, _), metrics in zip(grid, finished)]
    text = format_results(rows, list(scene.class_names), scene.label_ids, [spec.label])
    if is_folded(config.split):
        text = (f"Spatial block cross-validation: {config.folds} folds, each tested on one block and trained on "
                f"the others beyond a {config.patch // 2}-pixel buffer (a run per fold below).\n\n{text}")
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "summary.md", text)
    return summary
