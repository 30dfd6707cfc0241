"""Attention blocks chosen by a short name: ``create_attention("cbam", channels)``.

Every block is built as ``Block(channels, **kw)`` and maps ``(N, C, H, W)`` to the same shape. Built-in
blocks register themselves with :func:`register_attention`; installed packages add blocks through the
``hsi.attention`` entry-point group (name = block name, value = class or factory), read at first use.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ...checks import check_positive
from ...errors import ConfigError
from ...plugins import Registry

ENTRY_POINT_GROUP = "hsi.attention"
AttentionFactory = Callable[..., nn.Module]   # a block class or a factory ``f(channels, **kw)``
AttentionSpec = str | AttentionFactory | None   # a registered name, a class or factory, or no block
AttentionOption = AttentionSpec | dict[str, AttentionSpec]   # one spec for every slot, or one per slot


def hidden_width(channels: int, reduction: int, min_hidden: int) -> int:
    """Bottleneck width ``max(channels // reduction, min_hidden)``, with every argument checked."""
    channels = check_positive("channels", channels)
    return max(channels // check_positive("reduction", reduction), check_positive("min_hidden", min_hidden))


def _key(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"an attention block name must be a non-empty string, got {name!r}")
    key = name.strip().lower()
    if key == "none":
        raise ConfigError("'none' means no attention block and cannot be registered")
    return key


def _adopt(name: str, loaded: Any) -> AttentionFactory:
    if not callable(loaded):
        raise ConfigError("it is not a class or factory")
    return loaded


BLOCKS: Registry[AttentionFactory] = Registry("attention block", ENTRY_POINT_GROUP, label="attention",
                                              key=lambda name: name.strip().lower(), sort=True, adopt=_adopt)


def register_attention(name: str) -> Callable[[AttentionFactory], AttentionFactory]:
    """Decorator registering a class or factory ``f(channels, **kw) -> nn.Module`` under ``name``."""
    key = _key(name)
    return lambda block: BLOCKS.register(key, block)


def reload_entry_points() -> None:
    """Read the ``hsi.attention`` entry points again (after installing a package or changing ``sys.path``)."""
    BLOCKS.reload()


def list_attention() -> list[str]:
    """Sorted names of every known block: built-in, registered in code, or offered by an installed package."""
    return BLOCKS.names()


def create_attention(spec: AttentionSpec, channels: int, **kw: Any) -> nn.Module | None:
    """The block ``spec`` for ``channels`` channels, or None for ``spec`` None / ``"none"``.

    ``spec`` is a registered name (any case), an ``nn.Module`` subclass or a factory; classes and factories
    are called as ``spec(channels, **kw)``.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "none"):
        return None
    channels = check_positive("channels", channels)
    if isinstance(spec, str):
        factory = BLOCKS.get(spec)
    elif callable(spec):
        factory = spec
    else:
        raise ConfigError(f"attention must be None, a block name, an nn.Module class or a factory, "
                          f"got {type(spec).__name__} {spec!r}")
    block = factory(channels, **kw)
    if not isinstance(block, nn.Module):
        raise ConfigError(f"attention block {spec!r} built a {type(block).__name__}, expected an nn.Module")
    return block
