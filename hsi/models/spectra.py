"""What the pixel (spectral-only) models share: reading one spectrum from whatever window they are given."""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .attention.registry import AttentionOption


def centre_spectrum(x: torch.Tensor) -> torch.Tensor:
    """The centre pixel's spectrum ``(N, bands)`` of a window ``(N, 1, bands, p, p)`` or ``(N, bands, p, p)``
    (any odd ``p``, 1 included), or ``x`` itself when it is already ``(N, bands)``."""
    if x.dim() == 2:
        return x
    if x.dim() == 5:
        x = x.squeeze(1)
    if x.dim() != 4:
        raise ConfigError(f"a pixel model reads (N, bands), (N, bands, p, p) or (N, 1, bands, p, p), "
                          f"got shape {tuple(x.shape)}")
    return x[:, :, x.shape[2] // 2, x.shape[3] // 2]


def check_no_attention(name: str, attention: AttentionOption) -> None:
    """Refuse an attention block for a model with no slot (None and "none" are accepted)."""
    if attention is not None and not (isinstance(attention, str) and attention.strip().lower() == "none"):
        raise ConfigError(f"{name} has no attention slot, got attention={attention!r}")
