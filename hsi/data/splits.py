"""Train / validation / test splits of the labelled pixels, as label maps (-1 outside the subset).

A split is a function ``maker(labels, settings, rng) -> Split`` registered with ``@register_split("name")``:
``labels`` holds classes 0..K-1 (-1 unlabelled), ``settings`` a :class:`SplitSettings` (train ratio or count,
validation ratio, patch size, folds...) and ``rng`` the seed's ``numpy.random.Generator``. A split that runs in
folds (``register_split(name, folded=True)``, like ``blocks``) needs ``settings.folds`` and is trained once per
fold. Installed packages add splits through the ``hsi.splits`` entry-point group (name = split name, value = the
maker; give it a ``folded = True`` attribute to run it in folds), read at first use.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.ndimage import distance_transform_cdt, maximum_filter

from ..checks import is_whole
from ..errors import SplitError
from ..plugins import Registry

ENTRY_POINT_GROUP = "hsi.splits"
Coords = npt.NDArray[np.intp]        # (n, 2) row/col coordinates
ClassNames = Sequence[str] | None
LabelIds = Sequence[int] | np.ndarray | None


@dataclass
class Split:
    """Three (rows, cols) maps holding the class of each pixel in that subset and -1 elsewhere."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    mode: str
    info: dict[str, Any] = field(default_factory=dict)

    def coords(self, subset: str) -> tuple[Coords, np.ndarray]:
        """(N, 2) row/col coordinates and (N,) classes of a subset, in raster order."""
        labels = getattr(self, subset)
        rows, cols = np.nonzero(labels >= 0)
        return np.stack([rows, cols], axis=1), labels[rows, cols]

    def counts(self, n_classes: int) -> dict[str, list[int]]:
        """Pixels per class in each subset."""
        return {name: np.bincount(getattr(self, name)[getattr(self, name) >= 0], minlength=n_classes).tolist()
                for name in ("train", "val", "test")}

    def save(self, path: str | Path) -> None:
        """The three maps, the mode and (when there is one) ``info`` as JSON, in one ``.npz`` file."""
        from ..atomic import atomic_path

        info: dict[str, Any] = {"info": json.dumps(self.info)} if self.info else {}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, train=self.train, val=self.val, test=self.test, mode=self.mode, **info)

    @classmethod
    def load(cls, path: str | Path) -> Split:
        with np.load(path, allow_pickle=False) as data:
            info = json.loads(str(data["info"])) if "info" in data.files else {}
            return cls(data["train"], data["val"], data["test"], str(data["mode"]), info)


@dataclass(frozen=True)
class SplitSettings:
    """What a split maker may use; ``class_names`` and ``label_ids`` (the ground truth file's id of each class)
    only serve error and warning messages, which name a class by its file id."""

    train_ratio: float | None = None
    train_per_class: int | None = None
    val_ratio: float = 0.1
    patch_size: int = 25
    min_per_class: int = 1
    max_fraction: float = 0.5
    class_names: Sequence[str] | None = None
    folds: int | None = None
    fold: int = 0
    label_ids: Sequence[int] | np.ndarray | None = None
    parcels: np.ndarray | None = None    # (rows, cols) parcel of each labelled pixel (polygon ground truth), -1 none


SplitMaker = Callable[[np.ndarray, SplitSettings, np.random.Generator], Split]
SPLITS: Registry[SplitMaker] = Registry("split", ENTRY_POINT_GROUP, SplitError)


def register_split(name: str, *, folded: bool = False) -> Callable[[SplitMaker], SplitMaker]:
    """Decorator registering ``maker(labels, settings, rng) -> Split`` as the split ``name``; ``folded``: it
    runs in folds (needs ``settings.folds``, tests on fold ``settings.fold``)."""
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise SplitError(f"a split name must be a non-empty string without surrounding spaces, got {name!r}")

    def decorator(maker: SplitMaker) -> SplitMaker:
        SPLITS.register(name, maker)
        maker.folded = folded  # type: ignore[attr-defined]
        return maker

    return decorator


