"""Field polygons (GeoPackage, Shapefile, GeoJSON) as ground truth: reprojected to the cube's CRS and rasterised
onto its grid (a pixel is inside a polygon when its centre is), one class per value of an attribute."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError

log = logging.getLogger("hsi")
SUFFIXES = (".gpkg", ".shp", ".geojson", ".json", ".fgb")
OVERLAP_RULES = ("refuse", "drop", "first")


def is_vector(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


def rasterize_labels(path: str | Path, cube: Any, *, field: str | None, layer: str | None = None,
                     overlap: str = "refuse") -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """``(ids, names, record)``: an int64 (rows, cols) map with 0 outside every polygon and k + 1 inside the
    polygons whose ``field`` is ``names[k]`` (names sorted), and what ``config.json`` records about the layer.

    ``overlap``: pixels inside polygons of different classes are an error (``refuse``), unlabelled (``drop``) or
    take the class of the polygon first in the layer (``first``)."""
    import pyogrio
    import shapely
    from pyproj import CRS, Transformer
    from rasterio.features import rasterize
    from rasterio.transform import Affine

    path = Path(path)
    if overlap not in OVERLAP_RULES:
        raise ConfigError(f"overlap must be one of {', '.join(OVERLAP_RULES)}, got {overlap!r}")
    geometry = getattr(cube, "geometry", None) or {}
    if not geometry.get("crs") or not geometry.get("transform"):
        raise DataError(f"{path}: polygons need a georeferenced cube (a CRS and a transform, e.g. a GeoTIFF); "
                        f"the cube has none")
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
    geoms = shapely.from_wkb(wkb)
    source, target = CRS.from_user_input(info["crs"]), CRS.from_user_input(geometry["crs"])
    if source != target:
        transformer = Transformer.from_crs(source, target, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
    labels = np.asarray(values[0]).astype(str)
    names = sorted(set(labels.tolist()))
    ids = np.searchsorted(names, labels) + 1
    rows, cols = cube.shape[:2]
    transform = Affine(*geometry["transform"])
    a, b, c, d, e, f = geometry["transform"]
    (x0, y0), (x1, y1) = (c, f), (a * cols + b * rows + c, d * cols + e * rows + f)
    inside = shapely.intersects(geoms, shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    if not inside.all():
        log.warning("%s: %d of %d polygons lie outside the scene and label nothing", path, int((~inside).sum()),
                    len(geoms))
    shape = (rows, cols)
    per_class = np.zeros(shape, dtype=np.int64)
    for k in range(1, len(names) + 1):
        mask = rasterize(((g, 1) for g in geoms[ids == k]), out_shape=shape, transform=transform, fill=0,
                         dtype="uint8")
        per_class += mask
    first = rasterize(((g, int(i)) for g, i in zip(geoms[::-1], ids[::-1], strict=True)), out_shape=shape,
                      transform=transform, fill=0, dtype="int32").astype(np.int64)
    clash = per_class > 1
    if clash.any():
        if overlap == "refuse":
            raise DataError(f"{path}: {int(clash.sum())} pixels lie inside polygons of different classes; choose "
                            f"a rule with --overlap drop (unlabel them) or --overlap first (first polygon wins)")
        if overlap == "drop":
            first[clash] = 0
    record = {"path": str(path.resolve()), "layer": layer or info.get("layer_name"), "field": field,
              "crs": source.to_string(), "classes": names, "overlap": overlap}
    return first, names, record
