"""Map output formats chosen by name: ``--format png,npy,envi,tif,cog,gpkg,rgb``, one writer for every path.

A format is one function registered with ``@register_format("name")``: it gets a :class:`MapJob` (the finished
map and what it was made from) and a temporary prefix, writes its files there and returns them as
``{key: (temporary file, suffix)}``. :func:`write_outputs` runs the asked formats into a temporary folder beside
the destination and renames every file into place only when all succeeded, so a failure leaves nothing
half-written. ``hsi train``'s map (:func:`hsi.pipeline.write_map`), ``hsi predict`` and the streamed flight lines
(:func:`hsi.stream.stream_map`) and :func:`hsi.export.export_map` all end here. Installed packages add formats
through the ``hsi.formats`` entry-point group (name = format name, value = a writer function).
"""
from __future__ import annotations

import logging
import secrets
import shutil
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path, replace_durably
from .data.envi import carried_entries, classification_header, image_file
from .data.grid import MapGrid, map_grid
from .data.mapped import release_pages
from .errors import ConfigError
from .plugins import Registry

ENTRY_POINT_GROUP = "hsi.formats"
#: map geometries of a swath product with a GLT: orthorectified on the GLT's grid, or the sensor's rows and columns
GEOMETRIES = ("ortho", "sensor")
SUFFIXES = {".png", ".npy", ".hdr", ".img", ".tif", ".gpkg"}
log = logging.getLogger("hsi")

Writer = Callable[["MapJob", Path], dict[str, tuple[Path, str]]]
FORMATS: Registry[Writer] = Registry("map format", ENTRY_POINT_GROUP)


@dataclass
class MapJob:
    """A finished class map and its context. ``values`` (rows, cols) holds 0 for no class and k + 1 for class
    k (an array or a memory map); ``classes`` is the same map as class indices (-1 = no class)."""

    values: np.ndarray
    class_names: list[str]
    label_ids: np.ndarray
    palette: np.ndarray
    scene: Any = None                      # the classified scene: its header, source file and cube
    ground_truth: np.ndarray | None = None  # classes 0..K-1 (-1 unlabelled), drawn beside the PNG
    mask_unlabelled: bool | str = False
    title: str | None = None
    trained: np.ndarray | None = None        # training and validation pixels (bool), faded in the PNG
    rgb_bands: Any = None                    # the rgb format's bands (hsi.viz.parse_rgb_bands), None: the default
    geometry: str = "ortho"                  # swaths: "ortho" on the GLT's map grid, or "sensor" rows and cols
    probs: np.ndarray | None = None          # (rows, cols, K) class probabilities, when asked (--probs)

    @property
    def classes(self) -> np.ndarray:
        return np.asarray(self.values).astype(np.int64) - 1

    @property
    def id_names(self) -> list[str]:
        """Each class's name led by its id in the ground truth file (``1 Alfalfa``), as the PNG legend shows it;
        a name that is only its id (``class 2``) stays as it is."""
        return [str(n) if str(n) == f"class {i}" else f"{i} {n}"
                for i, n in zip(np.asarray(self.label_ids).tolist(), self.class_names)]

    @property
    def header(self) -> dict:
        return getattr(self.scene, "header", None) or {}


def register_format(name: str) -> Callable[[Writer], Writer]:
    """Decorator registering ``writer(job, prefix) -> {key: (file, suffix)}`` as the map format ``name``."""
    return lambda writer: FORMATS.register(name, writer)


def _writer(name: str) -> Writer:
    writer = FORMATS.find(name)
    if writer is None:
        raise ConfigError(f"unknown map format {name!r}; expected one or more of {', '.join(list_formats())}")
    return writer


def list_formats() -> list[str]:
    """Names of every known map format, built-in first."""
    return FORMATS.names()


def parse_formats(formats: str | Iterable[str], known: Iterable[str] | None = None, *,
                  required: bool = True) -> list[str]:
    """``formats`` (``"png,npy"`` or a list) as a list of lower-case names, each once, in the order given; an
    unknown name, or none at all when ``required``, is a :class:`ConfigError` naming the known ones."""
    known = list(known) if known is not None else list_formats()
    if isinstance(formats, str):
        formats = formats.split(",")
    formats = list(dict.fromkeys(str(f).strip().lower() for f in formats if str(f).strip()))
    unknown = [f for f in formats if f not in known]
    if unknown:
        raise ConfigError(f"unknown map format(s) {unknown}; expected one or more of {', '.join(known)}")
    if required and not formats:
        raise ConfigError(f"no map format given; expected one or more of {', '.join(known)}")
    return formats


