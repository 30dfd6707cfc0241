"""DMNet's dynamic convolutional modules (He et al., "Dynamic Multi-scale Filters for Semantic Segmentation",
ICCV 2019), as a shape-preserving block."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...checks import check_positive_tuple
from .registry import hidden_width, register_attention


class DynamicConv(nn.Module):
    """One DCM of filter size ``k``: a ``k x k`` depthwise kernel per image and channel, generated from the
    features average-pooled to ``k x k`` by a 1x1 conv (with bias); applied (no bias) to a 1x1 conv-BN-ReLU
    reduced copy of the features, zero-padded to keep H x W (an even ``k`` pads one more at top and left),
    then BN and ReLU. Input ``(N, channels, H, W)``, output ``(N, hidden, H, W)``. The depthwise product is
    a sum of ``k * k`` shifted copies (DMNet's code uses one convolution with ``N * hidden`` groups: the same
    sums, checked against it in the tests)."""

    def __init__(self, channels: int, hidden: int, filter_size: int) -> None:
        super().__init__()
        self.filter_size = filter_size
        self.generate = nn.Conv2d(channels, hidden, 1)
        self.reduce = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                                    nn.ReLU(inplace=True))
        self.norm = nn.Sequential(nn.BatchNorm2d(hidden), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.filter_size
        kernels = self.generate(F.adaptive_avg_pool2d(x, k))               # (N, hidden, k, k)
        features = self.reduce(x)
        h, w = features.shape[-2:]
        pad = (k - 1) // 2
        extra = (k - 1) % 2
        padded = F.pad(features, (pad + extra, pad, pad + extra, pad))
        out = sum(kernels[:, :, u, v, None, None] * padded[:, :, u:u + h, v:v + w]
                  for u in range(k) for v in range(k))
        return self.norm(out)


@register_attention("dcm")
class DCM(nn.Module):
    """DMNet's head as a block: DCMs of ``filter_sizes`` in parallel (``max(channels // reduction,
    min_hidden)`` channels each), concatenated with the input and projected back to ``channels`` by a 3x3
    conv-BN-ReLU (DMNet's bottleneck). Works at batch 1 and on maps smaller than the filters.

    A DCM multiplies a kernel generated from the features with the features, so its output grows with the
    square of the input's scale. DMNet uses one as a head; stacked in every unit of a deep network the scale is
    squared at every unit and overflows in eval mode. With ``scale_free`` (the default) each image's branches
    read the input divided by its root mean square ``s`` and their outputs are multiplied by ``s``, so the block
    grows linearly like every other block; ``scale_free=False`` is DMNet's head exactly."""

    def __init__(self, channels: int, *, filter_sizes: tuple[int, ...] = (1, 3, 5, 7), reduction: int = 4,
                 min_hidden: int = 8, scale_free: bool = True) -> None:
        super().__init__()
        self.scale_free = scale_free
        hidden = hidden_width(channels, reduction, min_hidden)
        filter_sizes = check_positive_tuple("filter_sizes", filter_sizes)
        self.branches = nn.ModuleList(DynamicConv(channels, hidden, k) for k in filter_sizes)
        self.project = nn.Sequential(nn.Conv2d(channels + hidden * len(filter_sizes), channels, 3, padding=1,
                                               bias=False),
                                     nn.BatchNorm2d(channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.scale_free:
            return self.project(torch.cat([x] + [branch(x) for branch in self.branches], dim=1))
        peak = x.abs().amax((1, 2, 3), keepdim=True).clamp_min(1e-12)      # (x / peak)² cannot overflow
        scale = peak * (x / peak).pow(2).mean((1, 2, 3), keepdim=True).sqrt().clamp_min(1e-12)
        return self.project(torch.cat([x] + [scale * branch(x / scale) for branch in self.branches], dim=1))
