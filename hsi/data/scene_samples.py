"""What a scene model trains and is evaluated on: the whole reduced scene with one label map, or random crops."""
from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cached_property

import numpy as np
import torch

from ..checks import is_whole
from ..distributed import ALONE, World
from ..errors import ConfigError
from .augment import Augmentation


class SceneSamples:
    """The reduced scene ``(rows, cols, bands)`` as one ``(bands, rows, cols)`` tensor and a label map (classes,
    -1 elsewhere). ``len()`` is the number of labelled pixels.

    :meth:`draw` gives one batch ``(x (1, bands, h, w), y (1, h, w))``: the whole scene, or with ``crop`` a
    ``crop x crop`` window holding at least one labelled pixel (placed around a random labelled pixel),
    transformed by ``augmentation`` (an :class:`~hsi.data.augment.Augmentation`; geometric transforms move
    the label map too), every random number from the draw's generator. An epoch is ``steps`` draws: 1 for the
    whole scene, else as many crops as cover the scene's area once.
    """

    def __init__(self, reduced: np.ndarray, label_map: np.ndarray, *, crop: int | None = None,
                 augmentation: Augmentation | None = None) -> None:
        rows, cols = label_map.shape
        if crop is not None and not is_whole(crop, 1):
            raise ConfigError(f"crop must be a positive number of pixels, got {crop!r}")
        self.x = torch.from_numpy(np.ascontiguousarray(reduced, dtype=np.float32)).permute(2, 0, 1)
        self.y = torch.from_numpy(np.asarray(label_map, dtype=np.int64))
        self.crop = None if crop is None or crop >= max(rows, cols) else int(crop)
        if augmentation is not None:
            augmentation.require("scene", "scene draws")
        self.augmentation = augmentation
        self.labelled = torch.nonzero(self.y >= 0)
        self.steps = 1 if self.crop is None else math.ceil(rows * cols / self.crop ** 2)

    @property
    def labels(self) -> np.ndarray:
        """Classes of the labelled pixels (for class weights)."""
        return self.y[self.y >= 0].numpy()

    @cached_property
    def band_std(self) -> torch.Tensor:
        """Each band's standard deviation over the labelled pixels (float32, computed once)."""
        return self.x[:, self.y >= 0].to(torch.float64).std(1, unbiased=False).to(torch.float32)

    def __len__(self) -> int:
        return len(self.labelled)

    def draw(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.x, self.y
        if self.crop is not None:
            x, y = self._crop(self.crop, generator)
        if self.augmentation is not None:
            x, y = self.augmentation.scene(x, y, generator, self)
        return x.contiguous()[None], y.contiguous()[None]

    def _crop(self, crop: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = self.y.shape
        height, width = min(crop, rows), min(crop, cols)
        r, c = self.labelled[int(torch.randint(len(self.labelled), (1,), generator=generator).item())].tolist()
        r0 = r - int(torch.randint(height, (1,), generator=generator).item())
        c0 = c - int(torch.randint(width, (1,), generator=generator).item())
        r0, c0 = min(max(r0, 0), rows - height), min(max(c0, 0), cols - width)
        return self.x[:, r0:r0 + height, c0:c0 + width], self.y[r0:r0 + height, c0:c0 + width]


class SceneLoader:
    """``steps`` draws of a :class:`SceneSamples` per pass, from ``generator``.

    Under torchrun (``here`` of several processes) every process makes the same draws and keeps every
    ``here.size``-th one. With ``every_step`` (training) the draws are rounded up to a multiple of the process
    count, so every process takes part in every step; otherwise (evaluation) a process may get fewer."""

    def __init__(self, samples: SceneSamples, generator: torch.Generator, here: World = ALONE,
                 every_step: bool = False) -> None:
        self.samples, self.generator, self.world = samples, generator, here
        size = self.world.size
        self.draws = -(-samples.steps // size) * size if every_step else samples.steps

    def __len__(self) -> int:
        return len(self.world.mine(range(self.draws)))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for draw in range(self.draws):
            batch = self.samples.draw(self.generator)
            if draw % self.world.size == self.world.rank:
                yield batch
