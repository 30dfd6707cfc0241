"""A (rows, cols, bands) array over a product file read by windows: indexing reads only the addressed block."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

#: (r0, r1, c0, c1) -> the raw (r1 - r0, c1 - c0, bands) window, or a list of such arrays (views welcome) side by
#: side along the bands, as a product stores its cubes
WindowReader = Callable[[int, int, int, int], np.ndarray | list[np.ndarray]]
Axis = int | np.integer | slice | np.ndarray                  # one axis of an index: integer, slice or integer array


class WindowedArray:
    """``read(r0, r1, c0, c1)`` behind numpy-style indexing (slices, integers, integer arrays), as float32 with
    ``value * scale + offset`` per band and ``nodata`` values (in the file's units) as NaN. A
    :class:`~hsi.data.mapped.MappedCube` over it (with ``ignore_value=nan``) is the scene's lazy cube.
    ``file_dtype`` is the type the file stores (what ``hsi inspect`` reports)."""

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, shape: tuple[int, int, int], read: WindowReader, *, scale: np.ndarray | float = 1.0,
                 offset: np.ndarray | float = 0.0, nodata: float | None = None, rows_per_read: int = 256,
                 file_dtype: npt.DTypeLike | None = None) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.read = read
        self.scale = np.broadcast_to(np.asarray(scale, dtype=np.float32), self.shape[2:])
        self.offset = np.broadcast_to(np.asarray(offset, dtype=np.float32), self.shape[2:])
        self.nodata = nodata
        self.rows_per_read = rows_per_read
        self.file_dtype = np.dtype(file_dtype) if file_dtype is not None else self.dtype

    @property
    def may_hold_nan(self) -> bool:
        """Whether a read may hold NaN: a float file, or no-data values (read as NaN)."""
        return self.file_dtype.kind == "f" or self.nodata is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def _window(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        parts = self.read(r0, r1, c0, c1)
        parts = [np.asarray(raw) for raw in (parts if isinstance(parts, list) else [parts])]
        if parts[0].strides[2] > parts[0].strides[1]:     # the file's lines are band-interleaved (BIL): keep that
            block = np.empty((r1 - r0, self.shape[2], c1 - c0), dtype=np.float32).transpose(0, 2, 1)
        else:
            block = np.empty((r1 - r0, c1 - c0, self.shape[2]), dtype=np.float32)
        b0 = 0
        for raw in parts:
            b1 = b0 + raw.shape[2]
            out, scale, offset = block[..., b0:b1], self.scale[..., b0:b1], self.offset[..., b0:b1]
            if (scale == 1).all():
                out[...] = raw                  # one pass: read, convert (and transpose a view) at once
            else:
                np.multiply(raw, scale, out=out, casting="unsafe")
            if (offset != 0).any():
                out += offset
            if self.nodata is not None:
                out[raw == self.nodata] = np.nan
            b0 = b1
        return block

    def __getitem__(self, key: Axis | tuple[Axis, ...]) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        pixels, bands = key[:2] + (slice(None),) * (2 - len(key[:2])), key[2:]
        rows, cols = pixels
        if isinstance(rows, np.ndarray) or isinstance(cols, np.ndarray):
            out = self._points(tuple(np.broadcast_arrays(np.asarray(rows), np.asarray(cols))))
        else:
            (r0, r1), (c0, c1) = _bounds(rows, self.shape[0]), _bounds(cols, self.shape[1])
            block = self._window(r0, max(r1, r0), c0, max(c1, c0))
            out = block[tuple(_relative(k, start) for k, start in ((rows, r0), (cols, c0)))]
        return out[(Ellipsis,) + bands] if bands else out

    def _points(self, rowcol: tuple[np.ndarray, ...]) -> np.ndarray:
        rows, cols = (np.where(a < 0, a + n, a).ravel() for a, n in zip(rowcol, self.shape[:2], strict=True))
        out = np.empty((rows.size, self.shape[2]), dtype=np.float32)
        for start in range(0, self.shape[0], self.rows_per_read):
            hit = np.flatnonzero((rows >= start) & (rows < start + self.rows_per_read))
            if hit.size:
                c0, c1 = int(cols[hit].min()), int(cols[hit].max()) + 1
                block = self._window(int(rows[hit].min()), int(rows[hit].max()) + 1, c0, c1)
                out[hit] = block[rows[hit] - rows[hit].min(), cols[hit] - c0]
        return out.reshape(rowcol[0].shape + (self.shape[2],))

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)


def _bounds(key: int | np.integer | slice, n: int) -> tuple[int, int]:
    if isinstance(key, slice):
        start, stop, step = key.indices(n)
        if step != 1:
            return (0, n)
        return start, stop
    index = int(key) + n if int(key) < 0 else int(key)
    if not 0 <= index < n:
        raise IndexError(f"index {key} is out of bounds for an axis of size {n}")
    return index, index + 1


def _relative(key: int | np.integer | slice, start: int) -> slice | int:
    if isinstance(key, slice):
        if key.step not in (None, 1):
            return key
        return slice(0, None)
    return 0
