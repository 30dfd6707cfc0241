"""Map a scene of any size tile by tile into memory-mapped output files.

Each tile is read from the cube with its halo (a :class:`~hsi.data.mapped.MappedCube` stays on disk), reduced,
classified and written into the outputs at once; pages read and written are dropped from the process after
each tile, so memory is bounded by the tile budget (``memory_mb``), not by the scene. Outputs go to a hidden
folder beside ``prefix`` and are renamed into place only when the whole map is done.

``envi``  ``prefix.hdr/.img``: ENVI classification (0 = Unclassified, k + 1 = class k).
``npy``   ``prefix.npy``: int32 original label ids, 0 where there is no class.
``png``   ``prefix.png``: the map with a legend (beside the scene's ground truth if it has one).
``tif``   ``prefix.tif``: GeoTIFF of the ENVI values with the input's transform and CRS, a colour table and
          the class names as tags (needs rasterio: ``pip install hsi[geo]``).
``probs`` ``prefix_probs.hdr/.img``: float32 class probabilities, band K + 1 the confidence (max probability).

Every ENVI output header carries the input header's ``map info``, ``coordinate system string``,
``pixel size`` (unchanged) and its band centres as ``source wavelength``.

Under ``torchrun`` the tiles are shared between the processes (tile ``i`` on rank ``i mod N``): rank 0 creates
the output files, every process writes its tiles into them, and rank 0 writes the headers, images and GeoTIFF
and renames them into place once all are done. The map equals the single-process one.
"""
import os
import secrets
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .data.envi import carried_entries, classification_header, envi_class_names, format_header
from .data.mapped import MappedCube, release_pages
from .errors import ConfigError
from .export import parse_formats

STREAM_FORMATS = ("png", "npy", "envi", "tif")


def stream_map(trained, scene, prefix, *, formats=("envi", "npy", "png"), probs=False, mode="auto", tile=None,
               device=None, memory_mb=1024, batch_size=256, ground_truth=None, palette=None, progress=False):
    """Predict every pixel of ``scene`` tile by tile and write the map in ``formats``; return
    ``{format: path}`` (``probs`` under the key ``"probs"``). No-data pixels of a mapped cube get no class
    (0 in every file, probabilities 0). ``ground_truth`` (classes, -1 unlabelled) is drawn beside the PNG, with
    the map on labelled pixels only; ``palette`` (K x 3) replaces the model's colours in the PNG."""
    from .distributed import world
    from .inference import as_trained, logit_tiles

    formats = _check_formats(formats, probs)
    here = world(device or "auto")
    trained = as_trained(trained)
    cube = scene.cube if hasattr(scene, "cube") else scene
    rows, cols = cube.shape[:2]
    k = len(trained.class_names)
    prefix = Path(prefix)
    if prefix.suffix.lower() in {".png", ".npy", ".hdr", ".img", ".tif"}:
        prefix = prefix.with_suffix("")
    header = getattr(scene, "header", None) or {}
    tmpdir = Path(here.share(str(prefix.parent / f".{prefix.name}.tmp-{secrets.token_hex(4)}")))
    values_dtype = np.uint8 if k + 1 <= 256 else np.uint16
    if here.is_main:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        tmpdir.mkdir()
    try:
        outputs = _open_outputs(tmpdir, (rows, cols), k, values_dtype, formats, probs, "w+") if here.is_main \
            else None
        here.barrier()                          # rank 0 has created the output files
        values, ids, prob_cube = outputs or _open_outputs(tmpdir, (rows, cols), k, values_dtype, formats, probs, "r+")
        label_ids = np.concatenate([[0], np.asarray(trained.label_ids, dtype=np.int64)])
        with tqdm(total=rows * cols, desc="map", unit="px", unit_scale=True,
                  disable=not (progress and here.is_main)) as bar:
            for (r0, r1, c0, c1), logits in logit_tiles(trained, scene, mode=mode, tile=tile,
                                                        batch_size=batch_size, device=device,
                                                        memory_mb=memory_mb, here=here):
                tile_values = logits.argmax(-1).astype(values_dtype) + 1
                empty = cube.nodata((slice(r0, r1), slice(c0, c1))) if isinstance(cube, MappedCube) else None
                if empty is not None:
                    tile_values[empty] = 0
                values[r0:r1, c0:c1] = tile_values
                if ids is not None:
                    ids[r0:r1, c0:c1] = label_ids[tile_values]
                if prob_cube is not None:
                    p = torch.softmax(torch.from_numpy(logits), -1).numpy()
                    if empty is not None:
                        p[empty] = 0
                    prob_cube[r0:r1, c0:c1, :k] = p
                    prob_cube[r0:r1, c0:c1, k] = p.max(-1)
                for array in (values, ids, prob_cube, cube if isinstance(cube, MappedCube) else None):
                    if array is not None:
                        release_pages(array.raw if isinstance(array, MappedCube) else array)
                bar.update((r1 - r0) * (c1 - c0) * here.size)
        for array in (values, ids, prob_cube):
            if array is not None:
                array.flush()
        here.barrier()                          # every tile is on disk
        written = _finish(tmpdir, prefix, formats, probs, values, trained, header, ground_truth, palette, scene) \
            if here.is_main else None
    finally:
        if here.is_main:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return here.share(written)


