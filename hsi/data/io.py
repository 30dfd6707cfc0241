"""Read cubes and label maps through the reader registry (:mod:`hsi.data.readers`); the built-in readers of
.mat (v5 and v7.3), ENVI .hdr/.img and .npy files live here.

ENVI and .npy cubes stay on disk as a :class:`~hsi.data.mapped.MappedCube` (memory-mapped, read as needed);
.mat cubes are read whole.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from ..errors import DataError
from .envi import open_image, split_list
from .grid import map_grid
from .mapped import Cube, MappedCube
from .readers import Contents, reader_for, register_reader

_KINDS = {"cube": "3-D numeric array (rows, cols, bands)", "labels": "2-D integer label map (rows, cols)"}


@overload
def read_array(path: Path | str, key: str | None = None,
               kind: Literal["cube"] = "cube") -> tuple[Cube, np.ndarray | None]: ...


@overload
def read_array(path: Path | str, key: str | None = None,
               kind: Literal["labels"] = ...) -> tuple[np.ndarray, np.ndarray | None]: ...


def read_array(path: Path | str, key: str | None = None,
               kind: Literal["cube", "labels"] = "cube") -> tuple[Cube, np.ndarray | None]:
    """Return ``(array, wavelengths)`` read from ``path``; ``wavelengths`` is None unless the file has them.

    ``kind`` is ``"cube"`` or ``"labels"``. Without ``key`` the file must hold exactly one array of that kind.
    An ENVI or .npy cube comes back as a :class:`MappedCube` (nothing read yet); labels always as an array.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected a {_KINDS[kind]})")
    contents = reader_for(path)(path)
    wavelengths = contents.wavelengths
    array = _pick(path, contents.arrays, key, kind)
    if kind == "cube" and isinstance(array, np.memmap):
        array = MappedCube(array, source=str(path))
    elif kind == "labels":
        array = np.array(array.raw if isinstance(array, MappedCube) else array)
    if kind == "labels" and array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return array, wavelengths


