"""Training augmentations chosen by name: ``make_augmentation("flip,brightness,noise")``.

A transform acts in two steps, so that its random numbers come from the run's saved generator and do not depend
on how many processes share a batch:

- ``draw(labels, indices, generator) -> (n, width)`` float64: the random numbers of the ``n`` items of a
  *global* batch (the batch sampler calls it with the run's shuffle generator, before the batch is shared out
  among the processes, so a resumed run draws what an uninterrupted one draws);
- ``apply(x, params, source) -> x``: deterministic, on this process's windows ``x (B, bands, s, s)`` float32
  with their rows of ``params``; ``source`` (the dataset) gives ``band_std`` (per band, of the training pixels)
  and ``windows_at(indices)`` (raw windows of other items).

A scene draw ``(bands, h, w)`` with its label map ``(h, w)`` goes through ``scene(x, y, generator, source)``,
which draws and applies at once (every process makes the same scene draws). Geometric transforms move the labels
with the pixels; photometric ones leave them.

The transforms act on what the model reads: after PCA (every run today), the bands are principal components.

Built-in transforms register themselves with :func:`register_augmentation`; installed packages add transforms
through the ``hsi.augmentations`` entry-point group (name = transform name, value = class or factory called
without arguments), read at first use.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

import torch

from ..checks import is_whole
from ..errors import ConfigError
from ..plugins import Registry

ENTRY_POINT_GROUP = "hsi.augmentations"
TransformFactory = TypeVar("TransformFactory", bound="Callable[[], Transform]")  # a Transform class or factory


class SceneSource(Protocol):
    """What a transform may ask of the scene draws it augments (:meth:`Transform.scene`)."""

    @property
    def band_std(self) -> torch.Tensor:
        """(bands,) float32: each band's std over the training pixels."""


class Source(SceneSource, Protocol):
    """What a transform may ask of the windows it augments (:meth:`Transform.apply`)."""

    def windows_at(self, indices: torch.Tensor) -> torch.Tensor:
        """The raw windows ``(len(indices), bands, s, s)`` of these items."""


