"""The two kinds of model, asked in one place: ``kind_of(model)`` reads the model class's ``kind`` attribute.

A *patch* model maps windows ``(N, 1, bands, p, p)`` to ``(N, K)`` logits; a *scene* model maps the reduced
scene ``(1, bands, H, W)`` to ``(1, K, H, W)``. Each kind says how to cut its datasets and batches, how to
check a run's settings, how far its receptive field reaches and how to predict a scene; the engine, runs,
checkpoints and inference call these and never look at model names.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import nn

from .config import RunConfig
from .data.augment import make_augmentation
from .data.patches import PatchDataset, check_patch_size, collate_batch, pad_cube
from .data.scene_samples import SceneLoader, SceneSamples
from .data.scenes import Scene
from .data.splits import Split
from .distributed import ALONE, ShardedBatches, World
from .errors import ConfigError
from .models import model_kind
from .models.receptive import receptive_field_radius

SUBSETS = ("train", "val", "test")


class Batches(Protocol):
    """A DataLoader or a SceneLoader: ``len()`` batches of (inputs, labels) per pass."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def __len__(self) -> int: ...


class ModelKind(Protocol):
    """What the engine, runs, checkpoints and inference ask a kind; its datasets are those its ``datasets`` made."""

    name: str
    transductive: bool

    def check(self, config: RunConfig, model: nn.Module, scene: Scene, here: World = ALONE) -> None: ...

    def datasets(self, reduced: np.ndarray, split: Split, config: RunConfig,
                 subsets: Sequence[str] = SUBSETS) -> dict[str, Any]: ...

    def loader(self, dataset: Any, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = False,
               workers: int = 0, pin_memory: bool = False, here: World = ALONE) -> Batches: ...

    def receptive_field_radius(self, model: nn.Module) -> int | None: ...


class PatchKind:
    name = "patch"
    transductive = False     # a training step reads only the windows of training pixels

    def check(self, config: RunConfig, model: nn.Module, scene: Scene, here: World = ALONE) -> None:
        if config.crop is not None:
            raise ConfigError(f"--crop applies to scene models; {config.model} reads {config.patch}x{config.patch} "
                              f"patches")
        if self.receptive_field_radius(model):      # a pixel model (svm, rf) reads no window: any scene size
            check_patch_size(config.patch, scene.cube.shape)

    def datasets(self, reduced: np.ndarray, split: Split, config: RunConfig,
                 subsets: Sequence[str] = SUBSETS) -> dict[str, PatchDataset]:
        padded = pad_cube(reduced, config.patch, config.padding)
        datasets = {}
        for name in subsets:
            coords, labels = split.coords(name)
            datasets[name] = PatchDataset(padded, coords, labels, config.patch,
                                          augmentation=make_augmentation(config.augment) if name == "train" else None)
        return datasets

    def loader(self, dataset: PatchDataset, batch_size: int, generator: torch.Generator | None = None,
               shuffle: bool = False, workers: int = 0, pin_memory: bool = False,
               here: World = ALONE) -> torch.utils.data.DataLoader:
        """Batches of windows; under torchrun this process's share of each global batch (see
        :class:`~hsi.distributed.ShardedBatches`), drawn in the order ``generator`` gives."""
        batches = ShardedBatches(len(dataset), batch_size, generator or torch.Generator(), shuffle, here,
                                 draw=dataset.draw if dataset.augmentation else None)
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, generator=torch.Generator(), collate_fn=collate_batch,
            num_workers=workers, pin_memory=pin_memory, persistent_workers=workers > 0)

    def receptive_field_radius(self, model: nn.Module) -> int:
        """How far a window's pixels reach: half the patch, or less for a model that reads only its centre."""
        # patch_size and input_radius are plain attributes, which torch's stub types as Tensor | Module
        return getattr(model, "input_radius", cast(int, model.patch_size) // 2)


class SceneKind:
    name = "scene"
    transductive = True      # a training step reads every pixel's spectrum, labelled or not

    def check(self, config: RunConfig, model: nn.Module, scene: Scene, here: World = ALONE) -> None:
        if here.distributed and config.crop is None:
            raise ConfigError(f"{config.model} is a scene model: under torchrun its processes share the work by "
                              f"crops; give --crop N (each process trains on its own N x N crop per step)")
        smallest = cast(int, model.stride) + 1         # batch norm needs a context map of at least 2 positions
        if config.crop is not None and config.crop < smallest:
            raise ConfigError(f"--crop {config.crop} is too small for {config.model} (total stride "
                              f"{model.stride}); use at least {smallest} pixels")
        if max(scene.cube.shape[:2]) < smallest:
            raise ConfigError(f"scene {scene.name!r} ({scene.cube.shape[0]}x{scene.cube.shape[1]}) is too small "
                              f"for {config.model}: one side must exceed its total stride {model.stride}")

    def datasets(self, reduced: np.ndarray, split: Split, config: RunConfig,
                 subsets: Sequence[str] = SUBSETS) -> dict[str, SceneSamples]:
        return {name: SceneSamples(reduced, getattr(split, name), crop=config.crop if name == "train" else None,
                                   augmentation=make_augmentation(config.augment) if name == "train" else None)
                for name in subsets}

    def loader(self, dataset: SceneSamples, batch_size: int, generator: torch.Generator | None = None,
               shuffle: bool = False, workers: int = 0, pin_memory: bool = False, here: World = ALONE) -> SceneLoader:
        """Draws of the scene (or of crops); under torchrun each process trains on its own draw per step."""
        return SceneLoader(dataset, generator or torch.Generator(), here, every_step=shuffle)

    def receptive_field_radius(self, model: nn.Module) -> int | None:
        return receptive_field_radius(model)


KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (PatchKind(), SceneKind())}


def kind_of(model: nn.Module) -> ModelKind:
    """The kind of ``model``: its class's ``kind`` attribute, "patch" or "scene"; a model from outside the
    toolkit that declares none is a patch model (windows in, one row of logits per window out)."""
    name = getattr(model, "kind", "patch")
    if name not in KINDS:
        raise ConfigError(f"{type(model).__name__} declares model kind {name!r}; expected 'patch' or 'scene'")
    return KINDS[name]


def kind_of_model_name(name: str) -> ModelKind:
    """The kind of the model that ``build_model(name, ...)`` builds."""
    return KINDS[model_kind(name)]

