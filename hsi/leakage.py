"""How much a test score owes to training data: the share of test pixels whose model input holds a training or
validation pixel, and whether the PCA saw the test pixels.

A patch model reads a ``patch × patch`` window around each test pixel; a scene model reads its receptive field.
When that input holds a pixel whose label the model was trained (or selected) on, the test pixel is scored on
interpolation between known neighbours, not on generalisation. ``window_leakage`` counts those test pixels.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter

from .checks import is_whole
from .data.splits import Split
from .errors import ConfigError


def window_leakage(split: Split, radius: int | None) -> dict[str, Any]:
    """Test pixels whose ``(2 radius + 1)²`` window (clipped at the scene's edges; ``radius`` None: the whole
    scene, for a model that reads it all) holds a training or validation pixel:
    ``{"radius", "test_pixels", "leaked_pixels", "fraction"}`` (fraction None without test pixels)."""
    if radius is not None and not is_whole(radius, 0):
        raise ConfigError(f"leakage radius must be a whole number of pixels >= 0 or None, got {radius!r}")
    seen = (split.train >= 0) | (split.val >= 0)
    if radius is None:
        near = np.full(seen.shape, seen.any())
    else:
        near = maximum_filter(seen, size=2 * int(radius) + 1, mode="constant", cval=False)
    test = split.test >= 0
    n_test, leaked = int(test.sum()), int((near & test).sum())
    return {"radius": None if radius is None else int(radius), "test_pixels": n_test, "leaked_pixels": leaked,
            "fraction": leaked / n_test if n_test else None}


def leakage_record(split: Split, radius: int | None, pca_fit_scope: str, transductive: bool = False) -> dict[str, Any]:
    """The leakage entry of a run's metrics: window leakage at the model's input radius, whether the PCA was fitted
    on the whole scene (so it saw the test pixels' spectra), and whether the model read every pixel's spectrum
    during training (scene models)."""
    return {**window_leakage(split, radius), "pca_saw_test": pca_fit_scope == "scene",
            "transductive": bool(transductive)}


def format_leakage(record: dict[str, Any]) -> str:
    """One line for reports: ``leakage: 99.87 % of test pixels have a training/validation pixel in their ...``."""
    if record.get("fraction") is None:
        return "leakage: no test pixels"
    reach = ("input (the whole scene)" if record["radius"] is None else
             f"{2 * record['radius'] + 1}x{2 * record['radius'] + 1} input")
    text = (f"leakage: {100 * record['fraction']:.2f} % of {record['test_pixels']} test pixels have a training or "
            f"validation pixel in their {reach}; PCA "
            + ("fitted on the whole scene (saw the test spectra)" if record["pca_saw_test"] else
               "fitted on training pixels only"))
    if record.get("transductive"):
        text += "; the model read every pixel's spectrum while training (transductive)"
    return text
