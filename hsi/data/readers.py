"""Scene readers chosen by file suffix: one function per format, registered with ``@register_reader``.

A reader is ``reader(path) -> Contents``: the arrays the file holds (by name; ``""`` when it holds one) and what
it says about them (wavelengths, FWHM, geometry). Cubes left on disk come back as a
:class:`~hsi.data.mapped.MappedCube`. Built-in readers (.mat, ENVI, .npy; GeoTIFF, NetCDF and HE5 with the ``geo``
extra) register themselves in :mod:`hsi.data.io`; installed packages add readers through the ``hsi.readers``
entry-point group (name = reader name, value = a function decorated with :func:`register_reader`, or any function
with a ``suffixes`` attribute), read at first use.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..plugins import Registry

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


Reader = Callable[[Path], Contents]         # carries ``suffixes``, the lower-case suffixes it reads (".hdr", ...)


def _suffix_key(suffix: str) -> str:
    if not isinstance(suffix, str) or not suffix.strip(". "):
        raise ConfigError(f"a reader suffix must be a non-empty string such as '.tif', got {suffix!r}")
    return "." + suffix.strip().lower().lstrip(".")


def _check_free(name: str, suffixes: Iterable[str]) -> None:
    """Refuse ``suffixes`` that a reader registered in code under another name already reads."""
    taken = {s: other for s in suffixes for other, reader in READERS.registered.items()
             if other != name and s in getattr(reader, "suffixes", ())}
    if taken:
        raise ConfigError(f"reader {name!r}: suffixes already read by other readers: {taken}")


def _adopt(name: str, loaded: Any) -> Reader:
    """What a ``hsi.readers`` entry point loaded, if it is a reader whose suffixes no reader in code reads."""
    suffixes = getattr(loaded, "suffixes", None)
    if not callable(loaded) or not suffixes:
        raise ConfigError("it is not a function with a 'suffixes' attribute (use @register_reader)")
    keys = [_suffix_key(s) for s in ([suffixes] if isinstance(suffixes, str) else suffixes)]
    _check_free(name, keys)
    loaded.suffixes = tuple(keys)
    return loaded


READERS: Registry[Reader] = Registry("reader", ENTRY_POINT_GROUP, adopt=_adopt)


def register_reader(name: str, suffixes: Iterable[str]) -> Callable[[Reader], Reader]:
    """Decorator registering ``reader(path) -> Contents`` as ``name`` for files ending in one of ``suffixes``."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a reader name must be a non-empty string, got {name!r}")
    keys = [_suffix_key(s) for s in ([suffixes] if isinstance(suffixes, str) else suffixes)]
    if not keys:
        raise ConfigError(f"reader {name!r} needs at least one file suffix")

    def decorator(reader: Reader) -> Reader:
        _check_free(name, keys)
        READERS.register(name, reader)
        reader.suffixes = tuple(keys)  # type: ignore[attr-defined]
        reader.reader_name = name  # type: ignore[attr-defined]
        return reader

    return decorator


def reload_entry_points() -> None:
    """Read the ``hsi.readers`` entry points again (after installing a package or changing ``sys.path``)."""
    READERS.reload()


def list_readers() -> dict[str, tuple[str, ...]]:
    """Every known reader and the suffixes it reads, built-in first."""
    return {name: READERS.get(name).suffixes for name in READERS.names()}  # type: ignore[attr-defined]


def reader_for(path: str | Path) -> Reader:
    """The reader of ``path``'s suffix; a :class:`DataError` naming the known readers when none reads it."""
    path = Path(path)
    known = list_readers()
    name = next((n for n, suffixes in known.items() if path.suffix.lower() in suffixes), None)
    if name is None:
        listed = "; ".join(f"{n} ({', '.join(s)})" for n, s in known.items())
        raise DataError(f"{path}: unsupported file type {path.suffix.lower() or '(no suffix)'!r}; "
                        f"known readers: {listed}")
    return READERS.get(name)
