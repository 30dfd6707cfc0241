"""Extensions offered by installed packages through an entry-point group, read the same way for every registry."""
from __future__ import annotations

import warnings
from collections.abc import Callable, Container
from importlib.metadata import entry_points
from typing import Any


def load_plugins(group: str, label: str, thing: str, builtin: Container[str],
                 key: Callable[[str], str] = str) -> dict[str, Any]:
    """The objects of the entry-point ``group`` by name (``key(entry name)``). A name that a built-in
    (``builtin``) or an earlier entry point already has is ignored, and an entry point that fails to load is
    skipped, each with a ``RuntimeWarning`` naming it (``label``: "attention", "model"...; ``thing``: what the
    built-ins are called, "block", "model"...), so that a broken plug-in cannot take the built-ins down."""
    found: dict[str, Any] = {}
    for entry in entry_points(group=group):
        name = key(entry.name)
        if name in builtin or name in found:
            owner = f"a built-in {thing}" if name in builtin else "another entry point"
            warnings.warn(f"{label} entry point {entry.name!r} = {entry.value!r} ignored: {owner} already has that "
                          f"name", RuntimeWarning, stacklevel=4)
            continue
        try:
            found[name] = entry.load()
        except Exception as error:  # a broken plug-in must not take the built-ins down with it
            warnings.warn(f"{label} entry point {entry.name!r} = {entry.value!r} skipped: it failed to load "
                          f"({type(error).__name__}: {error})", RuntimeWarning, stacklevel=4)
    return found


def skip_plugin(label: str, name: str, why: str) -> None:
    """Warn that the loaded entry point ``name`` is skipped, and ``why``."""
    warnings.warn(f"{label} entry point {name!r} skipped: {why}", RuntimeWarning, stacklevel=4)
