"""Map a scene of any size tile by tile into memory-mapped output files.

Each tile is read from the cube with its halo (a :class:`~hsi.data.mapped.MappedCube` stays on disk), reduced,
classified and written into the outputs at once; pages read and written are dropped from the process after
each tile, so memory is bounded by the tile budget (``memory_mb``), not by the scene. Outputs go to a hidden
folder beside ``prefix`` and are renamed into place only when the whole map is done; one process at a time
writes a prefix (:mod:`hsi.claim`), and removes the hidden folders a killed one left.

The formats are those of :mod:`hsi.outputs` (``envi``, ``npy``, ``png``, ``tif``, ``rgb`` and any registered
one), written from the finished map; ``probs`` adds ``prefix_probs.hdr/.img``: float32 class probabilities, band
K + 1 the confidence (max probability), filled tile by tile, whatever the formats (``tif`` and ``cog`` add a
probability GeoTIFF, ``prefix_probs.tif``, one band per class).

Every ENVI output header carries the input header's ``map info``, ``coordinate system string``,
``pixel size`` (unchanged) and its band centres as ``source wavelength``.

Under ``torchrun`` the tiles are shared between the processes (tile ``i`` on rank ``i mod N``): rank 0 creates
the output files, every process writes its tiles into them, and rank 0 writes the headers, images and GeoTIFF
and renames them into place once all are done. The map equals the single-process one.
"""
from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from .claim import claim, remove_leftovers
from .data.envi import carried_entries, envi_class_names, format_header
from .data.mapped import Cube, MappedCube, release_pages
from .data.scenes import Scene
from .distributed import World, world
from .errors import ConfigError
from .inference import Trained, as_trained, logit_tiles
from .outputs import GEOMETRIES, MapJob, output_prefix, parse_formats, write_outputs
from .progress import shows_bar
from .viz import RgbSpec, choose_rgb_bands


