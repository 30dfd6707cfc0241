"""Map output formats chosen by name: ``--format png,npy,envi,tif,rgb``, one writer for every path.

A format is one function registered with ``@register_format("name")``: it gets a :class:`MapJob` (the finished
map and what it was made from) and a temporary prefix, writes its files there and returns them as
``{key: (temporary file, suffix)}``. :func:`write_outputs` runs the asked formats into a temporary folder beside
the destination and renames every file into place only when all succeeded, so a failure leaves nothing
half-written. ``hsi train``'s map (:func:`hsi.pipeline.write_map`), ``hsi predict`` and the streamed flight lines
(:func:`hsi.stream.stream_map`) and :func:`hsi.export.export_map` all end here. Installed packages add formats
through the ``hsi.formats`` entry-point group (name = format name, value = a writer function).
"""
from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path, replace_durably
from .data.envi import carried_entries, classification_header, image_file
from .data.mapped import release_pages
from .errors import ConfigError
from .plugins import load_plugins

ENTRY_POINT_GROUP = "hsi.formats"
SUFFIXES = {".png", ".npy", ".hdr", ".img", ".tif"}

Writer = Callable[["MapJob", Path], dict[str, tuple[Path, str]]]
_registered: dict[str, Writer] = {}
_entry_points: dict[str, Writer] | None = None


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

    def decorator(writer: Writer) -> Writer:
        if name in _registered and _registered[name] is not writer:
            raise ConfigError(f"map format {name!r} is already registered by {_registered[name]!r}")
        _registered[name] = writer
        return writer

    return decorator


def _load_entry_points() -> dict[str, Writer]:
    """Formats offered by installed packages, read once; broken ones are skipped."""
    global _entry_points
    if _entry_points is None:
        _entry_points = load_plugins(ENTRY_POINT_GROUP, "map format", "format", _registered)
    return _entry_points


def _writer(name: str) -> Writer:
    writer = _registered.get(name) or _load_entry_points().get(name)
    if writer is None:
        raise ConfigError(f"unknown map format {name!r}; expected one or more of {', '.join(list_formats())}")
    return writer


def list_formats() -> list[str]:
    """Names of every known map format, built-in first."""
    return list(dict.fromkeys([*_registered, *_load_entry_points()]))


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
    writers = [_writer(name) for name in formats]
    own_tmpdir = tmpdir is None
    tmpdir = tmpdir or prefix.parent / f".{prefix.name}.tmp-{secrets.token_hex(4)}"
    if own_tmpdir:
        prefix.parent.mkdir(parents=True, exist_ok=True)
        tmpdir.mkdir()
    try:
        files = dict(staged or {})
        for writer in writers:
            files.update(writer(job, tmpdir / "map"))
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

    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ConfigError(f"image must be (rows, cols, 3) RGB, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise ConfigError(f"image must be uint8 or float in [0, 1], got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ConfigError("image holds NaN or Inf values; expected floats in [0, 1]")
        arr = np.round(np.clip(arr, 0.0, 1.0) * 255).astype(np.uint8)     # rounded, not truncated
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        matplotlib.image.imsave(tmp, arr, format="png")
    return path


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
    """``_rgb.png``: a false-colour composite of the classified scene."""
    from .viz import false_color

    if job.scene is None or not hasattr(job.scene, "cube"):
        raise ConfigError("the rgb format draws the classified scene; give a scene, not a bare map")
    path = write_rgb_png(false_color(job.scene.cube, job.scene.wavelengths), _file(prefix, "_rgb.png"))
    return {"rgb": (path, "_rgb.png")}


@register_format("tif")
def write_tif(job: MapJob, prefix: Path, rows_per_block: int = 512) -> dict[str, tuple[Path, str]]:
    """``.tif``: the class values as a tiled, compressed GeoTIFF with the input image's transform and CRS (as
    GDAL reads its header), written a block of rows at a time. Needs the ``geo`` extra (rasterio)."""
    try:
        import rasterio
        from rasterio.transform import Affine
        from rasterio.windows import Window
    except ImportError:
        raise ConfigError("the tif format needs rasterio: install the geo extra (pip install hsi[geo])") from None
    path = _file(prefix, ".tif")
    values = job.values
    rows, cols = values.shape
    transform, crs = Affine.identity(), None
    source = _georeferenced_image(job.scene)
    if source is not None:
        with rasterio.open(source) as src:
            transform, crs = src.transform, src.crs
    names = ["Unclassified", *job.id_names]
    tif = rasterio.open(path, "w", driver="GTiff", width=cols, height=rows, count=1,
                        dtype=np.dtype(values.dtype).name, transform=transform, crs=crs, nodata=0,
                        compress="deflate", tiled=True)
    colors = np.vstack([np.zeros((1, 3), np.uint8), np.asarray(job.palette, dtype=np.uint8)])
    if np.dtype(values.dtype) == np.uint8:
        tif.write_colormap(1, {i: (*map(int, c), 255) for i, c in enumerate(colors)})
    tif.update_tags(1, class_names=",".join(names), **{f"class_{i}": name for i, name in enumerate(names)})
    tif.update_tags(label_ids=",".join(str(int(i)) for i in [0, *job.label_ids]))
    with tif:
        for r0 in range(0, rows, rows_per_block):
            block = np.asarray(values[r0:r0 + rows_per_block])
            tif.write(block, 1, window=Window(0, r0, cols, len(block)))
            release_pages(values)
    return {"tif": (path, ".tif")}


def _georeferenced_image(scene: Any) -> Path | None:
    """The ENVI image file of a scene whose header has ``map info`` (GDAL reads it beside its header)."""
    header = getattr(scene, "header", None) or {}
    if "map info" not in header and "coordinate system string" not in header:
        return None
    return image_file(Path(scene.source))