def output_prefix(prefix: str | Path) -> Path:
    """``prefix`` without a map file's suffix (``run/map.png`` -> ``run/map``); it must name a file."""
    prefix = Path(prefix)
    if prefix.suffix.lower() in SUFFIXES:
        prefix = prefix.with_suffix("")
    if not prefix.name:
        raise ConfigError(f"prefix {str(prefix)!r} has no file name; expected a path such as run/map")
    return prefix


def write_outputs(job: MapJob, formats: Iterable[str], prefix: str | Path,
                  staged: dict[str, tuple[Path, str]] | None = None, tmpdir: Path | None = None) -> dict[str, Path]:
    """Write ``job`` in every format into a temporary folder beside ``prefix``, then move each file into place
    (``prefix`` + its suffix; headers after their images). ``staged`` files (already written into ``tmpdir``,
    such as a streamed probability cube) move with them. Returns ``{key: final path}``."""
    prefix = output_prefix(prefix)
    formats = list(formats)
    writers = [_writer(name) for name in formats]
    own_tmpdir = tmpdir is None
    tmpdir = tmpdir or prefix.parent / f".{prefix.name}.tmp-{secrets.token_hex(4)}"
    if own_tmpdir:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        tmpdir.mkdir()
    try:
        files = dict(staged or {})
        for name, writer in zip(formats, writers, strict=True):
            made = writer(job, tmpdir / "map")
            clash = {k for k, (_, suffix) in made.items() for _, other in files.values() if other == suffix}
            if clash:
                raise ConfigError(f"map format {name!r} writes {sorted(made[k][1] for k in clash)}, as another "
                                  f"asked format does; ask for one of them")
            files.update(made)
        written = {}
        for key, (path, suffix) in sorted(files.items(), key=lambda item: item[1][1].endswith(".hdr")):
            target = prefix.with_name(prefix.name + suffix)
            replace_durably(path, target)
            if not key.startswith("_"):
                written[key] = target
        return written
    finally:
        if own_tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


