"""A run folder on disk: what a run writes and reads back, apart from the training itself.

``<out>/config.json``  every resolved setting, seed, versions, split mode, PCA fit scope, where the scene was read
                     from (files with sizes and sha256, or the tensorly version; see ``run_scene``)
``<out>/split.npz``    the train / val / test maps
``<out>/last.pt``      updated after every epoch (resume from here); ``best.pt``: best validation OA (ties: lower loss)
``<out>/history.csv``  one row per epoch; ``metrics.json`` (test scores, leakage, parameters: the same for the same
                     seed), ``timing.json`` (training and map seconds), ``report.txt``, ``confusion.png``,
                     ``curves.png``
``<out>/map.png``, ``map.npy``  the full-scene class map
"""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

import numpy as np
import torch
from torch import nn

from ._version import __version__
from .atomic import write_text_atomic
from .checkpoint import save_checkpoint
from .claim import LOCK_NAME
from .config import RunConfig
from .data.preprocess import Reducer
from .data.scenes import Scene, check_arrays, load_recorded, load_scene, scene_record
from .data.splits import Split
from .errors import ConfigError
from .kinds import kind_of
from .leakage import leakage_record

if TYPE_CHECKING:
    from .distributed import World
    from .engine import Trainer

RECORD_SECTIONS = ("config", "scene", "split", "leakage")
HISTORY_FIELDS = ("epoch", "train_loss", "train_oa", "val_loss", "val_oa", "lr", "seconds")


class MovedScene(TypedDict, total=False):
    """Where a run's scene is now, if its recorded files moved: the file arguments of :func:`run_scene`."""

    cube: Path | str | None
    gt: Path | str | None
    key: str | None
    gt_key: str | None
    data_dir: Path | str | None


class SceneLocation(MovedScene, total=False):
    """Every keyword argument of :func:`run_scene`: where the scene is now, and whether to check its arrays."""

    verify: bool


class PreparedRun(Protocol):
    """What a run folder records of a prepared run (a :class:`hsi.pipeline.Prepared`)."""

    @property
    def split(self) -> Split: ...

    @property
    def reducer(self) -> Reducer: ...


def scene_for(config: RunConfig) -> Scene:
    source = config.dataset or config.cube
    if source is None:
        raise ConfigError("give a dataset name or a cube file (with its label file)")
    scene = load_scene(source, config.gt, key=config.key, gt_key=config.gt_key, data_dir=config.data_dir,
                       label_field=config.label_field, gt_layer=config.gt_layer, overlap=config.overlap)
    if not scene.n_classes:     # training and testing need labelled pixels
        if config.gt is None and config.dataset is None:
            raise ConfigError(f"--gt is missing: --cube {config.cube} needs its label file (training and testing "
                              f"need labelled pixels)")
        raise ConfigError(f"the ground truth of {source} labels no pixel (every label is 0, unlabelled)")
    return scene


def run_scene(run_dir: Path | str, *, cube: Path | str | None = None, gt: Path | str | None = None,
              key: str | None = None, gt_key: str | None = None, data_dir: Path | str | None = None,
              verify: bool = True) -> Scene:
    """The scene a run folder was trained on, from the record in its ``config.json`` (any working directory,
    any environment; never downloaded). ``cube``/``gt`` or ``data_dir`` point elsewhere; see
    :func:`hsi.data.scenes.load_recorded`. A run without recorded files (written before they were recorded, or
    trained on a scene built in memory) is loaded by its settings, as ``train`` did. With ``verify`` the scene,
    wherever it came from, must have the arrays whose checksum ``config.json`` records."""
    record = read_config(run_dir)
    origin = record["scene"]["origin"]
    if origin.get("cube") or origin.get("tensorly"):
        return load_recorded(origin, cube=cube, gt=gt, key=key, gt_key=gt_key, data_dir=data_dir, verify=verify)
    config = read_run_config(run_dir)
    if cube is not None:
        scene, where = load_scene(cube, gt, key=key or config.key, gt_key=gt_key or config.gt_key), str(cube)
    else:
        config.data_dir = str(data_dir) if data_dir else config.data_dir
        scene, where = scene_for(config), str(config.dataset or config.cube)
    if verify:          # config.json's settings may have been edited: the recorded checksum decides
        check_arrays(scene, origin, where)
    return scene


def read_config(run_dir: Path | str) -> dict[str, Any]:
    """The parsed ``config.json`` of a run folder, its structure checked: an object holding the ``config``,
    ``scene``, ``split`` and ``leakage`` objects ``hsi train`` writes, and the scene's recorded checksum. A damaged,
    truncated or edited file is one :class:`~hsi.errors.ConfigError` naming the file and the field."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (expected {path})")
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); the file is damaged or truncated") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{path}: expected a JSON object of the run's settings, got {type(record).__name__}")
    for name in RECORD_SECTIONS:
        if not isinstance(record.get(name), dict):
            got = "it is missing" if name not in record else f"got {type(record[name]).__name__}"
            raise ConfigError(f"{path}: field {name!r} must be an object as hsi train writes it; {got}")
    origin = record["scene"].get("origin")
    if not isinstance(origin, dict) or not isinstance(origin.get("arrays_sha256"), str):
        raise ConfigError(f"{path}: field 'scene.origin.arrays_sha256' (the checksum of the scene the run was "
                          f"trained on) is missing or not text; the file was edited or damaged")
    return record


def read_run_config(run_dir: Path | str) -> RunConfig:
    """The :class:`~hsi.config.RunConfig` of a run folder's ``config.json``, every value's type and range checked
    (errors name the file)."""
    source = str(Path(run_dir) / "config.json")
    config = RunConfig.from_dict(read_config(run_dir)["config"], source)
    try:
        config.check()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def check_writable(out: Path | str) -> None:
    """Fail before any work if ``out`` cannot be created or written; create nothing."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output directory {out} exists and is not a directory")
    if out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()):      # the lock of a killed run: empty
        raise ConfigError(f"output directory {out} is not empty; choose another --out or --resume it")
    parent = out if out.is_dir() else next((p for p in out.parents if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"output directory {out} cannot be written (no write permission on {parent})")


def default_out(config: RunConfig, scene: Scene) -> Path:
    return Path("runs") / f"{scene.name}-{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"


def save_run_checkpoint(path: Path | str, trainer: Trainer, prepared: PreparedRun, config: RunConfig,
                        scene: Scene) -> None:
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


def _model_kwargs(config: RunConfig, scene: Scene) -> dict[str, Any]:
    return {"bands": config.pca, "n_classes": scene.n_classes, "patch_size": config.patch,
            "attention": config.attention, **config.model_kwargs}


def config_record(config: RunConfig, scene: Scene, prepared: PreparedRun, model: nn.Module,
                  here: World) -> dict[str, Any]:
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
                     "scikit-learn": version("scikit-learn"), "python": platform.python_version()},
        "host": {"platform": platform.platform(), "cpu_threads": torch.get_num_threads(),
                 "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                 "processes": here.size},
    }


def write_history(path: Path | str, history: Iterable[Mapping[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(path, buffer.getvalue())


def read_history(path: Path | str) -> list[dict[str, float]]:
    if not Path(path).is_file():
        return []
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]
