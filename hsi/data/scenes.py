"""The Scene object and ``load_scene``: by registry name (local, tensorly, download) or by file path."""
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from . import download as _download
from .io import read_array
from .mapped import MappedCube
from .registry import SCENES, SceneInfo, find_by_file, palette_for

log = logging.getLogger("hsi")


@dataclass
class Scene:
    """A hyperspectral scene with its ground truth.

    ``cube`` is (rows, cols, bands) float32: an array, or for ENVI and .npy files a
    :class:`~hsi.data.mapped.MappedCube` left on disk (index it to read pixels); ``labels`` is (rows, cols)
    int64 with classes 0..K-1 and -1 for unlabelled pixels; ``label_ids[k]`` is class k's id in the original
    file.
    """

    cube: np.ndarray
    labels: np.ndarray
    label_ids: np.ndarray
    class_names: list
    palette: np.ndarray
    name: str
    wavelengths: np.ndarray | None = None
    source: str = ""
    header: dict | None = None      # the ENVI header entries of the cube file (georeferencing for outputs)

    @property
    def n_classes(self):
        return len(self.class_names)

    @property
    def bands(self):
        return self.cube.shape[2]

    def class_counts(self):
        """Number of labelled pixels of each class."""
        return np.bincount(self.labels[self.labels >= 0], minlength=self.n_classes)

    def __repr__(self):
        rows, cols, bands = self.cube.shape
        return (f"Scene({self.name!r}, {rows}x{cols}x{bands}, {self.n_classes} classes, "
                f"{int((self.labels >= 0).sum())} labelled pixels)")


def list_scenes():
    """Names of the known scenes, in registry order."""
    return list(SCENES)


def load_scene(source, gt=None, *, key=None, gt_key=None, data_dir=None, download=True):
    """Load a scene by registry name (``"indian_pines"``) or from a cube file and an optional label file.

    A name is looked for in ``data_dir``, ``$HSI_DATA_DIR`` and the user cache (each directly or in a
    sub-folder named after the scene); Indian Pines then falls back to the copy inside ``tensorly``;
    otherwise the files are downloaded to the cache unless ``download=False``.
    """
    path = Path(source)
    if isinstance(source, str) and source in SCENES and not path.exists():
        return _load_known(SCENES[source], data_dir, download)
    if not path.exists() and not path.suffix:
        raise ConfigError(f"unknown dataset {source!r}; known datasets: {', '.join(SCENES)} "
                          f"(or give the path of a cube file)")
    cube_info = find_by_file(path.name)
    gt_info = find_by_file(Path(gt).name) if gt is not None else None
    info = cube_info if cube_info is not None and cube_info is gt_info else None
    cube, wavelengths = read_array(path, key or _registry_key(path, cube_info, "cube_key"), "cube")
    if gt is None:
        labels = np.zeros(cube.shape[:2], dtype=np.int64)
    else:
        labels, _ = read_array(gt, gt_key or _registry_key(gt, gt_info, "gt_key"), "labels")
    return _make_scene(cube, labels, info, info.name if info else path.stem, wavelengths, str(path),
                       str(gt) if gt is not None else None)


def locate(name, data_dir=None):
    """Where a known scene can be read from: ``(cube_path, gt_path)``, ``"tensorly"``, or None."""
    info = SCENES[name]
    for folder in _search_dirs(data_dir):
        for base in (folder, folder / name):
            cube, gt = base / info.cube_file, base / info.gt_file
            if cube.is_file() and gt.is_file():
                return cube, gt
    if name == "indian_pines" and _tensorly_available():
        return "tensorly"
    return None


def fetch(name, data_dir=None):
    """Download a known scene's files into ``data_dir`` (default: the user cache); return their paths."""
    if name not in SCENES:
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(SCENES)}")
    info = SCENES[name]
    folder = Path(data_dir) if data_dir else _download.cache_dir() / name
    paths = []
    for filename, url, sha in ((info.cube_file, info.cube_url, info.cube_sha256),
                               (info.gt_file, info.gt_url, info.gt_sha256)):
        dest = folder / filename
        if not dest.is_file():
            _download.download(url, dest, sha)
        paths.append(dest)
    return tuple(paths)