def list_splits() -> list[str]:
    """Names of every known split, built-in first."""
    return SPLITS.names()


def split_maker(name: str) -> SplitMaker:
    """The maker registered as ``name``; an unknown name is a :class:`SplitError` listing the known ones."""
    return SPLITS.get(name)


def is_folded(name: str) -> bool:
    """Whether the split ``name`` runs in folds (one training per fold, ``--folds K``)."""
    return bool(getattr(split_maker(name), "folded", False))


def folded_splits() -> list[str]:
    """Names of the known splits that run in folds."""
    return [name for name in list_splits() if is_folded(name)]


def make_split(labels: np.ndarray, mode: str = "random", *, train_ratio: float | None = None,
               train_per_class: int | None = None, val_ratio: float = 0.1, patch_size: int = 25,
               min_per_class: int = 1, max_fraction: float = 0.5, seed: int = 0,
               class_names: Sequence[str] | None = None, folds: int | None = None, fold: int = 0,
               label_ids: Sequence[int] | np.ndarray | None = None, parcels: np.ndarray | None = None) -> Split:
    """Split ``labels`` (classes 0..K-1, -1 unlabelled) by the registered split ``mode``; deterministic for a
    seed. Without a train ratio or count the ratio is 0.1.

    ``folds`` and ``fold`` choose the held-out fold of a split that runs in folds (``blocks``). ``parcels``
    (polygon ground truth: each labelled pixel's polygon, -1 none) are the parcels ``disjoint`` draws whole.
    ``class_names`` and ``label_ids`` (the ground truth file's id of each class) only serve the error and warning
    messages.
    """
    maker = split_maker(mode)
    if not 0 <= val_ratio < 1:
        raise SplitError(f"validation ratio must be in [0, 1), got {val_ratio}")
    if not is_whole(seed, 0):
        raise SplitError(f"seed must be a non-negative integer, got {seed!r}")
    if train_per_class is not None and not is_whole(train_per_class, 1):
        raise SplitError(f"train pixels per class must be an integer >= 1, got {train_per_class!r}")
    if train_ratio is None and train_per_class is None:
        train_ratio = 0.1
    settings = SplitSettings(train_ratio=train_ratio, train_per_class=train_per_class, val_ratio=val_ratio,
                             patch_size=patch_size, min_per_class=min_per_class, max_fraction=max_fraction,
                             class_names=class_names, folds=folds, fold=fold, label_ids=label_ids,
                             parcels=parcels)
    return maker(labels, settings, np.random.default_rng(seed))


@register_split("random")
def _random(labels: np.ndarray, settings: SplitSettings, rng: np.random.Generator) -> Split:
    return random_split(labels, train_ratio=settings.train_ratio, train_per_class=settings.train_per_class,
                        val_ratio=settings.val_ratio, min_per_class=settings.min_per_class, rng=rng,
                        class_names=settings.class_names,
                        label_ids=settings.label_ids)


@register_split("fixed")
def _fixed(labels: np.ndarray, settings: SplitSettings, rng: np.random.Generator) -> Split:
    if settings.train_per_class is None:
        raise SplitError("the fixed split needs a number of training pixels per class")
    return fixed_split(labels, settings.train_per_class, val_ratio=settings.val_ratio,
                       max_fraction=settings.max_fraction, rng=rng, class_names=settings.class_names,
                       label_ids=settings.label_ids)


