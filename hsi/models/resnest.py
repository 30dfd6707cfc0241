"""ResNeSt (Zhang et al., CVPRW 2022) for HSI patches: residual units with a split-attention convolution.

The 3×3 convolution of a bottleneck becomes :class:`SplitAttentionConv`: ``cardinality`` (K) groups, each
cut into ``radix`` (R) splits, and per group a softmax over its R splits (the r-SoftMax) decides how they
are summed. The default layout is ResNeSt's 2s1x64d unit (R = 2, K = 1, middle width = planes) in
``(2, 2, 2, 2)`` stages with the ResNet widths 32-64-128-256; the attention slot ``unit`` sits before the
addition, as in ResNet.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..checks import check_positive
from ..errors import ConfigError
from .backbone import PatchClassifier
from .registry import register_model
from .resnet import Bottleneck, residual_network


class SplitAttentionConv(nn.Module):
    """Split attention over ``radix`` × ``cardinality`` groups of a 3×3 convolution.

    The convolution makes R·C maps in K·R groups (BN, ReLU); the R splits of C maps are summed, pooled
    globally, mapped by a grouped FC to ``max(in_channels · R / reduction, min_hidden)`` units (ReLU) and by
    a grouped FC to R·C logits; within each cardinal group a softmax over the R splits (a sigmoid when R = 1)
    weights the splits' sum. The first FC has a bias where the authors' code has BN: it acts on one pooled
    value per sample, which BN cannot normalise in a batch of one.
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1, *, radix: int = 2, cardinality: int = 1,
                 reduction: int = 4, min_hidden: int = 32) -> None:
        super().__init__()
        self.radix, self.cardinality = check_positive("radix", radix), check_positive("cardinality", cardinality)
        if in_channels % (radix * cardinality) or channels % cardinality:
            raise ConfigError(f"split attention needs input channels divisible by radix × cardinality "
                              f"({radix} × {cardinality}) and output channels divisible by cardinality, got "
                              f"{in_channels} and {channels}")
        hidden = max(in_channels * radix // check_positive("reduction", reduction), check_positive("min_hidden",
                                                                                                    min_hidden))
        hidden = -(-hidden // cardinality) * cardinality
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, channels * radix, 3, stride=stride, padding=1, groups=cardinality * radix,
                      bias=False),
            nn.BatchNorm2d(channels * radix), nn.ReLU(inplace=True))
        self.fc1 = nn.Sequential(nn.Conv2d(channels, hidden, 1, groups=cardinality), nn.ReLU(inplace=True))
        self.fc2 = nn.Conv2d(hidden, channels * radix, 1, groups=cardinality)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        n, channels, height, width = x.shape
        channels //= self.radix                   # explicit sizes (no -1): an empty batch keeps its shape
        splits = x.view(n, self.radix, channels, height, width)                    # (N, R, C, H, W)
        logits = self.fc2(self.fc1(splits.sum(1).mean((2, 3), keepdim=True)))     # (N, K·R·C/K, 1, 1)
        logits = logits.view(n, self.cardinality, self.radix, channels // self.cardinality).transpose(1, 2)
        weights = torch.softmax(logits, dim=1) if self.radix > 1 else torch.sigmoid(logits)   # (N, R, K, C/K)
        return (splits * weights.reshape(n, self.radix, channels, 1, 1)).sum(1)


class SplitAttentionUnit(Bottleneck):
    """Bottleneck (×4 expansion) with a split-attention convolution in the middle; the stride is its own."""

    def __init__(self, in_channels: int, planes: int, stride: int = 1, *, radix: int = 2, cardinality: int = 1,
                 **options: Any) -> None:
        self.split_options = dict(radix=radix, cardinality=cardinality)
        super().__init__(in_channels, planes, stride, **options)

    def middle(self, planes: int, stride: int) -> list[nn.Module]:
        return [SplitAttentionConv(planes, planes, stride, **self.split_options)]


@register_model(PatchClassifier, paper="Zhang et al., CVPRW 2022")
def resnest(*, units: tuple[int, ...] = (2, 2, 2, 2), **options: Any) -> PatchClassifier:
    """ResNeSt with ``units`` split-attention units per stage (radix 2, cardinality 1 by default)."""
    return residual_network("resnest", SplitAttentionUnit, units, **options)
