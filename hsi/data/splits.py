"""Train / validation / test splits of the labelled pixels, as label maps (-1 outside the subset)."""
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import maximum_filter

from ..checks import is_whole
from ..errors import SplitError

SPLIT_MODES = ("random", "fixed", "disjoint", "blocks")


@dataclass
class Split:
    """Three (rows, cols) maps holding the class of each pixel in that subset and -1 elsewhere."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    mode: str
    info: dict = field(default_factory=dict)

    def coords(self, subset):
        """(N, 2) row/col coordinates and (N,) classes of a subset, in raster order."""
        labels = getattr(self, subset)
        rows, cols = np.nonzero(labels >= 0)
        return np.stack([rows, cols], axis=1), labels[rows, cols]

    def counts(self, n_classes):
        """Pixels per class in each subset."""
        return {name: np.bincount(getattr(self, name)[getattr(self, name) >= 0], minlength=n_classes).tolist()
                for name in ("train", "val", "test")}

    def save(self, path):
        from ..atomic import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, train=self.train, val=self.val, test=self.test, mode=self.mode)

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as data:
            return cls(data["train"], data["val"], data["test"], str(data["mode"]))


def make_split(labels, mode="random", *, train_ratio=None, train_per_class=None, val_ratio=0.1,
               patch_size=25, min_per_class=1, max_fraction=0.5, seed=0, class_names=None, folds=None, fold=0,
               label_ids=None):
    """Split ``labels`` (classes 0..K-1, -1 unlabelled) by ``mode``; deterministic for a seed.

    ``folds`` and ``fold`` choose the held-out block of the ``blocks`` mode. ``class_names`` and ``label_ids`` (the
    ground truth file's id of each class) only serve the error and warning messages, which name a class by its
    file id.
    """
    if mode not in SPLIT_MODES:
        raise SplitError(f"split mode must be one of {SPLIT_MODES}, got {mode!r}")
    if not 0 <= val_ratio < 1:
        raise SplitError(f"validation ratio must be in [0, 1), got {val_ratio}")
    if not is_whole(seed, 0):
        raise SplitError(f"seed must be a non-negative integer, got {seed!r}")
    if train_per_class is not None and not is_whole(train_per_class, 1):
        raise SplitError(f"train pixels per class must be an integer >= 1, got {train_per_class!r}")
    rng = np.random.default_rng(seed)
    if mode == "blocks":
        return block_split(labels, folds, fold, patch_size=patch_size, val_ratio=val_ratio, rng=rng,
                           class_names=class_names, label_ids=label_ids)
    if mode == "fixed":
        if train_per_class is None:
            raise SplitError("the fixed split needs a number of training pixels per class")
        return fixed_split(labels, train_per_class, val_ratio=val_ratio, max_fraction=max_fraction, rng=rng,
                           class_names=class_names, label_ids=label_ids)
    if train_ratio is None and train_per_class is None:
        train_ratio = 0.1
    if mode == "disjoint":
        if train_ratio is None:
            raise SplitError("the disjoint split takes a train ratio, not a count per class")
        return disjoint_split(labels, train_ratio, patch_size=patch_size, val_ratio=val_ratio, rng=rng,
                              class_names=class_names, label_ids=label_ids)
    return random_split(labels, train_ratio=train_ratio, train_per_class=train_per_class, val_ratio=val_ratio,
                        min_per_class=min_per_class, rng=rng, class_names=class_names, label_ids=label_ids)


def random_split(labels, *, train_ratio=None, train_per_class=None, val_ratio=0.1, min_per_class=1, rng=None,
                 class_names=None, label_ids=None):
    """Stratified random split: per class a ratio (or count) of pixels for training, the rest for testing."""
    if train_ratio is not None and not 0 < train_ratio < 1:
        raise SplitError(f"train ratio must be between 0 and 1, got {train_ratio}")
    rng = rng or np.random.default_rng(0)
    train = np.full(labels.shape, -1, dtype=np.int64)
    test = train.copy()
    for k, pixels in _class_pixels(labels, rng):
        n = len(pixels)
        wanted = train_per_class if train_per_class is not None else int(round(train_ratio * n))
        n_train = max(wanted, min_per_class)
        if n_train >= n:
            raise SplitError(f"{describe_class(k, class_names, label_ids)} has {n} labelled pixels, too few for "
                             f"{n_train} training pixels and at least one test pixel; lower the train ratio or count")
        _put(train, pixels[:n_train], k)
        _put(test, pixels[n_train:], k)
    train, val = _carve_val(train, val_ratio, rng)
    return Split(train, val, test, "random")


def fixed_split(labels, per_class, *, val_ratio=0.1, max_fraction=0.5, rng=None, class_names=None,
                label_ids=None):
    """``per_class`` training pixels per class; a small class gives at most ``max_fraction`` of its pixels."""
    if per_class < 1:
        raise SplitError(f"training pixels per class must be at least 1, got {per_class}")
    rng = rng or np.random.default_rng(0)
    train = np.full(labels.shape, -1, dtype=np.int64)
    test = train.copy()
    capped = []
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


def disjoint_split(labels, train_ratio, *, patch_size=25, val_ratio=0.1, rng=None, tries=32, class_names=None,
                   label_ids=None):
    """Spatially disjoint split: no test window (``patch_size`` wide) holds a training or validation pixel.

    Per class, training takes whole parcels (8-connected regions) or, when that misses the ratio, a
    stripe from the top, bottom, left or right: whichever candidate is closest to the ratio while losing
    the fewest test pixels. Validation is the part of each class's training region farthest along the
    same order (a separate region, not a buffered one). Labelled pixels within ``patch_size // 2`` of
    training or validation pixels belong to no subset (the buffer).
    """
    if not 0 < train_ratio < 1:
        raise SplitError(f"train ratio must be between 0 and 1, got {train_ratio}")
    rng = rng or np.random.default_rng(0)
    labelled = labels >= 0
    size = 2 * (patch_size // 2) + 1
    n_classes = int(labels.max(initial=-1)) + 1
    held = np.zeros(labels.shape, dtype=bool)         # pixels given to training or validation so far
    train = np.full(labels.shape, -1, dtype=np.int64)
    val = train.copy()
    totals = np.bincount(labels[labelled], minlength=n_classes)
    for k in np.argsort(totals, kind="stable"):      # small classes choose first, while there is room
        pixels = np.argwhere(labels == k)
        if len(pixels) < 2:
            continue
        target = max(1, int(round(train_ratio * len(pixels))))
        best = None
        for chosen in _region_candidates(labels == k, pixels, target, rng, tries):
            trial = held.copy()
            trial[chosen[:, 0], chosen[:, 1]] = True
            lost = labelled & ~trial & maximum_filter(trial, size=size)
            # each class's lost test pixels count as a fraction of that class, so small classes survive
            score = abs(len(chosen) - target) / target + (np.bincount(labels[lost], minlength=n_classes)
                                                          / np.maximum(totals, 1)).sum()
            if best is None or score < best[0]:
                best = (score, chosen)
        chosen = best[1]
        n_val = min(int(round(val_ratio * len(chosen))), len(chosen) - 1)
        _put(train, chosen[:len(chosen) - n_val], k)
        _put(val, chosen[len(chosen) - n_val:], k)
        held[chosen[:, 0], chosen[:, 1]] = True
    test = np.where(labelled & ~maximum_filter(held, size=size), labels, -1)
    split = Split(train, val, test, "disjoint")
    counts = split.counts(n_classes)
    split.info = {"buffer": patch_size // 2, "buffer_pixels": int((labelled & ~held & (test < 0)).sum()),
                  "achieved_train_ratio": [round(float((a + b) / t), 4) if t else 0.0
                                           for a, b, t in zip(counts["train"], counts["val"], totals)]}
    missing = [k for k in range(n_classes) if totals[k] and (counts["train"][k] == 0 or counts["test"][k] == 0)]
    if missing:
        named = ", ".join(describe_class(k, class_names, label_ids) for k in missing)
        warnings.warn(f"disjoint split: no training or no test pixels left after the {patch_size // 2}-pixel "
                      f"buffer for {named} (too few or too compact pixels)", stacklevel=2)
    return split


def block_split(labels, folds, fold, *, patch_size=25, val_ratio=0.1, rng=None, class_names=None,
                label_ids=None):
    """Spatial block cross-validation: the scene is cut into a grid of ``folds`` blocks and fold ``fold`` tests on
    the labelled pixels of block ``fold``. Training (and validation, drawn at random from it) takes the labelled
    pixels of the other blocks farther than ``patch_size // 2`` from the held-out block, so no test window holds
    a training or validation pixel. The grid has the factorisation of ``folds`` whose blocks are closest to
    square, with cuts at quantiles of the labelled rows and columns so blocks hold similar numbers of pixels.
    ``info`` names the classes a fold cannot train on or test.
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
    train, val = _carve_val(np.where(labelled & ~near_block, labels, -1), val_ratio, rng)
    split = Split(train, val, test, "blocks")
    n_classes = int(labels.max(initial=-1)) + 1
    counts = split.counts(n_classes)
    present = np.bincount(labels[labelled], minlength=n_classes) > 0

    def names(ks):
        return [class_names[k] if class_names is not None else f"class {k}" for k in ks]

    no_train = [k for k in range(n_classes) if present[k] and counts["train"][k] + counts["val"][k] == 0]
    no_test = [k for k in range(n_classes) if present[k] and counts["test"][k] == 0]
    split.info = {"folds": int(folds), "fold": int(fold), "buffer": buffer,
                  "block": [int(row_cuts[r]), int(row_cuts[r + 1]), int(col_cuts[c]), int(col_cuts[c + 1])],
                  "buffer_pixels": int((labelled & near_block & ~block).sum()),
                  "classes_without_training": names(no_train), "classes_without_test": names(no_test)}
    return split


def _quantile_cuts(positions, parts, size):
    """``parts + 1`` increasing cut positions from 0 to ``size`` at quantiles of ``positions``."""
    inner = np.quantile(positions, np.arange(1, parts) / parts).round().astype(int) if parts > 1 else []
    return np.concatenate([[0], np.maximum.accumulate(np.clip(inner, 1, size - 1)), [size]]).astype(int)


def _region_candidates(mask, pixels, target, rng, tries):
    """Candidate training regions of one class, each as (n, 2) coordinates ordered so that the tail is the
    part to give to validation: unions of whole parcels, and stripes from each side."""
    from scipy.ndimage import label as connected

    parcels, n_parcels = connected(mask, structure=np.ones((3, 3)))
    ids = parcels[pixels[:, 0], pixels[:, 1]]
    sizes = np.bincount(ids, minlength=n_parcels + 1)
    if n_parcels > 1:
        seen = set()
        for _ in range(tries):
            picked, total = [], 0
            for p in rng.permutation(np.arange(1, n_parcels + 1)):
                if abs(total + sizes[p] - target) < abs(total - target):
                    picked.append(int(p))
                    total += sizes[p]
            if picked and tuple(sorted(picked)) not in seen:
                seen.add(tuple(sorted(picked)))
                yield np.concatenate([pixels[ids == p] for p in picked])
    for axis in (0, 1):
        for sign in (1, -1):
            order = np.lexsort((pixels[:, 1 - axis], sign * pixels[:, axis]))
            yield pixels[order[:target]]


def describe_class(k, class_names=None, label_ids=None):
    """Class index ``k`` as messages name it: by its id in the ground truth file (``label_ids``; the index
    without), with its name unless the name is only that id (``class 1 (Alfalfa)``, ``class 7``)."""
    number = k if label_ids is None else int(label_ids[k])
    if class_names is None or str(class_names[k]) == f"class {number}":
        return f"class {number}"
    return f"class {number} ({class_names[k]})"


def _class_pixels(labels, rng):
    """(class, shuffled (n, 2) coordinates) for every class present."""
    for k in range(int(labels.max(initial=-1)) + 1):
        pixels = np.argwhere(labels == k)
        if len(pixels):
            yield k, pixels[rng.permutation(len(pixels))]


def _put(target, pixels, k):
    target[pixels[:, 0], pixels[:, 1]] = k


def _carve_val(train, val_ratio, rng):
    """Move ``val_ratio`` of each class's training pixels (keeping at least one for training) to validation."""
    val = np.full(train.shape, -1, dtype=np.int64)
    if val_ratio == 0:
        return train, val
    for k, pixels in _class_pixels(train, rng):
        n_val = min(int(round(val_ratio * len(pixels))), len(pixels) - 1)
        _put(val, pixels[:n_val], k)
        train[pixels[:n_val, 0], pixels[:n_val, 1]] = -1
    return train, val

