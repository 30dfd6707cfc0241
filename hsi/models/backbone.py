"""What the CNN backbones (ResNet, DenseNet-BC, SKNet, ResNeSt) share as hyperspectral patch classifiers.

The input ``(N, 1, bands, p, p)`` is read with its bands as channels. A 3×3 stride-1 stem (no max-pool: a
9–27 pixel window has nothing to spare) feeds the family's stages, which halve the map only while it stays at
least :data:`MIN_MAP` pixels wide (:func:`stage_strides`, from ``patch_size`` at construction); global average
pooling and a Linear layer sized from a traced dummy pass give the logits, so any odd patch and any band count
work.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..checks import is_whole
from ..errors import ConfigError
from .attention import create_attention
from .attention.registry import AttentionOption, AttentionSpec

MIN_MAP = 3     # smallest map a stage may halve down to: a 3×3 convolution still sees a full neighbourhood


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


def stem(bands: int, width: int, activate: bool = True) -> nn.Sequential:
    """The 3×3 stride-1 stem; ``activate`` False leaves BN-ReLU to a pre-activation first unit."""
    return nn.Sequential(conv3x3(bands, width), *(bn_relu(width) if activate else ()))


def slot(spec: AttentionSpec, channels: int) -> nn.Module:
    """The attention block ``spec`` for ``channels`` channels, or an identity when the slot is empty."""
    return create_attention(spec, channels) or nn.Identity()


def slot_spec(attention: AttentionOption, name: str) -> AttentionSpec:
    """The block for slot ``name`` from ``attention``: one spec for every slot, or a dict keyed by slot name."""
    if isinstance(attention, dict):
        unknown = sorted(set(attention) - {name})
        if unknown:
            raise ConfigError(f"unknown attention slot(s) {unknown}; this model's slots are [{name!r}]")
        return attention.get(name)
    return attention


def stage_strides(patch_size: int, n_stages: int) -> list[int]:
    """Stride of each stage: 1 for the first, then 2 while the halved map stays at least MIN_MAP wide."""
    strides, size = [], patch_size
    for stage in range(n_stages):
        halve = stage > 0 and (size + 1) // 2 >= MIN_MAP
        size = (size + 1) // 2 if halve else size
        strides.append(2 if halve else 1)
    return strides


def check_sizes(model_name: str, bands: int, n_classes: int, patch_size: int) -> None:
    for name, value in (("bands", bands), ("n_classes", n_classes), ("patch_size", patch_size)):
        if not is_whole(value, 1):
            raise ConfigError(f"{model_name}: {name} must be an integer >= 1, got {value!r}")
    if patch_size % 2 == 0:
        raise ConfigError(f"{model_name} needs an odd patch size (the window is centred on its pixel), "
                          f"got {patch_size}")


class PatchClassifier(nn.Module):
    """``stem`` → ``stages`` → ``final`` → global average pooling → Linear, on ``(N, 1, bands, p, p)`` patches.

    ``final`` is the closing BN-ReLU of pre-activation networks (identity otherwise). ``slot_names`` names the
    attention slots the stages hold, for error messages and the dict form of ``attention``.
    """

    kind = "patch"

    def __init__(self, stem: nn.Module, stages: Sequence[nn.Module], *, bands: int, n_classes: int, patch_size: int,
                 slot_names: tuple[str, ...] = (), final: nn.Module | None = None) -> None:
        super().__init__()
        self.bands, self.n_classes, self.patch_size = bands, n_classes, patch_size
        self.slot_names = tuple(slot_names)
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        self.final = final or nn.Identity()
        with torch.no_grad():
            features = self.eval().features(torch.zeros(1, 1, bands, patch_size, patch_size))
        self.train()
        self.map_size = features.shape[-1]
        self.head = nn.Linear(features.shape[1], n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map ``(N, C, h, w)``; a 5-D input is read with its bands as channels."""
        x = x.flatten(1, 2) if x.dim() == 5 else x
        return self.final(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))