def inspect_file(path: Path | str, key: str | None = None) -> list[str]:
    """What the reader of ``path`` found, one ``name: value`` line each: reader, shape, dtype, wavelength range,
    bad bands, no-data share, geometry. Reads the whole cube once (a block of rows at a time) for the no-data share."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (expected a cube file)")
    reader = reader_for(path)
    cube, wavelengths = read_array(path, key, "cube")
    lines = [f"file: {path}", f"reader: {getattr(reader, 'reader_name', reader.__name__)}",
             f"shape: {' x '.join(map(str, cube.shape))} (rows x cols x bands)",
             f"dtype: {_file_dtype(cube)} in the file, read as float32"]
    if wavelengths is not None and len(wavelengths):
        lines.append(f"wavelengths: {wavelengths.min():g} - {wavelengths.max():g} nm ({len(wavelengths)} bands)")
    fwhm = getattr(cube, "fwhm", None)
    if fwhm is not None:
        lines.append(f"fwhm: {fwhm.min():g} - {fwhm.max():g} nm")
    dropped = getattr(cube, "dropped_bands", [])
    lines.append(f"bad bands: {len(dropped)}" + (f" (file bands {dropped})" if dropped else ""))
    if isinstance(cube, MappedCube):
        step = max(1, 2**22 // max(1, cube.shape[1] * cube.shape[2]))
        empty = sum(int(cube.nodata((slice(r, r + step), slice(None))).sum()) for r in range(0, cube.shape[0], step))
        lines.append(f"no-data: {empty / max(1, cube.shape[0] * cube.shape[1]):.1%} of pixels")
    geometry = getattr(cube, "geometry", None) or {}
    if geometry.get("crs"):
        lines.append(f"crs: {_crs_name(geometry['crs'])}")
    if geometry.get("transform"):
        lines.append(f"transform: {tuple(round(v, 6) for v in geometry['transform'])}")
    swath = [k for k in ("lat", "lon", "glt_x", "glt_y") if k in geometry]
    if swath:
        lines.append(f"swath geometry: {', '.join(f'{k} {geometry[k].shape}' for k in swath)}")
    grid = map_grid(geometry, (cube.shape[0], cube.shape[1]), str(path))
    if grid is not None and grid.glt is not None:
        lines.append(f"map grid (GLT): {grid.shape[0]} x {grid.shape[1]} cells, {_crs_name(grid.crs)}, "
                     f"transform {tuple(round(v, 6) for v in grid.transform)}")
    return lines


def _file_dtype(cube: Cube) -> np.dtype[Any]:
    raw = getattr(cube, "raw", cube)
    return getattr(raw, "file_dtype", raw.dtype)


def _crs_name(crs: object) -> str:
    try:
        from pyproj import CRS

        found = CRS.from_user_input(crs)
        return f"{found.name} ({found.to_authority() and ':'.join(found.to_authority())})"
    except Exception:
        return str(crs)[:80]


@register_reader("mat", suffixes=(".mat",))
def _read_mat(path: Path) -> Contents:
    """Every numeric array of a MATLAB v5 or v7.3 file, read whole."""
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):  # MATLAB v7.3
        return Contents(_read_mat73(path))
    try:
        data = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises many types for damaged files
        raise DataError(f"{path}: unreadable or truncated .mat file ({_reason(exc)})") from None
    return Contents({k: v for k, v in data.items() if not k.startswith("__") and isinstance(v, np.ndarray)})


def _read_mat73(path: Path) -> dict[str, np.ndarray]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            # MATLAB writes column-major, so h5py sees every array with its axes reversed.
            return {k: np.asarray(v).T for k, v in f.items() if isinstance(v, h5py.Dataset)}
    except (OSError, KeyError) as exc:
        raise DataError(f"{path}: unreadable or truncated .mat v7.3 file ({_reason(exc)})") from None


@register_reader("envi", suffixes=(".hdr", ".img", ".raw", ".dat"))
def _read_envi(path: Path) -> Contents:
    """The image as a :class:`MappedCube` (``bbl`` bad bands dropped, ``data ignore value`` kept as no-data,
    the header entries in ``.header``) and its wavelengths (of the kept bands)."""
    hdr = path if path.suffix.lower() == ".hdr" else path.with_suffix(".hdr")
    if not hdr.is_file():
        raise DataError(f"{path}: ENVI header {hdr.name} not found beside it")
    raw, header = open_image(hdr)
    bands = raw.shape[2]
    keep = None
    if "bbl" in header:
        flags = _numbers(hdr, header, "bbl", bands)
        if not flags.any():
            raise DataError(f"{hdr}: 'bbl' marks every band as bad; expected at least one good band (1)")
        keep = np.flatnonzero(flags != 0) if not flags.all() else None
    ignore = _numbers(hdr, header, "data ignore value", 1)[0] if "data ignore value" in header else None
    cube = MappedCube(raw, keep=keep, ignore_value=ignore, source=str(hdr))
    cube.header = header
    wavelengths = None
    if "wavelength" in header:
        try:
            wavelengths = np.asarray(split_list(header["wavelength"]), dtype=np.float64)
        except ValueError:
            wavelengths = None
        if wavelengths is not None and len(wavelengths) == bands and keep is not None:
            wavelengths = wavelengths[keep]
    return Contents({"": cube}, wavelengths)


def _numbers(hdr: Path, header: dict[str, str], key: str, count: int) -> npt.NDArray[np.float64]:
    try:
        values = np.asarray(split_list(header[key]), dtype=np.float64)
    except ValueError:
        raise DataError(f"{hdr}: {key!r} is not a list of numbers: {header[key][:60]!r}") from None
    if len(values) != count:
        raise DataError(f"{hdr}: {key!r} has {len(values)} values; expected {count}")
    return values


@register_reader("npy", suffixes=(".npy",))
def _read_npy(path: Path) -> Contents:
    """The array of a .npy file, memory-mapped."""
    try:
        return Contents({"": np.load(path, mmap_mode="r", allow_pickle=False)})
    except Exception as exc:
        raise DataError(f"{path}: unreadable or truncated .npy file ({_reason(exc)})") from None


def _pick(path: Path, arrays: dict[str, Cube], key: str | None, kind: str) -> Cube:
    if key is not None:
        if key not in arrays:
            raise DataError(f"{path}: no array named {key!r}; the file holds {sorted(arrays)}")
        array = arrays[key]
        if not _fits(array, kind):
            raise DataError(f"{path}: array {key!r} has shape {array.shape} and dtype {array.dtype}, "
                            f"expected a {_KINDS[kind]}")
        return array
    candidates = [k for k, v in arrays.items() if _fits(v, kind)]
    if not candidates:
        found = ", ".join(f"{k or 'array'} {v.shape}" for k, v in arrays.items()) or "nothing"
        raise DataError(f"{path}: no {_KINDS[kind]} found (the file holds {found})")
    if len(candidates) > 1:
        raise DataError(f"{path}: several arrays could be the {kind}: {sorted(candidates)}; "
                        f"name one with the key option")
    return arrays[candidates[0]]


def _fits(array: Cube, kind: str) -> bool:
    array = getattr(array, "raw", array)
    if array.dtype.kind not in "uif" or array.size == 0:
        return False
    if kind == "cube":
        return array.ndim == 3 and array.shape[2] > 1
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        return False
    return array.dtype.kind in "ui" or bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


from . import geo  # noqa: E402,F401  (registers the GeoTIFF, NetCDF and HE5 readers; their libraries load on use)
