"""Model builders: ``build_model(name, bands=..., n_classes=..., patch_size=..., attention=...)``."""
from ..errors import ConfigError
from .attention import create_attention, list_attention, register_attention
from .classic import rf, svm
from .hybridsn import HybridSN, hybridsn, hybridsn_2d3d, hybridsn_se

MODELS = {"hybridsn": hybridsn, "hybridsn_2d3d": hybridsn_2d3d, "hybridsn_se": hybridsn_se, "svm": svm, "rf": rf}


def list_models():
    """Names accepted by :func:`build_model`."""
    return list(MODELS)


def build_model(name, *, bands, n_classes, patch_size=25, attention=None, **kwargs):
    """Build a HybridSN-family network for ``(N, 1, bands, patch_size, patch_size)`` inputs.

    ``attention`` is a block name, class or factory for every slot, or a dict naming each slot
    (``{"after_3d": "cbam", "after_2d": "se"}``); see :func:`hsi.list_attention`.
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    if n_classes < 1:
        raise ConfigError(f"n_classes must be at least 1, got {n_classes}")
    if attention is not None or name != "hybridsn_se":
        kwargs["attention"] = attention
    try:
        return MODELS[name](bands=bands, n_classes=n_classes, patch_size=patch_size, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"model {name!r} does not take these options: {exc}") from None


__all__ = ["HybridSN", "build_model", "create_attention", "list_attention", "list_models", "register_attention"]
