"""The map grid of a scene: the cube's own grid (a GeoTIFF's CRS and transform) or, for a swath product in sensor
geometry (EMIT), the map grid of its geometry lookup table (GLT), which names for each map cell the sensor pixel
that lies there. Ground-truth polygons are rasterised on this grid and carried back to the sensor pixels; class
maps are placed on it for GIS (see :mod:`hsi.outputs`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError

#: the CRS of a GLT that names none: EMIT's lookup tables are on a WGS 84 latitude/longitude grid
GLT_DEFAULT_CRS = "EPSG:4326"


@dataclass
class MapGrid:
    """``shape`` (rows, cols) cells, ``transform`` (affine ``a, b, c, d, e, f``: x = a col + b row + c) in ``crs``.
    ``glt`` is None when the grid is the cube's own, else ``(rows, cols)`` of the sensor pixel in each map cell
    (int arrays of the grid's shape, -1 where no pixel lies)."""

    shape: tuple[int, int]
    transform: tuple[float, ...]
    crs: str
    glt: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the grid's corners."""
        a, b, c, d, e, f = self.transform
        rows, cols = self.shape
        corners = [(a * x + b * y + c, d * x + e * y + f) for x in (0, cols) for y in (0, rows)]
        xs, ys = zip(*corners, strict=True)
        return min(xs), min(ys), max(xs), max(ys)

    def to_map(self, values: np.ndarray, fill: int = 0, rows_per_block: int = 1024) -> np.ndarray:
        """A (rows, cols) sensor-geometry array placed on the grid: each cell takes its GLT pixel's value (``fill``
        where none lies); ``values`` itself when the grid is the cube's own. Read a block of map rows at a time."""
        if self.glt is None:
            return values
        out = np.empty(self.shape, dtype=values.dtype)
        for r0 in range(0, self.shape[0], rows_per_block):
            out[r0:r0 + rows_per_block] = self.rows_to_map(values, r0, r0 + rows_per_block, fill)
        return out

    def rows_to_map(self, values: np.ndarray, r0: int, r1: int, fill: float = 0) -> np.ndarray:
        """Map rows ``r0:r1`` of a (rows, cols, ...) sensor-geometry array placed on the grid (any trailing axes,
        such as class probabilities, come along); rows ``r0:r1`` of ``values`` when the grid is the cube's own."""
        if self.glt is None:
            return np.asarray(values[r0:r1])
        rows, cols = self.glt[0][r0:r1], self.glt[1][r0:r1]
        out = np.full(rows.shape + tuple(values.shape[2:]), fill, dtype=values.dtype)
        hit = rows >= 0
        if hit.any():
            out[hit] = np.asarray(values)[rows[hit], cols[hit]]
        return out

    def any_to_sensor(self, mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Sensor pixels (``shape``) that at least one True map cell of ``mask`` points to."""
        if self.glt is None:
            return mask.astype(bool)
        rows, cols = self.glt
        hit = mask.astype(bool) & (rows >= 0)
        out = np.zeros(shape, dtype=bool)
        out[rows[hit], cols[hit]] = True
        return out

    def min_to_sensor(self, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """Per sensor pixel, the least positive value among the map cells pointing to it (0 where none)."""
        if self.glt is None:
            return values
        rows, cols = self.glt
        hit = (values > 0) & (rows >= 0)
        top = np.iinfo(np.int64).max
        out = np.full(shape, top, dtype=np.int64)
        np.minimum.at(out, (rows[hit], cols[hit]), values[hit].astype(np.int64))
        out[out == top] = 0
        return out


def map_grid(geometry: dict[str, Any] | None, shape: tuple[int, int], where: str = "the cube") -> MapGrid | None:
    """The map grid of a cube of ``shape`` (rows, cols) with reader ``geometry``: its own CRS and transform, else
    its GLT (``glt_x``/``glt_y``, 1-based, 0 = no pixel; ``glt_transform`` in GDAL order), else None (no map
    placement known: lat/lon arrays alone, or nothing)."""
    geometry = geometry or {}
    if geometry.get("crs") and geometry.get("transform"):
        return MapGrid((int(shape[0]), int(shape[1])), tuple(float(v) for v in geometry["transform"]),
                       str(geometry["crs"]))
    if "glt_x" in geometry and "glt_y" in geometry and geometry.get("glt_transform"):
        glt_x, glt_y = (np.asarray(geometry[k]).astype(np.int64) for k in ("glt_x", "glt_y"))
        if glt_x.shape != glt_y.shape or glt_x.ndim != 2:
            raise DataError(f"{where}: glt_x {glt_x.shape} and glt_y {glt_y.shape} differ; expected two arrays "
                            f"of the map grid's (rows, cols)")
        valid = (glt_x != 0) & (glt_y != 0)
        rows, cols = np.where(valid, np.abs(glt_y) - 1, -1), np.where(valid, np.abs(glt_x) - 1, -1)
        if (rows >= shape[0]).any() or (cols >= shape[1]).any():
            raise DataError(f"{where}: the GLT points beyond the {shape[0]} x {shape[1]} sensor pixels "
                            f"(largest glt_y {int(rows.max()) + 1}, glt_x {int(cols.max()) + 1})")
        x0, dx, rx, y0, ry, dy = (float(v) for v in geometry["glt_transform"])
        return MapGrid((glt_x.shape[0], glt_x.shape[1]), (dx, rx, x0, ry, dy, y0),
                       str(geometry.get("crs") or GLT_DEFAULT_CRS), (rows, cols))
    return None
