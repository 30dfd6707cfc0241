"""Models chosen by name: ``build_model("hybridsn", bands=30, n_classes=16, patch_size=25)``.

A model enters with one decorator on its builder, ``@register_model(ModelClass, min_patch=9, min_bands=13)``:
the builder's name is the model's name, the class's ``kind`` attribute (``"patch"`` or ``"scene"``, see
:mod:`hsi.kinds`) says how the rest of hsi feeds it, and ``min_patch`` / ``min_bands`` declare the smallest window
and band count the builder accepts (``hsi models`` shows them; a test checks each against its builder). Installed
packages add models through the ``hsi.models`` entry-point group (name = model name, value = a builder decorated
with :func:`register_model`, or an ``nn.Module`` class), read at first use.
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from ..errors import ConfigError
from ..plugins import Registry

ENTRY_POINT_GROUP = "hsi.models"
BUILDER_ARGUMENTS = ("bands", "n_classes", "patch_size", "attention")

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its name, its builder, the class the builder returns, the smallest window and band
    count the builder accepts, and the paper it follows."""

    name: str
    builder: Callable[..., nn.Module]
    model_class: type
    min_patch: int = 1
    min_bands: int = 1
    paper: str = ""

    @property
    def kind(self) -> str:
        """``"patch"`` or ``"scene"``: the class's ``kind`` (a class that declares none is a patch model)."""
        return getattr(self.model_class, "kind", "patch")


def _adopt(name: str, loaded: Any) -> ModelEntry:
    """The entry of what a ``hsi.models`` entry point loaded: an ``nn.Module`` class or a decorated builder."""
    model_class = loaded if isinstance(loaded, type) else getattr(loaded, "model_class", None)
    if model_class is None:
        raise ConfigError("it is neither an nn.Module class nor a builder decorated with hsi.register_model")
    return ModelEntry(name, loaded, model_class)


MODELS: Registry[ModelEntry] = Registry("model", ENTRY_POINT_GROUP, adopt=_adopt, same=lambda entry: entry.builder)


def register_model(model_class: type, name: str | None = None, *, min_patch: int = 1, min_bands: int = 1,
                   paper: str = "") -> Callable[[Builder], Builder]:
    """Decorator registering a builder ``f(*, bands, n_classes, patch_size, attention, **options)`` that returns
    a ``model_class``, under ``name`` (default: the builder's own name). ``min_patch`` and ``min_bands``: the
    smallest (odd) window and band count the builder accepts with its default options (a scene model reads any
    scene: leave ``min_patch`` at 1); ``paper``: the publication it follows, as "Authors, venue year"."""
    for label, value in (("min_patch", min_patch), ("min_bands", min_bands)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"register_model: {label} must be an integer >= 1, got {value!r}")

    def decorator(builder: Builder) -> Builder:
        key = name or builder.__name__
        MODELS.register(key, ModelEntry(key, builder, model_class, min_patch, min_bands, paper))
        builder.model_class = model_class  # type: ignore[attr-defined]
        return builder

    return decorator


def reload_entry_points() -> None:
    """Read the ``hsi.models`` entry points again (after installing a package or changing ``sys.path``)."""
    MODELS.reload()


def model_entry(name: str) -> ModelEntry:
    """The registered model ``name``; an unknown name is an error listing the known ones."""
    return MODELS.get(name)


def list_models(kind: str | None = None) -> list[str]:
    """Names accepted by :func:`build_model`, in registration order; with ``kind`` (``"patch"`` or ``"scene"``)
    only the models of that kind."""
    if kind not in (None, "patch", "scene"):
        raise ConfigError(f"model kind must be patch or scene, got {kind!r}")
    return [name for name in MODELS.names() if kind is None or MODELS.get(name).kind == kind]


def model_kind(name: str) -> str:
    """``"patch"`` or ``"scene"``: the kind of the model ``name`` builds, without building it."""
    return model_entry(name).kind


def build_model(name: str, *, bands: int, n_classes: int, patch_size: int = 25, attention: Any = None,
                **options: Any) -> nn.Module:
    """Build a model by name. Patch models (``kind = "patch"``: the HybridSN family, the CNN backbones, SVM and
    random forest) take ``(N, 1, bands, patch_size, patch_size)`` windows; scene models (``kind = "scene"``, the
    FCNs) take the whole reduced scene ``(1, bands, H, W)`` and ignore ``patch_size``.

    ``attention`` is a block name, class or factory for every slot, or a dict naming each slot
    (``{"after_3d": "cbam", "after_2d": "se"}``; the ResNet-style backbones have one slot, ``unit``, in every
    residual unit, DenseNet-BC one, ``block``, after every dense block); see :func:`hsi.list_attention`.
    None keeps the model's own default (squeeze-excitation for the ``*_se`` models), ``"none"`` empties it.
    """
    entry = model_entry(name)
    if n_classes < 1:
        raise ConfigError(f"n_classes must be at least 1, got {n_classes}")
    if attention is not None:
        options["attention"] = attention
    try:
        return entry.builder(bands=bands, n_classes=n_classes, patch_size=patch_size, **options)
    except TypeError as exc:
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if unknown is None:
            raise
        raise ConfigError(f"{name} has no option {unknown[1]!r}{_options_of(entry.builder)}") from None


def _options_of(builder: Callable[..., nn.Module]) -> str:
    """"; its options: ..." listing the keyword options of ``builder`` when its signature names them all."""
    parameters = inspect.signature(builder).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return ""
    options = [p.name for p in parameters if p.name not in BUILDER_ARGUMENTS]
    return f"; its options: {', '.join(options)}" if options else "; it takes no options"
