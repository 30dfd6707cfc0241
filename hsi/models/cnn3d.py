"""The 3-D CNN of Ben Hamida et al. (IEEE TGRS 2018), as DeepHyperX implements it.

Two 3-D convolutions (20 and 35 kernels of 3×3×3), each followed by a learned spectral "pooling" (a 3×1×1
convolution of stride 2 along the bands), then two more spectral convolutions (3×1×1, and 2×1×1 of stride 2)
and one Linear layer. ReLU after each 3×3×3 and after the last two convolutions, none after the poolings. The
3×3×3 convolutions are valid in space, so a 5×5 window (the paper's) ends at 1×1; a 3×3 window pads the first
one by 1 on every axis, as DeepHyperX does. Weights start Kaiming-normal, biases at zero.

The attention slot, ``features``, takes the last volume with its depth folded into the channel axis
``(N, 35 × depth, h, w)``, just before the Linear layer (as HybridSN's ``after_3d``): the one place where the
network holds a channel × space map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .attention.registry import AttentionOption
from .backbone import check_sizes, slot, slot_spec
from .registry import register_model


class CNN3D(nn.Module):
    """Input ``(N, 1, bands, p, p)``, output logits ``(N, n_classes)``."""

    kind = "patch"
    slot_names = ("features",)

    def __init__(self, *, bands: int, n_classes: int, patch_size: int, attention: AttentionOption = None) -> None:
        super().__init__()
        self.bands, self.n_classes, self.patch_size = bands, n_classes, patch_size
        self.conv1 = nn.Conv3d(1, 20, 3, padding=1 if patch_size == 3 else 0)
        self.pool1 = nn.Conv3d(20, 20, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        self.conv2 = nn.Conv3d(20, 35, 3, padding=(1, 0, 0))
        self.pool2 = nn.Conv3d(35, 35, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        self.conv3 = nn.Conv3d(35, 35, (3, 1, 1), padding=(1, 0, 0))
        self.conv4 = nn.Conv3d(35, 35, (2, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        with torch.no_grad():
            channels, height, width = self.volume(torch.zeros(1, 1, bands, patch_size, patch_size)).shape[1:]
        self.slot = slot(slot_spec(attention, "features"), channels)
        self.fc = nn.Linear(channels * height * width, n_classes)
        nn.init.kaiming_normal_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def volume(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature volume, its depth folded into channels: ``(N, 35 × depth, h, w)``."""
        x = self.pool1(F.relu(self.conv1(x.unsqueeze(1) if x.dim() == 4 else x)))
        x = self.pool2(F.relu(self.conv2(x)))
        return F.relu(self.conv4(F.relu(self.conv3(x)))).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.slot(self.volume(x)).flatten(1))


@register_model(CNN3D, min_patch=3, min_bands=3, paper="Ben Hamida et al., IEEE TGRS 2018")
def cnn3d(*, bands: int, n_classes: int, patch_size: int = 5, attention: AttentionOption = None) -> CNN3D:
    """Hamida et al. 2018's 3-D CNN; their window is 5×5. Smallest window 3, smallest band count 3.
    Slot: ``features``."""
    check_sizes("cnn3d", bands, n_classes, patch_size)
    if patch_size < 3 or bands < 3:
        raise ConfigError(f"cnn3d needs a window of at least 3 and at least 3 bands (its two valid 3x3x3 "
                          f"convolutions), got patch_size={patch_size}, bands={bands}")
    return CNN3D(bands=bands, n_classes=n_classes, patch_size=patch_size, attention=attention)
