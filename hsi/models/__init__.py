"""Model builders: ``build_model(name, bands=..., n_classes=..., patch_size=..., attention=...)``."""
import inspect
import re

from ..errors import ConfigError
from .attention import create_attention, list_attention, register_attention
from .a2s2k_resnet import a2s2k_resnet
from .classic import rf, svm
from .cnn3d import cnn3d
from .densenet import densenet_bc
from .fcn import fcn8s, fcn16s, fcn32s, fcn_jpu
from .hybridsn import HybridSN, hybridsn, hybridsn_2d3d, hybridsn_se
from .resnest import resnest
from .resnet import preact_resnet18, resnet18, resnet34, resnet50, se_resnet18, se_resnet50
from .sknet import sknet
from .spectral_cnn import spectral_cnn
from .spectralformer import spectralformer
from .ssftt import ssftt

MODELS = {"hybridsn": hybridsn, "hybridsn_2d3d": hybridsn_2d3d, "hybridsn_se": hybridsn_se,
          "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50, "preact_resnet18": preact_resnet18,
          "se_resnet18": se_resnet18, "se_resnet50": se_resnet50, "densenet_bc": densenet_bc, "sknet": sknet,
          "resnest": resnest, "fcn32s": fcn32s, "fcn16s": fcn16s, "fcn8s": fcn8s, "fcn_jpu": fcn_jpu,
          "svm": svm, "rf": rf,
          "spectral_cnn": spectral_cnn, "cnn3d": cnn3d, "a2s2k_resnet": a2s2k_resnet, "ssftt": ssftt,
          "spectralformer": spectralformer}


def list_models(kind=None):
    """Names accepted by :func:`build_model`; with ``kind`` ("patch" or "scene") only the models of that kind
    (the ``kind`` of the class each builder's return annotation names)."""
    if kind not in (None, "patch", "scene"):
        raise ConfigError(f"model kind must be patch or scene, got {kind!r}")
    return [name for name in MODELS if kind is None or model_kind(name) == kind]


def model_kind(name):
    """"patch" or "scene": the ``kind`` of the class that the builder ``name`` returns, without building it."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name].__annotations__["return"].kind


def build_model(name, *, bands, n_classes, patch_size=25, attention=None, **kwargs):
    """Build a model by name. Patch models (``kind = "patch"``: the HybridSN family and the CNN backbones) take
    ``(N, 1, bands, patch_size, patch_size)`` windows; scene models (``kind = "scene"``, the FCNs) take the
    whole reduced scene ``(1, bands, H, W)`` and ignore ``patch_size``.

    ``attention`` is a block name, class or factory for every slot, or a dict naming each slot
    (``{"after_3d": "cbam", "after_2d": "se"}``; the ResNet-style backbones have one slot, ``unit``, in every
    residual unit, DenseNet-BC one, ``block``, after every dense block); see :func:`hsi.list_attention`.
    None keeps the model's own default (squeeze-excitation for the ``*_se`` models), ``"none"`` empties it.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    if n_classes < 1:
        raise ConfigError(f"n_classes must be at least 1, got {n_classes}")
    if attention is not None:
        kwargs["attention"] = attention
    try:
        return MODELS[name](bands=bands, n_classes=n_classes, patch_size=patch_size, **kwargs)
    except TypeError as exc:
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if unknown is None:
            raise
        raise ConfigError(f"{name} has no option {unknown[1]!r}{_options_of(name)}") from None


def _options_of(name):
    """"; its options: ..." listing the keyword options of builder ``name`` when its signature names them all."""
    parameters = inspect.signature(MODELS[name]).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return ""
    options = [p.name for p in parameters if p.name not in ("bands", "n_classes", "patch_size", "attention")]
    return f"; its options: {', '.join(options)}" if options else "; it takes no options"


__all__ = ["HybridSN", "build_model", "create_attention", "list_attention", "list_models", "model_kind",
           "register_attention"]
