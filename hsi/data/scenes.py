"""The Scene object and ``load_scene``: by registry name (local, tensorly, download) or by file path; the record of
where a scene was read from (``scene_record``) and loading it again from that record (``load_recorded``)."""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError, DataError
from . import download as _download
from .io import read_array
from .mapped import Cube, MappedCube
from .registry import SCENES, SceneInfo, find_by_file, palette_for
from .vector import is_vector, rasterize_labels

log = logging.getLogger("hsi")
_LARGEST_ID = int(np.iinfo(np.int32).max)      # map.npy holds label ids as int32
Record = dict[str, Any]     # a scene_record: JSON, as config.json keeps it


@dataclass
class Scene:
    """A hyperspectral scene with its ground truth.

    ``cube`` is (rows, cols, bands) float32: an array, or for ENVI and .npy files a
    :class:`~hsi.data.mapped.MappedCube` left on disk (index it to read pixels); ``labels`` is (rows, cols)
    int64 with classes 0..K-1 and -1 for unlabelled pixels; ``label_ids[k]`` is class k's id in the original file.

    Label numbering: the Python API (``labels``, ``hsi.predict_scene``, metrics dicts, ``class_names[k]``,
    ``palette[k]``) uses class indices 0..K-1; everything written for people to read (``map.npy``, ``report.txt``,
    ``summary.md``, figures) uses the ground-truth file's own ids ``label_ids[k]``, with names (an ENVI
    classification image stores k + 1, its header naming each value).
    ``origin`` says which files were read (``None`` for a scene built in memory).
    """

    cube: Cube
    labels: npt.NDArray[np.int64]
    label_ids: npt.NDArray[np.int64]
    class_names: list[str]
    palette: npt.NDArray[np.uint8]
    name: str
    wavelengths: np.ndarray | None = None
    source: str = ""
    origin: Record | None = None
    header: dict[str, str] | None = None     # the ENVI header entries of the cube file (georeferencing for outputs)
    parcels: np.ndarray | None = None   # polygon ground truth: each labelled pixel's polygon (parcel), -1 elsewhere

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def bands(self) -> int:
        return self.cube.shape[2]

    def class_counts(self) -> npt.NDArray[np.intp]:
        """Number of labelled pixels of each class."""
        return np.bincount(self.labels[self.labels >= 0], minlength=self.n_classes)

    def __repr__(self) -> str:
        rows, cols, bands = self.cube.shape
        return (f"Scene({self.name!r}, {rows}x{cols}x{bands}, {self.n_classes} classes, "
                f"{int((self.labels >= 0).sum())} labelled pixels)")


