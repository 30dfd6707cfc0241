"""Classify every pixel of a scene, borders and unlabelled pixels included.

Patch models: ``dense`` runs the network over whole tiles of the scene at once (:mod:`hsi.models.dense`),
exact up to float rounding; ``patch`` runs it window by window from lazy patch views; ``auto`` takes dense
whenever the model supports it. Tiles carry a halo of ``patch_size - 1`` pixels, so a tiled map equals the
untiled one. Scene models run in one pass, or (beyond the memory budget) in tiles aligned to the encoder's
stride with a halo of the receptive-field radius, which gives the untiled logits up to float rounding.
"""
from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from tqdm import tqdm

from .checkpoint import TrainedModel
from .checks import is_whole
from .data.mapped import Cube, MappedCube
from .data.patches import PatchDataset, collate_batch
from .data.scenes import Scene
from .distributed import ALONE, World, resolve_device
from .engine import predict_logits, to_device
from .errors import ConfigError
from .kinds import kind_of
from .models.dense import SpectrumCache, activation_floats_per_pixel, dense_logits, supports_dense
from .models.footprint import layer_output_shapes
from .models.hybridsn import HybridSN
from .models.receptive import receptive_field_radius
from .progress import shows_bar

log = logging.getLogger("hsi")

MODES = ("auto", "dense", "patch")
Trained = TrainedModel | torch.nn.Module | str | Path | dict[str, Any]   # what predict_scene takes as its model
Region = tuple[int, int, int, int]                                       # rows r0:r1, columns c0:c1
LogitTiles = Iterator[tuple[Region, np.ndarray]]


def predict_scene(model_or_checkpoint: Trained, scene: Scene | Cube, *, mode: str = "auto",
                  tile: int | None = None, batch_size: int = 256, return_probs: bool = False,
                  device: str | torch.device | None = None, memory_mb: float = 1024,
                  progress: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray | None]:
    """Label map ``(rows, cols)`` of classes 0..K-1 for every pixel of ``scene``.

    ``model_or_checkpoint`` is a :class:`~hsi.checkpoint.TrainedModel`, a checkpoint path, a run folder, a
    loaded checkpoint dict, or a bare model (then the scene must already be reduced to the model's bands).
    The scene is reduced with the PCA the model was trained with. ``tile`` is the side of the square tiles
    predicted at once (default: chosen so the dense pass stays within ``memory_mb``). With
    ``return_probs`` the class probabilities ``(rows, cols, K)`` are returned too. No-data pixels of a
    memory-mapped cube (``data ignore value``) get class -1 (probabilities 0).
    """
    cube = _cube(scene)
    labels = np.empty(cube.shape[:2], dtype=np.int64)
    probs: np.ndarray | None = None
    for (r0, r1, c0, c1), logits in _logit_tiles(model_or_checkpoint, scene, mode, tile, batch_size, device,
                                                 memory_mb, progress):
        if return_probs and probs is None:
            probs = np.empty(labels.shape + (logits.shape[-1],), dtype=np.float32)
        labels[r0:r1, c0:c1] = logits.argmax(-1)
        if probs is not None:
            probs[r0:r1, c0:c1] = torch.softmax(torch.from_numpy(logits), -1).numpy()
        if isinstance(cube, MappedCube) and cube.ignore_value is not None:
            empty = cube.nodata((slice(r0, r1), slice(c0, c1)))       # no-data pixels: no class
            labels[r0:r1, c0:c1][empty] = -1
            if probs is not None:
                probs[r0:r1, c0:c1][empty] = 0
    return (labels, probs) if return_probs else labels


def scene_logits(model_or_checkpoint: Trained, scene: Scene | Cube, *, mode: str = "auto",
                 tile: int | None = None, batch_size: int = 256, device: str | torch.device | None = None,
                 memory_mb: float = 1024, progress: bool = False) -> np.ndarray | None:
    """Logits ``(rows, cols, K)`` float32 of every pixel; same arguments as :func:`predict_scene`."""
    out = None
    for (r0, r1, c0, c1), logits in _logit_tiles(model_or_checkpoint, scene, mode, tile, batch_size, device,
                                                 memory_mb, progress):
        if out is None:
            out = np.empty(_cube(scene).shape[:2] + (logits.shape[-1],), dtype=np.float32)
        out[r0:r1, c0:c1] = logits
    return out