@register_split("disjoint")
def _disjoint(labels: np.ndarray, settings: SplitSettings, rng: np.random.Generator) -> Split:
    if settings.train_ratio is None:
        raise SplitError("the disjoint split takes a train ratio, not a count per class")
    if settings.parcels is not None:
        return parcel_split(labels, settings.parcels, settings.train_ratio, patch_size=settings.patch_size,
                            val_ratio=settings.val_ratio, rng=rng, class_names=settings.class_names,
                            label_ids=settings.label_ids)
    return disjoint_split(labels, settings.train_ratio, patch_size=settings.patch_size,
                          val_ratio=settings.val_ratio, rng=rng, class_names=settings.class_names,
                          label_ids=settings.label_ids)


@register_split("blocks", folded=True)
def _blocks(labels: np.ndarray, settings: SplitSettings, rng: np.random.Generator) -> Split:
    if settings.folds is None:
        raise SplitError("the blocks split needs folds >= 2, got None")
    return block_split(labels, settings.folds, settings.fold, patch_size=settings.patch_size,
                       val_ratio=settings.val_ratio, rng=rng, class_names=settings.class_names,
                       label_ids=settings.label_ids)


def random_split(labels: np.ndarray, *, train_ratio: float | None = None, train_per_class: int | None = None,
                 val_ratio: float = 0.1, min_per_class: int = 1, rng: np.random.Generator | None = None,
                 class_names: ClassNames = None, label_ids: LabelIds = None) -> Split:
    """Stratified random split: per class a ratio (or count) of pixels for training, the rest for testing."""
    if train_ratio is None and train_per_class is None:
        raise SplitError("the random split needs a train ratio or a number of training pixels per class")
    if train_ratio is not None and not 0 < train_ratio < 1:
        raise SplitError(f"train ratio must be between 0 and 1, got {train_ratio}")
    rng = rng or np.random.default_rng(0)
    train = np.full(labels.shape, -1, dtype=np.int64)
    test = train.copy()
    for k, pixels in _class_pixels(labels, rng):
        n = len(pixels)
        wanted = train_per_class if train_per_class is not None else int(round((train_ratio or 0) * n))
        n_train = max(wanted, min_per_class)
        if n_train >= n:
            raise SplitError(f"{describe_class(k, class_names, label_ids)} has {n} labelled pixels, too few for "
                             f"{n_train} training pixels and at least one test pixel; lower the train ratio or count")
        _put(train, pixels[:n_train], k)
        _put(test, pixels[n_train:], k)
    train, val = _carve_val(train, val_ratio, rng)
    return Split(train, val, test, "random")


def fixed_split(labels: np.ndarray, per_class: int, *, val_ratio: float = 0.1, max_fraction: float = 0.5,
                rng: np.random.Generator | None = None, class_names: ClassNames = None,
                label_ids: LabelIds = None) -> Split:
    """``per_class`` training pixels per class; a small class gives at most ``max_fraction`` of its pixels."""
    if per_class < 1:
        raise SplitError(f"training pixels per class must be at least 1, got {per_class}")
    rng = rng or np.random.default_rng(0)
    train = np.full(labels.shape, -1, dtype=np.int64)
    test = train.copy()
    capped: list[str] = []
    for k, pixels in _class_pixels(labels, rng):
        n_train = min(per_class, int(max_fraction * len(pixels)))
        if n_train < 1:
            raise SplitError(f"{describe_class(k, class_names, label_ids)} has only {len(pixels)} labelled pixels, too "
                             f"few to split")
        if n_train < per_class:
            capped.append(f"{describe_class(k, class_names, label_ids)}: {n_train} of {len(pixels)}")
        _put(train, pixels[:n_train], k)
        _put(test, pixels[n_train:], k)
    if capped:
        warnings.warn(f"small classes capped at {max_fraction:.0%} of their pixels for training: "
                      + "; ".join(capped), stacklevel=2)
    train, val = _carve_val(train, val_ratio, rng)
    return Split(train, val, test, "fixed")


