"""One run from settings to results: prepare the scene, train with checkpoints, evaluate on the test split.

:func:`train` writes a run folder (see :mod:`hsi.runfolder` for its files), :func:`resume` continues one from
its ``last.pt``, :func:`evaluate_run` recomputes a finished run's test metrics.
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from .atomic import write_json_atomic, write_text_atomic
from .checkpoint import TrainedModel, load_checkpoint
from .checks import check_trainable_classes
from .claim import claim, remove_leftovers
from .config import RunConfig
from .data.patches import PatchDataset
from .data.preprocess import Reducer, fit_pca
from .data.registry import palette_for
from .data.scene_samples import SceneSamples
from .data.scenes import Scene, class_indices
from .data.splits import Split, describe_class, is_folded, make_split
from .distributed import ALONE, World, resolve_device, world
from .engine import Trainer, labelled_pixels, log, predict_logits
from .errors import ConfigError, SplitError
from .kinds import ModelKind, kind_of, kind_of_model_name
from .metrics import evaluate_predictions, format_report
from .models import build_model
from .models.footprint import layer_output_shapes
from .runfolder import (
    SceneLocation,
    check_writable,
    config_record,
    default_out,
    read_config,
    read_history,
    read_run_config,
    run_scene,
    save_run_checkpoint,
    scene_for,
    write_history,
)
from .stream import stream_map
from .viz import RgbSpec, choose_rgb_bands, confusion_matrix_figure, curves_figure, save_figure

if TYPE_CHECKING:
    from typing_extensions import Unpack

OnEpoch = Callable[[dict[str, Any]], object] | None     # called with each history row once it is on disk


class Interrupted(Exception):
    """Training stopped by Ctrl-C after ``last.pt`` was made safe; carries the run folder and the last completed
    epoch that ``last.pt`` holds (0: none had completed)."""


@dataclass
class Prepared:
    scene: Scene
    split: Split
    reducer: Reducer
    datasets: dict[str, PatchDataset | SceneSamples]   # "train", "val", "test" -> the kind's patch windows or scene


def prepare(scene: Scene, config: RunConfig, kind: ModelKind | None = None, split: Split | None = None) -> Prepared:
    """Split (or take ``split``), fit the PCA (on training pixels unless ``pca_fit == "scene"``) and cut the
    datasets of the model's ``kind`` (default: the kind of ``config.model``): lazy patch windows or the scene."""
    config.check()
    kind = kind or kind_of_model_name(config.model)
    if config.pca > scene.bands:
        raise ConfigError(f"--pca {config.pca} is larger than the scene's band count {scene.bands}")
    with warnings.catch_warnings(record=True) as caught:     # shown only if the split is usable at all
        warnings.simplefilter("always")
        if split is None:
            split = make_split(scene.labels, config.split, train_ratio=config.train_ratio,
                               train_per_class=config.train_per_class, val_ratio=config.val_ratio,
                               patch_size=config.patch, seed=config.seed, class_names=scene.class_names,
                               folds=config.folds, fold=config.fold, label_ids=scene.label_ids,
                               parcels=getattr(scene, "parcels", None))
    counts = split.counts(scene.n_classes)["train"]
    empty = [describe_class(k, scene.class_names, scene.label_ids) for k, c in enumerate(counts)
             if c == 0 and scene.class_counts()[k] > 0]
    if empty and not is_folded(config.split):   # a fold names its untrainable classes in the report
        raise SplitError(f"the {config.split} split leaves no training pixel for class(es) {', '.join(empty)}; "
                         f"raise the train ratio or choose another split")
    check_trainable_classes(counts, scene.class_names, config.split)
    for warning in caught:
        warnings.warn(warning.message, stacklevel=2)
    mask = None if config.pca_fit == "scene" else split.train >= 0
    reducer = fit_pca(scene.cube, config.pca, mask=mask, whiten=config.whiten, standardize=config.standardize,
                      wavelengths=scene.wavelengths)
    datasets = kind.datasets(reducer.transform(scene.cube), split, config)
    return Prepared(scene, split, reducer, datasets)


