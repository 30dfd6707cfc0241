"""Argument checks shared across the package: a whole number at least n, a list of them, a fraction.

``is_whole`` is the one test (a bool is not a number here; numpy integers are); the ``check_*`` helpers raise a
:class:`~hsi.errors.ConfigError` naming the argument, and callers with their own error or wording use ``is_whole``.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable

from .errors import ConfigError


def is_whole(value: object, least: int) -> bool:
    """Whether ``value`` is an integer (Python or numpy, not a bool) >= ``least``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= least


def check_positive(name: str, value: int) -> int:
    """``value`` as an int >= 1, or a ConfigError naming the argument."""
    if not is_whole(value, 1):
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_positive_tuple(name: str, values: Iterable[int]) -> tuple[int, ...]:
    """``values`` as a non-empty tuple of ints >= 1, or a ConfigError naming the argument."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{name} must be a sequence of integers >= 1, got {values!r}")
    checked = tuple(check_positive(f"each of {name}", value) for value in values)
    if not checked:
        raise ConfigError(f"{name} must list at least one value, got an empty sequence")
    return checked


def check_fraction(name: str, value: float) -> float:
    """``value`` as a float in [0, 1) (a dropout probability), or a ConfigError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)