TRIES = 32          # random parcel unions (and half as many random stripe directions) per class
SLACK = 0.2         # candidates within this score of the best one are equally likely: the seed's choice
WIPE = 1.0          # score added for each class whose last free pool pixel a region takes or buffers
DRAWING = (f"per class, fewest pixels first: a region drawn at random among the candidates within {SLACK} of the "
           "best score; candidates are unions of whole parcels (8-connected regions of the class) and the first "
           "pixels of each parcel and of the whole class from 8 sides, from random directions and nearest to the "
           "regions drawn before; score = size off the target (a fraction of it) + each class's share of the pool "
           f"pixels put within the buffer + {WIPE} for each class left without any")
VALIDATION = "regions of their own, drawn the same way, beyond the buffer of every training and test pixel"
DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1))


def disjoint_split(labels: np.ndarray, train_ratio: float, *, patch_size: int = 25, val_ratio: float = 0.1,
                   rng: np.random.Generator | None = None, tries: int = TRIES, class_names: ClassNames = None,
                   label_ids: LabelIds = None) -> Split:
    """Spatially disjoint split: no test window (``patch_size`` wide) holds a training or validation pixel, and
    no validation pixel lies within ``patch_size // 2`` pixels (rows and columns) of a training or test pixel.

    Per class (smallest first, while there is room) training takes about ``train_ratio * (1 - val_ratio)`` of its
    pixels and validation about ``train_ratio * val_ratio``, each as a region drawn with ``rng`` among whole
    parcels (8-connected regions) and stripes from 8 sides (see :data:`DRAWING`), so that each seed draws
    another split. Labelled pixels within ``patch_size // 2`` of training or validation pixels belong to no
    subset (the buffer). ``info`` records how the split was drawn, each class's share against the target and how
    many candidate regions the seed chose among; a warning says so when no class had a choice, so every seed
    gives the same split.
    """
    if not 0 < train_ratio < 1:
        raise SplitError(f"train ratio must be between 0 and 1, got {train_ratio}")
    rng = rng or np.random.default_rng(0)
    labelled = labels >= 0
    buffer = patch_size // 2
    n_classes = int(labels.max(initial=-1)) + 1
    totals = np.bincount(labels[labelled], minlength=n_classes)
    wanted = np.where(totals >= 2, np.maximum(1, np.round(train_ratio * totals)), 0).astype(int)
    val_wanted = np.minimum(np.round(val_ratio * wanted), np.maximum(wanted - 1, 0)).astype(int)
    train, train_choices = _claim_regions(labels, labelled, wanted - val_wanted, buffer, rng, tries)
    near_train = _dilate(train >= 0, buffer)
    val, val_choices = _claim_regions(labels, labelled & ~near_train, val_wanted, buffer, rng, tries, train >= 0,
                                      optional=True, slack=0)
    held = (train >= 0) | (val >= 0)
    test = np.where(labelled & ~_dilate(held, buffer), labels, -1)
    split = Split(train, val, test, "disjoint")
    counts = split.counts(n_classes)
    shares = [round(float((a + b) / t), 4) if t else 0.0 for a, b, t in zip(counts["train"], counts["val"], totals)]
    split.info = {"buffer": buffer, "buffer_pixels": int((labelled & ~held & (test < 0)).sum()),
                  "drawn": DRAWING, "validation": VALIDATION,
                  "achieved_train_ratio": shares,
                  "off_target": [round(share - train_ratio, 4) if t else 0.0 for share, t in zip(shares, totals)],
                  "train_choices": train_choices, "val_choices": val_choices,
                  "classes_without_validation": [_name(k, class_names) for k in range(n_classes)
                                                 if val_wanted[k] and counts["val"][k] == 0]}
    missing = [k for k in range(n_classes) if totals[k] and (counts["train"][k] == 0 or counts["test"][k] == 0)]
    if missing:
        named = ", ".join(describe_class(k, class_names, label_ids) for k in missing)
        warnings.warn(f"disjoint split: no training or no test pixels left after the {buffer}-pixel "
                      f"buffer for {named} (too few or too compact pixels)", stacklevel=2)
    if max(train_choices + val_choices, default=0) <= 1:
        warnings.warn("disjoint split: the scene's parcels leave every class one best region, so every seed gives "
                      "this same split", stacklevel=2)
    return split


