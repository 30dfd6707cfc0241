"""A run folder: prepare a scene, train with checkpoints, evaluate on the test split, write every artefact.

``<out>/config.json``  every resolved setting, seed, versions, split mode, PCA fit scope, where the scene was read
                     from (files with sizes and sha256, or the tensorly version; see ``run_scene``)
``<out>/split.npz``    the train / val / test maps
``<out>/last.pt``      updated after every epoch (resume from here); ``best.pt``: best validation OA (ties: lower loss)
``<out>/history.csv``  one row per epoch; ``metrics.json`` (test scores, leakage, parameters: the same for the same
                     seed), ``timing.json`` (training and map seconds), ``report.txt``, ``confusion.png``,
                     ``curves.png``
``<out>/map.png``, ``map.npy``  the full-scene class map
"""
import csv
import io
import json
import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .atomic import write_json_atomic, write_text_atomic
from .checks import is_whole
from .checkpoint import TrainedModel, load_checkpoint, save_checkpoint
from .data.augment import augmentation_names
from .data.patches import PADDING_MODES, check_patch_size
from .data.preprocess import Reducer, fit_pca
from .data.scenes import load_recorded, load_scene, scene_record
from .data.splits import Split, make_split
from .distributed import world
from .engine import FitOptions, Trainer, labelled_pixels, log, predict_logits
from .errors import ConfigError, SplitError
from .kinds import kind_of, kind_of_model_name
from .leakage import leakage_record

HISTORY_FIELDS = ("epoch", "train_loss", "train_oa", "val_loss", "val_oa", "lr", "seconds")


class Interrupted(Exception):
    """Training stopped by Ctrl-C after ``last.pt`` was made safe; carries the run folder."""


@dataclass
class RunConfig:
    """Every setting of a training run; written to ``config.json`` and enough to repeat it."""

    dataset: str | None = None          # registry name, or None when cube/gt paths are given
    cube: str | None = None
    gt: str | None = None
    key: str | None = None
    gt_key: str | None = None
    data_dir: str | None = None
    model: str = "hybridsn"
    attention: str | None = None
    model_kwargs: dict = field(default_factory=dict)
    split: str = "random"
    folds: int | None = None            # blocks split: the number of spatial blocks; ``fold`` is the held-out one
    fold: int = 0
    train_ratio: float | None = 0.3
    train_per_class: int | None = None
    val_ratio: float = 0.1
    pca: int = 30
    pca_fit: str = "train"              # "train" (leak-free) or "scene" (paper protocol)
    whiten: bool = False
    standardize: bool = False
    patch: int = 25
    padding: str = "zero"
    augment: tuple = ()                 # augmentation names (hsi.data.augment); True in an older config: ("flip",)
    crop: int | None = None             # scene models: train on random crops of this side instead of the scene
    seed: int = 0
    write_map: bool = True
    fit: FitOptions = field(default_factory=FitOptions)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in names}
        values["fit"] = FitOptions(**{k: v for k, v in d.get("fit", {}).items()
                                      if k in {f.name for f in fields(FitOptions)}})
        return cls(**values)

    def check(self):
        if self.pca_fit not in ("train", "scene"):
            raise ConfigError(f"pca-fit must be train or scene, got {self.pca_fit!r}")
        if self.padding not in PADDING_MODES:
            raise ConfigError(f"padding must be one of {PADDING_MODES}, got {self.padding!r}")
        check_patch_size(self.patch)
        self.augment = augmentation_names(self.augment)
        for name, value, least in (("pca", self.pca, 1), ("seed", self.seed, 0), ("crop", self.crop, 1)):
            if value is not None and not is_whole(value, least):
                raise ConfigError(f"--{name} must be an integer >= {least}, got {value!r}")
            if value is not None:
                setattr(self, name, int(value))      # a numpy integer from a notebook loop, made JSON-writable
        if self.split == "blocks" and self.folds is None:
            raise ConfigError("the blocks split needs a number of folds (--folds K)")
        if self.split != "blocks" and self.folds is not None:
            raise ConfigError(f"--folds applies to the blocks split (--split blocks), not to the {self.split} split")
        self.fit.check()


@dataclass
class Prepared:
    scene: object
    split: Split
    reducer: Reducer
    datasets: dict   # "train", "val", "test" -> the model kind's datasets (patch windows or the scene)


