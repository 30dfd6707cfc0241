"""Channel gates from globally pooled features: squeeze-excitation and ECA."""
from __future__ import annotations

import math

import torch
from torch import nn

from ...checks import check_positive
from ...errors import ConfigError
from .registry import hidden_width, register_attention


@register_attention("se")
class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al., CVPR 2018): average pool, bottleneck MLP, sigmoid channel gate.

    The bottleneck has ``max(channels // reduction, min_hidden)`` units.
    """

    def __init__(self, channels: int, *, reduction: int = 16, min_hidden: int = 8) -> None:
        super().__init__()
        hidden = hidden_width(channels, reduction, min_hidden)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)))


def eca_kernel_size(channels: int, gamma: int = 2, beta: int = 1) -> int:
    """ECA's adaptive kernel size: the odd number nearest above ``|(log2(channels) + beta) / gamma|``."""
    if not gamma > 0:
        raise ConfigError(f"gamma must be positive, got {gamma!r}")
    size = int(abs((math.log2(check_positive("channels", channels)) + beta) / gamma))
    return size if size % 2 else size + 1


@register_attention("eca")
class EfficientChannelAttention(nn.Module):
    """ECA-Net (Wang et al., CVPR 2020): average pool, 1-D conv across channels, sigmoid channel gate.

    ``kernel_size`` None picks it from the channel count (:func:`eca_kernel_size`).
    """

    def __init__(self, channels: int, *, kernel_size: int | None = None, gamma: int = 2, beta: int = 1) -> None:
        super().__init__()
        self.kernel_size = eca_kernel_size(channels, gamma, beta) if kernel_size is None else kernel_size
        if check_positive("kernel_size", self.kernel_size) % 2 == 0:
            raise ConfigError(f"kernel_size must be odd, got {self.kernel_size}")
        self.conv = nn.Conv1d(1, 1, self.kernel_size, padding=self.kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean((2, 3)).unsqueeze(1)                        # (N, 1, C)
        gate = torch.sigmoid(self.conv(pooled)).transpose(1, 2)     # (N, C, 1)
        return x * gate.unsqueeze(-1)
