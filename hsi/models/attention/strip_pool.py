"""Strip pooling (SPNet, Hou et al., CVPR 2020)."""
from __future__ import annotations

import torch
from torch import nn

from ...checks import check_positive
from ...errors import ConfigError
from .registry import register_attention


@register_attention("strip_pool")
class StripPooling(nn.Module):
    """SPNet strip pooling module: a sigmoid gate built from long, narrow pooling windows.

    The input is averaged over each row (an H x 1 strip) and over each column (1 x W); a 1-D conv of
    ``kernel_size`` runs along each strip, both are broadcast back to H x W, summed, passed through ReLU and
    a 1x1 conv, and the sigmoid of that scales ``x``.
    """

    def __init__(self, channels: int, *, kernel_size: int = 3) -> None:
        super().__init__()
        channels = check_positive("channels", channels)
        if check_positive("kernel_size", kernel_size) % 2 == 0:
            raise ConfigError(f"kernel_size must be odd, got {kernel_size}")
        self.vertical = nn.Conv2d(channels, channels, (kernel_size, 1), padding=(kernel_size // 2, 0))
        self.horizontal = nn.Conv2d(channels, channels, (1, kernel_size), padding=(0, kernel_size // 2))
        self.fuse = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vertical = self.vertical(x.mean(3, keepdim=True))        # (N, C, H, 1)
        horizontal = self.horizontal(x.mean(2, keepdim=True))    # (N, C, 1, W)
        return x * torch.sigmoid(self.fuse(torch.relu(vertical + horizontal)))