def build_for(config: RunConfig, scene: Scene) -> nn.Module:
    return build_model(config.model, bands=config.pca, n_classes=scene.n_classes, patch_size=config.patch,
                       attention=config.attention, **config.model_kwargs)


def train(config: RunConfig, out: Path | str | None = None, *, scene: Scene | None = None, split: Split | None = None,
          progress: bool | str = True, on_epoch: OnEpoch = None) -> dict[str, Any] | None:
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
    if config.write_map:        # the map's composite: a band out of range stops here, not after training
        choose_rgb_bands(config.rgb_bands, scene.bands, scene.wavelengths)
    prepared = prepare(scene, config, kind, split)
    trainer = _trainer(model, config, prepared, scene, here)
    here.barrier()          # every process has checked the folder before rank 0 writes into it
    with claim(out) if here.is_main else nullcontext():
        if here.is_main:
            check_writable(out)     # again, now that no other run can write here: one may have begun meanwhile
            prepared.split.save(out / "split.npz")      # first: a folder with config.json can be resumed
            write_json_atomic(out / "config.json", config_record(config, scene, prepared, model, here))
        save_run_checkpoint(out / "last.pt", trainer, prepared, config, scene)   # epoch 0: resumable from the start
        return _fit_and_finish(trainer, prepared, config, scene, out, progress, on_epoch)


def _trainer(model: nn.Module, config: RunConfig, prepared: Prepared, scene: Scene, here: World) -> Trainer:
    """The run's trainer; under torchrun, ranks other than 0 draw their own dropout numbers."""
    if here.rank:
        torch.manual_seed(config.seed + 1_000_003 * here.rank)
    return Trainer(model, config.fit, prepared.datasets["train"], prepared.datasets["val"], scene.n_classes,
                   seed=config.seed, here=here)


