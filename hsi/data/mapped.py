"""A cube left on disk: indexing reads only the addressed pixels, as float32, with bad bands dropped."""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import DataError
from .windowed import WindowedArray

Key = Any     # a numpy index: slices, integers, integer or boolean arrays, or a tuple of them


class MappedCube:
    """A (rows, cols, bands) cube over a memory-mapped array, read lazily.

    ``raw`` is the file's array viewed as (rows, cols, raw bands) in its own dtype and byte order; ``keep``
    lists the raw bands kept (``bbl``), None for all; ``ignore_value`` marks no-data pixels (equal to it in
    every kept band). ``cube[rows, cols]`` (slices, integer arrays or a 2-D boolean mask) returns float32;
    non-finite values outside no-data pixels raise :class:`DataError`, inside them they read as 0.
    """

    ndim = 3
    dtype = np.dtype(np.float32)
    fwhm: np.ndarray | None
    geometry: dict
    header: dict[str, str]     # the ENVI header entries, set by the ENVI reader only

    def __init__(self, raw: np.ndarray | WindowedArray, *, keep: npt.ArrayLike | None = None,
                 ignore_value: float | None = None, source: str = "") -> None:
        self.raw = raw
        self.keep = None if keep is None else np.asarray(keep, dtype=np.intp)
        self.ignore_value = None if ignore_value is None else float(ignore_value)
        self.source = source
        self.fwhm = None       # band widths (nm) of the kept bands, when the product gives them
        self.geometry = {}     # crs + transform, or lat/lon/glt_x/glt_y (see hsi.data.geo)

    @property
    def shape(self) -> tuple[int, ...]:
        bands = self.raw.shape[2] if self.keep is None else len(self.keep)
        return self.raw.shape[:2] + (bands,)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * 4

    @property
    def dropped_bands(self) -> list[int]:
        """Indices (0-based, in the file) of the bands dropped as bad."""
        if self.keep is None:
            return []
        return sorted(set(range(self.raw.shape[2])) - set(self.keep.tolist()))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Key) -> np.ndarray:
        pixels, bands = self._split(key)
        block = self._read(pixels, slice(None) if bands is None else bands)
        if self.raw.dtype.kind == "f" and getattr(self.raw, "may_hold_nan", True):
            bad = ~np.isfinite(block)
            if bad.any():
                empty = self.nodata(pixels)
                outside = bad & ~(empty if block.ndim == empty.ndim else empty[..., None])
                if outside.any():
                    raise DataError(f"{self.source}: the cube holds {int(outside.sum())} NaN or Inf values outside "
                                    f"no-data pixels; expected finite numbers (or a 'data ignore value' marking "
                                    f"them)")
                block[bad] = 0
        return block

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.float32)
        step = max(1, 2**22 // max(1, self.shape[1] * self.shape[2]))
        for start in range(0, self.shape[0], step):
            out[start:start + step] = self[start:start + step]
        return out if dtype is None else out.astype(dtype)

    def nodata(self, key: Key = (slice(None), slice(None))) -> np.ndarray:
        """Boolean mask of the no-data pixels among ``cube[key]`` (all False without an ignore value)."""
        pixels, _ = self._split(key)
        if self.ignore_value is None:
            return np.zeros(np.empty(self.raw.shape[:2], dtype=bool)[pixels].shape, dtype=bool)
        return self._nodata(self._read(pixels, slice(None)), self.ignore_value)

    def _split(self, key: Key) -> tuple[tuple[Key, ...], Key | None]:
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) == 1 and isinstance(key[0], np.ndarray) and key[0].dtype == bool and key[0].ndim == 2:
            key = tuple(np.nonzero(key[0]))
        if len(key) > 3:
            raise IndexError(f"too many indices for a 3-D cube: {len(key)}")
        return key[:2], (key[2] if len(key) == 3 else None)

    def _read(self, pixels: tuple[Key, ...], bands: Key) -> np.ndarray:
        raw = self.raw[pixels]
        if self.keep is not None:
            kept = self.keep[bands]
            step = np.diff(kept) if kept.ndim == 1 and kept.size > 1 else None
            raw = raw[..., kept[0]:kept[-1] + 1] if step is not None and (step == 1).all() else raw[..., kept]
        elif not (isinstance(bands, slice) and bands == slice(None)):
            raw = raw[..., bands]
        if isinstance(self.raw, WindowedArray):
            return np.asarray(raw, dtype=np.float32)        # a fresh array already
        return np.array(raw, dtype=np.float32)

    def _nodata(self, block: np.ndarray, ignore_value: float) -> np.ndarray:
        if np.isnan(ignore_value):
            return np.isnan(block).all(axis=-1)
        return (block == np.float32(ignore_value)).all(axis=-1)

    def release(self) -> None:
        """Drop the pages read so far from this process's memory (see :func:`release_pages`)."""
        release_pages(self.raw)

    def __repr__(self) -> str:
        return f"MappedCube({self.source!r}, shape={self.shape}, file dtype={self.raw.dtype})"


def release_pages(array: np.ndarray | WindowedArray) -> None:
    """Flush a memory-mapped array and drop its pages from this process (they stay in the page cache), so
    reading or writing a file much larger than memory does not grow the resident set; no-op for plain arrays."""
    import mmap

    base: object = array
    while base is not None:
        handle = getattr(base, "_mmap", None)
        if handle is not None:
            if isinstance(base, np.memmap) and base.mode in ("r+", "w+"):
                base.flush()
            if hasattr(handle, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
                handle.madvise(mmap.MADV_DONTNEED)
            return
        base = getattr(base, "base", None)


Cube = np.ndarray | MappedCube      # a scene's (rows, cols, bands) cube, in memory or left on disk
