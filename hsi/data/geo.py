"""Readers of today's spaceborne products (the ``geo`` extra): GeoTIFF/COG with EnMAP's METADATA.XML beside it,
EMIT-style NetCDF-4 and PRISMA-style HDF5-EOS. Each cube is a :class:`~hsi.data.mapped.MappedCube` over a
:class:`~hsi.data.windowed.WindowedArray`: nothing is read until pixels are indexed, then only their window, scaled
to reflectance, no-data as NaN (read as 0 and masked), bad bands dropped. ``cube.fwhm`` and ``cube.geometry``
(``crs`` + ``transform``, or ``lat``/``lon``/``glt_x``/``glt_y`` for swaths) carry the rest.
"""
from __future__ import annotations

import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..errors import DataError
from .mapped import MappedCube
from .readers import Contents, register_reader
from .windowed import WindowedArray

#: GDAL's options while a window is read: uncompressed GeoTIFFs straight from the file, not through the block
#: cache, and a cache of 128 MB for compressed ones (GDAL's default is 5 % of the RAM, beyond --memory-mb)
GDAL_READ_OPTIONS = {"GTIFF_DIRECT_IO": "YES", "GDAL_CACHEMAX": 128}

if TYPE_CHECKING:
    import h5py


class _Handle:
    """An open file, opened at first use in each process (so a cube survives pickling into data-loader workers)."""

    def __init__(self, path: Path, opener: Callable[[Path], Any]) -> None:
        self.path, self.opener = path, opener
        self._file: Any = None           # the open file, in process _pid
        self._pid: int | None = None

    def get(self) -> Any:
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = self.opener(self.path), os.getpid()
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_pid": None}


class _Scratch(threading.local):
    """A reader's buffer for the raw window, reused while the window's shape repeats (a window is converted to
    float32 before the next is read, and fresh pages of a large array cost more than the copy); one per thread."""

    buffer: np.ndarray | None = None

    def get(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        if self.buffer is None or self.buffer.shape != shape or self.buffer.dtype != dtype:
            self.buffer = np.empty(shape, dtype=dtype)
        return self.buffer


def _cube(path: Path, windowed: WindowedArray, keep: np.ndarray | None, wavelengths: npt.ArrayLike | None,
          fwhm: npt.ArrayLike | None, geometry: dict[str, Any]) -> Contents:
    if keep is not None and len(keep) == 0:
        raise DataError(f"{path}: every band is flagged bad; expected at least one good band")
    if keep is not None and np.array_equal(keep, np.arange(windowed.shape[2])):
        keep = None
    cube = MappedCube(windowed, keep=keep, ignore_value=float("nan"), source=str(path))

    def select(values: npt.ArrayLike | None) -> npt.NDArray[np.float64] | None:
        return None if values is None else np.asarray(values, dtype=np.float64)[keep if keep is not None else ...]

    cube.fwhm, cube.geometry = select(fwhm), geometry
    return Contents({"": cube}, wavelengths=select(wavelengths), fwhm=cube.fwhm, geometry=geometry)


def _enmap_metadata(image: Path) -> Path | None:
    """``*-SPECTRAL_IMAGE.TIF`` -> ``*-METADATA.XML`` beside it, if there."""
    stem = image.stem
    for tag in ("SPECTRAL_IMAGE", "spectral_image"):
        if tag in stem:
            for name in (stem.replace(tag, "METADATA") + ".XML", stem.replace(tag, "METADATA") + ".xml"):
                if (image.parent / name).is_file():
                    return image.parent / name
    return None


def _enmap_bands(xml: Path, count: int) -> dict[str, np.ndarray]:
    """Wavelength, FWHM, gain and offset of each band from ``specific/bandCharacterisation/bandID``."""
    try:
        bands = ET.parse(xml).getroot().findall(".//bandCharacterisation/bandID")
        table = {name: np.array([float(b.findtext(tag) or "") for b in bands]) for name, tag in
                 (("wavelengths", "wavelengthCenterOfBand"), ("fwhm", "FWHMOfBand"), ("gain", "GainOfBand"),
                  ("offset", "OffsetOfBand"))}
    except (ET.ParseError, TypeError, ValueError) as exc:
        raise DataError(f"{xml}: not an EnMAP METADATA.XML with bandCharacterisation/bandID entries of "
                        f"wavelengthCenterOfBand, FWHMOfBand, GainOfBand, OffsetOfBand ({exc})") from None
    if len(bands) != count:
        raise DataError(f"{xml}: describes {len(bands)} bands but the image has {count}; expected one bandID each")
    return table


@register_reader("geotiff", suffixes=(".tif", ".tiff"))
def read_geotiff(path: Path) -> Contents:
    """A GeoTIFF/COG of any band count (rows, cols, bands), with EnMAP's METADATA.XML when it sits beside it."""
    import rasterio
    from rasterio.windows import Window

    try:
        with rasterio.open(path) as src:
            shape, nodata, dtype = (src.height, src.width, src.count), src.nodata, src.dtypes[0]
            scales, offsets = np.array(src.scales), np.array(src.offsets)
            geometry = {"crs": src.crs.to_wkt() if src.crs else None, "transform": tuple(src.transform)[:6]}
            names = list(src.descriptions)
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"{path}: unreadable GeoTIFF ({exc})") from None
    wavelengths = fwhm = None
    xml = _enmap_metadata(path)
    if xml is not None:
        table = _enmap_bands(xml, shape[2])
        wavelengths, fwhm, scales, offsets = table["wavelengths"], table["fwhm"], table["gain"], table["offset"]
        geometry["metadata"] = str(xml)
    elif all(n and n.replace(".", "", 1).isdigit() for n in names):
        wavelengths = np.array(names, dtype=np.float64)
    handle, scratch = _Handle(path, rasterio.open), _Scratch()

    def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        out = scratch.get((r1 - r0, c1 - c0, shape[2]), dtype)         # GDAL fills it pixel-interleaved
        with rasterio.Env(**GDAL_READ_OPTIONS):
            handle.get().read(window=Window(c0, r0, c1 - c0, r1 - r0), out=out.transpose(2, 0, 1))
        return out

    windowed = WindowedArray(shape, read, scale=scales, offset=offsets, nodata=nodata, file_dtype=dtype)
    return _cube(path, windowed, None, wavelengths, fwhm, geometry)


