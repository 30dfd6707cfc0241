"""Selective kernel convolution (SKNet, Li et al., CVPR 2019)."""
from __future__ import annotations

import math

import torch
from torch import nn

from ...checks import check_positive, check_positive_tuple
from .registry import hidden_width, register_attention


@register_attention("sk")
class SelectiveKernel(nn.Module):
    """SKNet selective kernel unit: branches with different receptive fields, mixed by a learned softmax.

    Each branch is a padded 3x3 grouped conv + BN + ReLU with one of ``dilations`` (dilation 2 covers a 5x5
    field). The summed branches are pooled globally, squeezed to ``max(channels // reduction, min_hidden)``
    units and expanded to per-branch channel logits; a softmax over the branches weights their sum. The conv
    uses ``gcd(channels, groups)`` groups so any channel count works. ``stride`` 2 makes it SKNet's
    downsampling SK convolution (then the output is half the size; as an attention block it stays 1).
    """

    def __init__(self, channels: int, *, dilations: tuple[int, ...] = (1, 2), groups: int = 32, reduction: int = 16,
                 min_hidden: int = 32, stride: int = 1) -> None:
        super().__init__()
        hidden = hidden_width(channels, reduction, min_hidden)
        dilations = check_positive_tuple("dilations", dilations)
        groups = math.gcd(channels, check_positive("groups", groups))
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, stride=check_positive("stride", stride), padding=dilation,
                                    dilation=dilation, groups=groups, bias=False),
                          nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
            for dilation in dilations)
        self.squeeze = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True))
        self.select = nn.Conv2d(hidden, channels * len(dilations), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = torch.stack([branch(x) for branch in self.branches], dim=1)     # (N, B, C, H, W)
        summary = self.squeeze(branches.sum(1).mean((2, 3), keepdim=True))         # (N, hidden, 1, 1)
        logits = self.select(summary).view(*branches.shape[:3], 1, 1)              # (N, B, C, 1, 1)
        return (branches * torch.softmax(logits, dim=1)).sum(1)