def _load_known(info: SceneInfo, data_dir, download):
    where = locate(info.name, data_dir)
    if where is None:
        if not download:
            dirs = ", ".join(str(d) for d in _search_dirs(data_dir))
            raise DataError(f"dataset {info.name!r} not found in {dirs} and download=False; "
                            f"expected {info.cube_file} and {info.gt_file}")
        where = fetch(info.name)
    if where == "tensorly":
        return _load_tensorly(info)
    cube_path, gt_path = where
    cube, wavelengths = read_array(cube_path, _registry_key(cube_path, info, "cube_key"), "cube")
    labels, _ = read_array(gt_path, _registry_key(gt_path, info, "gt_key"), "labels")
    return _make_scene(cube, labels, info, info.name, wavelengths, str(cube_path), str(gt_path))


def _load_tensorly(info):
    from tensorly.datasets import load_indian_pines

    bunch = load_indian_pines()
    cube = np.asarray(bunch.tensor)
    return _make_scene(cube, np.asarray(bunch.ticks[0]), info, info.name,
                       np.asarray(bunch.ticks[1], dtype=np.float64), "tensorly.datasets.load_indian_pines()", None)


def _make_scene(cube, labels, info, name, wavelengths, source, gt_source):
    where_gt = gt_source or source
    if labels.shape != cube.shape[:2]:
        raise DataError(f"{where_gt}: label map is {labels.shape[0]}x{labels.shape[1]} but the cube {source} is "
                        f"{cube.shape[0]}x{cube.shape[1]}; expected the same rows and columns")
    mapped = isinstance(cube, MappedCube)
    if not mapped and not np.all(np.isfinite(cube)):
        bad = int(np.size(cube) - np.count_nonzero(np.isfinite(cube)))
        raise DataError(f"{source}: the cube holds {bad} NaN or Inf values; expected finite numbers")
    raw = labels.astype(np.int64)
    if raw.min(initial=0) < 0:
        raise DataError(f"{where_gt}: negative labels {sorted(set(raw[raw < 0].tolist()))[:5]}; "
                        f"expected 0 for unlabelled and positive class ids")
    if mapped:
        _drop_nodata_labels(cube, raw, where_gt)
    present = np.unique(raw[raw > 0])
    if info is not None:
        label_ids = np.array(sorted(info.classes), dtype=np.int64)
        unknown = np.setdiff1d(present, label_ids)
        if unknown.size:
            raise DataError(f"{where_gt}: label ids {unknown.tolist()} are not classes of {info.name} "
                            f"(expected {label_ids.tolist()})")
        class_names = [info.classes[i] for i in label_ids]
    else:
        label_ids = present
        class_names = [f"class {i}" for i in label_ids]
    lookup = np.full(int(raw.max(initial=0)) + 1, -1, dtype=np.int64)
    lookup[label_ids[label_ids < lookup.size]] = np.arange(len(label_ids))[label_ids < lookup.size]
    if wavelengths is not None and len(wavelengths) != cube.shape[2]:
        wavelengths = None
    return Scene(cube=cube if mapped else np.ascontiguousarray(cube, dtype=np.float32), labels=lookup[raw],
                 label_ids=label_ids, class_names=class_names, palette=palette_for(label_ids) if len(label_ids)
                 else np.zeros((0, 3), np.uint8), name=name, wavelengths=wavelengths, source=source,
                 header=getattr(cube, "header", None))


def _drop_nodata_labels(cube, raw, where_gt):
    """Unlabel (in place) the labelled pixels that are no-data in the cube: they are never trained on."""
    if cube.dropped_bands:
        log.info("%s: %d bad bands dropped (bbl): %s", cube.source, len(cube.dropped_bands), cube.dropped_bands)
    if cube.ignore_value is None:
        return
    rows, cols = np.nonzero(raw > 0)
    empty = cube.nodata((rows, cols))
    if empty.any():
        log.info("%s: %d labelled pixels are no-data (data ignore value %g) and are left unlabelled",
                 where_gt, int(empty.sum()), cube.ignore_value)
        raw[rows[empty], cols[empty]] = 0


def _registry_key(path, info, field):
    """The registry's .mat key for this file, unless the file (e.g. a re-saved copy) does not use it."""
    if info is None or Path(path).suffix.lower() != ".mat":
        return None
    try:
        import scipy.io

        names = [n for n, *_ in scipy.io.whosmat(path)]
    except Exception:
        return None
    key = getattr(info, field)
    return key if key in names else None


def _search_dirs(data_dir):
    dirs = [Path(data_dir)] if data_dir else []
    if os.environ.get("HSI_DATA_DIR"):
        dirs.append(Path(os.environ["HSI_DATA_DIR"]))
    dirs.append(_download.cache_dir())
    return dirs


def _tensorly_available():
    import importlib.util

    return importlib.util.find_spec("tensorly") is not None