def prepare(scene, config, kind=None, split=None):
    """Split (or take ``split``), fit the PCA (on training pixels unless ``pca_fit == "scene"``) and cut the
    datasets of the model's ``kind`` (default: the kind of ``config.model``): lazy patch windows or the scene."""
    config.check()
    kind = kind or kind_of_model_name(config.model)
    check_patch_size(config.patch, scene.cube.shape)
    if config.pca > scene.bands:
        raise ConfigError(f"--pca {config.pca} is larger than the scene's band count {scene.bands}")
    with warnings.catch_warnings(record=True) as caught:     # shown only if the split is usable at all
        warnings.simplefilter("always")
        if split is None:
            split = make_split(scene.labels, config.split, train_ratio=config.train_ratio,
                               train_per_class=config.train_per_class, val_ratio=config.val_ratio,
                               patch_size=config.patch, seed=config.seed, class_names=scene.class_names,
                               folds=config.folds, fold=config.fold)
    counts = split.counts(scene.n_classes)["train"]
    empty = [scene.class_names[k] for k, c in enumerate(counts) if c == 0 and scene.class_counts()[k] > 0]
    if empty and split.mode != "blocks":        # a block fold names its untrainable classes in the report
        raise SplitError(f"the {config.split} split leaves no training pixel for class(es) {', '.join(empty)}; "
                         f"raise the train ratio or choose another split")
    for warning in caught:
        warnings.warn(warning.message, stacklevel=2)
    mask = None if config.pca_fit == "scene" else split.train >= 0
    reducer = fit_pca(scene.cube, config.pca, mask=mask, whiten=config.whiten, standardize=config.standardize)
    datasets = kind.datasets(reducer.transform(scene.cube), split, config)
    return Prepared(scene, split, reducer, datasets)


def build_for(config, scene):
    from .models import build_model

    return build_model(config.model, bands=config.pca, n_classes=scene.n_classes, patch_size=config.patch,
                       attention=config.attention, **config.model_kwargs)


def scene_for(config):
    source = config.dataset or config.cube
    if source is None:
        raise ConfigError("give a dataset name or a cube file (with its label file)")
    return load_scene(source, config.gt, key=config.key, gt_key=config.gt_key, data_dir=config.data_dir)


def run_scene(run_dir, *, cube=None, gt=None, key=None, gt_key=None, data_dir=None, verify=True):
    """The scene a run folder was trained on, from the record in its ``config.json`` (any working directory,
    any environment; never downloaded). ``cube``/``gt`` or ``data_dir`` point elsewhere; see
    :func:`hsi.data.scenes.load_recorded`. A run without recorded files (written before they were recorded, or
    trained on a scene built in memory) is loaded by its settings, as ``train`` did."""
    record = read_config(run_dir)
    origin = record["scene"].get("origin") or {}
    if origin.get("cube") or origin.get("tensorly"):
        return load_recorded(origin, cube=cube, gt=gt, key=key, gt_key=gt_key, data_dir=data_dir, verify=verify)
    config = RunConfig.from_dict(record["config"])
    if cube is not None:
        return load_scene(cube, gt, key=key or config.key, gt_key=gt_key or config.gt_key)
    config.data_dir = data_dir or config.data_dir
    return scene_for(config)