def _open_outputs(tmpdir, shape, k, values_dtype, formats, probs, mode):
    """The memory-mapped class values, label ids (``npy``) and probabilities (``probs``), created (``w+``) or
    opened (``r+``)."""
    values = np.memmap(tmpdir / "map.img", dtype=values_dtype, mode=mode, shape=shape)
    ids = (np.lib.format.open_memmap(tmpdir / "map.npy", mode=mode, dtype=np.int32, shape=shape)
           if "npy" in formats else None)
    prob_cube = np.memmap(tmpdir / "probs.img", dtype=np.float32, mode=mode, shape=(*shape, k + 1)) if probs \
        else None
    return values, ids, prob_cube


def _check_formats(formats, probs):
    formats = parse_formats(formats, STREAM_FORMATS, required=not probs)
    if "tif" in formats:
        try:
            import rasterio  # noqa: F401
        except ImportError:
            raise ConfigError("the tif format needs rasterio: install the geo extra (pip install hsi[geo])") \
                from None
    return formats


def _finish(tmpdir, prefix, formats, probs, values, trained, header, ground_truth, palette, scene):
    """Headers, GeoTIFF and PNG from the finished map, then every file renamed into place (headers last)."""
    names = envi_class_names(trained.class_names)
    carried = carried_entries(header)
    moves = []
    if "envi" in formats:
        (tmpdir / "map.hdr").write_text(classification_header(values.shape, values.dtype, trained.class_names,
                                                              trained.palette, carried))
        moves += [("map.img", ".img"), ("map.hdr", ".hdr")]
    if probs:
        rows, cols, bands = values.shape + (len(names) + 1,)
        (tmpdir / "probs.hdr").write_text(format_header({
            "description": "hsi class probabilities; last band: confidence (max probability)",
            "samples": cols, "lines": rows, "bands": bands, "header offset": 0, "file type": "ENVI Standard",
            "data type": 4, "interleave": "bip", "byte order": 0,
            "band names": [*names, "confidence"], **carried}))
        moves += [("probs.img", "_probs.img"), ("probs.hdr", "_probs.hdr")]
    if "npy" in formats:
        moves.append(("map.npy", ".npy"))
    if "tif" in formats:
        _write_geotiff(tmpdir / "map.tif", scene, trained, values)
        moves.append(("map.tif", ".tif"))
    if "png" in formats:
        from .export import export_map

        classes = np.asarray(values).astype(np.int64) - 1
        export_map(classes, trained, tmpdir / "map", formats=["png"], ground_truth=ground_truth,
                   mask_unlabelled="both" if ground_truth is not None else False, palette=palette)
        moves.append(("map.png", ".png"))
    written = {}
    for name, suffix in moves:
        target = prefix.with_name(prefix.name + suffix)
        os.replace(tmpdir / name, target)
        key = {".img": None, "_probs.img": None, "_probs.hdr": "probs", ".hdr": "envi"}.get(suffix, suffix[1:])
        if key:
            written[key] = target
    return written


def _write_geotiff(path, scene, trained, values, rows_per_block=512):
    """The class values as a GeoTIFF with the input image's transform and CRS (as GDAL reads its header),
    written a block of rows at a time from the memory-mapped map."""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    rows, cols = values.shape
    dtype = values.dtype
    transform, crs = Affine.identity(), None
    source = _georeferenced_image(scene)
    if source is not None:
        with rasterio.open(source) as src:
            transform, crs = src.transform, src.crs
    names = ["Unclassified", *map(str, trained.class_names)]
    tif = rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=1, dtype=np.dtype(dtype).name,
                        transform=transform, crs=crs, nodata=0, compress="deflate", tiled=True)
    colors = np.vstack([np.zeros((1, 3), np.uint8), np.asarray(trained.palette, dtype=np.uint8)])
    if np.dtype(dtype) == np.uint8:
        tif.write_colormap(1, {i: (*map(int, c), 255) for i, c in enumerate(colors)})
    tif.update_tags(1, class_names=",".join(names), **{f"class_{i}": name for i, name in enumerate(names)})
    tif.update_tags(label_ids=",".join(str(int(i)) for i in [0, *trained.label_ids]))
    with tif:
        for r0 in range(0, rows, rows_per_block):
            block = np.asarray(values[r0:r0 + rows_per_block])
            tif.write(block, 1, window=Window(0, r0, cols, len(block)))
            release_pages(values)


def _georeferenced_image(scene):
    """The ENVI image file of a scene whose header has ``map info`` (GDAL reads it beside its header)."""
    header = getattr(scene, "header", None) or {}
    if "map info" not in header and "coordinate system string" not in header:
        return None
    from .data.envi import image_file

    return image_file(Path(scene.source))
