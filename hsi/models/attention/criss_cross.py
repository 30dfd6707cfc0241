"""Criss-cross attention (CCNet, Huang et al., ICCV 2019)."""
from __future__ import annotations

import torch
from torch import nn

from ...checks import check_positive
from .registry import hidden_width, register_attention


@register_attention("criss_cross")
class CrissCrossAttention(nn.Module):
    """CCNet criss-cross attention: each position attends to its row and column, ``recurrence`` times.

    The passes share weights (CCNet's recurrent criss-cross attention), so two passes reach every position.
    Residual with a learnable ``gamma`` starting at 0: the identity at initialisation. Queries and keys have
    ``max(channels // reduction, min_hidden)`` channels.
    """

    def __init__(self, channels: int, *, recurrence: int = 2, reduction: int = 8, min_hidden: int = 8) -> None:
        super().__init__()
        key_channels = hidden_width(channels, reduction, min_hidden)
        self.recurrence = check_positive("recurrence", recurrence)
        self.query = nn.Conv2d(channels, key_channels, 1)
        self.key = nn.Conv2d(channels, key_channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """One criss-cross pass: ``x + gamma * (row and column context)``."""
        height, width = x.shape[2:]
        query, key, value = self.query(x), self.key(x), self.value(x)
        # (N, H, W, H): position (h, w) against (g, w) in its column; -inf on g == h so that the position
        # itself is counted once, in the row part.
        self_in_column = torch.diag(torch.full((height,), float("-inf"), device=x.device, dtype=x.dtype))
        column_energy = torch.einsum("nchw,ncgw->nhwg", query, key) + self_in_column.view(height, 1, height)
        row_energy = torch.einsum("nchw,ncha->nhwa", query, key)                     # (N, H, W, W)
        weights = torch.softmax(torch.cat([column_energy, row_energy], dim=-1), dim=-1)
        column_weights, row_weights = weights.split([height, width], dim=-1)
        context = (torch.einsum("nhwg,ncgw->nchw", column_weights, value)
                   + torch.einsum("nhwa,ncha->nchw", row_weights, value))
        return x + self.gamma * context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.recurrence):
            x = self.attend(x)
        return x
