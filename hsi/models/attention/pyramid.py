"""Multi-scale context pyramids, projected back to the input's channel count: ASPP and PSPNet's PPM."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...checks import check_positive_tuple
from .registry import hidden_width, register_attention


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel_size // 2)
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation,
                                   bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


@register_attention("aspp")
class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (Chen et al., DeepLabv3, arXiv 2017).

    Parallel branches of ``max(channels // reduction, min_hidden)`` channels: a 1x1 conv, one padded 3x3 conv
    per entry of ``dilations`` (DeepLab's 6, 12, 18 suit 500-pixel images; the defaults suit HSI patches) and
    global image pooling; concatenated and projected back to ``channels`` by a 1x1 conv. Convs on spatial maps
    have BN + ReLU; the pooled branch has no BN (it holds one value per sample).
    """

    def __init__(self, channels: int, *, dilations: tuple[int, ...] = (2, 4, 6), reduction: int = 4,
                 min_hidden: int = 8) -> None:
        super().__init__()
        hidden = hidden_width(channels, reduction, min_hidden)
        dilations = check_positive_tuple("dilations", dilations)
        self.branches = nn.ModuleList([_conv_bn_relu(channels, hidden)]
                                      + [_conv_bn_relu(channels, hidden, 3, dilation) for dilation in dilations])
        self.image_pool = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True))
        self.project = _conv_bn_relu(hidden * (len(dilations) + 2), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.image_pool(x.mean((2, 3), keepdim=True)).expand(-1, -1, *x.shape[2:])
        return self.project(torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1))


@register_attention("ppm")
class PyramidPooling(nn.Module):
    """PSPNet pyramid pooling module (Zhao et al., CVPR 2017).

    For each of ``bins``: adaptive average pooling to bin x bin, a 1x1 conv to
    ``max(channels // len(bins), min_hidden)`` channels + ReLU (no BN: a 1x1 bin holds one value per sample),
    bilinear upsampling to H x W. The maps are concatenated with ``x`` and projected back to ``channels`` by a
    1x1 conv + BN + ReLU.
    """

    def __init__(self, channels: int, *, bins: tuple[int, ...] = (1, 2, 3, 6), min_hidden: int = 8) -> None:
        super().__init__()
        bins = check_positive_tuple("bins", bins)
        hidden = hidden_width(channels, len(bins), min_hidden)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(size), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True))
            for size in bins)
        self.project = _conv_bn_relu(channels + hidden * len(bins), channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = [F.interpolate(stage(x), size=x.shape[2:], mode="bilinear", align_corners=False)
                   for stage in self.stages]
        return self.project(torch.cat([x, *pyramid], dim=1))
