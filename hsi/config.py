"""The settings of a run, in one place: each field carries its default, its help text and its choices.

:class:`RunConfig` (scene, model, split, preprocessing, seed) holds a :class:`FitOptions` (optimisation). The
``hsi train`` and ``hsi compare`` options (:func:`hsi.cli.build_parser`), the TOML experiment reader
(:func:`hsi.experiments.read_experiment`) and the ``config.json`` loader (:func:`hsi.runfolder.read_run_config`)
are all derived from these fields: a default changes here and nowhere else.
"""
from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from typing import Any

from .checks import is_whole
from .data.augment import augmentation_names, list_augmentations
from .data.patches import PADDING_MODES, check_patch_size
from .data.splits import folded_splits, is_folded, list_splits
from .data.vector import OVERLAP_RULES
from .errors import ConfigError
from .metrics import CHECKPOINT_RULES
from .viz import parse_rgb_bands

SCHEDULERS = (None, "plateau", "cosine")
PCA_FIT_SCOPES = ("train", "scene")


def setting(default: Any = None, help: str = "", *, choices: Callable[[], tuple] | tuple | None = None,
            group: str = "run", flag: str | None = None, compare: bool = True, metavar: str | None = None,
            unset_on_cli: bool = False, const: str | None = None) -> Any:
    """A settings field: ``default`` (a dict or list default is copied per instance), its ``help`` text, its
    ``choices`` (a tuple, or a function returning them for registries that grow), the option ``group`` of the
    command line, the option's ``flag`` when it is not ``--field-name``, whether ``hsi compare`` offers it, and
    whether the option, left out, means "not set" (None) rather than the default, and ``const``, the value of
    the option given without one."""
    metadata = {"help": help, "choices": choices, "group": group, "flag": flag, "compare": compare,
                "metavar": metavar, "unset_on_cli": unset_on_cli,
                "const": const}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def choices_of(f: Field) -> tuple | None:
    """The allowed values of a settings field, or None when any value of its type goes."""
    choices = f.metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


