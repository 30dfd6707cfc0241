"""DANet self-attention over positions and over channels (Fu et al., CVPR 2019)."""
from __future__ import annotations

import torch
from torch import nn

from ...checks import check_positive
from .registry import hidden_width, register_attention


@register_attention("pam")
class PositionAttention(nn.Module):
    """DANet position attention module: every position is a softmax-weighted sum of all positions.

    Residual with a learnable ``gamma`` starting at 0, so the block is the identity at initialisation.
    Queries and keys have ``max(channels // reduction, min_hidden)`` channels.
    """

    def __init__(self, channels: int, *, reduction: int = 8, min_hidden: int = 8) -> None:
        super().__init__()
        key_channels = hidden_width(channels, reduction, min_hidden)
        self.query = nn.Conv2d(channels, key_channels, 1)
        self.key = nn.Conv2d(channels, key_channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``gamma`` times the attended features (what the block adds to ``x``)."""
        query, key, value = self.query(x).flatten(2), self.key(x).flatten(2), self.value(x).flatten(2)
        weights = torch.softmax(query.transpose(1, 2) @ key, dim=-1)    # (N, HW, HW), rows sum to 1
        return self.gamma * (value @ weights.transpose(1, 2)).view_as(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


@register_attention("cam")
class ChannelAttention(nn.Module):
    """DANet channel attention module: every channel map is a softmax-weighted sum of all channel maps.

    As the authors' released ``CAM_Module`` (junfu1115/DANet, ``encoding/nn/da_att.py``), the weights are
    ``softmax(max(E) - E)`` over each row of the channel energy ``E = F Fᵀ`` (not ``softmax(E)``): a channel
    attends most to the channels least similar to it. Residual with a learnable ``gamma`` starting at 0, so the
    block is the identity at initialisation.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        check_positive("channels", channels)
        self.gamma = nn.Parameter(torch.zeros(1))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``gamma`` times the attended features (what the block adds to ``x``)."""
        features = x.flatten(2)                                                 # (N, C, HW)
        energy = features @ features.transpose(1, 2)                          # (N, C, C)
        weights = torch.softmax(energy.amax(-1, keepdim=True) - energy, dim=-1)  # rows sum to 1
        return self.gamma * (weights @ features).view_as(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


@register_attention("danet")
class DualAttention(nn.Module):
    """DANet dual attention: position and channel attention in parallel, ``x + pam_residual + cam_residual``.

    The identity at initialisation (both ``gamma`` start at 0).
    """

    def __init__(self, channels: int, *, reduction: int = 8, min_hidden: int = 8) -> None:
        super().__init__()
        self.position = PositionAttention(channels, reduction=reduction, min_hidden=min_hidden)
        self.channel = ChannelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.position.residual(x) + self.channel.residual(x)