def read_config(run_dir):
    """The parsed ``config.json`` of a run folder."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (expected {path})")
    return json.loads(path.read_text())


def check_writable(out):
    """Fail before any work if ``out`` cannot be created or written; create nothing."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output directory {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"output directory {out} is not empty; choose another --out or --resume it")
    parent = out if out.is_dir() else next((p for p in out.parents if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {out} cannot be written (no write permission on {parent})")


def default_out(config, scene):
    return Path("runs") / f"{scene.name}-{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(config, out=None, *, scene=None, split=None, progress=True, on_epoch=None):
    """Train one run into the folder ``out`` and return its test metrics.

    ``split`` (a :class:`~hsi.data.splits.Split`) replaces the one ``config`` would draw, so that several runs
    share it (``hsi compare``). Everything that can fail on user input (scene, split, PCA, model) is checked
    before any file is written. ``on_epoch(row)`` is called with each history row once that epoch's checkpoints
    are on disk.

    Launched by ``torchrun``, every process trains its share (:mod:`hsi.distributed`) and rank 0 alone writes
    the run folder and returns the metrics (the other processes return None).
    """
    config.check()
    here = world(config.fit.device)
    scene = scene if scene is not None else scene_for(config)
    out = Path(here.share(str(out) if out else str(default_out(config, scene))))
    check_writable(out)
    torch.manual_seed(config.seed)
    model = build_for(config, scene)
    kind = kind_of(model)
    kind.check(config, model, scene, here)
    prepared = prepare(scene, config, kind, split)
    trainer = _trainer(model, config, prepared, scene, here)
    here.barrier()          # every process has checked the folder before rank 0 writes into it
    if here.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "config.json", _config_record(config, scene, prepared, model, here))
        prepared.split.save(out / "split.npz")
    _save(out / "last.pt", trainer, prepared, config, scene)   # epoch 0: resumable from the very start
    return _fit_and_finish(trainer, prepared, config, scene, out, progress, on_epoch)


def _trainer(model, config, prepared, scene, here):
    """The run's trainer; under torchrun, ranks other than 0 draw their own dropout numbers."""
    if here.rank:
        torch.manual_seed(config.seed + 1_000_003 * here.rank)
    return Trainer(model, config.fit, prepared.datasets["train"], prepared.datasets["val"], scene.n_classes,
                   seed=config.seed, here=here)


def resume(run_dir, *, progress=True, on_epoch=None, **where):
    """Continue a run from its ``last.pt`` (after a crash, a kill or Ctrl-C) and finish it.

    ``where`` (``cube``, ``gt``, ``data_dir``, ...) points to the scene if it moved, as in :func:`run_scene`."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "last.pt").is_file():
        raise ConfigError(f"{run_dir} is not a resumable run folder (expected config.json and last.pt)")
    config = RunConfig.from_dict(read_config(run_dir)["config"])
    here = world(config.fit.device)
    state = load_checkpoint(run_dir / "last.pt")
    scene = run_scene(run_dir, **where)
    torch.manual_seed(config.seed)
    model = build_for(config, scene)
    kind = kind_of(model)
    kind.check(config, model, scene, here)
    prepared = prepare(scene, config, kind, Split.load(run_dir / "split.npz"))
    model.load_state_dict(state["state_dict"])
    trainer = _trainer(model, config, prepared, scene, here)
    trainer.load_state_dict(state["trainer"])
    log.info("resuming %s after epoch %d", run_dir, trainer.epoch)
    return _fit_and_finish(trainer, prepared, config, scene, run_dir, progress, on_epoch)


def _fit_and_finish(trainer, prepared, config, scene, out, progress, on_epoch):
    main = trainer.world.is_main
    try:
        while not trainer.done:
            row, improved = trainer.run_epoch(progress)
            if improved:
                _save(out / "best.pt", trainer, prepared, config, scene)
            _save(out / "last.pt", trainer, prepared, config, scene)
            if main:
                _write_history(out / "history.csv", trainer.history)
            if on_epoch is not None and main:
                on_epoch(row)
    except KeyboardInterrupt:
        raise Interrupted(out) from None
    if trainer.world.share(not (out / "best.pt").is_file()):        # zero epochs asked for
        _save(out / "best.pt", trainer, prepared, config, scene)
    if not main:
        return None
    return _finish(out, config, scene, prepared, trainer.device)


def _finish(out, config, scene, prepared, device):
    """Evaluate ``best.pt`` on the test split; write metrics, report, plots and the class map."""
    from .metrics import format_report
    from .viz import confusion_matrix_figure, curves_figure, save_figure

    best = load_checkpoint(out / "best.pt")
    trained = TrainedModel.from_checkpoint(best)
    metrics = _with_run_facts(evaluate_test(trained, prepared, device), out, best, trained)
    history = read_history(out / "history.csv")
    timing = {"train_seconds": round(sum(row["seconds"] for row in history), 3), "map_seconds": None}
    if config.write_map:
        start = time.perf_counter()
        write_map(trained, scene, out / "map", device=device,
                  title=f"{scene.name} / {config.model}: test OA {100 * metrics['oa']:.2f} %")
        timing["map_seconds"] = round(time.perf_counter() - start, 3)
    write_json_atomic(out / "timing.json", timing)
    write_json_atomic(out / "metrics.json", metrics)
    write_text_atomic(out / "report.txt", format_report(metrics, title=f"{scene.name} / {config.model}"))
    save_figure(confusion_matrix_figure(np.array(metrics["confusion_matrix"]), scene.class_names,
                                        label_ids=trained.label_ids), out / "confusion.png")
    if history:
        save_figure(curves_figure(history, config.fit.checkpoint_on), out / "curves.png")
    log.info("test OA %.2f%%  AA %.2f%%  kappa %.4f  ->  %s", 100 * metrics["oa"], 100 * metrics["aa"],
             metrics["kappa"], out)
    return metrics


def evaluate_test(trained, prepared, device):
    from .metrics import evaluate_predictions

    loader = kind_of(trained.model).loader(prepared.datasets["test"], batch_size=256)
    logits, labels = labelled_pixels(*predict_logits(trained.model.to(device), loader, device))
    predictions = logits.argmax(1).numpy() if len(logits) else np.empty(0, dtype=np.int64)
    return evaluate_predictions(labels.numpy(), predictions, trained.class_names, trained.label_ids)


MAP_FORMATS = ("png", "npy", "envi", "rgb")


def write_map(trained, scene, prefix, *, device=None, formats=("png", "npy"), mode="auto", palette=None, title=None):
    """Predict every pixel of ``scene`` and export the map: ``png`` (the whole map, the map on labelled pixels
    and the ground truth, with a legend of ids and names; ``title`` above), ``npy`` (original label ids),
    ``envi`` (classification image), ``rgb`` (false-colour composite of the scene, ``<prefix>_rgb.png``).
    ``palette`` names colours of :data:`hsi.data.registry.PALETTES` instead of the run's (``"published"``).
    Returns ``{format: path}``."""
    from .data.registry import palette_for
    from .export import export_map, parse_formats, write_rgb_png
    from .inference import predict_scene
    from .viz import false_color

    formats = parse_formats(formats, MAP_FORMATS)
    written = {}
    map_formats = [f for f in formats if f != "rgb"]
    if map_formats:
        label_map = predict_scene(trained, scene, mode=mode, device=device)
        ground_truth = _model_classes(scene, trained)
        written = export_map(label_map, trained, prefix, formats=map_formats, ground_truth=ground_truth,
                             mask_unlabelled="both" if ground_truth is not None else False, title=title,
                             palette=None if palette is None else palette_for(trained.label_ids, palette))
    if "rgb" in formats:
        written["rgb"] = write_rgb_png(false_color(scene.cube, scene.wavelengths), f"{prefix}_rgb.png")
    return written


def _model_classes(scene, trained):
    """The scene's labels as the model's class indices (a scene may hold a subset of its label ids)."""
    if not scene.n_classes:
        return None
    lookup = np.full(int(max(trained.label_ids.max(), scene.label_ids.max())) + 1, -1, dtype=np.int64)
    lookup[trained.label_ids] = np.arange(len(trained.label_ids))
    return np.where(scene.labels >= 0, lookup[scene.label_ids[np.maximum(scene.labels, 0)]], -1)


def evaluate_run(run_dir, **where):
    """Recompute the test metrics of a finished run from ``best.pt`` and ``split.npz``.

    ``where`` (``cube``, ``gt``, ``data_dir``, ...) points to the scene if it moved, as in :func:`run_scene`."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "best.pt").is_file():
        raise ConfigError(f"{run_dir} is not a finished run folder (expected config.json and best.pt)")
    config = RunConfig.from_dict(read_config(run_dir)["config"])
    trained = TrainedModel.from_checkpoint(run_dir / "best.pt")
    scene = run_scene(run_dir, **where)
    trained.check_scene(scene)
    split = Split.load(run_dir / "split.npz")
    datasets = kind_of(trained.model).datasets(trained.reducer.transform(scene.cube), split, config,
                                               subsets=("test",))
    prepared = Prepared(scene, split, trained.reducer, datasets)
    from .engine import resolve_device

    metrics = evaluate_test(trained, prepared, resolve_device(config.fit.device))
    return _with_run_facts(metrics, run_dir, load_checkpoint(run_dir / "best.pt"), trained)


def _with_run_facts(metrics, run_dir, best, trained):
    """Test metrics with what the run folder says about them: the epoch ``best.pt`` holds, the leakage, the
    learned parameters, and a block fold's block and the classes it could not train on or test."""
    record = read_config(run_dir)
    facts = {"best_epoch": int(best["epoch"]), "leakage": record["leakage"],
             "parameters": count_parameters(trained.model),
             "split": {key: record["split"][key] for key in ("block", "classes_without_training",
                                                             "classes_without_test") if key in record["split"]}}
    return {**metrics, **facts}


def train_many(config, runs, out=None, *, progress=True):
    """Repeat ``train`` with seeds ``seed .. seed + runs - 1`` into ``out/seed-N``; write a mean ± std summary."""
    from .metrics import format_summary, summarize_runs

    scene = scene_for(config)
    out = Path(world(config.fit.device).share(str(out or default_out(config, scene))))
    check_writable(out)
    results = []
    for seed in range(config.seed, config.seed + runs):
        run_config = RunConfig.from_dict({**asdict(config), "seed": seed})
        results.append(train(run_config, out / f"seed-{seed}", scene=scene, progress=progress))
    if results[0] is None:          # not rank 0 of a torchrun job
        return None
    summary = summarize_runs(results)
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "summary.md", format_summary(summary))
    return summary