def _h5(path: Path) -> h5py.File:
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: unreadable HDF5/NetCDF-4 file ({exc})") from None


def _attr(obj: h5py.HLObject, name: str, default: Any = None) -> Any:
    value = obj.attrs.get(name, default)
    return value.item() if isinstance(value, np.ndarray) and value.size == 1 else value


@register_reader("netcdf", suffixes=(".nc", ".nc4"))
def read_netcdf(path: Path) -> Contents:
    """An EMIT-style NetCDF-4: ``reflectance(downtrack, crosstrack, bands)``, ``sensor_band_parameters``
    (``wavelengths``, ``fwhm``, ``good_wavelengths``) and ``location`` (``lat``, ``lon``, ``glt_x``, ``glt_y``)."""
    with _h5(path) as f:
        name = next((n for n in ("reflectance", "radiance") if n in f), None)
        if name is None or f[name].ndim != 3:
            raise DataError(f"{path}: no 3-D 'reflectance' or 'radiance' variable (downtrack, crosstrack, bands); "
                            f"the file holds {sorted(f)}")
        var = f[name]
        shape, nodata, dtype = var.shape, _attr(var, "_FillValue"), var.dtype
        scale, offset = _attr(var, "scale_factor", 1.0), _attr(var, "add_offset", 0.0)
        bands = f.get("sensor_band_parameters")
        wavelengths = np.asarray(bands["wavelengths"]) if bands is not None and "wavelengths" in bands else None
        fwhm = np.asarray(bands["fwhm"]) if bands is not None and "fwhm" in bands else None
        good = np.asarray(bands["good_wavelengths"]) if bands is not None and "good_wavelengths" in bands else None
        location = f.get("location")
        geometry: dict[str, Any] = {k: np.asarray(location[k]) for k in ("lat", "lon", "glt_x", "glt_y")
                                    if location is not None and k in location}
        if "geotransform" in f.attrs:
            geometry["glt_transform"] = tuple(float(v) for v in f.attrs["geotransform"])
        if "spatial_ref" in f.attrs:
            geometry["crs"] = str(_attr(f, "spatial_ref"))
    handle, scratch = _Handle(path, _h5), _Scratch()

    def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        out = scratch.get((r1 - r0, c1 - c0, shape[2]), dtype)
        if out.size:
            handle.get()[name].read_direct(out, np.s_[r0:r1, c0:c1, :])
        return out

    keep = None if good is None or good.all() else np.flatnonzero(good)
    windowed = WindowedArray(shape, read, scale=scale, offset=offset, nodata=nodata, file_dtype=dtype)
    return _cube(path, windowed, keep, wavelengths, fwhm, geometry)