def parcel_split(labels: np.ndarray, parcels: np.ndarray, train_ratio: float, *, patch_size: int = 25,
                 val_ratio: float = 0.1, rng: np.random.Generator | None = None,
                 class_names: ClassNames = None, label_ids: LabelIds = None) -> Split:
    """Disjoint split by given parcels (the polygons of vector ground truth): per class, fewest pixels first, its
    parcels (each counted for its most frequent class) in the seed's random order go to training until about
    ``train_ratio * (1 - val_ratio)`` of its pixels, then to validation until ``train_ratio * val_ratio``, the
    rest to testing; a parcel is never split between subsets. Test pixels within ``patch_size // 2`` of a
    training or validation pixel, and validation pixels as near training ones, belong to no subset (the buffer),
    so no test window holds a training pixel."""
    if not 0 < train_ratio < 1:
        raise SplitError(f"train ratio must be between 0 and 1, got {train_ratio}")
    if parcels.shape != labels.shape:
        raise SplitError(f"parcels {parcels.shape} and labels {labels.shape} differ; expected one map each")
    rng = rng or np.random.default_rng(0)
    labelled = (labels >= 0) & (parcels >= 0)
    buffer = patch_size // 2
    n_classes = int(labels.max(initial=-1)) + 1
    ids, index = np.unique(parcels[labelled], return_inverse=True)
    sizes = np.zeros((len(ids), max(n_classes, 1)), dtype=np.int64)
    np.add.at(sizes, (index, labels[labelled]), 1)
    owner, size = sizes.argmax(axis=1), sizes.sum(axis=1)
    subset = np.full(len(ids), 2)                           # 0 train, 1 validation, 2 test
    totals = np.bincount(owner, weights=size, minlength=n_classes)
    for k in np.argsort(totals, kind="stable"):
        mine = rng.permutation(np.flatnonzero(owner == k))
        goal = np.cumsum([train_ratio * (1 - val_ratio), train_ratio * val_ratio]) * totals[k]
        taken = np.cumsum(size[mine]) - size[mine]              # pixels taken before each parcel
        subset[mine[taken < goal[0]]] = 0
        subset[mine[(taken >= goal[0]) & (taken < goal[1])]] = 1
        if len(mine) > 1 and (subset[mine] != 2).all():
            subset[mine[-1]] = 2                                # a test parcel for every class that has two
    where = np.full(labels.shape, -1)
    where[labelled] = subset[index]
    train = np.where(where == 0, labels, -1)
    val = np.where((where == 1) & ~_dilate(train >= 0, buffer), labels, -1)
    test = np.where((where == 2) & ~_dilate((train >= 0) | (val >= 0), buffer), labels, -1)
    split = Split(train, val, test, "disjoint")
    counts = split.counts(n_classes)
    split.info = {"parcels": "the polygons of the ground truth layer (sharing a pixel: one parcel), drawn whole",
                  "buffer": buffer, "buffer_pixels": int((labelled & (train < 0) & (val < 0) & (test < 0)).sum()),
                  "parcels_per_subset": {name: int((subset == i).sum()) for i, name in enumerate(("train", "val",
                                                                                                  "test"))},
                  "achieved_train_ratio": [round(float((a + b) / t), 4) if t else 0.0 for a, b, t in
                                           zip(counts["train"], counts["val"], totals, strict=True)]}
    missing = [k for k in range(n_classes) if totals[k] and (counts["train"][k] == 0 or counts["test"][k] == 0)]
    if missing:
        named = ", ".join(describe_class(k, class_names, label_ids) for k in missing)
        warnings.warn(f"disjoint split by polygons: no training or no test pixels for {named} (a single polygon, "
                      f"or test pixels all within the {buffer}-pixel buffer)", stacklevel=2)
    return split


