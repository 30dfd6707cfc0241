"""Channel and spatial gates combined: CBAM (sequential) and BAM (parallel)."""
from __future__ import annotations

import torch
from torch import nn

from ...checks import check_positive
from ...errors import ConfigError
from .registry import hidden_width, register_attention


def _bottleneck_mlp(channels: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))


@register_attention("cbam")
class CBAM(nn.Module):
    """Convolutional block attention module (Woo et al., ECCV 2018).

    Channel gate: a shared bottleneck MLP on the average- and max-pooled features, summed, sigmoid. Then
    spatial gate: a ``kernel_size`` conv on the channel-wise [mean, max] maps, sigmoid.
    """

    def __init__(self, channels: int, *, reduction: int = 16, min_hidden: int = 8, kernel_size: int = 7) -> None:
        super().__init__()
        if check_positive("kernel_size", kernel_size) % 2 == 0:
            raise ConfigError(f"kernel_size must be odd, got {kernel_size}")
        self.mlp = _bottleneck_mlp(channels, hidden_width(channels, reduction, min_hidden))
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channel_logits = self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True))
        x = x * torch.sigmoid(channel_logits)
        maps = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(maps))


@register_attention("bam")
class BAM(nn.Module):
    """Bottleneck attention module (Park et al., BMVC 2018): ``x * (1 + sigmoid(channel + spatial))``.

    Channel branch: bottleneck MLP on the average-pooled features. Spatial branch: 1x1 reduction, two
    3x3 convs with ``dilation``, 1x1 to one map, with BN + ReLU between (on spatial maps only).
    """

    def __init__(self, channels: int, *, reduction: int = 16, min_hidden: int = 8, dilation: int = 4) -> None:
        super().__init__()
        hidden = hidden_width(channels, reduction, min_hidden)
        dilation = check_positive("dilation", dilation)
        self.channel = _bottleneck_mlp(channels, hidden)
        self.spatial = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation), nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation), nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1 + torch.sigmoid(self.channel(x.mean((2, 3), keepdim=True)) + self.spatial(x)))
