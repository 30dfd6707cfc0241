"""Non-local block (``nonlocal`` is a Python keyword, hence the module name)."""
from __future__ import annotations

import torch
from torch import nn

from .registry import hidden_width, register_attention


@register_attention("nonlocal")
class NonLocal(nn.Module):
    """Embedded-Gaussian non-local block (Wang et al., CVPR 2018): ``x + BN(W softmax(theta^T phi) g)``.

    theta, phi and g are 1x1 convs to ``max(channels // reduction, min_hidden)`` channels; the output
    projection's BN scale starts at 0, so the block is the identity at initialisation.
    """

    def __init__(self, channels: int, *, reduction: int = 2, min_hidden: int = 8) -> None:
        super().__init__()
        inner = hidden_width(channels, reduction, min_hidden)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        norm = nn.BatchNorm2d(channels)
        self.out = nn.Sequential(nn.Conv2d(inner, channels, 1), norm)
        nn.init.zeros_(norm.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        theta, phi, g = self.theta(x).flatten(2), self.phi(x).flatten(2), self.g(x).flatten(2)  # (N, C', HW)
        weights = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)                           # (N, HW, HW)
        attended = (g @ weights.transpose(1, 2)).view(n, -1, h, w)
        return x + self.out(attended)