def resume(run_dir: Path | str, *, progress: bool | str = True, on_epoch: OnEpoch = None,
           **where: Unpack[SceneLocation]) -> dict[str, Any] | None:
    """Continue a run from its ``last.pt`` (after a crash, a kill or Ctrl-C) and finish it; a run stopped before
    its first ``last.pt`` starts again from its ``config.json`` and ``split.npz``.

    ``where`` (``cube``, ``gt``, ``data_dir``, ...) points to the scene if it moved, as in :func:`run_scene`."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "split.npz").is_file():
        raise ConfigError(f"{run_dir} is not a resumable run folder (expected config.json and split.npz)")
    config = read_run_config(run_dir)
    here = world(config.fit.device)
    with claim(run_dir) if here.is_main else nullcontext():
        if (run_dir / "metrics.json").is_file():
            raise ConfigError(f"{run_dir} is a finished run (its metrics.json is written); nothing to resume, "
                              f"nothing changed (hsi evaluate {run_dir} recomputes its test metrics)")
        for path in remove_leftovers(run_dir, ".*.tmp-*") if here.is_main else ():    # the killed run's
            log.info("removed %s, left by the stopped run", path.name)
        return _resume(run_dir, config, here, progress, on_epoch, where)


def _resume(run_dir: Path, config: RunConfig, here: World, progress: bool | str, on_epoch: OnEpoch,
            where: SceneLocation) -> dict[str, Any] | None:
    state = load_checkpoint(run_dir / "last.pt") if (run_dir / "last.pt").is_file() else None
    scene = run_scene(run_dir, **where)
    torch.manual_seed(config.seed)
    model = build_for(config, scene)
    kind = kind_of(model)
    kind.check(config, model, scene, here)
    prepared = prepare(scene, config, kind, Split.load(run_dir / "split.npz"))
    if state is not None:
        model.load_state_dict(state["state_dict"])
    trainer = _trainer(model, config, prepared, scene, here)
    if state is None:       # killed between split.npz and the first last.pt: start as train did
        log.info("resuming %s from the start (it stopped before its first checkpoint)", run_dir)
        save_run_checkpoint(run_dir / "last.pt", trainer, prepared, config, scene)
    else:
        trainer.load_state_dict(state["trainer"])
        log.info("resuming %s after epoch %d", run_dir, trainer.epoch)
    return _fit_and_finish(trainer, prepared, config, scene, run_dir, progress, on_epoch)


def _fit_and_finish(trainer: Trainer, prepared: Prepared, config: RunConfig, scene: Scene, out: Path,
                    progress: bool | str, on_epoch: OnEpoch) -> dict[str, Any] | None:
    main = trainer.world.is_main
    saved = trainer.epoch           # the epoch last.pt holds
    try:
        while not trainer.done:
            row, improved = trainer.run_epoch(progress)
            if improved:
                save_run_checkpoint(out / "best.pt", trainer, prepared, config, scene)
            save_run_checkpoint(out / "last.pt", trainer, prepared, config, scene)
            saved = trainer.epoch
            if main:
                write_history(out / "history.csv", trainer.history)
            if on_epoch is not None and main:
                on_epoch(row)
    except KeyboardInterrupt:
        raise Interrupted(out, saved) from None
    if trainer.world.share(not (out / "best.pt").is_file()):        # zero epochs asked for
        save_run_checkpoint(out / "best.pt", trainer, prepared, config, scene)
    if not main:
        return None
    trainer.release()
    return _finish(out, config, scene, prepared, trainer.device)


def _finish(out: Path, config: RunConfig, scene: Scene, prepared: Prepared, device: torch.device) -> dict[str, Any]:
    """Evaluate ``best.pt`` on the test split; write metrics, report, plots and the class map."""
    best = load_checkpoint(out / "best.pt")
    trained = TrainedModel.from_checkpoint(best)
    metrics = _with_run_facts(evaluate_test(trained, prepared, device, config.fit.memory_mb), out, best, trained)
    history = read_history(out / "history.csv")
    timing = {"train_seconds": round(sum(row["seconds"] for row in history), 3), "map_seconds": None}
    if config.write_map:
        start = time.perf_counter()
        write_map(trained, scene, out / "map", device=device, memory_mb=config.fit.memory_mb,
                  formats=("png", "npy", "rgb"), title=f"{scene.name} / {config.model}, seed {config.seed}",
                  trained_pixels=(prepared.split.train >= 0) | (prepared.split.val >= 0), rgb_bands=config.rgb_bands)
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


def evaluate_test(trained: TrainedModel, prepared: Prepared, device: torch.device,
                  memory_mb: float = 1024) -> dict[str, Any]:
    """Test metrics of ``trained``; patch windows go through the model a batch at a time, as many as keep the
    pass within an eighth of ``memory_mb`` (see :func:`test_batch_size`)."""
    test = prepared.datasets["test"]
    trained.model.to(device)
    loader = kind_of(trained.model).loader(test, batch_size=test_batch_size(trained.model, test, memory_mb, device))
    logits, labels = labelled_pixels(*predict_logits(trained.model, loader, device))
    predictions = logits.argmax(1).numpy() if len(logits) else np.empty(0, dtype=np.int64)
    return evaluate_predictions(labels.numpy(), predictions, trained.class_names, trained.label_ids)


def test_batch_size(model: torch.nn.Module, dataset: PatchDataset | SceneSamples, memory_mb: float,
                    device: torch.device, largest: int = 256) -> int:
    """Windows per test batch: at most ``largest``, and as many as keep the sum of every layer's outputs for the
    batch within an eighth of ``memory_mb`` (without autograd each layer's input is freed soon after its output
    is made, so the pass holds less). A scene model's test set is its scene: one batch whatever the size."""
    if not isinstance(dataset, PatchDataset) or not len(dataset):
        return largest
    window = dataset[0][0][None].to(device)
    floats = sum(math.prod(shape) for shape in layer_output_shapes(model, window))
    return max(1, min(largest, int(memory_mb * 2**20 / 8 / (4 * floats))))


