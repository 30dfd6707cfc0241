"""Write a class map held in memory (:func:`export_map`) through the writers of :mod:`hsi.outputs`.

The map goes through the writers of :mod:`hsi.outputs` (PNG figure with legend, ``.npy`` of original label ids,
ENVI classification, GeoTIFF): into a temporary folder, then renamed into place, so a crash never leaves a
half-written map (and never leaves the temporary files behind).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ConfigError
from .outputs import MapJob, list_formats, parse_formats, write_outputs
from .viz import _check_map, _check_palette


class Classes(Protocol):
    """What a map is written with: a TrainedModel, a Scene, or anything with these three."""

    @property
    def class_names(self) -> Sequence[str]: ...

    @property
    def label_ids(self) -> np.ndarray: ...

    @property
    def palette(self) -> np.ndarray: ...


def export_map(label_map: np.ndarray, trained: Classes, prefix: str | Path, *,
               formats: str | Iterable[str] = ("png", "npy"), ground_truth: np.ndarray | None = None,
               mask_unlabelled: bool | str = False, palette: np.ndarray | None = None,
               title: str | None = None) -> dict[str, Path]:
    """Write a full-scene class map in the given formats; return ``{format: path}``.

    ``label_map`` is (rows, cols) of classes 0..K-1 (-1 = no class); ``trained`` is anything with
    ``class_names``, ``label_ids`` (K original ids) and ``palette`` (K x 3 uint8), such as
    :class:`hsi.checkpoint.TrainedModel` or a :class:`hsi.data.scenes.Scene`. ``prefix`` is a path without
    suffix (``run/map``; a trailing ``.png``/``.npy``/``.hdr``/``.img`` is dropped); its folder is created.

    ``png``   ``prefix.png``: the class map with a legend of class ids and names, beside ``ground_truth`` if
              given (classes 0..K-1, -1 unlabelled); ``mask_unlabelled`` (True, or ``"both"``: beside the
              whole map) shows the map on labelled pixels only; ``title`` above it.
    ``npy``   ``prefix.npy``: int32 original label ids (``label_ids[label_map]``), 0 where there is no class.
    ``envi``  ``prefix.hdr`` + ``prefix.img``: an ENVI classification image, 0 = "Unclassified" (black),
              k + 1 = class k, with ``class names`` and ``class lookup`` colours in the header.
    ``tif``   ``prefix.tif``: the ENVI values as a GeoTIFF (see :func:`hsi.outputs.write_tif`).

    ``palette`` (K x 3 uint8) replaces ``trained.palette``. Every argument is checked before anything is written.
    """
    formats = parse_formats(formats, [f for f in list_formats() if f != "rgb"])
    names = [str(n) for n in trained.class_names]
    k = len(names)
    label_ids = np.asarray(trained.label_ids).astype(np.int64).ravel()
    if label_ids.size != k:
        raise ConfigError(f"label_ids has {label_ids.size} entries but there are {k} class names; "
                          f"expected one original id per class")
    palette = _check_palette(trained.palette if palette is None else palette)
    if len(palette) != k:
        raise ConfigError(f"palette has {len(palette)} colours but there are {k} class names; "
                          f"expected one colour per class")
    classes = _check_map(label_map, "label_map", k)
    if ground_truth is not None:
        gt = _check_map(ground_truth, "ground_truth", k)
        if gt.shape != classes.shape:
            raise ConfigError(f"ground_truth is {gt.shape[0]}x{gt.shape[1]} but label_map is "
                              f"{classes.shape[0]}x{classes.shape[1]}; expected the same shape")
    elif mask_unlabelled:
        raise ConfigError(f"mask_unlabelled={mask_unlabelled!r} needs ground_truth (the labelled pixels to show)")
    if mask_unlabelled not in (False, True, "both"):
        raise ConfigError(f"mask_unlabelled must be False, True or 'both', got {mask_unlabelled!r}")

    values = (classes + 1).astype(np.uint8 if k + 1 <= 256 else np.uint16)     # -1 (no class) -> 0
    job = MapJob(values, names, label_ids, palette, None, ground_truth, mask_unlabelled, title)
    return write_outputs(job, formats, prefix)
