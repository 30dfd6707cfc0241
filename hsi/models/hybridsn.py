"""The HybridSN family (Roy et al. 2019) with attention slots.

A network is a chain of translation-equivariant *stages* (valid, stride-1 convolutions with batch norm and
ReLU), each followed by an attention *slot*, then a dense *head* on the flattened last map. Every size is
derived from ``bands`` and ``patch_size`` at construction, and the same split into stages is what lets
:mod:`hsi.models.dense` run a trained network over a whole scene at once.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..checks import check_fraction
from ..errors import ConfigError
from .attention import create_attention
from .attention.registry import AttentionOption, AttentionSpec
from .norm_relu import ConvNormReLU
from .registry import register_model

MIN_PATCH = 9    # four valid 3×3 convolutions (three 3-D, one 2-D) shrink the window by 8


def _conv_block(conv: nn.Conv2d | nn.Conv3d, batch_norm: bool) -> list[nn.Module]:
    norm = (nn.BatchNorm3d if isinstance(conv, nn.Conv3d) else nn.BatchNorm2d)(conv.out_channels)
    return [conv, norm, nn.ReLU(inplace=True)] if batch_norm else [conv, nn.ReLU(inplace=True)]


class Conv3dStack(nn.Module):
    """Three valid 3-D convolutions (8@7×3×3, 16@5×3×3, 32@3×3×3) over a one-channel volume: the input
    (N, 1, depth, H, W), or (N, depth, H, W) whose channels become the depth axis. The output's depth is
    folded into the channel axis, giving (N, 32 × depth', H', W')."""

    kernels = ((8, 7), (16, 5), (32, 3))

    def __init__(self, batch_norm: bool = True) -> None:
        super().__init__()
        layers, channels = [], 1
        for out, depth in self.kernels:
            layers += _conv_block(nn.Conv3d(channels, out, (depth, 3, 3), bias=not batch_norm), batch_norm)
            channels = out
        self.layers = ConvNormReLU(*layers)

    @classmethod
    def depth_lost(cls) -> int:
        return sum(depth - 1 for _, depth in cls.kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fold_depth(self.layers(x.unsqueeze(1) if x.dim() == 4 else x))


def fold_depth(x: torch.Tensor) -> torch.Tensor:
    """(N, C, D, H, W) → (N, C·D, H, W), channel ``c·D + d``. A channels-last-3d map under autograd folds into a
    channels-last 2-D map (same values): the next 2-D convolution saves it as it is, where the contiguous fold
    would have oneDNN hold a reordered copy through its backward pass (about 200 MB at HybridSN's batch 256)."""
    if torch.is_grad_enabled() and x.requires_grad and x.is_contiguous(memory_format=torch.channels_last_3d):
        n, c, d, h, w = x.shape
        return x.permute(0, 3, 4, 1, 2).reshape(n, h, w, c * d).permute(0, 3, 1, 2)
    return x.flatten(1, 2)


class Conv2dLayer(nn.Module):
    """A valid 3×3 2-D convolution with batch norm and ReLU; a 5-D input (N, 1, bands, H, W) is read with
    its bands as channels."""

    def __init__(self, in_channels: int, out_channels: int = 64, batch_norm: bool = True) -> None:
        super().__init__()
        self.layers = ConvNormReLU(*_conv_block(nn.Conv2d(in_channels, out_channels, 3, bias=not batch_norm),
                                                 batch_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1, 2) if x.dim() == 5 else x)


def _head(in_features: int, n_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, 256), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(256, 128), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(128, n_classes))


class HybridSN(nn.Module):
    """Stages with an attention slot after each, then the dense head.

    Input ``(N, 1, bands, patch, patch)``, output logits ``(N, n_classes)``. ``window_sizes[i]`` is the
    spatial size of the map after stage ``i`` for one patch, and ``slot_names[i]`` the name of its slot.
    """

    kind = "patch"

    def __init__(self, stages: Sequence[nn.Module], slot_names: Sequence[str], bands: int, n_classes: int,
                 patch_size: int, attention: AttentionOption = None, dropout: float = 0.4) -> None:
        super().__init__()
        self.bands, self.n_classes, self.patch_size = bands, n_classes, patch_size
        self.stages = nn.ModuleList(stages)
        self.slot_names = tuple(slot_names)
        shapes = self._trace_shapes()
        specs = _slot_specs(attention, self.slot_names)
        self.slots = nn.ModuleList(create_attention(specs[name], shape[0]) or nn.Identity()
                                   for name, shape in zip(self.slot_names, shapes))
        self.window_sizes = tuple(shape[-1] for shape in shapes)
        channels, height, width = shapes[-1]
        self.head = _head(channels * height * width, n_classes, check_fraction("dropout", dropout))

    def _trace_shapes(self) -> list[tuple[int, ...]]:
        """(channels, H, W) after each stage for one patch, from a dummy pass in eval mode."""
        x = torch.zeros(1, 1, self.bands, self.patch_size, self.patch_size)
        shapes = []
        with torch.no_grad():
            for stage in self.stages:
                x = stage.eval()(x)
                shapes.append(tuple(x.shape[1:]))
        self.train()
        return shapes

    def features(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Stages and slots from stage ``start`` on."""
        for stage, slot in zip(self.stages[start:], self.slots[start:]):
            x = slot(stage(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def _slot_specs(attention: AttentionOption, slot_names: Sequence[str]) -> dict[str, AttentionSpec]:
    if isinstance(attention, dict):
        unknown = sorted(set(attention) - set(slot_names))
        if unknown:
            raise ConfigError(f"unknown attention slot(s) {unknown}; this model's slots are {list(slot_names)}")
        return {name: attention.get(name) for name in slot_names}
    return {name: attention for name in slot_names}


def _check_sizes(model_name: str, bands: int, patch_size: int, min_bands: int, min_patch: int) -> None:
    if not isinstance(patch_size, int) or patch_size % 2 == 0 or patch_size < min_patch:
        raise ConfigError(f"{model_name} needs an odd patch size of at least {min_patch} (its valid "
                          f"convolutions shrink the window by {min_patch - 1}), got {patch_size}")
    if bands < min_bands:
        raise ConfigError(f"{model_name} needs at least {min_bands} bands (PCA components) for its spectral "
                          f"convolutions, got {bands}")


@register_model(HybridSN, min_patch=MIN_PATCH, min_bands=1 + Conv3dStack.depth_lost(),
                paper="Roy et al., IEEE GRSL 2019")
def hybridsn(*, bands: int, n_classes: int, patch_size: int = 25, attention: AttentionOption = None,
             batch_norm: bool = True, dropout: float = 0.4) -> HybridSN:
    """HybridSN (Roy et al. 2019): 3-D convolutions, spectral depth folded into channels, a 2-D convolution,
    then Linear 256 → Linear 128 → Linear n_classes with dropout. Slots: ``after_3d``, ``after_2d``."""
    _check_sizes("hybridsn", bands, patch_size, 1 + Conv3dStack.depth_lost(), MIN_PATCH)
    stack = Conv3dStack(batch_norm)
    folded = Conv3dStack.kernels[-1][0] * (bands - Conv3dStack.depth_lost())
    return HybridSN([stack, Conv2dLayer(folded, 64, batch_norm)], ("after_3d", "after_2d"), bands, n_classes,
                    patch_size, attention, dropout)


@register_model(HybridSN, min_patch=MIN_PATCH, paper="Roy et al., IEEE GRSL 2019, layers reordered")
def hybridsn_2d3d(*, bands: int, n_classes: int, patch_size: int = 25, attention: AttentionOption = None,
                  batch_norm: bool = True,
                  dropout: float = 0.4) -> HybridSN:
    """The "2-D first" variant: a 2-D convolution with the bands as channels, its 64 maps lifted to a 3-D
    volume, then the three 3-D convolutions and the same head. Slots: ``after_2d``, ``after_3d``."""
    _check_sizes("hybridsn_2d3d", bands, patch_size, 1, MIN_PATCH)
    return HybridSN([Conv2dLayer(bands, 64, batch_norm), Conv3dStack(batch_norm)], ("after_2d", "after_3d"), bands,
                    n_classes, patch_size, attention, dropout)


@register_model(HybridSN, min_patch=MIN_PATCH, min_bands=1 + Conv3dStack.depth_lost(),
                paper="Roy et al., IEEE GRSL 2019; SE: Hu et al., CVPR 2018")
def hybridsn_se(*, bands: int, n_classes: int, patch_size: int = 25, attention: AttentionOption = "se",
                batch_norm: bool = True, dropout: float = 0.1) -> HybridSN:
    """HybridSN with squeeze-excitation after the 3-D stack and after the 2-D convolution, dropout 0.1."""
    return hybridsn(bands=bands, n_classes=n_classes, patch_size=patch_size, attention=attention,
                    batch_norm=batch_norm, dropout=dropout)