@dataclass
class FitOptions:
    """Optimisation settings; the defaults are the paper's (Adam, lr 1e-3, batch 256, 100 epochs)."""

    epochs: int = setting(100, "training epochs (passes over the training set)", group="optimisation")
    batch_size: int = setting(256, "patches per step; HybridSN at 25x25x30 keeps about 6 MB per patch for the "
                                   "backward pass, so lower it to save memory", group="optimisation")
    memory_mb: int = setting(1024, "memory budget of a training step in MB: of a batch's saved activations, the "
                                   "last 1/32 of it stays in memory and the earlier ones are kept in temporary "
                                   "files until the backward pass (the same numbers, a little slower); test "
                                   "batches stay within an eighth of it", group="optimisation")
    lr: float = setting(1e-3, "Adam learning rate", group="optimisation")
    weight_decay: float = setting(0.0, "Adam weight decay (L2)", group="optimisation")
    scheduler: str | None = setting(None, "learning-rate schedule: plateau halves it after 5 epochs without a "
                                          "better validation OA, cosine anneals it over the epochs; constant by "
                                          "default", choices=SCHEDULERS, group="optimisation")
    patience: int | None = setting(None, "stop after this many epochs without a better validation OA (or, at "
                                         "equal OA, a lower validation loss); off by default", group="optimisation")
    class_weights: bool = setting(False, "weight the loss by inverse class frequency", group="optimisation")
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy: the target puts 1 - EPS on the "
                                          "class and EPS spread evenly over all classes (0: none)",
                                     group="optimisation")
    device: str = setting("auto", "auto (CUDA when present), cpu or cuda", group="optimisation")
    amp: bool = setting(False, "mixed precision (CUDA only)", group="optimisation")
    workers: int = setting(0, "data loader worker processes", group="optimisation")
    checkpoint_on: str = setting("val", "what best.pt keeps: the epoch with the best validation OA, the best "
                                        "training OA (the official HybridSN code; with --val-ratio 0) or the last "
                                        "epoch", choices=CHECKPOINT_RULES, group="optimisation")
    sync_bn: bool = setting(False, "under torchrun: batch-norm statistics over the global batch of all processes "
                                   "(then a model without dropout trains as in one process, up to float "
                                   "rounding)", group="optimisation")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "settings") -> FitOptions:
        return cls(**checked_values(cls, values, source))

    def check(self) -> None:
        for name in ("epochs", "batch_size", "memory_mb"):
            if not is_whole(getattr(self, name), 1):
                raise ConfigError(f"{name.replace('_', '-')} must be an integer >= 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be positive, got {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label-smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"scheduler must be plateau or cosine, got {self.scheduler!r}")
        if self.patience is not None and not is_whole(self.patience, 1):
            raise ConfigError(f"patience must be an integer >= 1, got {self.patience!r}")
        if not is_whole(self.workers, 0):
            raise ConfigError(f"workers must be an integer >= 0, got {self.workers!r}")
        if self.checkpoint_on not in CHECKPOINT_RULES:
            raise ConfigError(f"checkpoint-on must be one of {', '.join(CHECKPOINT_RULES)}, got {self.checkpoint_on!r}")


def _model_names() -> tuple[str, ...]:
    from .models import list_models  # the registry grows with plug-ins: read when asked

    return tuple(list_models())


@dataclass
class RunConfig:
    """Every setting of a training run; written to ``config.json`` and enough to repeat it."""

    dataset: str | None = setting(None, "known scene name (see 'hsi datasets')", group="scene")
    cube: str | None = setting(None, "cube file (.mat, .hdr, .npy) instead of --dataset; with --resume: the run's "
                                     "cube if it moved", group="scene")
    gt: str | None = setting(None, "label file for --cube", group="scene")
    key: str | None = setting(None, ".mat key of the cube when the file holds several arrays", group="scene")
    gt_key: str | None = setting(None, ".mat key of the labels", group="scene")
    label_field: str | None = setting(None, "polygon ground truth (--gt fields.gpkg/.shp/.geojson): the attribute "
                                            "naming each polygon's class", group="scene")
    gt_layer: str | None = setting(None, "polygon ground truth: the layer to read (default: the first)",
                                   group="scene")
    overlap: str = setting("refuse", "polygon ground truth: pixels inside polygons of different classes are an "
                                     "error (refuse), unlabelled (drop) or take the first polygon's class (first)",
                           choices=OVERLAP_RULES, group="scene")
    data_dir: str | None = setting(None, "folder holding the scene files (searched before $HSI_DATA_DIR and the "
                                         "cache); with --resume: where the run's files are now, if they moved",
                                   group="scene")
    model: str = setting("hybridsn", "model name (the fcn* models are scene models: they read the whole scene at "
                                     "once)", choices=_model_names,
                         group="model", compare=False)
    attention: str | None = setting(None, "attention block for every slot, e.g. se, cbam (see "
                                          "hsi.list_attention()); none by default", group="model")
    model_kwargs: dict = setting({}, "an option of the model's builder, e.g. dropout=0 or growth=24 (repeat for "
                                     "several; VALUE is read as a number, true/false, null or a JSON list, else as "
                                     "text)", group="model", flag="--model-option", compare=False,
                                 metavar="NAME=VALUE")
    split: str = setting("random", "random: stratified per class (--train-ratio or --train-per-class); fixed: "
                                   "--train-per-class pixels per class (at most half a small class); disjoint: "
                                   "spatially separate parcels, no training pixel inside a test window; blocks: "
                                   "spatial block cross-validation over --folds blocks",
                         choices=lambda: tuple(list_splits()), group="split and preprocessing")
    folds: int | None = setting(None, "blocks split: number of spatial blocks; every fold tests on one and trains "
                                      "on the rest beyond a patch//2 buffer", group="split and preprocessing")
    fold: int = setting(0, "blocks split: train only this fold (the held-out block); without it hsi train runs "
                           "every fold", group="split and preprocessing", unset_on_cli=True)
    train_ratio: float | None = setting(0.3, "fraction of each class for training",
                                        group="split and preprocessing")
    train_per_class: int | None = setting(None, "training pixels per class, instead of --train-ratio",
                                          group="split and preprocessing")
    val_ratio: float = setting(0.1, "fraction of training pixels for validation", group="split and preprocessing")
    pca: int = setting(30, "PCA components", group="split and preprocessing")
    pca_fit: str = setting("train", "fit PCA on training pixels (leak-free) or the whole scene (the paper's "
                                    "protocol)", choices=PCA_FIT_SCOPES, group="split and preprocessing")
    whiten: bool = setting(False, "whiten the PCA components (as the official code)",
                           group="split and preprocessing")
    standardize: bool = setting(False, "standardise each band before PCA", group="split and preprocessing")
    patch: int = setting(25, "odd window size in pixels", group="split and preprocessing")
    padding: str = setting("zero", "how the scene is extended beyond its border for the edge pixels' windows",
                           choices=PADDING_MODES, group="split and preprocessing")
    augment: str | tuple | list | bool = setting(
        "none", f"training augmentations, comma-separated, of {', '.join(list_augmentations())} (the option alone: "
                f"flip, the random flips and quarter turns; see hsi.data.augment)",
        group="split and preprocessing", metavar="NAMES", const="flip")
    crop: int | None = setting(None, "scene models (fcn*): train on random CROP x CROP windows of the scene instead "
                                     "of the whole scene (for scenes beyond memory)", group="split and preprocessing")
    seed: int = setting(0, "seed of the split, the initial weights and the batch order")
    write_map: bool = setting(True, "do not write the full-scene class map", flag="--no-map")
    rgb_bands: str | list | None = setting(
        None, "bands of the false-colour composite beside the map (map_rgb.png, the rgb format): three band indices "
              "counted from 0 (R,G,B, e.g. 29,19,9) or wavelengths (640nm,550nm,460nm: the nearest bands); default "
              "the bands nearest 650, 550 and 470 nm, or three evenly spaced bands when the scene records no "
              "wavelengths", metavar="R,G,B")
    fit: FitOptions = field(default_factory=FitOptions)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "settings") -> RunConfig:
        """Settings from a mapping (``config.json``'s ``config``, a TOML table): every value's type is checked;
        keys that are not settings are left out."""
        known = {f.name for f in fields(cls)}
        checked = checked_values(cls, {k: v for k, v in values.items() if k in known and k != "fit"}, source)
        fit = values.get("fit", {})
        if not isinstance(fit, Mapping):
            raise ConfigError(f"{source}: setting 'fit' must be a table of optimisation settings, got "
                              f"{type(fit).__name__} {fit!r}")
        known_fit = {f.name for f in fields(FitOptions)}
        return cls(**checked, fit=FitOptions.from_dict({k: v for k, v in fit.items() if k in known_fit},
                                                       f"{source}: fit"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        if self.pca_fit not in PCA_FIT_SCOPES:
            raise ConfigError(f"pca-fit must be train or scene, got {self.pca_fit!r}")
        if self.padding not in PADDING_MODES:
            raise ConfigError(f"padding must be one of {PADDING_MODES}, got {self.padding!r}")
        check_patch_size(self.patch)
        self.augment = augmentation_names(self.augment)
        parse_rgb_bands(self.rgb_bands)             # the form; the range against the scene (choose_rgb_bands)
        for name, value, least in (("pca", self.pca, 1), ("seed", self.seed, 0), ("crop", self.crop, 1)):
            if value is not None and not is_whole(value, least):
                raise ConfigError(f"--{name} must be an integer >= {least}, got {value!r}")
            if value is not None:
                setattr(self, name, int(value))      # a numpy integer from a notebook loop, made JSON-writable
        folded = is_folded(self.split)
        if folded and self.folds is None:
            raise ConfigError(f"the {self.split} split needs a number of folds (--folds K)")
        if not folded and self.folds is not None:
            names = " or ".join(folded_splits())
            raise ConfigError(f"--folds applies to the {names} split (--split {names}), not to the {self.split} "
                              f"split")
        self.fit.check()


def value_types(cls: type) -> dict[str, tuple[type, ...]]:
    """Each field's accepted Python types, from its annotation (``int | None`` -> ``(int, NoneType)``)."""
    hints = typing.get_type_hints(cls)
    accepted = {}
    for name, hint in hints.items():
        members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        accepted[name] = tuple(typing.get_origin(m) or m for m in members)
    return accepted


def checked_values(cls: type, values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``values`` with each one's type checked against ``cls``'s field: an integer where an integer is expected
    (not a bool), a number where a float is, text where text is, one of the field's choices where it has them."""
    accepted = value_types(cls)
    by_name = {f.name: f for f in fields(cls)}
    for name, value in values.items():
        expected = accepted[name]
        fits = any(_is_a(value, kind) for kind in expected)
        if not fits:
            names = " or ".join("null" if k is type(None) else k.__name__ for k in expected)
            raise ConfigError(f"{source}: setting {name!r} must be {names}, got {type(value).__name__} {value!r}")
        choices = choices_of(by_name[name])
        if choices is not None and value not in choices:
            raise ConfigError(f"{source}: setting {name!r} must be one of "
                              f"{', '.join(str(c) for c in choices if c is not None)}, got {value!r}")
    return dict(values)


def _is_a(value: Any, kind: type) -> bool:
    if kind is type(None):
        return value is None
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def field_default(f: Field) -> Any:
    """A field's default value (a fresh copy for a factory)."""
    if f.default is MISSING and f.default_factory is not MISSING:
        return f.default_factory()
    return f.default