@register_reader("prisma", suffixes=(".he5",))
def read_prisma(path: Path) -> Contents:
    """A PRISMA-style HDF5-EOS: ``VNIR_Cube`` and ``SWIR_Cube`` (lines, bands, samples) in
    ``HDFEOS/SWATHS/<swath>/Data Fields``, wavelengths ``List_Cw_Vnir``/``List_Cw_Swir`` (0 = unused band) and
    ``L2Scale{Vnir,Swir}{Min,Max}`` in the file's attributes; bands returned in increasing wavelength."""
    with _h5(path) as f:
        swaths = f.get("HDFEOS/SWATHS")
        swath = next((s for s in (swaths or {}) if "Data Fields/VNIR_Cube" in swaths[s]), None)
        if swath is None:
            raise DataError(f"{path}: no HDFEOS/SWATHS/<swath>/Data Fields/VNIR_Cube; expected a PRISMA product")
        group = f"HDFEOS/SWATHS/{swath}/Data Fields"
        cubes = [n for n in ("VNIR_Cube", "SWIR_Cube") if n in f[group]]
        lines, _, samples = f[f"{group}/VNIR_Cube"].shape
        dtype = f[f"{group}/VNIR_Cube"].dtype
        counts = [f[f"{group}/{n}"].shape[1] for n in cubes]
        wavelengths, fwhm, scale, offset = [], [], [], []
        for cube, count in zip(cubes, counts, strict=True):
            part = cube.split("_")[0].capitalize()
            wavelengths.append(np.asarray(f.attrs[f"List_Cw_{part}"], dtype=np.float64))
            fwhm.append(np.asarray(f.attrs.get(f"List_Fwhm_{part}", np.zeros(count)), dtype=np.float64))
            low = float(_attr(f, f"L2Scale{part}Min", 0.0))
            high = float(_attr(f, f"L2Scale{part}Max", 65535.0))
            scale.append(np.full(count, (high - low) / 65535.0))
            offset.append(np.full(count, low))
        geo = f.get(f"HDFEOS/SWATHS/{swath}/Geolocation Fields")
        geometry: dict[str, Any] = {key.lower()[:3]: np.asarray(geo[key]) for key in ("Latitude", "Longitude")
                                    if geo is not None and key in geo}
        if "Epsg_Code" in f.attrs and "Product_ULcorner_easting" in f.attrs:
            geometry["crs"] = f"EPSG:{int(_attr(f, 'Epsg_Code'))}"
            size = 30.0
            geometry["transform"] = (size, 0.0, float(_attr(f, "Product_ULcorner_easting")), 0.0, -size,
                                     float(_attr(f, "Product_ULcorner_northing")))
    handle, scratch = _Handle(path, _h5), [_Scratch() for _ in cubes]

    def read(r0: int, r1: int, c0: int, c1: int) -> list[np.ndarray]:
        parts = []
        for name, count, buffer in zip(cubes, counts, scratch, strict=True):
            out = buffer.get((r1 - r0, count, c1 - c0), dtype)
            if out.size:
                handle.get()[f"{group}/{name}"].read_direct(out, np.s_[r0:r1, :, c0:c1])
            parts.append(out.transpose(0, 2, 1))
        return parts

    all_wavelengths = np.concatenate(wavelengths)
    keep = np.flatnonzero(all_wavelengths > 0)
    keep = keep[np.argsort(all_wavelengths[keep], kind="stable")]
    windowed = WindowedArray((lines, samples, sum(counts)), read, scale=np.concatenate(scale),
                             offset=np.concatenate(offset), file_dtype=dtype)
    return _cube(path, windowed, keep, all_wavelengths, np.concatenate(fwhm), geometry)
