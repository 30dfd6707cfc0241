"""SpectralFormer (Hong et al., IEEE TGRS 2022): a transformer whose tokens are groups of neighbouring bands.

Group-wise spectral embedding (GSE): token ``b`` is the window's values in bands ``b - g//2 .. b + g//2``
(cyclically, ``g = band_patch``) projected to ``dim``; a class token and a position embedding are added and
``depth`` pre-norm encoder layers follow. Cross-layer adaptive fusion (CAF): from the third layer on, each
layer's input is fused with the input of the layer two before by a learned 1×2 convolution over (token,
feature) maps whose channels are the tokens, as in the authors' code. A LayerNorm and a Linear layer read the
class token.

Pixel-wise (``pixelwise=True``) the model reads the centre pixel's spectrum only (``spectral_only``); patch-wise
each token holds a band group's whole ``p × p`` window. Written from the authors' released code
(``danfenghong/IEEE_TGRS_SpectralFormer``), whose patch-wise grouping orders the lower neighbours nearest first
(``b-1, b-2, ...``) where their pixel-wise grouping and this module order every group by band; at their
``band_patch=3`` both are the same.

No attention slot: the network holds a sequence of band tokens, never a channel × space map for the 2-D
blocks (a patch-wise window is flattened into each token at the embedding).
"""

from __future__ import annotations

import torch
from torch import nn

from ..checks import check_fraction
from ..errors import ConfigError
from .attention.registry import AttentionOption
from .backbone import check_sizes
from .registry import register_model
from .spectra import centre_spectrum, check_no_attention


class EncoderLayer(nn.Module):
    """Pre-norm multi-head self-attention (``heads × dim_head`` wide, no bias on q/k/v) and a GELU MLP, each
    added to its input."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dim_head, self.scale = heads, dim_head, dim_head ** -0.5
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.proj = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Dropout(dropout))
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim),
                                 nn.Dropout(dropout))

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        weights = (q @ k.transpose(-2, -1) * self.scale).softmax(-1)
        return self.proj((weights @ v).transpose(1, 2).flatten(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attend(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SpectralFormer(nn.Module):
    """Input ``(N, 1, bands, p, p)`` (pixel-wise also ``(N, bands)``), output logits ``(N, n_classes)``.
    ``spectral_only`` is True for the pixel-wise model (an instance attribute: the builder's option decides)."""

    kind = "patch"
    spectral_only = False

    def __init__(self, *, bands: int, n_classes: int, patch_size: int, pixelwise: bool = False, band_patch: int = 3,
                 dim: int = 64, depth: int = 5, heads: int = 4,
                 dim_head: int = 16, mlp_dim: int = 8, dropout: float = 0.1, caf: bool = True) -> None:
        super().__init__()
        self.bands, self.n_classes, self.patch_size = bands, n_classes, patch_size
        self.spectral_only = pixelwise
        self.shifts = tuple(range(-(band_patch // 2), band_patch // 2 + 1))
        window = 1 if pixelwise else patch_size
        self.embedding = nn.Linear(window * window * band_patch, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, bands + 1, dim))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, dim_head, mlp_dim, dropout) for _ in range(depth))
        self.fusions = nn.ModuleList(nn.Conv2d(bands + 1, bands + 1, (1, 2)) for _ in range(depth - 2 if caf else 0))
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, n_classes))

    def group(self, x: torch.Tensor) -> torch.Tensor:
        """Band-group tokens ``(N, bands, band_patch × p × p)`` from the input."""
        if self.spectral_only:
            x = centre_spectrum(x).unsqueeze(-1)
        else:
            x = (x.squeeze(1) if x.dim() == 5 else x).flatten(2)
        return torch.cat([x.roll(-shift, 1) for shift in self.shifts], -1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        inputs = []
        for index, layer in enumerate(self.layers):
            inputs.append(x)
            if self.fusions and index > 1:
                x = self.fusions[index - 2](torch.stack((x, inputs[index - 2]), 3)).squeeze(3)
            x = layer(x)
        return x

    @property
    def input_radius(self) -> int:
        """How far from its centre a window is read: 0 pixel-wise, half the window patch-wise."""
        return 0 if self.spectral_only else self.patch_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embedding(self.group(x))
        x = torch.cat((self.cls_token.expand(len(x), -1, -1), tokens), 1) + self.pos_embedding
        return self.head(self.encode(self.dropout(x))[:, 0])


@register_model(SpectralFormer, min_bands=3, paper="Hong et al., IEEE TGRS 2022")
def spectralformer(*, bands: int, n_classes: int, patch_size: int = 7, attention: AttentionOption = None,
                   pixelwise: bool = False, band_patch: int = 3, dim: int = 64,
                   depth: int = 5, heads: int = 4, dim_head: int = 16, mlp_dim: int = 8, dropout: float = 0.1,
                   caf: bool = True) -> SpectralFormer:
    """SpectralFormer (Hong et al. 2022) at the authors' sizes (band groups of 3, width 64, 5 layers of 4 heads
    of 16, MLP width 8, dropout 0.1, CAF; ``caf=False`` is their ViT baseline). Patch-wise by default (their
    window 7×7); ``pixelwise=True`` reads one spectrum from any odd window. Smallest window 1, smallest band
    count ``band_patch``. No attention slot."""
    check_sizes("spectralformer", bands, n_classes, patch_size)
    check_no_attention("spectralformer", attention)
    if not isinstance(band_patch, int) or band_patch < 1 or band_patch % 2 == 0:
        raise ConfigError(f"spectralformer: band_patch must be an odd integer >= 1, got {band_patch!r}")
    if bands < band_patch:
        raise ConfigError(f"spectralformer needs at least band_patch={band_patch} bands, got {bands}")
    return SpectralFormer(bands=bands, n_classes=n_classes, patch_size=patch_size, pixelwise=pixelwise,
                          band_patch=band_patch, dim=dim, depth=depth, heads=heads, dim_head=dim_head,
                          mlp_dim=mlp_dim, dropout=check_fraction("dropout", dropout), caf=caf)