def train_folds(config, out=None, *, progress=True):
    """Spatial block cross-validation: train every fold of the ``blocks`` split (``config.folds`` of them) into
    ``out/fold-N``; write a mean ± std summary that names the classes each fold could not train on or test."""
    from .metrics import format_folds, format_summary, summarize_runs

    if config.split != "blocks" or not config.folds:
        raise ConfigError("cross-validation needs the blocks split and a number of folds (--split blocks --folds K)")
    scene = scene_for(config)
    out = Path(world(config.fit.device).share(str(out or default_out(config, scene))))
    check_writable(out)
    results = [train(RunConfig.from_dict({**asdict(config), "fold": fold}), out / f"fold-{fold}", scene=scene,
                     progress=progress) for fold in range(config.folds)]
    if results[0] is None:          # not rank 0 of a torchrun job
        return None
    summary = summarize_runs(results)
    summary["folds"] = [{"fold": fold, **r["split"]} for fold, r in enumerate(results)]     # see _with_run_facts
    text = (f"Spatial block cross-validation: {config.folds} folds, each tested on one block and trained on the "
            f"others beyond a {config.patch // 2}-pixel buffer (a run per fold below).\n\n{format_summary(summary)}\n"
            f"{format_folds(summary['folds'])}")
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "summary.md", text)
    return summary