def _dilate(mask: npt.NDArray[np.bool_], buffer: int) -> npt.NDArray[np.bool_]:
    """Pixels within ``buffer`` rows and columns of ``mask``."""
    return maximum_filter(mask, size=2 * buffer + 1, mode="constant", cval=False)


def _claim_regions(labels: np.ndarray, pool: npt.NDArray[np.bool_], wanted: npt.NDArray[np.int_], buffer: int,
                   rng: np.random.Generator, tries: int, anchor: npt.NDArray[np.bool_] | None = None,
                   optional: bool = False, slack: float = SLACK) -> tuple[npt.NDArray[np.int64], list[int]]:
    """Per class (fewest wanted pixels first), a region of about ``wanted[k]`` of its pixels in ``pool``, drawn
    with ``rng`` among the candidates within :data:`SLACK` of the best score (size off target + each class's
    share of the still free pool pixels it puts within ``buffer``). Returns the (rows, cols) map of the claimed
    classes (-1 elsewhere) and, per class, the number of candidates it was drawn among (0: none wanted)."""
    n_classes = len(wanted)
    totals = np.maximum(np.bincount(labels[pool], minlength=n_classes), 1)
    claimed = np.full(labels.shape, -1, dtype=np.int64)
    free = pool.copy()                   # pool pixels neither claimed nor within the buffer of a claim
    choices = [0] * n_classes
    anchor = np.zeros(labels.shape, dtype=bool) if anchor is None else anchor
    pixels_none = np.zeros((0, 2), dtype=np.int64)
    for k in np.argsort(wanted, kind="stable"):
        mask = pool & (labels == k) & (claimed < 0)
        if wanted[k] == 0 or not mask.any():
            continue
        scored = [(1.0, pixels_none)] if optional else []      # an optional claim may take nothing
        distance = distance_transform_cdt(~anchor, metric="chessboard") if anchor.any() else None
        free_counts = np.bincount(labels[free], minlength=n_classes)
        for region in _region_candidates(mask, int(wanted[k]), rng, tries, distance):
            rows, cols = region[:, 0], region[:, 1]
            r0, c0 = max(rows.min() - buffer, 0), max(cols.min() - buffer, 0)
            r1, c1 = rows.max() + buffer + 1, cols.max() + buffer + 1
            box = np.zeros((min(r1, labels.shape[0]) - r0, min(c1, labels.shape[1]) - c0), dtype=bool)
            box[rows - r0, cols - c0] = True
            ring = free[r0:r1, c0:c1] & _dilate(box, buffer)          # free pixels it takes or buffers
            lost = np.bincount(labels[r0:r1, c0:c1][ring & ~box], minlength=n_classes)
            gone = (free_counts > 0) & (free_counts == np.bincount(labels[r0:r1, c0:c1][ring], minlength=n_classes))
            score = abs(len(region) - wanted[k]) / wanted[k] + (lost / totals).sum() + WIPE * gone.sum()
            scored.append((score, region))
        best = min(score for score, _ in scored)
        near = [region for score, region in scored if score <= best + slack]
        region = near[rng.integers(len(near))]
        choices[k] = len(near)
        if not len(region):
            continue
        _put(claimed, region, k)
        free &= ~_dilate(claimed == k, buffer)
        anchor = anchor | (claimed == k)
    return claimed, choices


