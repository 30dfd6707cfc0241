"""Model builders chosen by name: ``build_model(name, bands=..., n_classes=..., patch_size=..., attention=...)``.

Importing this package registers the built-in models (each builder carries ``@register_model``); see
:mod:`hsi.models.registry` for the entry points of installed packages.
"""
# Imported for their registrations, in the order list_models() names them.
from . import (  # noqa: F401  isort: skip
    hybridsn, resnet, densenet, sknet, resnest, fcn, classic, spectral_cnn, cnn3d, a2s2k_resnet, ssftt,
    spectralformer,
)
from .attention import create_attention, list_attention, register_attention
from .hybridsn import HybridSN
from .registry import build_model, list_models, model_kind, register_model

__all__ = ["HybridSN", "build_model", "create_attention", "list_attention", "list_models", "model_kind",
           "register_attention", "register_model"]
