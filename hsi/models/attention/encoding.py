"""Context encoding (EncNet, Zhang et al., CVPR 2018)."""
from __future__ import annotations

import math

import torch
from torch import nn

from ...checks import check_positive
from .registry import register_attention


@register_attention("encoding")
class ContextEncoding(nn.Module):
    """EncNet context encoding module: ``x + x * gamma`` with channel scales gamma from a learned dictionary.

    Each position is soft-assigned to ``codewords`` learnable codewords (softmax of scale-weighted squared
    distances, one learnable scale per codeword); the assignment-weighted residuals to each codeword are
    summed over positions, passed through BN + ReLU and averaged over codewords; an FC + sigmoid gives gamma.
    """

    def __init__(self, channels: int, *, codewords: int = 32) -> None:
        super().__init__()
        channels = check_positive("channels", channels)
        codewords = check_positive("codewords", codewords)
        bound = 1 / math.sqrt(codewords * channels)
        self.codewords = nn.Parameter(torch.empty(codewords, channels).uniform_(-bound, bound))
        self.scales = nn.Parameter(torch.empty(codewords).uniform_(-1, 0))
        self.norm = nn.BatchNorm1d(codewords)
        self.fc = nn.Linear(channels, channels)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Residual encoding ``e_k = sum_i a_ik (x_i - c_k)`` of the positions of ``x``: (N, K, C)."""
        features = x.flatten(2).transpose(1, 2)                                        # (N, HW, C)
        squared_distances = (features.square().sum(-1, keepdim=True) - 2 * features @ self.codewords.T
                             + self.codewords.square().sum(-1))                        # (N, HW, K)
        assignment = torch.softmax(self.scales * squared_distances, dim=-1)
        # the sum expanded, so the (N, HW, K, C) residuals are never built
        return assignment.transpose(1, 2) @ features - assignment.sum(1).unsqueeze(-1) * self.codewords

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = torch.relu(self.norm(self.encode(x))).mean(1)                       # (N, C)
        gamma = torch.sigmoid(self.fc(context))
        return x + x * gamma[:, :, None, None]