def stream_map(trained: Trained, scene: Scene | Cube, prefix: str | Path, *,
               formats: str | Iterable[str] = ("envi", "npy", "png"), probs: bool = False, mode: str = "auto",
               tile: int | None = None, device: str | torch.device | None = None, memory_mb: float = 1024,
               batch_size: int = 256, ground_truth: np.ndarray | None = None, palette: np.ndarray | None = None,
               title: str | None = None, progress: bool = False, here: World | None = None,
               trained_pixels: np.ndarray | None = None, rgb_bands: RgbSpec = None,
               geometry: str = "ortho") -> dict[str, Path]:
    """Predict every pixel of ``scene`` tile by tile and write the map in ``formats``; return
    ``{format: path}`` (``probs`` under the key ``"probs"``). No-data pixels of a mapped cube get no class
    (0 in every file, probabilities 0). ``ground_truth`` (classes, -1 unlabelled) is drawn beside the PNG, with
    the map on labelled pixels only; ``palette`` (K x 3) replaces the model's colours in the PNG; ``title`` is
    the PNG's; ``trained_pixels`` (bool) the training pixels it fades; ``rgb_bands`` the bands of the ``rgb``
    format (:func:`hsi.viz.parse_rgb_bands`; checked against the scene before any tile is predicted); ``geometry``
    a swath's map geometry (:data:`hsi.outputs.GEOMETRIES`). ``here``: the processes sharing the tiles
    (default: those of this ``torchrun`` job)."""
    formats = parse_formats(formats, required=not probs)
    if geometry not in GEOMETRIES:
        raise ConfigError(f"geometry must be one of {', '.join(GEOMETRIES)}, got {geometry!r}")
    cube = scene.cube if hasattr(scene, "cube") else scene
    if "rgb" in formats:
        choose_rgb_bands(rgb_bands, cube.shape[2], getattr(scene, "wavelengths", None))
    here = here or world(device or "auto")
    trained = as_trained(trained)
    rows, cols = cube.shape[:2]
    k = len(trained.class_names)
    prefix = output_prefix(prefix)
    tmpdir = Path(here.share(str(prefix.parent / f".{prefix.name}.tmp-{secrets.token_hex(4)}")))
    values_dtype = np.uint8 if k + 1 <= 256 else np.uint16
    held = ExitStack()
    if here.is_main:            # one writer per prefix; what a killed one left goes first
        held.enter_context(claim(prefix, folder=False))
        remove_leftovers(prefix.parent, f".{prefix.name}.tmp-*")
        tmpdir.mkdir()
    try:
        outputs = _open_outputs(tmpdir, (rows, cols), k, values_dtype, probs, "w+") if here.is_main else None
        here.barrier()                          # rank 0 has created the output files
        values, prob_cube = outputs or _open_outputs(tmpdir, (rows, cols), k, values_dtype, probs, "r+")
        with tqdm(total=rows * cols, desc="map", unit="px", unit_scale=True,
                  disable=not (shows_bar(progress) and here.is_main)) as bar:
            for (r0, r1, c0, c1), logits in logit_tiles(trained, scene, mode=mode, tile=tile,
                                                        batch_size=batch_size, device=device,
                                                        memory_mb=memory_mb, here=here):
                tile_values = logits.argmax(-1).astype(values_dtype) + 1
                empty = cube.nodata((slice(r0, r1), slice(c0, c1))) if isinstance(cube, MappedCube) else None
                if empty is not None:
                    tile_values[empty] = 0
                values[r0:r1, c0:c1] = tile_values
                if prob_cube is not None:
                    p = torch.softmax(torch.from_numpy(logits), -1).numpy()
                    if empty is not None:
                        p[empty] = 0
                    prob_cube[r0:r1, c0:c1, :k] = p
                    prob_cube[r0:r1, c0:c1, k] = p.max(-1)
                for array in (values, prob_cube, cube if isinstance(cube, MappedCube) else None):
                    if array is not None:
                        release_pages(array.raw if isinstance(array, MappedCube) else array)
                bar.update((r1 - r0) * (c1 - c0) * here.size)
        for array in (values, prob_cube):
            if array is not None:
                array.flush()
        here.barrier()                          # every tile is on disk
        written: dict[str, Path] = {}            # rank 0's, shared with every process
        if here.is_main:
            job = MapJob(values, list(trained.class_names), np.asarray(trained.label_ids),
                         np.asarray(trained.palette if palette is None else palette), scene, ground_truth,
                         "both" if ground_truth is not None else False, title, trained_pixels, rgb_bands,
                         geometry, None if prob_cube is None else prob_cube[:, :, :k])
            staged = _probs_header(tmpdir, job) if probs else {}
            written = write_outputs(job, formats, prefix, staged=staged, tmpdir=tmpdir)
    finally:
        if here.is_main:
            shutil.rmtree(tmpdir, ignore_errors=True)
        held.close()
    return here.share(written)


def _open_outputs(tmpdir: Path, shape: tuple[int, int], k: int, values_dtype: type[np.unsignedinteger[Any]],
                  probs: bool, mode: Literal["w+", "r+"]) -> tuple[np.memmap[Any, Any], np.memmap[Any, Any] | None]:
    """The memory-mapped class values and probabilities (``probs``), created (``w+``) or opened (``r+``)."""
    values = np.memmap(tmpdir / "map.img", dtype=values_dtype, mode=mode, shape=shape)
    prob_cube = np.memmap(tmpdir / "probs.img", dtype=np.float32, mode=mode, shape=(*shape, k + 1)) if probs \
        else None
    return values, prob_cube


def _probs_header(tmpdir: Path, job: MapJob) -> dict[str, tuple[Path, str]]:
    """The header of the streamed probability cube; returns the staged files for :func:`write_outputs`."""
    names = envi_class_names(job.id_names)
    rows, cols = job.values.shape
    (tmpdir / "probs.hdr").write_text(format_header({
        "description": "hsi class probabilities; last band: confidence (max probability)",
        "samples": cols, "lines": rows, "bands": len(names) + 1, "header offset": 0, "file type": "ENVI Standard",
        "data type": 4, "interleave": "bip", "byte order": 0,
        "band names": [*names, "confidence"], **carried_entries(job.header)}))
    return {"_probs image": (tmpdir / "probs.img", "_probs.img"), "probs": (tmpdir / "probs.hdr", "_probs.hdr")}