def write_rgb_png(image: np.ndarray, path: str | Path) -> Path:
    """Save a (rows, cols, 3) image (uint8, or float in [0, 1], clipped) as a PNG, atomically; return the path."""
    import matplotlib.image

    arr = _as_uint8(image)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        matplotlib.image.imsave(tmp, arr, format="png")
    return path


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """A (rows, cols, 3) uint8 image, or float in [0, 1] (clipped, rounded), as uint8."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ConfigError(f"image must be (rows, cols, 3) RGB, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise ConfigError(f"image must be uint8 or float in [0, 1], got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ConfigError("image holds NaN or Inf values; expected floats in [0, 1]")
        arr = np.round(np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8)     # rounded, not truncated
    return arr


def _file(prefix: Path, suffix: str) -> Path:
    return prefix.with_name(prefix.name + suffix)


@register_format("png")
def write_png(job: MapJob, prefix: Path) -> dict[str, tuple[Path, str]]:
    """``.png``: the class map with a legend of ids and names, beside the ground truth when there is one."""
    from .viz import class_map_figure, save_figure

    fig = class_map_figure(job.classes, [str(n) for n in job.class_names], job.palette,
                           ground_truth=job.ground_truth, mask_unlabelled=job.mask_unlabelled, title=job.title,
                           label_ids=np.asarray(job.label_ids), trained=job.trained)
    return {"png": (save_figure(fig, _file(prefix, ".png")), ".png")}


@register_format("npy")
def write_npy(job: MapJob, prefix: Path, rows_per_block: int = 512) -> dict[str, tuple[Path, str]]:
    """``.npy``: int32 original label ids, 0 where there is no class; written a block of rows at a time."""
    path = _file(prefix, ".npy")
    lookup = np.concatenate([[0], np.asarray(job.label_ids, dtype=np.int64)]).astype(np.int32)
    ids = np.lib.format.open_memmap(path, mode="w+", dtype=np.int32, shape=job.values.shape)
    for r0 in range(0, job.values.shape[0], rows_per_block):
        ids[r0:r0 + rows_per_block] = lookup[np.asarray(job.values[r0:r0 + rows_per_block])]
        release_pages(ids)
    ids.flush()
    del ids
    return {"npy": (path, ".npy")}


@register_format("envi")
def write_envi(job: MapJob, prefix: Path) -> dict[str, tuple[Path, str]]:
    """``.img`` + ``.hdr``: an ENVI classification image, 0 = "Unclassified", k + 1 = class k, with class names
    led by the ground truth file's ids (``1 Alfalfa``), colours and the input's map information."""
    img, hdr = _file(prefix, ".img"), _file(prefix, ".hdr")
    values = job.values
    if isinstance(values, np.memmap) and values.filename is not None \
            and Path(values.filename).resolve() == img.resolve():
        values.flush()                  # the streamed map is this file already
    else:
        np.asarray(values).tofile(img)
    hdr.write_text(classification_header(values.shape, values.dtype, job.id_names, job.palette,
                                         carried_entries(job.header)))
    return {"_envi image": (img, ".img"), "envi": (hdr, ".hdr")}


@register_format("rgb")
def write_rgb(job: MapJob, prefix: Path) -> dict[str, tuple[Path, str]]:
    """``_rgb.png``: a false-colour composite of the classified scene from ``job.rgb_bands`` (default
    :func:`hsi.viz.rgb_bands`), each band stretched by :func:`hsi.viz.false_color` and shown pixel for pixel (in
    blocks of equal size), under a title naming the bands (counted from 0) and their wavelengths (also the PNG's
    ``Title`` text)."""
    from .viz import choose_rgb_bands, false_color, rgb_caption, titled_image_figure

    if job.scene is None or not hasattr(job.scene, "cube"):
        raise ConfigError("the rgb format draws the classified scene; give a scene, not a bare map")
    cube, wavelengths = job.scene.cube, getattr(job.scene, "wavelengths", None)
    bands = choose_rgb_bands(job.rgb_bands, cube.shape[2], wavelengths)
    name = getattr(job.scene, "name", None)
    caption = f"{name + ': ' if name else ''}false colour (bands counted from 0)\n{rgb_caption(bands, wavelengths)}"
    fig = titled_image_figure(_as_uint8(false_color(cube, wavelengths, bands=bands)), caption)
    path = _file(prefix, "_rgb.png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi, facecolor="white", metadata={"Title": caption})
    return {"rgb": (path, "_rgb.png")}


def map_placement(job: MapJob) -> MapGrid | None:
    """The map grid the scene names: an ENVI header's map information, a GeoTIFF's CRS and transform, or for a
    swath product the map grid of its GLT (each map cell takes the class of the sensor pixel its GLT entry names:
    the map is orthorectified). None for sensor geometry: the scene names no map placement (a bare map, a .mat or
    .npy cube, a swath with latitude/longitude alone), or ``job.geometry`` is ``"sensor"`` for a GLT swath."""
    import rasterio

    shape = (int(job.values.shape[0]), int(job.values.shape[1]))
    source = _georeferenced_image(job.scene)
    if source is not None:
        with rasterio.open(source) as src:
            if src.crs is not None:
                return MapGrid(shape, tuple(src.transform)[:6], src.crs.to_wkt())
    cube = getattr(job.scene, "cube", None)
    grid = map_grid(getattr(cube, "geometry", None), shape, str(getattr(job.scene, "source", "the scene")))
    return None if grid is not None and grid.glt is not None and job.geometry == "sensor" else grid


def sensor_latlon(job: MapJob, grid: MapGrid | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The product's latitude and longitude of every sensor pixel (its ``lat``/``lon`` arrays), when the map is in
    sensor geometry (``grid``, the job's :func:`map_placement`, is None) and the product gives them; else None."""
    geometry = getattr(getattr(job.scene, "cube", None), "geometry", None) or {}
    lat, lon = geometry.get("lat"), geometry.get("lon")
    shape = tuple(job.values.shape[:2])
    if lat is None or lon is None or np.shape(lat) != shape or np.shape(lon) != shape \
            or grid is not None:
        return None
    return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)


def _geometry_note(grid: MapGrid | None, latlon: bool = False) -> str:
    if latlon:
        return "sensor geometry: rows and columns of the product, latitude and longitude in the _latlon.tif beside it"
    if grid is None:
        return "sensor geometry: the scene names no map placement (no CRS and transform, no GLT)"
    return "orthorectified through the product's GLT" if grid.glt is not None else "the scene's map grid"


def _rasterio() -> Any:
    try:
        import rasterio
        import rasterio.shutil  # noqa: F401  (the COG copy)
    except ImportError:
        raise ConfigError("the tif, cog and gpkg formats need rasterio: install the geo extra "
                          "(pip install hsi-toolkit[geo])") from None
    return rasterio


def _open_geotiff(path: Path, grid: MapGrid | None, shape: tuple[int, ...], dtype: Any, nodata: float | None) -> Any:
    """A tiled, deflate-compressed GeoTIFF of ``shape`` (bands, rows, cols) for writing, on ``grid`` (pixel
    coordinates when None)."""
    rasterio = _rasterio()
    from rasterio.transform import Affine

    with warnings.catch_warnings():
        if grid is None:            # said by the caller, once
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return rasterio.open(path, "w", driver="GTiff", width=shape[2], height=shape[1], count=shape[0],
                             dtype=np.dtype(dtype).name, nodata=nodata, compress="deflate", tiled=True,
                             transform=Affine(*grid.transform) if grid else None, crs=grid.crs if grid else None)