def write_map(trained: TrainedModel, scene: Scene, prefix: Path | str, *, device: str | torch.device | None = None,
              formats: str | Iterable[str] = ("png", "npy"), probs: bool = False, mode: str = "auto",
              tile: int | None = None, memory_mb: float = 1024, palette: str | None = None, title: str | None = None,
              progress: bool = False, here: World | None = ALONE,
              trained_pixels: npt.NDArray[np.bool_] | None = None, rgb_bands: RgbSpec = None,
              geometry: str = "ortho") -> dict[str, Path]:
    """Predict every pixel of ``scene`` and write the map in ``formats`` (see :mod:`hsi.outputs`: ``png`` the
    whole map, the map on labelled pixels and the ground truth, with a legend of ids and names, ``title`` above;
    ``npy`` original label ids; ``envi``; ``tif``; ``rgb`` a false-colour composite of the bands ``rgb_bands``
    names, ``<prefix>_rgb.png``), tile by tile (:func:`hsi.stream.stream_map`). ``palette`` names colours of
    :data:`hsi.data.registry.PALETTES` instead of the run's (``"published"``). Returns ``{format: path}``."""
    return stream_map(trained, scene, prefix, formats=formats, probs=probs, mode=mode, tile=tile, device=device,
                      memory_mb=memory_mb, ground_truth=model_classes(scene, trained), title=title,
                      palette=None if palette is None else palette_for(trained.label_ids, palette),
                      progress=progress, here=here, trained_pixels=trained_pixels, rgb_bands=rgb_bands,
                      geometry=geometry)


def model_classes(scene: Scene, trained: TrainedModel) -> npt.NDArray[np.int64] | None:
    """The scene's labels as the model's class indices (a scene may hold a subset of its label ids)."""
    if not scene.n_classes:
        return None
    return np.where(scene.labels >= 0, class_indices(scene.label_ids[np.maximum(scene.labels, 0)], trained.label_ids),
                    -1)


def evaluate_run(run_dir: Path | str, **where: Unpack[SceneLocation]) -> dict[str, Any]:
    """Recompute the test metrics of a finished run from ``best.pt`` and ``split.npz``.

    ``where`` (``cube``, ``gt``, ``data_dir``, ...) points to the scene if it moved, as in :func:`run_scene`."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file() or not (run_dir / "best.pt").is_file():
        raise ConfigError(f"{run_dir} is not a finished run folder (expected config.json and best.pt)")
    config = read_run_config(run_dir)
    trained = TrainedModel.from_checkpoint(run_dir / "best.pt")
    assert trained.reducer is not None      # a checkpoint always holds its PCA (a bare model has none)
    scene = run_scene(run_dir, **where)
    trained.check_scene(scene)
    split = Split.load(run_dir / "split.npz")
    datasets = kind_of(trained.model).datasets(trained.reducer.transform(scene.cube), split, config,
                                               subsets=("test",))
    prepared = Prepared(scene, split, trained.reducer, datasets)
    metrics = evaluate_test(trained, prepared, resolve_device(config.fit.device), config.fit.memory_mb)
    return _with_run_facts(metrics, run_dir, load_checkpoint(run_dir / "best.pt"), trained)


def _with_run_facts(metrics: dict[str, Any], run_dir: Path | str, best: dict[str, Any],
                    trained: TrainedModel) -> dict[str, Any]:
    """Test metrics with what the run folder says about them: the epoch ``best.pt`` holds and its validation OA
    (None without one), the leakage, the learned parameters, and a block fold's block and the classes it could
    not train on or test."""
    record = read_config(run_dir)
    epoch = int(best["epoch"])
    rows = [row for row in read_history(Path(run_dir) / "history.csv") if row["epoch"] == epoch]
    val_oa = rows[0]["val_oa"] if rows and math.isfinite(rows[0]["val_oa"]) else None
    facts = {"best_epoch": epoch, "val_oa": val_oa, "leakage": record["leakage"],
             "parameters": count_parameters(trained.model),
             "split": {key: record["split"][key] for key in ("block", "classes_without_training",
                                                             "classes_without_test") if key in record["split"]}}
    return {**metrics, **facts}


def count_parameters(model: nn.Module) -> int:
    """Learned numbers of a model: its parameters, or for a fitted classifier (SVM, forest) its stored buffers."""
    learned = sum(p.numel() for p in model.parameters())
    return int(learned or sum(b.numel() for b in model.buffers()))