class Transform:
    """Base class of a registered augmentation; ``width`` random numbers are drawn per item."""

    name = ""
    width = 1

    def draw(self, labels: torch.Tensor, indices: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def apply(self, x: torch.Tensor, params: torch.Tensor, source: Source) -> torch.Tensor:
        raise NotImplementedError

    def scene(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
              source: SceneSource) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({values})"


class Augmentation:
    """Transforms applied in the order given; what the datasets hold (None there means no augmentation)."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.transforms)

    def require(self, method: str, what: str) -> None:
        """Refuse, in one message, the transforms that do not define ``method`` (``"apply"`` or ``"scene"``)."""
        missing = [t.name for t in self.transforms if getattr(type(t), method) is getattr(Transform, method)]
        if missing:
            raise ConfigError(f"augmentation(s) {', '.join(missing)} cannot transform {what} (no {method}() method)")

    def draw(self, labels: torch.Tensor, indices: torch.Tensor,
             generator: torch.Generator | None) -> list[list[float]]:
        """Each item's random numbers (one row of Python floats per item), every transform's in turn."""
        columns = [t.draw(labels, indices, generator).to(torch.float64).reshape(len(indices), t.width)
                   for t in self.transforms]
        return torch.cat(columns, 1).tolist()

    def apply(self, x: torch.Tensor, rows: Sequence[Sequence[float]], source: Source) -> torch.Tensor:
        """``x (B, bands, s, s)`` transformed with the rows :meth:`draw` gave for its items."""
        params = torch.tensor(rows, dtype=torch.float64).reshape(len(x), -1)
        start = 0
        for t in self.transforms:
            x = t.apply(x, params[:, start:start + t.width], source)
            start += t.width
        return x

    def scene(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
              source: SceneSource) -> tuple[torch.Tensor, torch.Tensor]:
        for t in self.transforms:
            x, y = t.scene(x, y, generator, source)
        return x, y

    def __repr__(self) -> str:
        return f"Augmentation({', '.join(self.names)})"


def _key(name: str) -> str:
    if not isinstance(name, str) or not name.strip() or "," in name:
        raise ConfigError(f"an augmentation name must be a non-empty string without commas, got {name!r}")
    return name.strip().lower()


TRANSFORMS: Registry[Callable[[], Transform]] = Registry("augmentation", ENTRY_POINT_GROUP, thing="transform",
                                                        key=lambda name: name.strip().lower(), sort=True)


def register_augmentation(name: str) -> Callable[[TransformFactory], TransformFactory]:
    """Decorator registering a :class:`Transform` class (or factory called without arguments) under ``name``."""
    key = _key(name)

    def decorator(transform: TransformFactory) -> TransformFactory:
        TRANSFORMS.register(key, transform)
        if isinstance(transform, type):
            transform.name = key  # type: ignore[attr-defined]
        return transform

    return decorator


def reload_entry_points() -> None:
    """Read the ``hsi.augmentations`` entry points again (after installing a package or changing ``sys.path``)."""
    TRANSFORMS.reload()


def list_augmentations() -> list[str]:
    """Sorted names of every known transform: built-in, registered in code, or offered by an installed package."""
    return TRANSFORMS.names()


def augmentation_names(spec: str | bool | Iterable[str] | None) -> tuple[str, ...]:
    """The transform names ``spec`` asks for, checked: ``"flip,noise"`` or a list of names; True (an older
    ``config.json``) means ``("flip",)``, False / None / ``""`` / ``"none"`` none."""
    if spec is None or spec is False:
        return ()
    if spec is True:
        return ("flip",)
    parts = spec.split(",") if isinstance(spec, str) else spec
    if isinstance(parts, (bytes, dict)) or not isinstance(parts, Iterable):
        raise ConfigError(f"augment must be a comma-separated list of names (e.g. flip,noise), got {spec!r}")
    names = tuple(_key(part) for part in parts if not (isinstance(part, str) and part.strip() in ("", "none")))
    known = list_augmentations()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"unknown augmentation(s) {', '.join(map(repr, unknown))}; known augmentations: "
                          f"{', '.join(known)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"augment names a transform twice: {', '.join(names)}")
    return names


def make_augmentation(spec: str | bool | Iterable[str] | None) -> Augmentation | None:
    """The composed transforms ``spec`` names (see :func:`augmentation_names`), each with its default parameters,
    or None when it names none. Other parameters: ``Augmentation([Noise(std=0.1), ...])``, or register a
    subclass under a name of its own."""
    names = augmentation_names(spec)
    return Augmentation([_build(name) for name in names]) if names else None


def _build(name: str) -> Transform:
    factory = TRANSFORMS.get(name)
    transform = factory()
    if not isinstance(transform, Transform):
        raise ConfigError(f"augmentation {name!r} built a {type(transform).__name__}, expected an "
                          f"hsi.data.augment.Transform")
    transform.name = transform.name or name
    return transform


def _per_item(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``values (B,)`` shaped to broadcast over ``x (B, ...)``, in ``x``'s dtype."""
    return values.to(x.dtype).view(-1, *[1] * (x.dim() - 1))


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


ORIENTATIONS = 8      # a window's flip (code bit 0) and quarter turns (code // 2): the symmetries of a square


def orient(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Windows ``x (B, ..., s, s)`` each flipped left-right when ``codes`` is odd, then turned ``codes // 2``
    quarter turns counter-clockwise. The centre pixel stays where it is."""
    flips, turns = codes % 2 == 1, codes // 2
    x = torch.where(flips.view(-1, *[1] * (x.dim() - 1)), x.flip(-1), x)
    for k in (1, 2, 3):
        chosen = turns == k
        if chosen.any():
            x[chosen] = torch.rot90(x[chosen], k, dims=(-2, -1))
    return x


@register_augmentation("flip")
class Flip(Transform):
    """Random left-right flip and 0-3 quarter turns of each window, all eight equally likely (no parameter); a
    scene draw is flipped and turned with its label map. The centre pixel stays in place."""

    def draw(self, labels: torch.Tensor, indices: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return torch.randint(0, ORIENTATIONS, (len(indices),), generator=generator)

    def apply(self, x: torch.Tensor, params: torch.Tensor, source: Source) -> torch.Tensor:
        return orient(x, params[:, 0].long())

    def scene(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
              source: SceneSource) -> tuple[torch.Tensor, torch.Tensor]:
        flip = torch.randint(0, 2, (1,), generator=generator).item()
        turns = int(torch.randint(0, 4, (1,), generator=generator).item())
        x, y = (x.flip(-1), y.flip(-1)) if flip else (x, y)
        return torch.rot90(x, turns, (-2, -1)), torch.rot90(y, turns, (-2, -1))


@register_augmentation("brightness")
class Brightness(Transform):
    """Each window (each pixel of a scene draw) multiplied by a gain drawn uniformly in ``[1 - amount, 1 + amount]``
    (default ``amount=0.2``)."""

    def __init__(self, amount: float = 0.2):
        if not 0 <= amount < 1:
            raise ConfigError(f"brightness amount must be in [0, 1), got {amount!r}")
        self.amount = amount

    def draw(self, labels: torch.Tensor, indices: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return _uniform(len(indices), 1 - self.amount, 1 + self.amount, generator)

    def apply(self, x: torch.Tensor, params: torch.Tensor, source: Source) -> torch.Tensor:
        return x * _per_item(params[:, 0], x)

    def scene(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
              source: SceneSource) -> tuple[torch.Tensor, torch.Tensor]:
        gain = _uniform(x[0].numel(), 1 - self.amount, 1 + self.amount, generator).view(x.shape[1:])
        return x * gain.to(x.dtype), y


@register_augmentation("noise")
class Noise(Transform):
    """Additive Gaussian noise of standard deviation ``std`` times each band's std over the training pixels
    (default ``std=0.05``; the training pixels', not the batch's, so that it does not depend on how a batch is
    shared among processes). Each window's noise comes from its own drawn seed."""

    def __init__(self, std: float = 0.05):
        if not std >= 0:
            raise ConfigError(f"noise std must be >= 0, got {std!r}")
        self.std = std

    def draw(self, labels: torch.Tensor, indices: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return torch.randint(0, 2 ** 53, (len(indices),), generator=generator)     # exact in float64

    def apply(self, x: torch.Tensor, params: torch.Tensor, source: Source) -> torch.Tensor:
        noise = torch.stack([torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(int(seed)))
                             for seed in params[:, 0].tolist()]) if len(x) else torch.zeros_like(x)
        return x + noise * (self.std * source.band_std.to(x.dtype)).view(1, -1, *[1] * (x.dim() - 2))

    def scene(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
              source: SceneSource) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn(x.shape, generator=generator)
        return x + noise * (self.std * source.band_std.to(x.dtype)).view(-1, 1, 1), y


def _shift_bands(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``x (B, bands, ...)`` with band ``k`` of item ``i`` moved to ``k + offsets[i]``; the edge band repeats."""
    bands = x.shape[1]
    source_band = (torch.arange(bands) - offsets.long().view(-1, 1)).clamp(0, bands - 1)    # (B, bands)
    return x.gather(1, source_band.view(*source_band.shape, *[1] * (x.dim() - 2)).expand_as(x))


@register_augmentation("spectral_shift")
class SpectralShift(Transform):
    """The band axis of each window shifted by a whole number of bands drawn uniformly in ``[-max_shift,
    max_shift]`` (default ``max_shift=1``): band ``k`` moves to ``k + offset``, the edge band fills the gap. A scene
    draw is shifted as one."""

    def __init__(self, max_shift: int = 1):
        if not is_whole(max_shift, 1):
            raise ConfigError(f"spectral_shift max_shift must be a whole number >= 1, got {max_shift!r}")
        self.max_shift = max_shift

    def draw(self, labels: torch.Tensor | None, indices: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return torch.randint(-self.max_shift, self.max_shift + 1, (len(indices),), generator=generator)

    def apply(self, x: torch.Tensor, params: torch.Tensor, source: Source) -> torch.Tensor:
        return _shift_bands(x, params[:, 0])

    def scene(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
              source: SceneSource) -> tuple[torch.Tensor, torch.Tensor]:
        return _shift_bands(x[None], self.draw(None, torch.zeros(1), generator))[0], y


def _smooth_bands(x: torch.Tensor, sigmas: torch.Tensor, radius: int) -> torch.Tensor:
    """``x (B, bands, ...)`` convolved along the bands with a Gaussian of ``sigmas[i]`` bands (``2 radius + 1``
    taps, normalised; the edge bands repeat beyond the ends). Sigma 0 leaves an item as it is."""
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-taps ** 2 / (2 * sigmas.view(-1, 1).clamp_min(1e-6) ** 2))
    weights = (weights / weights.sum(1, keepdim=True)).to(x.dtype)                       # (B, taps)
    padded = torch.cat([x[:, :1].expand(-1, radius, *x.shape[2:]), x,
                        x[:, -1:].expand(-1, radius, *x.shape[2:])], 1)
    bands, shape = x.shape[1], (-1, 1, *[1] * (x.dim() - 2))
    smoothed = torch.zeros_like(x)
    for j in range(2 * radius + 1):
        smoothed += weights[:, j].view(shape) * padded[:, j:j + bands]
    return smoothed


@register_augmentation("spectral_smooth")
class SpectralSmooth(Transform):
    """Each window's spectra smoothed along the bands by a Gaussian whose width is drawn uniformly in ``[0,
    max_sigma]`` bands (default ``max_sigma=1.0``; ``ceil(2 max_sigma)`` taps each side). A scene draw is
    smoothed as one."""

    def __init__(self, max_sigma: float = 1.0):
        if not max_sigma > 0:
            raise ConfigError(f"spectral_smooth max_sigma must be > 0, got {max_sigma!r}")
        self.max_sigma = max_sigma
        self.radius = math.ceil(2 * max_sigma)

    def draw(self, labels: torch.Tensor | None, indices: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        return _uniform(len(indices), 0.0, self.max_sigma, generator)

    def apply(self, x: torch.Tensor, params: torch.Tensor, source: Source) -> torch.Tensor:
        return _smooth_bands(x, params[:, 0], self.radius)

    def scene(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
              source: SceneSource) -> tuple[torch.Tensor, torch.Tensor]:
        return _smooth_bands(x[None], self.draw(None, torch.zeros(1), generator), self.radius)[0], y


def _same_class_partners(labels: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """For each position, a random other position with the same label (itself when its class is alone)."""
    u = torch.rand(len(labels), generator=generator, dtype=torch.float64)
    partners = torch.arange(len(labels))
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        if len(members) > 1:
            pick = (u[members] * (len(members) - 1)).long().clamp_max(len(members) - 2)
            partners[members] = members[pick + (pick >= torch.arange(len(members)))]       # skip itself
    return partners


@register_augmentation("mix")
class Mix(Transform):
    """Same-class mixing: each window becomes ``(1 - w) x + w x'`` with ``x'`` the raw window of another item of
    the same class in the global batch and ``w`` drawn uniformly in ``[0, max_weight]`` (default
    ``max_weight=0.5``); labels stay. In a scene draw each labelled pixel's spectrum is mixed so with that of
    another labelled pixel of its class in the draw."""

    width = 2

    def __init__(self, max_weight: float = 0.5):
        if not 0 < max_weight <= 1:
            raise ConfigError(f"mix max_weight must be in (0, 1], got {max_weight!r}")
        self.max_weight = max_weight

    def draw(self, labels: torch.Tensor, indices: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
        partners = torch.as_tensor(indices)[_same_class_partners(torch.as_tensor(labels), generator)]
        return torch.stack([partners.to(torch.float64), _uniform(len(indices), 0, self.max_weight, generator)], 1)

    def apply(self, x: torch.Tensor, params: torch.Tensor, source: Source) -> torch.Tensor:
        w = _per_item(params[:, 1], x)
        return (1 - w) * x + w * source.windows_at(params[:, 0].long())

    def scene(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
              source: SceneSource) -> tuple[torch.Tensor, torch.Tensor]:
        where = torch.nonzero(y >= 0, as_tuple=True)
        spectra = x[:, where[0], where[1]]                                         # (bands, labelled)
        partners = _same_class_partners(y[where], generator)
        w = _uniform(len(partners), 0, self.max_weight, generator).to(x.dtype)
        x = x.clone()
        x[:, where[0], where[1]] = (1 - w) * spectra + w * spectra[:, partners]
        return x, y