def class_indices(ids: npt.ArrayLike, label_ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The class index ``k`` of each label id in ``ids`` (``label_ids[k] == id``), -1 for an id not among
    ``label_ids`` (0, unlabelled, included). Found by binary search: the memory grows with the number of pixels
    and classes, never with the largest id."""
    ids = np.asarray(ids)
    label_ids = np.asarray(label_ids, dtype=np.int64).ravel()
    if not label_ids.size:
        return np.full(ids.shape, -1, dtype=np.int64)
    order = np.argsort(label_ids, kind="stable")
    ordered = label_ids[order]
    at = np.minimum(np.searchsorted(ordered, ids), ordered.size - 1)
    return np.where(ordered[at] == ids, order[at], -1).astype(np.int64)


def list_scenes() -> list[str]:
    """Names of the known scenes, in registry order."""
    return list(SCENES)


def load_scene(source: str | Path, gt: str | Path | None = None, *, key: str | None = None,
               gt_key: str | None = None, data_dir: str | Path | None = None, download: bool = True,
               label_field: str | None = None, gt_layer: str | None = None, overlap: str = "refuse") -> Scene:
    """Load a scene by registry name (``"indian_pines"``) or from a cube file and an optional label file.

    A label file may be polygons (GeoPackage, Shapefile, GeoJSON): ``label_field`` names the class attribute,
    ``gt_layer`` the layer, ``overlap`` the rule for pixels inside polygons of different classes (see
    :func:`hsi.data.vector.rasterize_labels`); the classes are named by the attribute's values.

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
    origin = _files_origin(path, gt, key, gt_key)
    classes: dict[int, str] | None = None
    parcels: np.ndarray | None = None
    if gt is None:
        labels = np.zeros(cube.shape[:2], dtype=np.int64)
    elif is_vector(gt):
        labels, classes, vector, parcels = rasterize_labels(gt, cube, field=label_field, layer=gt_layer,
                                                            overlap=overlap)
        origin.update(label_field=label_field, gt_layer=gt_layer, overlap=overlap, vector=vector)
    else:
        labels, _ = read_array(gt, gt_key or _registry_key(gt, gt_info, "gt_key"), "labels")
    scene = _make_scene(cube, labels, info, info.name if info else path.stem, wavelengths, str(path),
                        str(gt) if gt is not None else None, origin)
    if classes is not None and parcels is not None:
        scene.class_names = [classes[int(i)] for i in scene.label_ids]
        scene.parcels = np.where(scene.labels >= 0, parcels, -1)
    return scene


def _vector_options(record: Record) -> dict[str, Any]:
    """The polygon options a :func:`scene_record` kept, to read its ground truth again the same way."""
    return {k: record[k] for k in ("label_field", "gt_layer", "overlap") if k in record}


def locate(name: str, data_dir: str | Path | None = None) -> tuple[Path, Path] | Literal["tensorly"] | None:
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


def fetch(name: str, data_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Download a known scene's files into ``data_dir`` (default: the user cache); return their paths."""
    if name not in SCENES:
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(SCENES)}")
    info = SCENES[name]
    folder = Path(data_dir) if data_dir else _download.cache_dir() / name
    paths: list[Path] = []
    for filename, url, sha in ((info.cube_file, info.cube_url, info.cube_sha256),
                               (info.gt_file, info.gt_url, info.gt_sha256)):
        dest = folder / filename
        if not dest.is_file():
            try:
                _download.download(url, dest, sha)
            except DataError as exc:
                raise DataError(f"{exc}; {name} needs both its cube {info.cube_file} and its ground truth "
                                f"{info.gt_file}: fetch them by hand ({info.cube_url} and {info.gt_url}) and "
                                f"put both into {folder.resolve()}") from None
        paths.append(dest)
    return paths[0], paths[1]


def _load_known(info: SceneInfo, data_dir: str | Path | None, download: bool) -> Scene:
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
    return _make_scene(cube, labels, info, info.name, wavelengths, str(cube_path), str(gt_path),
                       _files_origin(cube_path, gt_path, None, None))


def _load_tensorly(info: SceneInfo) -> Scene:
    import tensorly
    from tensorly.datasets import load_indian_pines

    bunch = load_indian_pines()
    cube = np.asarray(bunch.tensor)
    return _make_scene(cube, np.asarray(bunch.ticks[0]), info, info.name,
                       np.asarray(bunch.ticks[1], dtype=np.float64), "tensorly.datasets.load_indian_pines()", None,
                       {"tensorly": tensorly.__version__, "dataset": info.name})


def _files_origin(cube: str | Path, gt: str | Path | None, key: str | None, gt_key: str | None) -> Record:
    return {"cube": str(Path(cube).resolve()), "gt": str(Path(gt).resolve()) if gt is not None else None,
            "key": key, "gt_key": gt_key}


def scene_record(scene: Scene) -> Record:
    """What ``config.json`` keeps about where ``scene`` came from, enough for :func:`load_recorded`.

    Files: their resolved absolute paths, sizes and sha256. The copy inside ``tensorly``: its version (its
    ``.npy`` files live inside whichever environment runs, so their paths would say nothing elsewhere). Always:
    ``arrays_sha256``, the sha256 of the scene as loaded (float32 cube, int64 labels, label ids), which
    identifies the data whatever file format or folder holds it.
    """
    record = dict(scene.origin or {})
    for role in ("cube", "gt"):
        if record.get(role):
            path = Path(record[role])
            record[role] = {"path": str(path), "size": path.stat().st_size, "sha256": _download.sha256_of(path)}
    return {**record, "arrays_sha256": arrays_sha256(scene)}


def arrays_sha256(scene: Scene, chunk_rows: int = 64) -> str:
    """sha256 of the float32 cube (read ``chunk_rows`` rows at a time, so a mapped cube stays on disk, its pages
    released after each), the int64 labels and the label ids."""
    digest = hashlib.sha256()
    for start in range(0, scene.cube.shape[0], chunk_rows):
        digest.update(np.ascontiguousarray(scene.cube[start:start + chunk_rows], dtype=np.float32).tobytes())
        if isinstance(scene.cube, MappedCube):
            scene.cube.release()
    for array in (scene.labels.astype(np.int64), scene.label_ids.astype(np.int64)):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


_POINT_ELSEWHERE = "--data-dir FOLDER (the folder that now holds the files) or --cube CUBE --gt LABELS"


def load_recorded(record: Record, *, cube: str | Path | None = None, gt: str | Path | None = None,
                  key: str | None = None, gt_key: str | None = None, data_dir: str | Path | None = None,
                  verify: bool = True) -> Scene:
    """Load the scene a :func:`scene_record` describes, never downloading.

    ``cube`` (with ``gt``) or ``data_dir`` (a folder holding files of the recorded names, directly or in a
    sub-folder named like the one that held them, e.g. ``salinas_a/``) point elsewhere; otherwise the recorded
    files (or tensorly) are read after checking their size and sha256. With ``verify`` the loaded arrays must be
    the ones recorded.
    """
    if cube is not None:
        scene = load_scene(cube, gt, key=key or record.get("key"), gt_key=gt_key or record.get("gt_key"),
                           download=False, **_vector_options(record))
        where = f"{cube}" + (f" and {gt}" if gt else "")
    elif not record.get("cube") and "tensorly" not in record:
        raise DataError("this run's scene was built in memory, not read from a file; give its files with "
                        "--cube CUBE --gt LABELS")
    elif data_dir is not None:
        scene, where = _load_from_folder(record, Path(data_dir)), str(data_dir)
    elif "tensorly" in record:
        scene, where = _load_recorded_tensorly(record), f"tensorly {record['tensorly']}"
    else:
        for role in ("cube", "gt"):
            if record.get(role):
                _check_recorded_file(record[role])
        scene = load_scene(record["cube"]["path"], record["gt"]["path"] if record.get("gt") else None,
                           key=record.get("key"), gt_key=record.get("gt_key"), download=False,
                           **_vector_options(record))
        where = record["cube"]["path"]
    if verify:
        check_arrays(scene, record, where)
    return scene


def check_arrays(scene: Scene, record: Record, where: str) -> None:
    """Refuse a ``scene`` (read from ``where``) whose arrays are not the ones ``record`` (a :func:`scene_record`)
    describes."""
    if arrays_sha256(scene) != record["arrays_sha256"]:
        raise DataError(f"{where}: the scene read from there is not the one this run was trained on (sha256 of "
                        f"its arrays differs from the record in config.json); point to the original with "
                        f"{_POINT_ELSEWHERE}")


def _check_recorded_file(entry: dict[str, Any]) -> None:
    path = Path(entry["path"])
    if not path.is_file():
        raise DataError(f"{path}: this run's scene file is no longer there (moved or deleted); point to it with "
                        f"{_POINT_ELSEWHERE}")
    if path.stat().st_size != entry["size"] or _download.sha256_of(path) != entry["sha256"]:
        raise DataError(f"{path}: the file changed since this run was trained (its sha256 is no longer "
                        f"{entry['sha256'][:16]}...); restore it, or point to the original with {_POINT_ELSEWHERE}")


def _load_from_folder(record: Record, folder: Path) -> Scene:
    if "tensorly" in record:
        info = SCENES[record["dataset"]]
        names: tuple[str, ...] = (info.cube_file, info.gt_file)
        sub = info.name
    else:
        names = tuple(Path(record[r]["path"]).name for r in ("cube", "gt") if record.get(r))
        sub = Path(record["cube"]["path"]).parent.name
    for base in (folder, folder / sub):
        if all((base / n).is_file() for n in names):
            paths = [base / n for n in names]
            return load_scene(paths[0], paths[1] if len(paths) > 1 else None, key=record.get("key"),
                              gt_key=record.get("gt_key"), download=False, **_vector_options(record))
    raise DataError(f"{folder}: does not hold {' and '.join(names)} (directly or in {sub}/), the files this run "
                    f"was trained on")


def _load_recorded_tensorly(record: Record) -> Scene:
    if not _tensorly_available():
        raise DataError(f"this run read {record['dataset']} from the tensorly package ({record['tensorly']}), "
                        f"which is not installed here; install it, or point to the files with {_POINT_ELSEWHERE}")
    return _load_tensorly(SCENES[record["dataset"]])


def _make_scene(cube: Cube, labels: np.ndarray, info: SceneInfo | None, name: str, wavelengths: np.ndarray | None,
                source: str, gt_source: str | None, origin: Record | None) -> Scene:
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
    if raw.max(initial=0) > _LARGEST_ID:
        raise DataError(f"{where_gt}: label ids {sorted(set(raw[raw > _LARGEST_ID].tolist()))[:5]} are too large; "
                        f"expected ids up to {_LARGEST_ID} (class maps store ids as int32)")
    if isinstance(cube, MappedCube):
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
    if wavelengths is not None and len(wavelengths) != cube.shape[2]:
        wavelengths = None
    classes = class_indices(raw, label_ids)
    return Scene(cube=cube if mapped else np.ascontiguousarray(cube, dtype=np.float32), labels=classes,
                 label_ids=label_ids, class_names=class_names, palette=palette_for(label_ids) if len(label_ids)
                 else np.zeros((0, 3), np.uint8), name=name, wavelengths=wavelengths, source=source,
                 header=getattr(cube, "header", None), origin=origin)


def _drop_nodata_labels(cube: MappedCube, raw: npt.NDArray[np.int64], where_gt: str) -> None:
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


def _registry_key(path: str | Path, info: SceneInfo | None, field: str) -> str | None:
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


def _search_dirs(data_dir: str | Path | None) -> list[Path]:
    dirs = [Path(data_dir)] if data_dir else []
    if os.environ.get("HSI_DATA_DIR"):
        dirs.append(Path(os.environ["HSI_DATA_DIR"]))
    dirs.append(_download.cache_dir())
    return dirs


def _tensorly_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorly") is not None
