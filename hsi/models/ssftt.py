"""SSFTT: the spectral–spatial feature tokenization transformer (Sun et al., IEEE TGRS 2022).

One 3-D convolution (8@3×3×3) and one 2-D convolution (64@3×3, the 3-D output's depth folded into channels)
extract shallow features; a Gaussian-weighted tokenizer turns the map's pixels into ``tokens`` semantic tokens
(a softmax over the pixels of learned projections); a class token, a position embedding and one pre-norm
transformer encoder follow, and a Linear layer reads the class token.

The attention slot, ``after_2d``, sits on the 2-D map (64 channels) before the tokenizer: where the network
still has a channel × space map for a channel or spatial block to reweight.
"""

from __future__ import annotations

import torch
from torch import nn

from ..checks import check_fraction
from ..errors import ConfigError
from .attention.registry import AttentionOption
from .backbone import check_sizes, slot, slot_spec
from .registry import register_model


class EncoderLayer(nn.Module):
    """Pre-norm multi-head self-attention and a GELU MLP, each added to its input (the authors' encoder, whose
    attention scale is ``dim ** -0.5``, not the usual per-head ``head_dim ** -0.5``)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"ssftt: the token width {dim} must be a multiple of heads, got heads={heads}")
        self.heads, self.scale = heads, dim ** -0.5
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim),
                                 nn.Dropout(dropout))
        self.dropout = nn.Dropout(dropout)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        weights = (q @ k.transpose(-2, -1) * self.scale).softmax(-1)
        return self.dropout(self.proj((weights @ v).transpose(1, 2).reshape(n, length, dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attend(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SSFTT(nn.Module):
    """Input ``(N, 1, bands, p, p)``, output logits ``(N, n_classes)``."""

    kind = "patch"
    slot_names = ("after_2d",)

    def __init__(self, *, bands: int, n_classes: int, patch_size: int, attention: AttentionOption = None,
                 tokens: int = 4, dim: int = 64, depth: int = 1, heads: int = 8,
                 mlp_dim: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        self.bands, self.n_classes, self.patch_size = bands, n_classes, patch_size
        dropout = check_fraction("dropout", dropout)
        self.conv3d = nn.Sequential(nn.Conv3d(1, 8, 3), nn.BatchNorm3d(8), nn.ReLU(inplace=True))
        self.conv2d = nn.Sequential(nn.Conv2d(8 * (bands - 2), 64, 3), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.slot = slot(slot_spec(attention, "after_2d"), 64)
        self.token_wa = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, tokens, 64)))
        self.token_wv = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, 64, dim)))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(nn.init.normal_(torch.empty(1, tokens + 1, dim), std=0.02))
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.Sequential(*(EncoderLayer(dim, heads, mlp_dim, dropout) for _ in range(depth)))
        self.head = nn.Linear(dim, n_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.normal_(self.head.bias, std=1e-6)

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """``tokens`` tokens from the map ``(N, 64, h, w)``: each a softmax-weighted sum of projected pixels."""
        pixels = x.flatten(2).transpose(1, 2)                                # (N, h*w, 64)
        weights = (pixels @ self.token_wa.transpose(1, 2)).transpose(1, 2).softmax(-1)     # (N, tokens, h*w)
        return weights @ (pixels @ self.token_wv)                            # (N, tokens, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(x.unsqueeze(1) if x.dim() == 4 else x)
        x = self.slot(self.conv2d(x.flatten(1, 2)))
        tokens = self.tokenize(x)
        x = torch.cat((self.cls_token.expand(len(x), -1, -1), tokens), 1) + self.pos_embedding
        return self.head(self.encoder(self.dropout(x))[:, 0])


@register_model(SSFTT, min_patch=5, min_bands=3, paper="Sun et al., IEEE TGRS 2022")
def ssftt(*, bands: int, n_classes: int, patch_size: int = 13, attention: AttentionOption = None, tokens: int = 4,
          dim: int = 64, depth: int = 1, heads: int = 8, mlp_dim: int = 8,
          dropout: float = 0.1) -> SSFTT:
    """SSFTT (Sun et al. 2022) at the authors' sizes (4 tokens of width 64, one encoder of 8 heads, MLP width 8,
    dropout 0.1); their setting is 30 PCA bands and 13×13. Smallest window 5, smallest band count 3 (the two
    valid 3×3 convolutions). Slot: ``after_2d``."""
    check_sizes("ssftt", bands, n_classes, patch_size)
    if patch_size < 5 or bands < 3:
        raise ConfigError(f"ssftt needs a window of at least 5 and at least 3 bands (its valid 3x3x3 and 3x3 "
                          f"convolutions), got patch_size={patch_size}, bands={bands}")
    return SSFTT(bands=bands, n_classes=n_classes, patch_size=patch_size, attention=attention, tokens=tokens,
                 dim=dim, depth=depth, heads=heads, mlp_dim=mlp_dim, dropout=dropout)
