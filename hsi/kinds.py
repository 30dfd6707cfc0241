"""The two kinds of model, asked in one place: ``kind_of(model)`` reads the model class's ``kind`` attribute.

A *patch* model maps windows ``(N, 1, bands, p, p)`` to ``(N, K)`` logits; a *scene* model maps the reduced
scene ``(1, bands, H, W)`` to ``(1, K, H, W)``. Each kind says how to cut its datasets and batches, how to
check a run's settings, how far its receptive field reaches and how to predict a scene; the engine, runs,
checkpoints and inference call these and never look at model names.
"""
import torch

from .data.augment import make_augmentation
from .data.patches import PatchDataset, collate_batch, pad_cube
from .data.scene_samples import SceneLoader, SceneSamples
from .distributed import ALONE, ShardedBatches
from .errors import ConfigError
from .models import model_kind
from .models.receptive import receptive_field_radius

SUBSETS = ("train", "val", "test")


class PatchKind:
    name = "patch"
    transductive = False     # a training step reads only the windows of training pixels

    def check(self, config, model, scene, here=ALONE):
        if config.crop is not None:
            raise ConfigError(f"--crop applies to scene models; {config.model} reads {config.patch}x{config.patch} "
                              f"patches")

    def datasets(self, reduced, split, config, subsets=SUBSETS):
        padded = pad_cube(reduced, config.patch, config.padding)
        return {name: PatchDataset(padded, *split.coords(name), config.patch,
                                   augmentation=make_augmentation(config.augment) if name == "train" else None)
                for name in subsets}

    def loader(self, dataset, batch_size, generator=None, shuffle=False, workers=0, pin_memory=False, here=ALONE):
        """Batches of windows; under torchrun this process's share of each global batch (see
        :class:`~hsi.distributed.ShardedBatches`), drawn in the order ``generator`` gives."""
        batches = ShardedBatches(len(dataset), batch_size, generator or torch.Generator(), shuffle, here,
                                 draw=dataset.draw if dataset.augmentation else None)
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, generator=torch.Generator(), collate_fn=collate_batch,
            num_workers=workers, pin_memory=pin_memory, persistent_workers=workers > 0)

    def receptive_field_radius(self, model):
        """How far a window's pixels reach: half the patch, or less for a model that reads only its centre."""
        return getattr(model, "input_radius", model.patch_size // 2)


class SceneKind:
    name = "scene"
    transductive = True      # a training step reads every pixel's spectrum, labelled or not

    def check(self, config, model, scene, here=ALONE):
        if here.distributed and config.crop is None:
            raise ConfigError(f"{config.model} is a scene model: under torchrun its processes share the work by "
                              f"crops; give --crop N (each process trains on its own N x N crop per step)")
        smallest = model.stride + 1         # batch norm needs a context map of at least 2 positions
        if config.crop is not None and config.crop < smallest:
            raise ConfigError(f"--crop {config.crop} is too small for {config.model} (total stride "
                              f"{model.stride}); use at least {smallest} pixels")
        if max(scene.cube.shape[:2]) < smallest:
            raise ConfigError(f"scene {scene.name!r} ({scene.cube.shape[0]}x{scene.cube.shape[1]}) is too small "
                              f"for {config.model}: one side must exceed its total stride {model.stride}")

    def datasets(self, reduced, split, config, subsets=SUBSETS):
        return {name: SceneSamples(reduced, getattr(split, name), crop=config.crop if name == "train" else None,
                                   augmentation=make_augmentation(config.augment) if name == "train" else None)
                for name in subsets}

    def loader(self, dataset, batch_size, generator=None, shuffle=False, workers=0, pin_memory=False, here=ALONE):
        """Draws of the scene (or of crops); under torchrun each process trains on its own draw per step."""
        return SceneLoader(dataset, generator or torch.Generator(), here, every_step=shuffle)

    def receptive_field_radius(self, model):
        return receptive_field_radius(model)


KINDS = {kind.name: kind for kind in (PatchKind(), SceneKind())}


def kind_of(model):
    """The kind of ``model``: its class's ``kind`` attribute, "patch" or "scene"; a model from outside the
    toolkit that declares none is a patch model (windows in, one row of logits per window out)."""
    name = getattr(model, "kind", "patch")
    if name not in KINDS:
        raise ConfigError(f"{type(model).__name__} declares model kind {name!r}; expected 'patch' or 'scene'")
    return KINDS[name]


def kind_of_model_name(name):
    """The kind of the model that ``build_model(name, ...)`` builds."""
    return KINDS[model_kind(name)]

