"""Square windows around pixels as lazy views into one padded cube."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar, cast

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ..checks import is_whole
from ..errors import ConfigError
from .augment import Augmentation

PADDING_MODES = ("zero", "reflect")
Batch = TypeVar("Batch")


def check_patch_size(patch_size: int, shape: Sequence[int] | None = None) -> None:
    """Patch sizes are odd and positive; reflect padding also needs the scene to be larger than the margin."""
    if not is_whole(patch_size, 1) or patch_size % 2 == 0:
        raise ConfigError(f"patch size must be a positive odd number, got {patch_size!r}")
    if shape is not None and patch_size > 2 * min(shape[:2]) - 1:
        raise ConfigError(f"patch size {patch_size} is too large for a {shape[0]}x{shape[1]} scene "
                          f"(at most {2 * min(shape[:2]) - 1})")


def pad_cube(cube: np.ndarray, patch_size: int, mode: str = "zero") -> np.ndarray:
    """Pad (rows, cols, bands) by ``patch_size // 2`` on each side so every pixel has a full window (a margin
    wider than the scene reflects back and forth)."""
    check_patch_size(patch_size)
    if mode not in PADDING_MODES:
        raise ConfigError(f"padding must be one of {PADDING_MODES}, got {mode!r}")
    margin = patch_size // 2
    width = ((margin, margin), (margin, margin), (0, 0))
    padded = np.pad(cube, width, mode="constant") if mode == "zero" else np.pad(cube, width, mode="reflect")
    return np.ascontiguousarray(padded, dtype=np.float32)


def collate_batch(batch: Batch) -> Batch:
    """DataLoader ``collate_fn`` for :class:`PatchDataset`, whose ``__getitems__`` already builds the batch."""
    return batch


class PatchDataset(torch.utils.data.Dataset):
    """Windows of ``padded`` centred on ``coords`` (pixel coordinates of the unpadded scene).

    Items are ``(window, label)``: the window is ``(1, bands, size, size)`` float32 (``(bands, size, size)``
    with ``spectral_channel=False``). Nothing is copied until a batch is asked for: the windows are a strided
    view of the one padded array. ``augmentation`` (an :class:`~hsi.data.augment.Augmentation`, for training
    only) transforms each batch: a batch of ``(index, params)`` pairs (what :class:`~hsi.distributed.ShardedBatches`
    gives with ``draw=dataset.draw``) carries each window's random numbers; a batch of bare indices draws them
    from ``generator``.
    """

    def __init__(self, padded: np.ndarray, coords: np.ndarray, labels: np.ndarray | None = None, patch_size: int = 25,
                 *, spectral_channel: bool = True, augmentation: Augmentation | None = None,
                 generator: torch.Generator | None = None) -> None:
        coords = np.asarray(coords, dtype=np.int64).reshape(-1, 2)
        self.padded = padded
        self.patch_size = patch_size
        # (rows, cols, bands, size, size): window of pixel (r, c) is windows[r, c]; a view, no copy.
        self.windows = sliding_window_view(padded, (patch_size, patch_size), axis=(0, 1))
        if coords.size and (coords.min() < 0 or (coords >= self.windows.shape[:2]).any()):
            raise ConfigError(f"pixel coordinates must lie inside the {self.windows.shape[0]}x"
                              f"{self.windows.shape[1]} scene")
        self.coords = coords
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.spectral_channel = spectral_channel
        if augmentation is not None:
            augmentation.require("apply", "patch windows")
        self.augmentation = augmentation
        self.generator = generator
        self._band_std: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.coords)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([index])
        return x[0], y[0]

    def __getitems__(self, items: Sequence[int] | Sequence[tuple[int, Sequence[float]]]
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch in one vectorised gather: ``(windows (B, 1, bands, s, s), labels (B,))``. ``items``:
        indices, or ``(index, params)`` pairs with the random numbers :meth:`draw` gave for each."""
        params: Sequence[Sequence[float]] | None = None
        indices: Sequence[int]
        if len(items) and isinstance(items[0], (tuple, list)):
            indices, params = (list(column) for column in zip(*items))
        else:
            indices = cast("Sequence[int]", items)     # the first item is no pair, so none is
            if self.augmentation is not None:
                params = self.draw(torch.as_tensor(indices, dtype=torch.int64), self.generator)
        x = self.windows_at(indices)
        if params is not None:
            assert self.augmentation is not None        # only an augmented dataset's items carry params
            x = self.augmentation.apply(x, params, self)
        if self.spectral_channel:
            x = x.unsqueeze(1)
        y = torch.from_numpy(self.labels[indices]) if self.labels is not None else torch.full((len(x),), -1)
        return x, y

    def windows_at(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """The windows ``(len(indices), bands, s, s)`` of these items, as they are in the scene (a copy)."""
        rows, cols = self.coords[np.asarray(indices, dtype=np.int64)].T
        return torch.from_numpy(np.ascontiguousarray(self.windows[rows, cols]))

    def draw(self, indices: torch.Tensor, generator: torch.Generator | None) -> list[list[float]]:
        """The augmentation's random numbers for the items ``indices`` (a global batch), from ``generator``."""
        labels = torch.from_numpy(self.labels[indices.numpy()]) if self.labels is not None else \
            torch.full((len(indices),), -1)
        assert self.augmentation is not None            # drawn for an augmented dataset only
        return self.augmentation.draw(labels, indices, generator)

    @property
    def band_std(self) -> torch.Tensor:
        """Each band's standard deviation over the items' centre pixels (float32, computed once)."""
        if self._band_std is None:
            margin = self.patch_size // 2
            centres = self.padded[self.coords[:, 0] + margin, self.coords[:, 1] + margin]
            self._band_std = torch.from_numpy(centres.std(0, dtype=np.float64).astype(np.float32))
        return self._band_std
