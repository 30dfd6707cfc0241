"""Field polygons (GeoPackage, Shapefile, GeoJSON, FlatGeobuf) as ground truth: reprojected to the scene's map grid
(its CRS and transform, or for a swath product the map grid of its GLT) and rasterised there (a cell is inside a
polygon when its centre is), one class per value of an attribute; through the GLT each sensor pixel takes the
classes of the map cells that point to it."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from .grid import map_grid

log = logging.getLogger("hsi")
SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb")
OVERLAP_RULES = ("refuse", "drop", "first")


def is_vector(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


def class_ids(values: np.ndarray, where: str) -> tuple[np.ndarray, dict[int, str]]:
    """Each polygon's label id and ``{id: name}``. Whole-number attributes keep their values as ids (named by
    them, e.g. crop code 21 -> id 21, "21"); any other attribute's values are sorted and numbered 1, 2, ... ."""
    numeric = values.dtype.kind in "iuf" or all(isinstance(v, (int, float, np.number)) for v in values)
    if numeric and np.all(np.asarray(values, dtype=np.float64) == np.round(np.asarray(values, dtype=np.float64))):
        ids = np.asarray(values, dtype=np.float64).astype(np.int64)
        if (ids <= 0).any():
            raise DataError(f"{where}: class values {sorted(set(ids[ids <= 0].tolist()))} are not positive; "
                            f"whole-number classes are kept as label ids, which must be 1 or more (0 = unlabelled)")
        return ids, {int(i): str(i) for i in sorted(set(ids.tolist()))}
    names = sorted(set(values.astype(str).tolist()))
    return np.searchsorted(names, values.astype(str)) + 1, dict(enumerate(names, start=1))


def rasterize_labels(path: str | Path, cube: Any, *, field: str | None, layer: str | None = None,
                     overlap: str = "refuse") -> tuple[np.ndarray, dict[int, str], dict[str, Any], np.ndarray]:
    """``(labels, classes, record, parcels)``: an int64 (rows, cols) map of label ids (0 outside every polygon),
    the class name of each id (see :func:`class_ids`), what ``config.json`` records about the layer, and the
    parcel of each pixel (int64, -1 outside every polygon): the index of its polygon, polygons that share a pixel
    joined into one parcel (the ``disjoint`` split draws whole parcels).

    ``overlap``: pixels inside polygons of different classes are an error (``refuse``), unlabelled (``drop``) or
    take the class of the polygon first in the layer (``first``). Polygons outside the scene, or without a class
    value or geometry, label nothing (a warning says how many)."""
    import pyogrio
    import shapely
    from pyproj import CRS, Transformer
    from rasterio.features import rasterize
    from rasterio.transform import Affine

    path = Path(path)
    if overlap not in OVERLAP_RULES:
        raise ConfigError(f"overlap must be one of {', '.join(OVERLAP_RULES)}, got {overlap!r}")
    shape = tuple(cube.shape[:2])
    grid = map_grid(getattr(cube, "geometry", None), shape, str(getattr(cube, "source", "the cube")))
    if grid is None:
        raise DataError(f"{path}: polygons need a georeferenced cube (a CRS and a transform, e.g. a GeoTIFF, or a "
                        f"swath's geometry lookup table glt_x/glt_y with its geotransform); the cube has none")
    try:
        info = pyogrio.read_info(path, layer=layer)
        _, _, wkb, values = pyogrio.raw.read(path, layer=layer, columns=[field] if field else [])
    except Exception as exc:
        raise DataError(f"{path}: unreadable vector file ({' '.join(str(exc).split())})") from None
    fields = list(info["fields"])
    if field is None or field not in fields:
        raise ConfigError(f"{path}: {'no --label-field given' if field is None else f'no attribute {field!r}'}; "
                          f"the layer's attributes are {fields}")
    if info["crs"] is None:
        raise DataError(f"{path}: the layer has no CRS; expected one (set it in QGIS: Layer CRS)")
    geoms, labels = shapely.from_wkb(wkb), np.asarray(values[0], dtype=object)
    usable = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms) & np.array(
        [v is not None and v == v and str(v).strip() != "" for v in labels], dtype=bool)
    if not usable.all():
        log.warning("%s: %d of %d polygons have no geometry or no %s value and label nothing", path,
                    int((~usable).sum()), len(geoms), field)
    geoms, labels = geoms[usable], labels[usable]
    if not len(geoms):
        raise DataError(f"{path}: no polygon with a geometry and a {field} value; expected at least one")
    ids, classes = class_ids(np.array(labels.tolist()), str(path))
    source, target = CRS.from_user_input(info["crs"]), CRS.from_user_input(grid.crs)
    if source != target:
        transformer = Transformer.from_crs(source, target, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
    inside = shapely.intersects(geoms, shapely.box(*grid.bounds))
    if not inside.all():
        log.warning("%s: %d of %d polygons lie outside the scene and label nothing", path, int((~inside).sum()),
                    len(geoms))
    transform = Affine(*grid.transform)
    classes_per_pixel = np.zeros(shape, dtype=np.int32)
    for k in np.unique(ids):
        mask = rasterize(((g, 1) for g in geoms[ids == k]), out_shape=grid.shape, transform=transform, fill=0,
                         dtype="uint8")
        classes_per_pixel += grid.any_to_sensor(mask, shape)
    # the first polygon over a cell is burnt last; through a GLT a sensor pixel keeps the first of its cells'
    order = rasterize(((g, i) for i, g in reversed(list(enumerate(geoms, start=1)))), out_shape=grid.shape,
                      transform=transform, fill=0, dtype="int32")
    first = grid.min_to_sensor(order, shape)
    last = grid.min_to_sensor(np.where(order > 0, len(geoms) + 1 - rasterize(
        ((g, i) for i, g in enumerate(geoms, start=1)), out_shape=grid.shape, transform=transform, fill=0,
        dtype="int32"), 0), shape)
    parcels = _joined_parcels(first, np.where(last > 0, len(geoms) + 1 - last, 0), len(geoms))
    result = np.where(first > 0, ids[np.maximum(first, 1) - 1], 0).astype(np.int64)
    clash = classes_per_pixel > 1
    if clash.any():
        if overlap == "refuse":
            raise DataError(f"{path}: {int(clash.sum())} pixels lie inside polygons of different classes; choose "
                            f"a rule with --overlap drop (unlabel them) or --overlap first (first polygon wins)")
        if overlap == "drop":
            result[clash] = 0
    record = {"path": str(path.resolve()), "layer": layer or info.get("layer_name"), "field": field,
              "crs": source.to_string(), "classes": list(classes.values()), "label_ids": list(classes),
              "overlap": overlap, "grid": "glt" if grid.glt is not None else "cube"}
    return result, classes, record, np.where(result > 0, parcels, -1)


def _joined_parcels(first: np.ndarray, last: np.ndarray, count: int) -> np.ndarray:
    """Per pixel the parcel (0, 1, ...; -1 in no polygon) from the first and last of the 1-based polygons over it
    (0 = none): polygons meeting on a pixel are one parcel (connected components of that relation)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pair = first > 0
    links = coo_matrix((np.ones(int(pair.sum())), (first[pair] - 1, last[pair] - 1)), shape=(count, count))
    _, component = connected_components(links, directed=False)
    return np.where(pair, component[np.maximum(first, 1) - 1], -1).astype(np.int64)