def as_trained(model_or_checkpoint: Trained) -> TrainedModel:
    """A :class:`TrainedModel` from any of the forms :func:`predict_scene` accepts."""
    if isinstance(model_or_checkpoint, TrainedModel):
        return model_or_checkpoint
    if isinstance(model_or_checkpoint, torch.nn.Module):
        return TrainedModel.from_model(model_or_checkpoint)
    if isinstance(model_or_checkpoint, (str, Path)) and Path(model_or_checkpoint).is_dir():
        return TrainedModel.from_checkpoint(Path(model_or_checkpoint) / "best.pt")
    return TrainedModel.from_checkpoint(model_or_checkpoint)


def _cube(scene: Scene | Cube) -> Cube:
    return scene.cube if isinstance(scene, Scene) else np.asarray(scene)


def _logit_tiles(model_or_checkpoint: Trained, scene: Scene | Cube, mode: str, tile: int | None,
                 batch_size: int, device: str | torch.device | None, memory_mb: float, progress: bool,
                 here: World = ALONE) -> LogitTiles:
    """Yield ``((r0, r1, c0, c1), logits (r1 - r0, c1 - c0, K) float32)`` covering the scene (under torchrun,
    ``here``: the tiles of this process, tile ``i`` on rank ``i mod N``)."""
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    if tile is not None and not is_whole(tile, 1):
        raise ConfigError(f"tile must be a whole number of pixels >= 1, got {tile!r}")
    trained = as_trained(model_or_checkpoint)
    cube = _cube(scene)
    trained.check_cube(cube, getattr(scene, "name", "the cube"))
    model = trained.model
    device = device if isinstance(device, torch.device) else resolve_device(device or "auto")
    was_training = model.training
    model.to(device).eval()
    try:
        yield from TILES_BY_KIND[kind_of(model).name](trained, cube, mode=mode, tile=tile, batch_size=batch_size,
                                                      device=device, memory_mb=memory_mb, progress=progress,
                                                      here=here)
    finally:
        model.train(was_training)


def patch_model_tiles(trained: TrainedModel, cube: Cube, *, mode: str, tile: int | None, batch_size: int,
                      device: torch.device, memory_mb: float, progress: bool, here: World) -> LogitTiles:
    """A patch model's logit tiles: pixel by pixel for a model that reads only its window's centre, dense where
    exact, else window by window in bands of rows."""
    model = trained.model
    if getattr(model, "input_radius", None) == 0:
        yield from _pixel_tiles(trained, cube, tile, batch_size, device, memory_mb, progress, here)
        return
    if mode == "dense" and not supports_dense(model):
        raise ConfigError(f"{trained.name} has no dense form; use mode 'patch' or 'auto'")
    if mode == "auto" and not supports_dense(model):
        log.info("%s has no dense form: predicting window by window (patch mode)", trained.name)
    if mode == "patch" or not supports_dense(model):
        yield from _patch_tiles(trained, cube, tile, batch_size, device, memory_mb, progress, here)
    else:
        yield from _dense_tiles(trained, model, cube, tile, batch_size, device, memory_mb, progress, here)


def scene_model_tiles(trained: TrainedModel, cube: Cube, *, mode: str, tile: int | None, batch_size: int,
                      device: torch.device, memory_mb: float, progress: bool, here: World) -> LogitTiles:
    """A scene model's logit tiles: one pass when the scene fits in ``memory_mb`` (or the model's receptive
    field is global), else tiles of side ``tile`` (a multiple of the stride) with a halo of the receptive-field
    radius rounded up to the stride, so every tile sees the pooling grid and the context the whole pass sees.
    On the CPU the weights take channels-last strides for the passes (the reduced cube already has them):
    oneDNN's NHWC convolutions and pooling map Indian Pines with FCN-8s in 21 ms instead of 27 ms."""
    model = trained.model
    if mode == "patch":
        raise ConfigError(f"{trained.name} is a scene model: it has no patch mode; use auto or dense")
    to = cast(Any, model).to       # Module.to takes memory_format too, which torch's stub leaves out
    if device.type == "cpu":
        to(memory_format=torch.channels_last)
    try:
        yield from _scene_tiles(trained, cube, tile, device, memory_mb, progress, here)
    finally:
        to(memory_format=torch.contiguous_format)