def _fill_geotiff(tif: Any, values: np.ndarray, grid: MapGrid | None, rows_per_block: int = 512) -> None:
    """Write (rows, cols[, bands]) sensor-geometry ``values`` into ``tif``, placed on ``grid``, a block of map
    rows at a time; then close it."""
    from rasterio.windows import Window

    with tif:
        for r0 in range(0, tif.height, rows_per_block):
            block = grid.rows_to_map(values, r0, r0 + rows_per_block) if grid else np.asarray(
                values[r0:r0 + rows_per_block])
            block = block[None] if block.ndim == 2 else block.transpose(2, 0, 1)
            tif.write(block, window=Window(0, r0, tif.width, block.shape[1]))
            release_pages(values)


def _write_latlon(path: Path, latlon: tuple[np.ndarray, np.ndarray]) -> Path:
    """Latitude (band 1) and longitude (band 2) of each sensor pixel, float64, in sensor rows and columns."""
    lat, lon = latlon
    tif = _open_geotiff(path, None, (2, *lat.shape), np.float64, None)
    tif.descriptions = ("latitude", "longitude")
    tif.update_tags(crs="EPSG:4326 (WGS 84), degrees")
    _fill_geotiff(tif, np.stack([lat, lon], axis=-1), None)
    return path


def _write_geotiffs(job: MapJob, prefix: Path, suffix: str = ".tif") -> dict[str, tuple[Path, str]]:
    """The class values (0 = unclassified, the no-data value) as a tiled, deflate-compressed GeoTIFF on the map
    grid of :func:`map_placement`, with the palette as colour table (8-bit maps), the class names as tags; with
    ``job.probs`` the probabilities as ``_probs`` GeoTIFF (one float32 band per class, named by it) on the same
    grid; in sensor geometry with the product's latitude and longitude, a ``_latlon`` GeoTIFF beside them."""
    grid = map_placement(job)
    latlon = sensor_latlon(job, grid)
    if grid is None and latlon is None:
        log.warning("map in %s; the GeoTIFF has pixel coordinates only", _geometry_note(grid))
    note = _geometry_note(grid, latlon is not None)
    made: dict[str, tuple[Path, str]] = {}
    if latlon is not None:
        made["latlon"] = (_write_latlon(_file(prefix, "_latlon" + suffix), latlon), "_latlon.tif")
    values = job.values
    names = ["Unclassified", *job.id_names]
    tif = _open_geotiff(_file(prefix, suffix), grid, (1, *(grid.shape if grid else values.shape)), values.dtype, 0)
    colors = np.vstack([np.zeros((1, 3), np.uint8), np.asarray(job.palette, dtype=np.uint8)])
    if np.dtype(values.dtype) == np.uint8:
        tif.write_colormap(1, {i: (*map(int, c), 255) for i, c in enumerate(colors)})
    tif.update_tags(1, class_names=",".join(names), **{f"class_{i}": name for i, name in enumerate(names)})
    tif.update_tags(label_ids=",".join(str(int(i)) for i in [0, *job.label_ids]), geometry=note)
    _fill_geotiff(tif, values, grid)
    made["map"] = (_file(prefix, suffix), ".tif")
    if job.probs is not None:
        probs = _open_geotiff(_file(prefix, "_probs" + suffix), grid,
                              (job.probs.shape[2], *(grid.shape if grid else values.shape)), np.float32, None)
        probs.descriptions = tuple(str(n) for n in job.class_names)
        probs.update_tags(label_ids=",".join(str(int(i)) for i in job.label_ids), geometry=note,
                          description="hsi class probabilities, one band per class")
        _fill_geotiff(probs, job.probs, grid)
        made["probs_tif"] = (_file(prefix, "_probs" + suffix), "_probs.tif")
    return made


def _category_names(names: list[str], path: Path) -> Path:
    """GDAL's sidecar (``.aux.xml``) naming each value of band 1: value 0 "Unclassified", k + 1 class k."""
    band = ET.Element("PAMRasterBand", band="1")
    categories = ET.SubElement(band, "CategoryNames")
    for name in names:
        ET.SubElement(categories, "Category").text = name
    root = ET.Element("PAMDataset")
    root.append(band)
    ET.ElementTree(root).write(path, encoding="utf-8")
    return path


