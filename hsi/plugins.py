"""One registry of named extensions, shared by models, attention blocks, augmentations, splits, readers and map
formats: registered in code by a decorator, or offered by installed packages through an entry-point group."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from .errors import ConfigError, HSIError

T = TypeVar("T")


class Registry(Generic[T]):
    """Extensions of one kind by name.

    ``register(name, value)`` adds one in code (a name already taken by another value is an ``error``); the
    entry points of ``group`` are read at first use and come after the code ones: a name that code or an earlier
    entry point already has is ignored, and one that fails to load, or that ``adopt(name, loaded)`` refuses with
    a :class:`~hsi.errors.ConfigError` saying why, is skipped, each with a ``RuntimeWarning``, so that a broken
    plug-in cannot take the built-ins down. ``adopt`` also turns what an entry point loads into a value.

    ``what`` names one extension in messages ("attention block"), ``label`` starts the warnings ("attention
    entry point ..."; default ``what``), ``thing`` names the built-ins ("a built-in block already has that
    name"; default the last word of ``what``). ``key`` normalises names (lower-casing, say); ``sort`` lists the
    names sorted instead of in registration order; ``same`` is what a second registration of a name must match.
    """

    def __init__(self, what: str, group: str, error: type[HSIError] = ConfigError, *, label: str | None = None,
                 thing: str | None = None, key: Callable[[str], str] = str, sort: bool = False,
                 adopt: Callable[[str, Any], T] | None = None, same: Callable[[T], object] = lambda value: value):
        self.what, self.group, self.error = what, group, error
        self.label, self.thing = label or what, thing or what.split()[-1]
        self.key, self.sort, self.adopt, self.same = key, sort, adopt, same
        self.registered: dict[str, T] = {}           # name -> value registered in code (built-ins first)
        self._plugins: dict[str, T] | None = None     # the same from entry points; None until first use

    def register(self, name: str, value: T) -> T:
        """Add ``value`` as ``name`` (again is fine when ``same`` finds it the same)."""
        key = self.key(name)
        if key in self.registered and self.same(self.registered[key]) is not self.same(value):
            raise self.error(f"{self.what} {key!r} is already registered as {self.same(self.registered[key])!r}")
        self.registered[key] = value
        return value

    def find(self, name: object) -> T | None:
        """The value of ``name``, registered in code or offered by an entry point, or None."""
        if not isinstance(name, str):
            return None
        key = self.key(name)
        found = self.registered.get(key)
        return found if found is not None else self.plugins().get(key)

    def get(self, name: object) -> T:
        """The value of ``name``; an unknown name is an ``error`` listing the known ones."""
        found = self.find(name)
        if found is None:
            raise self.error(f"unknown {self.what} {name!r}; known {self.thing}s: {', '.join(self.names())}")
        return found

    def __contains__(self, name: object) -> bool:
        return self.find(name) is not None

    def names(self) -> list[str]:
        """Every known name: those registered in code, then those of entry points (sorted with ``sort``)."""
        names = list(dict.fromkeys([*self.registered, *self.plugins()]))
        return sorted(names) if self.sort else names

    def plugins(self) -> dict[str, T]:
        """The values offered by entry points, read at the first call."""
        if self._plugins is None:
            self._plugins = self._read_entry_points()
        return self._plugins

    def reload(self) -> None:
        """Read the entry points again (after installing a package or changing ``sys.path``)."""
        self._plugins = self._read_entry_points()

    def _read_entry_points(self) -> dict[str, T]:
        found: dict[str, T] = {}
        for entry in entry_points(group=self.group):
            name = self.key(entry.name)
            if name in self.registered or name in found:
                owner = f"a built-in {self.thing}" if name in self.registered else "another entry point"
                self._warn(f"{entry.name!r} = {entry.value!r} ignored: {owner} already has that name")
                continue
            try:
                loaded = entry.load()
            except Exception as error:  # a broken plug-in must not take the built-ins down with it
                self._warn(f"{entry.name!r} = {entry.value!r} skipped: it failed to load ({type(error).__name__}: "
                           f"{error})")
                continue
            try:
                found[name] = loaded if self.adopt is None else self.adopt(name, loaded)
            except ConfigError as why:
                self._warn(f"{name!r} skipped: {why}")
        return found

    def _warn(self, message: str) -> None:
        warnings.warn(f"{self.label} entry point {message}", RuntimeWarning, stacklevel=5)