def _scene_tiles(trained: TrainedModel, cube: Cube, tile: int | None, device: torch.device,
                 memory_mb: float, progress: bool, here: World) -> LogitTiles:
    model = trained.model
    rows, cols = cube.shape[:2]
    stride = cast(int, model.stride)    # a plain attribute, which torch's stub types as Tensor | Module
    floats = scene_floats_per_pixel(model)
    fits = _ceil_to(rows, stride) * _ceil_to(cols, stride) * floats * 4 <= memory_mb * 2**20
    radius = None if (tile is None and fits) else receptive_field_radius(model)
    if radius is None:
        if not fits:
            log.warning("%s has a global receptive field: predicting the scene in one pass beyond the %d MB "
                        "budget", trained.name, memory_mb)
        if here.is_main:
            yield (0, rows, 0, cols), _scene_pass(trained, cube, device)
        return
    halo = _ceil_to(radius, stride)
    if tile is None:
        side = math.isqrt(int(memory_mb * 2**20 / (4 * floats))) - 2 * halo
        tile = max(side // stride * stride, stride)
    tile = _ceil_to(tile, stride)
    starts = here.mine([(r, c) for r in range(0, rows, tile) for c in range(0, cols, tile)])
    for r0, c0 in tqdm(starts, desc="tiles", unit="tile", disable=not shows_bar(progress), leave=False):
        r1, c1 = min(r0 + tile, rows), min(c0 + tile, cols)
        w0, v0 = max(r0 - halo, 0), max(c0 - halo, 0)
        logits = _scene_pass(trained, cube[w0:min(r1 + halo, rows), v0:min(c1 + halo, cols)], device)
        yield (r0, r1, c0, c1), logits[r0 - w0:r1 - w0, c0 - v0:c1 - v0]


# how each model kind maps a scene
TILES_BY_KIND: dict[str, Callable[..., LogitTiles]] = {"patch": patch_model_tiles, "scene": scene_model_tiles}


def _ceil_to(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _scene_pass(trained: TrainedModel, cube: Cube, device: torch.device) -> np.ndarray:
    """Logits ``(rows, cols, K)`` float32 of a scene model over ``cube`` in one forward pass."""
    x = torch.from_numpy(trained.reduce(cube)).permute(2, 0, 1)[None].to(device)
    with torch.inference_mode():
        return trained.model(x)[0].permute(1, 2, 0).float().cpu().numpy()


def scene_floats_per_pixel(model: torch.nn.Module) -> float:
    """Floats a scene model's forward pass holds per input pixel (every layer's output, summed); measured once
    per model by a pass over a small input."""
    if model not in _FLOATS_PER_PIXEL:
        side = 2 * cast(int, model.stride)     # plain attributes, which torch's stub types as Tensor | Module
        x = torch.zeros(1, cast(int, model.bands), side, side, device=next(model.parameters()).device)
        _FLOATS_PER_PIXEL[model] = sum(math.prod(s) for s in layer_output_shapes(model, x)) / side**2
    return _FLOATS_PER_PIXEL[model]


_FLOATS_PER_PIXEL: weakref.WeakKeyDictionary[torch.nn.Module, float] = weakref.WeakKeyDictionary()


def _floats_per_row(trained: TrainedModel, cube: Cube, width: int) -> int:
    """Floats one map row of ``width`` pixels holds while its band is mapped: the row as read from the cube, twice
    (the file's values and their float32 conversion, all the cube's bands), and four copies of its reduced
    spectra."""
    reduced = trained.reducer.n_components if trained.reducer else cube.shape[2]
    return width * (2 * cube.shape[2] + 4 * reduced)


def _patch_tiles(trained: TrainedModel, cube: Cube, tile: int | None, batch_size: int, device: torch.device,
                 memory_mb: float, progress: bool, here: World) -> LogitTiles:
    """Window-by-window logits in bands of ``tile`` rows: each band's region (with a margin of half a window) is
    read, reduced and padded on its own; by default the band's height keeps it within about ``memory_mb``
    (:func:`_floats_per_row`)."""
    rows, cols = cube.shape[:2]
    margin = trained.patch_size // 2
    height = tile or max(1, int(memory_mb * 2**20 / (4 * _floats_per_row(trained, cube, cols + 2 * margin)))
                         - 2 * margin)
    for r0 in tqdm(here.mine(range(0, rows, height)), desc="row bands", unit="band",
                   disable=not shows_bar(progress), leave=False):
        r1 = min(r0 + height, rows)
        region = _padded_region(trained, cube, r0 - margin, r1 + margin, -margin, cols + margin)
        pixels = np.indices((r1 - r0, cols)).reshape(2, -1).T
        dataset = PatchDataset(region, pixels, None, trained.patch_size)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_batch)
        logits, _ = predict_logits(trained.model, loader, device)
        yield (r0, r1, 0, cols), logits.numpy().reshape(r1 - r0, cols, -1)


def _pixel_tiles(trained: TrainedModel, cube: Cube, tile: int | None, batch_size: int, device: torch.device,
                 memory_mb: float, progress: bool, here: World) -> LogitTiles:
    """A pixel model's logits in one pass over the pixels, in bands of ``tile`` rows (by default as many as fit in
    about ``memory_mb``, :func:`_floats_per_row`): each pixel's reduced spectrum as a 1 x 1 window, no window cut,
    ``batch_size`` pixels at a time."""
    rows, cols = cube.shape[:2]
    bands = trained.reducer.n_components if trained.reducer else cube.shape[2]
    height = tile or max(1, int(memory_mb * 2**20 / (4 * _floats_per_row(trained, cube, cols))))
    with torch.inference_mode():
        for r0 in tqdm(here.mine(range(0, rows, height)), desc="row bands", unit="band",
                       disable=not shows_bar(progress), leave=False):
            r1 = min(r0 + height, rows)
            spectra = torch.from_numpy(_padded_region(trained, cube, r0, r1, 0, cols)).reshape(-1, 1, bands, 1, 1)
            logits = torch.cat([trained.model(to_device(chunk, device)).float().cpu()
                                for chunk in spectra.split(batch_size)])
            yield (r0, r1, 0, cols), logits.numpy().reshape(r1 - r0, cols, -1)


def _dense_tiles(trained: TrainedModel, model: HybridSN, cube: Cube, tile: int | None, batch_size: int,
                 device: torch.device, memory_mb: float, progress: bool, here: World) -> LogitTiles:
    """``trained``'s logits by the dense pass of its ``model``, tile by tile."""
    rows, cols = cube.shape[:2]
    margin = trained.patch_size // 2
    tile = tile or default_tile(model, memory_mb)
    starts = here.mine([(r, c) for r in range(0, rows, tile) for c in range(0, cols, tile)])
    cache: SpectrumCache = {}
    with torch.inference_mode():
        for r0, c0 in tqdm(starts, desc="tiles", unit="tile", disable=not shows_bar(progress), leave=False):
            r1, c1 = min(r0 + tile, rows), min(c0 + tile, cols)
            window = _padded_region(trained, cube, r0 - margin, r1 + margin, c0 - margin, c1 + margin)
            x = to_device(torch.from_numpy(window).permute(2, 0, 1).contiguous()[None, None], device)
            yield (r0, r1, c0, c1), dense_logits(model, x, batch_size, cache).float().cpu().numpy()


def _padded_region(trained: TrainedModel, cube: Cube, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Rows ``r0:r1`` and columns ``c0:c1`` of the reduced, padded scene (indices in scene coordinates,
    reaching past its edges by at most the margin); only this region is reduced."""
    rows, cols = cube.shape[:2]
    inside = trained.reduce(cube[max(r0, 0):min(r1, rows), max(c0, 0):min(c1, cols)])
    width = ((max(-r0, 0), max(r1 - rows, 0)), (max(-c0, 0), max(c1 - cols, 0)), (0, 0))
    mode: Literal["constant", "reflect"] = "constant" if trained.padding == "zero" else "reflect"
    return np.ascontiguousarray(np.pad(inside, width, mode=mode), dtype=np.float32)


def default_tile(model: HybridSN, memory_mb: float) -> int:
    """Side of the square output tile whose dense pass (halo included) fits in about ``memory_mb``."""
    floats = activation_floats_per_pixel(model)
    side_with_halo = math.isqrt(int(memory_mb * 2**20 / (4 * floats)))
    return max(side_with_halo - (model.patch_size - 1), 16)


def logit_tiles(model_or_checkpoint: Trained, scene: Scene | Cube, *, mode: str = "auto",
                tile: int | None = None, batch_size: int = 256, device: str | torch.device | None = None,
                memory_mb: float = 1024, here: World = ALONE) -> LogitTiles:
    """Yield ``((r0, r1, c0, c1), logits (r1 - r0, c1 - c0, K) float32)`` tile by tile (the streaming seam of
    :mod:`hsi.stream`): each tile (a square in dense mode, a band of rows in patch mode) is read from the cube
    with its halo and reduced on its own, so a memory-mapped cube stays on disk. Under torchrun (``here``)
    only this process's tiles."""
    yield from _logit_tiles(model_or_checkpoint, scene, mode, tile, batch_size, device, memory_mb, False, here)