@register_format("tif")
def write_tif(job: MapJob, prefix: Path) -> dict[str, tuple[Path, str]]:
    """``.tif``: the class values as a tiled, compressed GeoTIFF on the scene's map grid (see
    :func:`map_placement`: the input's CRS and transform, or for a swath the GLT's grid, orthorectified; with
    ``--geometry sensor`` a swath's rows and columns, latitude and longitude in ``_latlon.tif``), the palette as
    colour table, 0 = unclassified as no-data and the class names as GDAL category names (``.tif.aux.xml``) and
    tags; with ``--probs`` also ``_probs.tif``. Written a block of rows at a time. Needs the ``geo`` extra."""
    made = _write_geotiffs(job, prefix)
    aux = _category_names(["Unclassified", *map(str, job.class_names)], _file(prefix, ".tif.aux.xml"))
    made["tif"], made["_tif categories"] = made.pop("map"), (aux, ".tif.aux.xml")
    return made


@register_format("cog")
def write_cog(job: MapJob, prefix: Path) -> dict[str, tuple[Path, str]]:
    """``.tif`` as a Cloud-Optimized GeoTIFF: the ``tif`` format's images copied by GDAL's COG driver (512-pixel
    tiles, deflate, overviews by nearest class, by average for probabilities), with the same colour table, tags
    and category names."""
    rasterio = _rasterio()
    made = {}
    for key, (tiled, suffix) in _write_geotiffs(job, prefix, "_tiled.tif").items():
        path = _file(prefix, suffix)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)     # said once already
            rasterio.shutil.copy(tiled, path, driver="COG", compress="deflate", blocksize=512,
                                 resampling="nearest" if key == "map" else "average")
        tiled.unlink()
        made["cog" if key == "map" else key] = (path, suffix)
    made["_cog categories"] = (_category_names(["Unclassified", *map(str, job.class_names)],
                                               _file(prefix, ".tif.aux.xml")), ".tif.aux.xml")
    return made


@register_format("gpkg")
def write_gpkg(job: MapJob, prefix: Path) -> dict[str, tuple[Path, str]]:
    """``.gpkg``: the class map as polygons (one per 4-connected region of a class) in the scene's CRS, layer
    ``classes`` with ``class_id`` (the original label id), ``class_name`` and ``area_m2``; on the map grid of
    :func:`map_placement` (for a swath, orthorectified through its GLT). Needs the ``geo`` extra."""
    _rasterio()
    import pyogrio
    import shapely
    from pyproj import CRS
    from rasterio.features import shapes
    from rasterio.transform import Affine

    grid = map_placement(job)
    if grid is None and job.geometry == "sensor" and sensor_latlon(job, grid) is not None:
        raise ConfigError("the gpkg format places polygons on a map, but --geometry sensor keeps this swath in its "
                          "rows and columns; ask for --geometry ortho (the default) for gpkg")
    if grid is None:
        raise ConfigError(f"the gpkg format places polygons on a map, but this map is in {_geometry_note(grid)}; "
                          f"classify a georeferenced scene (GeoTIFF, ENVI with map info, EMIT with its GLT)")
    values = np.asarray(grid.to_map(job.values))
    regions = list(shapes(values, mask=values > 0, connectivity=4, transform=Affine(*grid.transform)))
    polygons = np.array([shapely.geometry.shape(g) for g, _ in regions], dtype=object)
    index = np.array([int(v) for _, v in regions], dtype=np.int64) - 1
    crs = CRS.from_user_input(grid.crs)
    geod = crs.get_geod() if crs.is_geographic else None
    if geod is not None:
        area = np.array([abs(geod.geometry_area_perimeter(p)[0]) for p in polygons], dtype=np.float64)
    else:
        area = shapely.area(polygons).astype(np.float64) * crs.axis_info[0].unit_conversion_factor ** 2
    label_ids = np.asarray(job.label_ids, dtype=np.int64)
    names = np.array([str(n) for n in job.class_names], dtype=object)
    path = _file(prefix, ".gpkg")
    pyogrio.raw.write(path, shapely.to_wkb(polygons), [label_ids[index], names[index], area],
                      fields=["class_id", "class_name", "area_m2"], layer="classes", geometry_type="Polygon",
                      crs=crs.to_wkt(), driver="GPKG", layer_metadata={"geometry": _geometry_note(grid)})
    return {"gpkg": (path, ".gpkg")}


def _georeferenced_image(scene: Any) -> Path | None:
    """The ENVI image file of a scene whose header has ``map info`` (GDAL reads it beside its header)."""
    header = getattr(scene, "header", None) or {}
    if "map info" not in header and "coordinate system string" not in header:
        return None
    return image_file(Path(scene.source))