def _save(path, trainer, prepared, config, scene):
    """Write a checkpoint; called by every process (the trainer state gathers their RNG states), written by
    rank 0."""
    model = trainer.model
    state = trainer.state_dict()
    if not trainer.world.is_main:
        return
    save_checkpoint({
        "model": {"name": config.model, "kwargs": _model_kwargs(config, scene)},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "preprocess": prepared.reducer.to_dict(), "patch_size": config.patch, "padding": config.padding,
        "bands_in": scene.bands, "class_names": list(scene.class_names),
        "label_ids": scene.label_ids.tolist(), "palette": scene.palette.tolist(), "scene": scene.name,
        "epoch": trainer.epoch, "trainer": state,
    }, path)


def _model_kwargs(config, scene):
    return {"bands": config.pca, "n_classes": scene.n_classes, "patch_size": config.patch,
            "attention": config.attention, **config.model_kwargs}


def count_parameters(model):
    """Learned numbers of a model: its parameters, or for a fitted classifier (SVM, forest) its stored buffers."""
    learned = sum(p.numel() for p in model.parameters())
    return int(learned or sum(b.numel() for b in model.buffers()))


def _config_record(config, scene, prepared, model, here):
    import sklearn

    kind = kind_of(model)

    return {
        "config": asdict(config),
        "scene": {"name": scene.name, "source": scene.source, "origin": scene_record(scene),
                  "shape": list(scene.cube.shape),
                  "class_names": scene.class_names, "label_ids": scene.label_ids.tolist()},
        "split": {"mode": config.split, "counts": prepared.split.counts(scene.n_classes),
                  **prepared.split.info},
        "pca_fit_scope": prepared.reducer.fit_scope,
        "model_kind": kind.name,
        "leakage": leakage_record(prepared.split, kind.receptive_field_radius(model), prepared.reducer.fit_scope,
                                  kind.transductive),
        "pca_fit": prepared.reducer.fit_record(),
        "versions": {"hsi": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "scikit-learn": sklearn.__version__, "python": platform.python_version()},
        "host": {"platform": platform.platform(), "cpu_threads": torch.get_num_threads(),
                 "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                 "processes": here.size},
    }


def _write_history(path, history):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(path, buffer.getvalue())


def read_history(path):
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]
