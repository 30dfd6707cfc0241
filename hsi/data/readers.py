"""Scene readers chosen by file suffix: one function per format, registered with ``@register_reader``.

A reader is ``reader(path) -> Contents``: the arrays the file holds (by name; ``""`` when it holds one) and what
it says about them (wavelengths, FWHM, geometry). Cubes left on disk come back as a
:class:`~hsi.data.mapped.MappedCube`. Built-in readers (.mat, ENVI, .npy; GeoTIFF, NetCDF and HE5 with the ``geo``
extra) register themselves in :mod:`hsi.data.io`; installed packages add readers through the ``hsi.readers``
entry-point group (name = reader name, value = a function decorated with :func:`register_reader`, or any function
with a ``suffixes`` attribute), read at first use.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError

ENTRY_POINT_GROUP = "hsi.readers"


@dataclass
class Contents:
    """What a reader found: ``arrays`` by name, with the wavelengths (nm) and FWHM of the cube's kept bands when
    the file gives them, and ``geometry`` (``crs``, ``transform`` or ``glt``/``lat``/``lon``) for georeferenced
    products."""

    arrays: dict[str, Any]
    wavelengths: np.ndarray | None = None
    fwhm: np.ndarray | None = None
    geometry: dict[str, Any] = field(default_factory=dict)


Reader = Callable[[Path], Contents]
_registered: dict[str, Reader] = {}           # reader name -> function, in registration order
_suffixes: dict[str, str] = {}                # lower-case suffix (".hdr") -> reader name
_entry_points_loaded = False


def _suffix_key(suffix: str) -> str:
    if not isinstance(suffix, str) or not suffix.strip(". "):
        raise ConfigError(f"a reader suffix must be a non-empty string such as '.tif', got {suffix!r}")
    return "." + suffix.strip().lower().lstrip(".")


def register_reader(name: str, suffixes: Iterable[str]) -> Callable[[Reader], Reader]:
    """Decorator registering ``reader(path) -> Contents`` as ``name`` for files ending in one of ``suffixes``."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a reader name must be a non-empty string, got {name!r}")
    keys = [_suffix_key(s) for s in ([suffixes] if isinstance(suffixes, str) else suffixes)]
    if not keys:
        raise ConfigError(f"reader {name!r} needs at least one file suffix")

    def decorator(reader: Reader) -> Reader:
        if name in _registered and _registered[name] is not reader:
            raise ConfigError(f"reader {name!r} is already registered as {_registered[name]!r}")
        taken = {s: _suffixes[s] for s in keys if _suffixes.get(s, name) != name}
        if taken:
            raise ConfigError(f"reader {name!r}: suffixes already read by other readers: {taken}")
        _registered[name] = reader
        _suffixes.update(dict.fromkeys(keys, name))
        reader.suffixes = tuple(keys)  # type: ignore[attr-defined]
        reader.reader_name = name  # type: ignore[attr-defined]
        return reader

    return decorator


def _load_entry_points(force: bool = False) -> None:
    """Register the readers offered by installed packages, once (again with ``force``); broken ones are skipped."""
    global _entry_points_loaded
    if _entry_points_loaded and not force:
        return
    _entry_points_loaded = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            reader = entry.load()
            if entry.name not in _registered:
                suffixes = getattr(reader, "suffixes", None)
                if not callable(reader) or not suffixes:
                    raise ConfigError("not a function with a 'suffixes' attribute (use @register_reader)")
                register_reader(entry.name, suffixes)(reader)
        except Exception as error:  # a broken plug-in must not take the built-in readers down with it
            warnings.warn(f"reader entry point {entry.name!r} = {entry.value!r} skipped: "
                          f"{type(error).__name__}: {error}", RuntimeWarning, stacklevel=3)


def reload_entry_points() -> None:
    """Read the ``hsi.readers`` entry points again (after installing a package or changing ``sys.path``)."""
    _load_entry_points(force=True)


def list_readers() -> dict[str, tuple[str, ...]]:
    """Every known reader and the suffixes it reads, built-in first."""
    _load_entry_points()
    return {name: tuple(s for s, owner in _suffixes.items() if owner == name) for name in _registered}


def reader_for(path: str | Path) -> Reader:
    """The reader of ``path``'s suffix; a :class:`DataError` naming the known readers when none reads it."""
    path = Path(path)
    _load_entry_points()
    name = _suffixes.get(path.suffix.lower())
    if name is None:
        known = "; ".join(f"{n} ({', '.join(s)})" for n, s in list_readers().items())
        raise DataError(f"{path}: unsupported file type {path.suffix.lower() or '(no suffix)'!r}; "
                        f"known readers: {known}")
    return _registered[name]
