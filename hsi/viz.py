"""Figures: confusion matrix, training curves, class maps with a legend, false-colour composites.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot state, never ``show``), so it
works headless, in scripts and in notebooks (a returned figure displays itself in Jupyter).
Save with :func:`save_figure`, which writes atomically.
"""
from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import atomic_path
from .checks import is_whole
from .errors import ConfigError
from .metrics import best_epoch

#: Target wavelengths (nm) of the red, green and blue channels of :func:`false_color`.
RGB_NM = (650.0, 550.0, 470.0)
UNLABELLED_COLOR = (0, 0, 0)
_MAX_ANNOTATED = 25     # confusion matrices up to this many classes get numbers in their cells

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_figure(fig: Figure, path: str | Path, dpi: float = 150) -> Path:
    """Write ``fig`` to ``path`` atomically (format from the suffix, e.g. ``.png``, ``.pdf``, ``.svg``); close it.

    The parent folder is created if needed. Returns the path.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    supported = FigureCanvasBase.get_supported_filetypes()
    if fmt not in supported:
        raise ConfigError(f"cannot save a figure as {path}: the suffix {path.suffix!r} is not an image format; "
                          f"expected one of {', '.join('.' + f for f in sorted(supported))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", pad_inches=0.1, facecolor="white")
    finally:
        _close(fig)
    return path


def _close(fig: Figure) -> None:
    if "matplotlib.pyplot" in sys.modules:      # only a pyplot-made figure is registered anywhere
        sys.modules["matplotlib.pyplot"].close(fig)


def _figure(figsize: tuple[float, float], **kwargs: Any) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained", **kwargs)


def confusion_matrix_figure(cm: np.ndarray | Sequence[Sequence[int]], class_names: Sequence[str],
                            normalize: bool = True, label_ids: Sequence[int] | np.ndarray | None = None) -> Figure:
    """Heat map of a K x K confusion matrix (rows = true class, columns = predicted class).

    With ``normalize`` the colour is the fraction of each row's total (recall on the diagonal; an empty row
    stays 0). Cells are annotated with their pixel counts when K <= 25 (so a single error never reads as 0);
    zero cells are left blank for readability. Ticks show each class name with its ``label_ids`` entry (the
    ground truth file's id), or with its index 0..K-1 without ``label_ids``.
    """
    cm = np.asarray(cm)
    names = [str(n) for n in class_names]
    k = len(names)
    ids = _check_ids(label_ids, k)
    if cm.ndim != 2 or cm.shape != (k, k):
        raise ConfigError(f"confusion matrix has shape {cm.shape}; expected ({k}, {k}) for {k} class names")
    counts = cm.astype(np.float64)
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        vmax = 1.0
    else:
        values = counts
        vmax = max(float(counts.max(initial=0)), 1.0)

    side = min(max(4.5, 0.42 * k + 2.5), 16)
    fig = _figure((side + 1.2, side))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest")
    cbar = fig.colorbar(image, ax=ax, shrink=0.8)
    cbar.set_label("fraction of the true class" if normalize else "pixels")
    ax.set_xticks(range(k), [f"{n} ({i})" for i, n in zip(ids, names)], rotation=45, ha="right",
                  rotation_mode="anchor", fontsize=_tick_size(k))
    ax.set_yticks(range(k), [f"({i}) {n}" for i, n in zip(ids, names)], fontsize=_tick_size(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix" + (" (colour: fraction of the true class; numbers: pixels)" if normalize
                                       else " (pixel counts)"))
    if k <= _MAX_ANNOTATED:
        size = 9 if k <= 10 else 7 if k <= 16 else 6
        for i in range(k):
            for j in range(k):
                if counts[i, j] == 0:
                    continue
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=size,
                        color="white" if values[i, j] > 0.55 * vmax else "black")
    return fig


def _tick_size(k: int) -> int:
    return 9 if k <= 12 else 8 if k <= 20 else 6


def curves_figure(history: Sequence[Mapping[str, Any]], checkpoint_on: str = "val") -> Figure:
    """Loss and overall accuracy per epoch, training and validation (two panels).

    ``history`` is a list of dicts with ``epoch, train_loss, train_oa, val_loss, val_oa`` (accuracies as
    fractions; validation values may be NaN when there is no validation set). The best validation epoch
    (highest OA, ties to the lower loss, as ``best.pt``) is marked.
    """
    if not history:
        raise ConfigError("history is empty; expected at least one epoch row")
    missing = {"epoch", "train_loss", "train_oa", "val_loss", "val_oa"} - set(history[0])
    if missing:
        raise ConfigError(f"history rows lack {sorted(missing)}; expected epoch, train_loss, train_oa, "
                          f"val_loss, val_oa")

    def column(key: str) -> np.ndarray:
        return np.array([float(row.get(key, math.nan)) for row in history], dtype=np.float64)

    epochs = column("epoch")
    marker = "o" if len(history) <= 30 else None
    fig = _figure((10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, key, scale, label in ((ax_loss, "loss", 1, "loss"), (ax_acc, "oa", 100, "overall accuracy (%)")):
        train, val = column(f"train_{key}"), column(f"val_{key}")
        ax.plot(epochs, scale * train, marker=marker, markersize=3, label="train")
        if np.isfinite(val).any():
            ax.plot(epochs, scale * val, marker=marker, markersize=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    val_oa = column("val_oa")
    if np.isfinite(val_oa).any() or checkpoint_on != "val":
        best = best_epoch(history, checkpoint_on)
        rule = {"val": "best validation", "train": "best training", "last": "last"}[checkpoint_on]
        for ax in (ax_loss, ax_acc):
            ax.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"{rule} (epoch {best})")
    ax_loss.set_title("loss")
    ax_acc.set_title("overall accuracy" + ("" if np.isfinite(val_oa).any() else " (no validation set)"))
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))      # epochs are whole numbers
        if np.unique(epochs).size == 1:
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
            ax.set_xticks([epochs[0]])
    ax_loss.legend(fontsize=8)
    ax_acc.legend(fontsize=8)
    return fig


def label_map_rgb(label_map: np.ndarray, palette: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    """(rows, cols, 3) uint8 image of a class map: class k gets ``palette[k]``, -1 (no class) is black."""
    palette = _check_palette(palette)
    classes = _check_map(label_map, "label_map", len(palette))
    lookup = np.vstack([palette, np.array([UNLABELLED_COLOR], dtype=np.uint8)])   # index -1 -> last row
    return lookup[classes]


def class_map_figure(label_map: np.ndarray, class_names: Sequence[str], palette: np.ndarray | Sequence[Sequence[int]],
                     *, ground_truth: np.ndarray | None = None, mask_unlabelled: bool | str = False,
                     title: str | None = None, map_title: str = "predicted classes",
                     label_ids: Sequence[int] | np.ndarray | None = None,
                     trained: np.ndarray | None = None) -> Figure:
    """The class map in the palette's colours with a legend of class names outside the image.

    ``label_map`` holds classes 0..K-1 (-1 = unlabelled, black) and is titled ``map_title`` (pass
    ``"ground truth"`` to draw a label map alone). ``trained`` (bool, rows x cols) marks the training and
    validation pixels: faded in the labelled-pixels panel, whose title gives the OA on the other (test) labelled
    pixels. ``ground_truth`` (same shape, -1 = unlabelled, black) is
    drawn side by side. With ``mask_unlabelled=True`` the map is only shown where the ground truth is labelled;
    with ``"both"`` the whole map and the masked map are drawn side by side, as papers show them (both need
    ``ground_truth``). With ``label_ids`` the legend gives each class's id in the ground truth file.
    """
    names = [str(n) for n in class_names]
    if label_ids is not None:
        names = [f"{i} {n}" for i, n in zip(_check_ids(label_ids, len(names)), names)]
    palette = _check_palette(palette)
    if len(palette) != len(names):
        raise ConfigError(f"palette has {len(palette)} colours but there are {len(names)} class names; "
                          f"expected one colour per class")
    shown = _check_map(label_map, "label_map", len(names))
    panels = []
    gt = None
    if ground_truth is not None:
        gt = _check_map(ground_truth, "ground_truth", len(names))
        if gt.shape != shown.shape:
            raise ConfigError(f"ground_truth is {gt.shape[0]}x{gt.shape[1]} but label_map is "
                              f"{shown.shape[0]}x{shown.shape[1]}; expected the same shape")
    if mask_unlabelled not in (False, True, "both"):
        raise ConfigError(f"mask_unlabelled must be False, True or 'both', got {mask_unlabelled!r}")
    if mask_unlabelled and gt is None:
        raise ConfigError(f"mask_unlabelled={mask_unlabelled!r} needs ground_truth (the labelled pixels to show)")
    if mask_unlabelled in (False, "both"):
        panels.append((map_title, shown))
    if mask_unlabelled in (True, "both") and gt is not None:
        scored = (gt >= 0) if trained is None else (gt >= 0) & ~np.asarray(trained, dtype=bool)
        what = "labelled" if trained is None else "test"
        oa = f"\nOA {100 * float((shown[scored] == gt[scored]).mean()):.2f} % on {int(scored.sum()):,} {what} " \
             f"pixels" + ("" if trained is None else "; training/validation faded") if scored.any() else ""
        panels.append((f"{map_title} (labelled pixels){oa}", np.where(gt >= 0, shown, -1)))
    if gt is not None:
        panels.append(("ground truth", gt))

    rows, cols = shown.shape
    panel_w = 4.2
    panel_h = panel_w * rows / cols
    if panel_h > 6.5:                         # tall scenes (Salinas, Pavia): keep the figure a sane height
        panel_w, panel_h = panel_w * 6.5 / panel_h, 6.5
    legend_rows = len(names) + int(any((p < 0).any() for _, p in panels))
    legend_w = 0.9 + 0.075 * max(len(n) for n in names)
    height = max(panel_h + (0.9 if title else 0.6), 0.25 * legend_rows + 0.6)
    fig = _figure((len(panels) * panel_w + legend_w, height))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, classes) in zip(axes, panels):
        rgb = label_map_rgb(classes, palette)
        if trained is not None and "(labelled pixels)" in name:
            rgb = faded(rgb, np.asarray(trained, dtype=bool))
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)

    from matplotlib.patches import Patch

    handles = [Patch(facecolor=tuple(palette[k] / 255.0), edgecolor="0.3", label=f"{names[k]}")
               for k in range(len(names))]
    if any((p < 0).any() for _, p in panels):
        handles.append(Patch(facecolor=tuple(np.array(UNLABELLED_COLOR) / 255.0), edgecolor="0.3",
                             label="unlabelled"))
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False, title="classes",
               title_fontsize=9, handlelength=1.4)
    return fig


def rgb_bands(n_bands: int, wavelengths: np.ndarray | Sequence[float] | None = None) -> tuple[int, ...]:
    """Band indices ``(r, g, b)`` used by :func:`false_color`.

    With wavelengths (nm, or micrometres, recognised by values below 100): the bands nearest to red 650 nm,
    green 550 nm and blue 470 nm, an approximate true-colour composite (for AVIRIS scenes such as Indian
    Pines and Salinas). Without: three evenly spaced bands (at 3/4, 1/2 and 1/4 of the band range, so
    longer wavelengths go to red).
    """
    if n_bands < 1:
        raise ConfigError(f"the cube has {n_bands} bands; expected at least one")
    if wavelengths is None:
        return tuple(int(round(f * (n_bands - 1))) for f in (0.75, 0.5, 0.25))
    wl = np.asarray(wavelengths, dtype=np.float64).ravel()
    if wl.size != n_bands or not np.all(np.isfinite(wl)):
        raise ConfigError(f"wavelengths has {wl.size} values (finite: {bool(np.all(np.isfinite(wl)))}) but the "
                          f"cube has {n_bands} bands; expected one finite wavelength per band")
    return tuple(int(np.argmin(np.abs(_nanometres(wl) - target))) for target in RGB_NM)


RgbSpec = str | Sequence[int | str] | None

_RGB_USAGE = ("three band indices counted from 0 (R,G,B, e.g. 29,19,9) or three wavelengths (e.g. "
              "640nm,550nm,460nm)")


def parse_rgb_bands(spec: RgbSpec) -> tuple[int | float, ...] | None:
    """``spec`` (``"29,19,9"``, ``"640nm,550nm,460nm"`` or a list of such values) as three band indices (ints,
    counted from 0) or wavelengths in nm (floats); None stays None (the default bands of :func:`rgb_bands`).
    Anything else is a :class:`~hsi.errors.ConfigError`; the range is checked against a scene by
    :func:`choose_rgb_bands`."""
    if spec is None:
        return None
    items: Sequence[object] = spec.split(",") if isinstance(spec, str) else \
        spec if isinstance(spec, Sequence) and not isinstance(spec, bytes) else [spec]
    values: list[int | float] = []
    for item in items:
        text = item.strip().lower() if isinstance(item, str) else None
        if is_whole(item, 0):
            values.append(int(item))  # type: ignore[call-overload]
        elif text is not None and re.fullmatch(r"\d+", text):
            values.append(int(text))
        elif text is not None and re.fullmatch(r"\d+(\.\d*)?\s*nm", text):
            values.append(float(text[:-2]))
        else:
            values = []
            break
    if len(values) != 3:
        raise ConfigError(f"--rgb-bands expects {_RGB_USAGE}, got {spec!r}")
    return tuple(values)


def _nanometres(wavelengths: np.ndarray | Sequence[float]) -> np.ndarray:
    wl = np.asarray(wavelengths, dtype=np.float64).ravel()
    return wl * 1000.0 if wl.max() < 100 else wl          # micrometres


def choose_rgb_bands(spec: RgbSpec, n_bands: int,
                     wavelengths: np.ndarray | Sequence[float] | None = None) -> tuple[int, int, int]:
    """The band indices ``(r, g, b)`` that ``spec`` (see :func:`parse_rgb_bands`) names in a cube of ``n_bands``
    bands: indices as given, a wavelength as the band nearest to it; ``spec`` None: :func:`rgb_bands`."""
    parsed = parse_rgb_bands(spec)
    if parsed is None:
        r, g, b = rgb_bands(n_bands, wavelengths)
        return r, g, b
    chosen = []
    for value in parsed:
        if isinstance(value, float):
            if wavelengths is None:
                raise ConfigError(f"--rgb-bands {spec!r} names wavelengths, but the scene records none; give "
                                  f"three band indices counted from 0 (0..{n_bands - 1})")
            chosen.append(int(np.argmin(np.abs(_nanometres(wavelengths) - value))))
        elif value >= n_bands:
            raise ConfigError(f"--rgb-bands {spec!r}: band {value} is out of range; the scene has {n_bands} bands, "
                              f"counted from 0 (0..{n_bands - 1})")
        else:
            chosen.append(value)
    return chosen[0], chosen[1], chosen[2]


def rgb_caption(bands: Sequence[int], wavelengths: np.ndarray | Sequence[float] | None = None) -> str:
    """``R band 29 (650 nm), G band 19 (550 nm), B band 9 (470 nm)``: the bands of a composite (counted from 0),
    with their wavelengths when known."""
    wl = None if wavelengths is None else _nanometres(wavelengths)
    return ", ".join(f"{c} band {b}" + ("" if wl is None else f" ({wl[b]:.0f} nm)") for c, b in zip("RGB", bands))


def false_color(cube: np.ndarray, wavelengths: np.ndarray | Sequence[float] | None = None, *,
                bands: Sequence[int] | None = None) -> np.ndarray:
    """(rows, cols, 3) float32 image in [0, 1] from three bands of a (rows, cols, bands) cube.

    Bands: ``bands=(r, g, b)`` if given, else :func:`rgb_bands` (nearest to 650 / 550 / 470 nm when the
    wavelengths are known, an approximate true-colour view; else three evenly spaced bands). Each channel is
    stretched linearly between its 2nd and 98th percentiles and clipped. A memory-mapped cube is read one band at
    a time.
    """
    if not hasattr(cube, "shape") or not hasattr(cube, "__getitem__"):
        cube = np.asarray(cube)
    if len(cube.shape) != 3:
        raise ConfigError(f"cube must be (rows, cols, bands), got shape {cube.shape}")
    n = cube.shape[2]
    if bands is None:
        bands = rgb_bands(n, wavelengths)
    else:
        bands = tuple(bands)
        if len(bands) != 3 or not all(is_whole(b, -n) and b < n for b in bands):
            raise ConfigError(f"bands must be three band indices within 0..{n - 1}, got {bands!r}")
    image = np.empty(cube.shape[:2] + (3,), dtype=np.float32)
    for c, b in enumerate(bands):
        band = np.asarray(cube[:, :, b]).astype(np.float64)
        lo, hi = np.percentile(band, [2, 98])
        if hi <= lo:
            image[:, :, c] = 0.0 if hi == 0 else 0.5
        else:
            image[:, :, c] = np.clip((band - lo) / (hi - lo), 0.0, 1.0)
    return image


def false_color_figure(cube: np.ndarray, wavelengths: np.ndarray | Sequence[float] | None = None,
                       title: str | None = None, *, bands: Sequence[int] | None = None) -> Figure:
    """A figure of :func:`false_color` with the chosen bands (and their wavelengths) in the caption."""
    cube = np.asarray(cube)
    image = false_color(cube, wavelengths, bands=bands)
    chosen = tuple(bands) if bands is not None else rgb_bands(cube.shape[2], wavelengths)
    rows, cols = image.shape[:2]
    width, height = 5.0, 5.0 * rows / cols
    if height > 8.0:
        width, height = width * 8.0 / height, 8.0
    fig = _figure((width, height + 0.7))
    ax = fig.add_subplot()
    ax.imshow(image, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title((f"{title}\n" if title else "") + rgb_caption(chosen, wavelengths), fontsize=9)
    return fig


def titled_image_figure(image: np.ndarray, caption: str, min_width: int = 600, dpi: int = 100) -> Figure:
    """A figure showing ``image`` (rows, cols, 3 uint8) pixel for pixel, each pixel an integer block of the
    smallest size that makes it ``min_width`` pixels wide, under ``caption``; saved at ``dpi`` with
    ``fig.savefig(..., dpi=dpi)`` (no tight bounding box), its lowest rows are the image, unresampled."""
    import textwrap

    cols = image.shape[1]
    scale = max(1, -(-min_width // cols))
    shown = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    width = shown.shape[1]
    lines = [line for text in caption.splitlines() for line in textwrap.wrap(text, max(20, width // 6)) or [""]]
    band = 16 * len(lines) + 12
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / dpi, (shown.shape[0] + band) / dpi), dpi=dpi, facecolor="white")
    fig.figimage(shown, xo=0, yo=0, origin="upper")
    fig.text(0.5, 1 - 6 / (shown.shape[0] + band), "\n".join(lines), ha="center", va="top", fontsize=8.5,
             linespacing=1.3)
    return fig


def _check_ids(label_ids: Sequence[int] | np.ndarray | None, k: int) -> list[int]:
    """The K numbers shown for the classes: ``label_ids`` (checked), or the indices 0..K-1."""
    if label_ids is None:
        return list(range(k))
    ids = [int(i) for i in np.asarray(label_ids).ravel()]
    if len(ids) != k:
        raise ConfigError(f"label_ids has {len(ids)} entries but there are {k} class names; expected one id per "
                          f"class")
    return ids


def _check_palette(palette: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    arr = np.asarray(palette)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ConfigError(f"palette must be K x 3 RGB colours, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ConfigError("palette colours must be 0..255 (uint8)")
        arr = arr.astype(np.uint8)
    return arr


def _check_map(label_map: np.ndarray, what: str, k: int) -> np.ndarray:
    arr = np.asarray(label_map)
    if arr.ndim != 2:
        raise ConfigError(f"{what} must be a (rows, cols) array of classes, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError(f"{what} must hold integer classes 0..{k - 1} (-1 = none), got dtype {arr.dtype}")
    if arr.size and (arr.min() < -1 or arr.max() >= k):
        bad = sorted(set(arr[(arr < -1) | (arr >= k)].tolist()))[:5]
        raise ConfigError(f"{what} holds {bad} outside -1..{k - 1}; expected classes 0..{k - 1} "
                          f"(-1 = no class) for {k} classes")
    return arr.astype(np.int64, copy=False)


def faded(rgb: np.ndarray, mask: np.ndarray, keep: float = 0.35) -> np.ndarray:
    """``rgb`` (rows, cols, 3 uint8) with the pixels of ``mask`` blended towards white (``keep`` of the colour)."""
    out = rgb.copy()
    out[mask] = np.round(keep * rgb[mask] + (1 - keep) * 255).astype(np.uint8)
    return out


def comparison_maps_figure(maps: Mapping[str, np.ndarray], ground_truth: np.ndarray, class_names: Sequence[str],
                           palette: np.ndarray | Sequence[Sequence[int]],
                           label_ids: Sequence[int] | np.ndarray | None = None, *,
                           trained: np.ndarray | None = None, title: str | None = None) -> Figure:
    """The ground truth and one class map per model side by side, with one legend.

    ``maps`` is ``{title: (rows, cols) classes 0..K-1}``; ``ground_truth`` holds classes 0..K-1 and -1.
    ``trained`` (bool, rows x cols) marks the training and validation pixels, drawn faded in every panel;
    ``title`` goes above (e.g. the seed)."""
    names = [str(n) for n in class_names]
    palette = _check_palette(palette)
    panels = [("ground truth", _check_map(ground_truth, "ground_truth", len(names)))]
    panels += [(str(title), _check_map(m, f"map {title!r}", len(names))) for title, m in maps.items()]
    columns = min(len(panels), 4)
    grid_rows = math.ceil(len(panels) / columns)
    rows, cols = panels[0][1].shape
    panel_w = 3.2
    panel_h = min(panel_w * rows / cols, 6.0)
    fig = _figure((columns * panel_w + 2.2, grid_rows * (panel_h + 0.4)))
    axes = np.atleast_1d(fig.subplots(grid_rows, columns, squeeze=False)).ravel()
    for ax, (name, classes) in zip(axes, panels):
        rgb = label_map_rgb(classes, palette)
        ax.imshow(rgb if trained is None else faded(rgb, trained), interpolation="nearest")
        ax.set_title(name, fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    from matplotlib.patches import Patch

    ids = label_ids if label_ids is not None else range(len(names))
    handles = [Patch(facecolor=palette[k] / 255.0, edgecolor="0.3", label=f"{i} {names[k]}")
               for k, i in enumerate(ids)]
    if trained is not None:
        handles.append(Patch(facecolor=faded(np.array([[[90, 90, 90]]], np.uint8), np.ones((1, 1), bool))[0, 0]
                             / 255.0, edgecolor="0.3", label="faded: training and\nvalidation pixels"))
    fig.legend(handles=handles, loc="outside right center", fontsize=7, frameon=False, title="classes",
               title_fontsize=8, handlelength=1.2)
    return fig


def per_class_figure(stats: Mapping[str, Sequence[tuple[float, float] | tuple[None, None]]],
                     class_names: Sequence[str], label_ids: Sequence[int] | np.ndarray | None = None) -> Figure:
    """Grouped bars of per-class accuracy (%): ``stats`` is ``{model: [(mean, std) or (None, None) per class]}``.
    The accuracy axis starts at 0 so differences are not exaggerated; error bars show the std over seeds,
    clipped to the possible 0..100 %; the legend sits above the axes, clear of the bars."""
    names = [str(n) for n in class_names]
    ids = list(label_ids) if label_ids is not None else list(range(len(names)))
    models = list(stats)
    width = 0.8 / max(len(models), 1)
    fig = _figure((max(6.0, 0.55 * len(names) * max(1, len(models)) ** 0.5 + 2), 4.2))
    ax = fig.add_subplot()
    x = np.arange(len(names))
    for i, model in enumerate(models):
        means = np.array([np.nan if m is None else 100 * m for m, _ in stats[model]])
        stds = np.array([0.0 if s is None else 100 * s for _, s in stats[model]])
        below, above = np.minimum(stds, np.nan_to_num(means)), np.minimum(stds, 100 - np.nan_to_num(means))
        ax.bar(x + (i - (len(models) - 1) / 2) * width, means, width, yerr=np.vstack([below, above]), label=model,
               capsize=1.5,
               error_kw={"linewidth": 0.6})
    ax.set_xticks(x, [f"{i} {n}" for i, n in zip(ids, names)], rotation=45, ha="right", rotation_mode="anchor",
                  fontsize=_tick_size(len(names)))
    ax.set_ylim(0, 105)
    ax.set_ylabel("class accuracy (%)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=min(len(models), 8), loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False)
    return fig
