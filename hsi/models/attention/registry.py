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
from ...plugins import load_plugins, skip_plugin

ENTRY_POINT_GROUP = "hsi.attention"
AttentionFactory = Callable[..., nn.Module]   # a block class or a factory ``f(channels, **kw)``
AttentionSpec = str | AttentionFactory | None   # a registered name, a class or factory, or no block
AttentionOption = AttentionSpec | dict[str, AttentionSpec]   # one spec for every slot, or one per slot
_registered: dict[str, AttentionFactory] = {}  # lower-case name -> block registered in code (built-ins first)
_entry_points: dict[str, AttentionFactory] | None = None  # the same from installed packages; None until first use


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


def register_attention(name: str) -> Callable[[AttentionFactory], AttentionFactory]:
    """Decorator registering a class or factory ``f(channels, **kw) -> nn.Module`` under ``name``."""
    key = _key(name)

    def decorator(block: AttentionFactory) -> AttentionFactory:
        if key in _registered and _registered[key] is not block:
            raise ConfigError(f"attention block {key!r} is already registered as {_registered[key]!r}")
        _registered[key] = block
        return block

    return decorator


def _load_entry_points(force: bool = False) -> dict[str, AttentionFactory]:
    """Blocks offered by installed packages, read once (again with ``force=True``); broken ones are skipped."""
    global _entry_points
    if _entry_points is None or force:
        found = load_plugins(ENTRY_POINT_GROUP, "attention", "block", _registered, key=lambda n: n.strip().lower())
        for name in [name for name, block in found.items() if not callable(block)]:
            skip_plugin("attention", name, "it is not a class or factory")
            del found[name]
        _entry_points = found
    return _entry_points


def reload_entry_points() -> None:
    """Read the ``hsi.attention`` entry points again (after installing a package or changing ``sys.path``)."""
    _load_entry_points(force=True)


def list_attention() -> list[str]:
    """Sorted names of every known block: built-in, registered in code, or offered by an installed package."""
    return sorted({*_registered, *_load_entry_points()})


def create_attention(spec: AttentionSpec, channels: int, **kw: Any) -> nn.Module | None:
    """The block ``spec`` for ``channels`` channels, or None for ``spec`` None / ``"none"``.

    ``spec`` is a registered name (any case), an ``nn.Module`` subclass or a factory; classes and factories
    are called as ``spec(channels, **kw)``.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "none"):
        return None
    channels = check_positive("channels", channels)
    if isinstance(spec, str):
        key = spec.strip().lower()
        factory = _registered.get(key) or _load_entry_points().get(key)
        if factory is None:
            raise ConfigError(f"unknown attention block {spec!r}; known blocks: {', '.join(list_attention())}")
    elif callable(spec):
        factory = spec
    else:
        raise ConfigError(f"attention must be None, a block name, an nn.Module class or a factory, "
                          f"got {type(spec).__name__} {spec!r}")
    block = factory(channels, **kw)
    if not isinstance(block, nn.Module):
        raise ConfigError(f"attention block {spec!r} built a {type(block).__name__}, expected an nn.Module")
    return block
