"""Write class maps and images: PNG figure with legend, ``.npy`` of original label ids, ENVI classification.

Every file is written atomically: to a temporary name in its destination folder, then renamed into place,
so a crash never leaves a half-written map (and never leaves the temporary files behind).
"""
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_text_atomic
from .errors import ConfigError

FORMATS = ("png", "npy", "envi")
_SUFFIXES = {".png", ".npy", ".hdr", ".img"}


def export_map(label_map, trained, prefix, *, formats=("png", "npy"), ground_truth=None, mask_unlabelled=False,
               palette=None, title=None):
    """Write a full-scene class map in the given formats; return ``{format: path}``.

    ``label_map`` is (rows, cols) of classes 0..K-1 (-1 = no class); ``trained`` is anything with
    ``class_names``, ``label_ids`` (K original ids) and ``palette`` (K x 3 uint8), such as
    :class:`hsi.checkpoint.TrainedModel` or a :class:`hsi.data.scenes.Scene`. ``prefix`` is a path without
    suffix (``run/map``; a trailing ``.png``/``.npy``/``.hdr``/``.img`` is dropped); its folder is created.

    ``png``   ``prefix.png``: the class map with a legend of class ids and names, beside ``ground_truth`` if
              given (classes 0..K-1, -1 unlabelled); ``mask_unlabelled`` (True, or ``"both"``: beside the
              whole map) shows the map on labelled pixels only; ``title`` above it.
    ``npy``   ``prefix.npy``: int32 original label ids (``label_ids[label_map]``), 0 where there is no class.
    ``envi``  ``prefix.hdr`` + ``prefix.img``: an ENVI classification image, 0 = "Unclassified" (black),
              k + 1 = class k, with ``class names`` and ``class lookup`` colours in the header.

    ``palette`` (K x 3 uint8) replaces ``trained.palette``. Every argument is checked before anything is written.
    """
    from .viz import _check_map, _check_palette

    formats = parse_formats(formats, FORMATS)
    names = [str(n) for n in trained.class_names]
    k = len(names)
    label_ids = np.asarray(trained.label_ids).astype(np.int64).ravel()
    if label_ids.size != k:
        raise ConfigError(f"label_ids has {label_ids.size} entries but there are {k} class names; "
                          f"expected one original id per class")
    palette = _check_palette(trained.palette if palette is None else palette)
    if len(palette) != k:
        raise ConfigError(f"palette has {len(palette)} colours but there are {k} class names; "
                          f"expected one colour per class")
    classes = _check_map(label_map, "label_map", k)
    if ground_truth is not None:
        gt = _check_map(ground_truth, "ground_truth", k)
        if gt.shape != classes.shape:
            raise ConfigError(f"ground_truth is {gt.shape[0]}x{gt.shape[1]} but label_map is "
                              f"{classes.shape[0]}x{classes.shape[1]}; expected the same shape")
    elif mask_unlabelled:
        raise ConfigError(f"mask_unlabelled={mask_unlabelled!r} needs ground_truth (the labelled pixels to show)")
    if mask_unlabelled not in (False, True, "both"):
        raise ConfigError(f"mask_unlabelled must be False, True or 'both', got {mask_unlabelled!r}")

    prefix = Path(prefix)
    if prefix.suffix.lower() in _SUFFIXES:
        prefix = prefix.with_suffix("")
    if not prefix.name:
        raise ConfigError(f"prefix {str(prefix)!r} has no file name; expected a path such as run/map")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    written = {}
    for fmt in formats:
        if fmt == "npy":
            ids = np.where(classes >= 0, label_ids[np.maximum(classes, 0)], 0).astype(np.int32)
            path = _with_suffix(prefix, ".npy")
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, ids)
            written["npy"] = path
        elif fmt == "png":
            from .viz import class_map_figure, save_figure

            fig = class_map_figure(classes, names, palette, ground_truth=ground_truth,
                                   mask_unlabelled=mask_unlabelled, title=title, label_ids=label_ids)
            written["png"] = save_figure(fig, _with_suffix(prefix, ".png"))
        else:
            written["envi"] = write_envi_classification(classes, names, palette, prefix)
    return written


def parse_formats(formats, known, *, required=True):
    """``formats`` (``"png,npy"`` or a list) as a list of lower-case names, each once, in the order given; an
    unknown name, or none at all when ``required``, is a :class:`ConfigError` naming ``known``."""
    if isinstance(formats, str):
        formats = formats.split(",")
    formats = list(dict.fromkeys(str(f).strip().lower() for f in formats if str(f).strip()))
    unknown = [f for f in formats if f not in known]
    if unknown:
        raise ConfigError(f"unknown map format(s) {unknown}; expected one or more of {', '.join(known)}")
    if required and not formats:
        raise ConfigError(f"no map format given; expected one or more of {', '.join(known)}")
    return formats


def write_envi_classification(label_map, class_names, palette, prefix):
    """Write ``prefix.img`` and then ``prefix.hdr``, each atomically: value 0 = "Unclassified" (black), k + 1 =
    class k. Returns the ``.hdr`` path."""
    from .data.envi import classification_header
    from .viz import _check_map, _check_palette

    palette = _check_palette(palette)
    classes = _check_map(label_map, "label_map", len(class_names))
    values = (classes + 1).astype("u1" if len(class_names) + 1 <= 256 else "<u2")   # -1 (no class) -> 0
    prefix = Path(prefix)
    hdr, img = _with_suffix(prefix, ".hdr"), _with_suffix(prefix, ".img")
    hdr.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(img) as tmp:
        values.tofile(tmp)
    write_text_atomic(hdr, classification_header(values.shape, values.dtype, class_names, palette))
    return hdr


def write_rgb_png(image, path):
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


def _with_suffix(prefix, suffix):
    return prefix.with_name(prefix.name + suffix)
