"""Argument checks shared across the package: a whole number at least n, a list of them, a fraction; and the
classes a split leaves for training.

``is_whole`` is the one test (a bool is not a number here; numpy integers are); the ``check_*`` helpers raise a
:class:`~hsi.errors.ConfigError` naming the argument, and callers with their own error or wording use ``is_whole``.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence

import numpy as np

from .errors import ConfigError, SplitError


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


def check_trainable_classes(train_counts: Sequence[int] | np.ndarray, class_names: Sequence[str],
                            split_name: str) -> None:
    """Refuse a split that gives training pixels to fewer than two classes (``train_counts[k]``: class k's
    training pixels): nothing can be learnt from one class, and a test of one class scores 100 % whatever the
    model does."""
    trainable = [str(name) for name, count in zip(class_names, train_counts) if count > 0]
    if len(trainable) < 2:
        raise SplitError(f"the {split_name} split gives training pixels to {len(trainable)} class(es)"
                         f"{' (' + ', '.join(trainable) + ')' if trainable else ''} of the "
                         f"{len(class_names)} in the ground truth; a classifier needs at least two classes with "
                         f"training pixels (label two or more classes, or raise the train ratio)")