def block_split(labels: np.ndarray, folds: int, fold: int, *, patch_size: int = 25, val_ratio: float = 0.1,
                rng: np.random.Generator | None = None, tries: int = TRIES, class_names: ClassNames = None,
                label_ids: LabelIds = None) -> Split:
    """Spatial block cross-validation: the scene is cut into a grid of ``folds`` blocks and fold ``fold`` tests on
    the labelled pixels of block ``fold``. Training and validation take the labelled pixels of the other blocks
    farther than ``patch_size // 2`` from the held-out block, so no test window holds a training or validation
    pixel; validation is about ``val_ratio`` of each class's pixels there, as regions of their own drawn like the
    disjoint split's (see :data:`DRAWING`; the score counts the training pixels lost to their buffer), and the
    training pixels within ``patch_size // 2`` of them belong to no subset. The grid has the factorisation of
    ``folds`` whose blocks are closest to square, with cuts at quantiles of the labelled rows and columns so blocks
    hold similar numbers of pixels. ``info`` names the classes a fold cannot train on or test.
    """
    if not is_whole(folds, 2):
        raise SplitError(f"the blocks split needs folds >= 2, got {folds!r}")
    if not is_whole(fold, 0) or fold >= folds:
        raise SplitError(f"fold must be in 0..{folds - 1} for {folds} folds, got {fold!r}")
    rng = rng or np.random.default_rng(0)
    labelled = labels >= 0
    rows, cols = np.nonzero(labelled)
    if len(rows) < folds:
        raise SplitError(f"{len(rows)} labelled pixels cannot make {folds} blocks")
    height, width = labels.shape
    n_rows = min((r for r in range(1, folds + 1) if folds % r == 0),
                 key=lambda r: abs(np.log((height / r) / (width / (folds // r)))))
    row_cuts = _quantile_cuts(rows, n_rows, height)
    col_cuts = _quantile_cuts(cols, folds // n_rows, width)
    r, c = divmod(int(fold), folds // n_rows)
    block = np.zeros(labels.shape, dtype=bool)
    block[row_cuts[r]:row_cuts[r + 1], col_cuts[c]:col_cuts[c + 1]] = True
    buffer = patch_size // 2
    near_block = maximum_filter(block, size=2 * buffer + 1, mode="constant", cval=False)
    test = np.where(block & labelled, labels, -1)
    pool = labelled & ~near_block
    n_classes = int(labels.max(initial=-1)) + 1
    available = np.bincount(labels[pool], minlength=n_classes)
    val_wanted = np.minimum(np.round(val_ratio * available), np.maximum(available - 1, 0)).astype(int)
    val, val_choices = _claim_regions(labels, pool, val_wanted, buffer, rng, tries, near_block, optional=True,
                                      slack=0)
    train = np.where(pool & ~_dilate(val >= 0, buffer), labels, -1)
    split = Split(train, val, test, "blocks")
    counts = split.counts(n_classes)
    present = np.bincount(labels[labelled], minlength=n_classes) > 0

    def names(ks: list[int]) -> list[str]:
        return [class_names[k] if class_names is not None else f"class {k}" for k in ks]

    no_train = [k for k in range(n_classes) if present[k] and counts["train"][k] + counts["val"][k] == 0]
    no_test = [k for k in range(n_classes) if present[k] and counts["test"][k] == 0]
    split.info = {"folds": int(folds), "fold": int(fold), "buffer": buffer,
                  "block": [int(row_cuts[r]), int(row_cuts[r + 1]), int(col_cuts[c]), int(col_cuts[c + 1])],
                  "buffer_pixels": int((labelled & (train < 0) & (val < 0) & (test < 0)).sum()),
                  "validation": VALIDATION, "val_choices": val_choices,
                  "classes_without_training": names(no_train), "classes_without_test": names(no_test)}
    return split


def _quantile_cuts(positions: np.ndarray, parts: int, size: int) -> npt.NDArray[np.int_]:
    """``parts + 1`` increasing cut positions from 0 to ``size`` at quantiles of ``positions``."""
    inner = np.quantile(positions, np.arange(1, parts) / parts).round().astype(int) if parts > 1 else []
    return np.concatenate([[0], np.maximum.accumulate(np.clip(inner, 1, size - 1)), [size]]).astype(int)


def _region_candidates(mask: npt.NDArray[np.bool_], target: int, rng: np.random.Generator, tries: int,
                       distance: np.ndarray | None = None) -> Iterator[Coords]:
    """Distinct candidate regions of one class's pixels ``mask``, each as (n, 2) coordinates: unions of whole
    parcels (greedy over ``tries`` random orders, each parcel taken when it brings the total nearer ``target``),
    and the first ``target`` pixels of every parcel and of the whole mask from 8 sides, from ``tries // 2``
    random directions and, given a ``distance`` map, nearest first."""
    from scipy.ndimage import label as connected

    pixels = np.argwhere(mask)
    parcels, n_parcels = connected(mask, structure=np.ones((3, 3)))
    ids = parcels[pixels[:, 0], pixels[:, 1]]
    sizes = np.bincount(ids, minlength=n_parcels + 1)
    seen: set[bytes] = set()

    def new(region: Coords) -> bool:
        key = np.sort(region[:, 0] * mask.shape[1] + region[:, 1]).tobytes()
        if key in seen:
            return False
        seen.add(key)
        return True

    if n_parcels > 1:
        for _ in range(tries):
            picked: list[int] = []
            total = 0
            for p in rng.permutation(np.arange(1, n_parcels + 1)):
                if abs(total + sizes[p] - target) < abs(total - target):
                    picked.append(int(p))
                    total += sizes[p]
            region = np.concatenate([pixels[ids == p] for p in picked]) if picked else pixels[:0]
            if len(region) and new(region):
                yield region
    angles = rng.uniform(0, 2 * np.pi, tries // 2)
    directions = [*DIRECTIONS, *zip(np.cos(angles), np.sin(angles))]
    groups = [pixels] + ([pixels[ids == p] for p in range(1, n_parcels + 1)] if n_parcels > 1 else [])
    for group in groups:
        if len(group) < target and group is not pixels:
            continue
        keys = [dr * group[:, 0] + dc * group[:, 1] for dr, dc in directions]
        if distance is not None:
            keys.append(distance[group[:, 0], group[:, 1]])
        for key in keys:
            region = group[np.lexsort((group[:, 1], group[:, 0], key))[:target]]
            if new(region):
                yield region


def _name(k: int, class_names: ClassNames) -> str:
    return class_names[k] if class_names is not None else f"class {k}"


def describe_class(k: int, class_names: Sequence[str] | None = None,
                   label_ids: Sequence[int] | np.ndarray | None = None) -> str:
    """Class index ``k`` as messages name it: by its id in the ground truth file (``label_ids``; the index
    without), with its name unless the name is only that id (``class 1 (Alfalfa)``, ``class 7``)."""
    number = k if label_ids is None else int(label_ids[k])
    if class_names is None or str(class_names[k]) == f"class {number}":
        return f"class {number}"
    return f"class {number} ({class_names[k]})"


def _class_pixels(labels: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[int, Coords]]:
    """(class, shuffled (n, 2) coordinates) for every class present."""
    for k in range(int(labels.max(initial=-1)) + 1):
        pixels = np.argwhere(labels == k)
        if len(pixels):
            yield k, pixels[rng.permutation(len(pixels))]


def _put(target: np.ndarray, pixels: Coords, k: int) -> None:
    target[pixels[:, 0], pixels[:, 1]] = k


def _carve_val(train: npt.NDArray[np.int64], val_ratio: float,
               rng: np.random.Generator) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Move ``val_ratio`` of each class's training pixels (keeping at least one for training) to validation."""
    val = np.full(train.shape, -1, dtype=np.int64)
    if val_ratio == 0:
        return train, val
    for k, pixels in _class_pixels(train, rng):
        n_val = min(int(round(val_ratio * len(pixels))), len(pixels) - 1)
        _put(val, pixels[:n_val], k)
        train[pixels[:n_val, 0], pixels[:n_val, 1]] = -1
    return train, val

