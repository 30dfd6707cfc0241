"""A2S2K-ResNet: the attention-based adaptive spectral–spatial kernel ResNet (Roy et al., IEEE TGRS 2021).

A selective-kernel stem (a 7×1×1 and a 7×3×3 spectral convolution of stride 2 along the bands, mixed by a
softmax over the two branches), two spectral residual units (7×1×1 kernels), a convolution that collapses the
remaining bands into 128 maps, a 128×3×3 convolution over those maps, two spatial residual units (1×3×3
kernels), global average pooling and a Linear layer. Every residual unit ends in efficient channel attention
(ECA, the "efficient feature recalibration").

Written from the authors' released code (``suvojit-0x55aa/A2S2K-ResNet``), which differs from the paper in
two ways kept here so that the network is theirs: the two branches' attention logits come from the same
excitation layer, so the softmax weighs both branches 0.5; and the excitation's hidden width is
``bands // reduction``, not a fraction of the kernel count. Their final 5×5 average pool is global at a 7×7
window; here it is global at every window.

The attention slot, ``after_spatial``, takes the last 2-D map ``(N, width, h, w)`` after the spatial residual
units, before the pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .attention.registry import AttentionOption
from .backbone import check_sizes, slot, slot_spec
from .registry import register_model

SPECTRAL_KERNEL = 7


def _bn_relu(channels: int, eps: float = 1e-3) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm3d(channels, eps=eps), nn.ReLU(inplace=True))


class ECA(nn.Module):
    """Efficient channel attention: a 3×3 convolution (padded; on the one-row map of channel means only its
    middle row acts) over the channel means, then a sigmoid gate."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        means = x.mean((2, 3, 4)).view(len(x), 1, 1, -1)
        return x * torch.sigmoid(self.conv(means)).view(len(x), -1, 1, 1, 1)


class ResidualUnit(nn.Module):
    """``x + eca(conv(bn-relu(conv(bn-relu(x)))))``; the first unit of a stage skips the leading BN-ReLU and
    normalises the body's output instead, the last applies BN-ReLU after the addition."""

    def __init__(self, channels: int, kernel: tuple[int, int, int], padding: tuple[int, int, int], *,
                 first: bool = False, last: bool = False) -> None:
        super().__init__()
        self.pre = None if first else _bn_relu(channels, 1e-5)
        self.conv1 = nn.Conv3d(channels, channels, kernel, padding=padding)
        self.bn1 = nn.BatchNorm3d(channels)
        self.conv2 = nn.Conv3d(channels, channels, kernel, padding=padding)
        self.post_body = nn.BatchNorm3d(channels) if first else None
        self.eca = ECA()
        self.post_add = _bn_relu(channels, 1e-5) if last else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x if self.pre is None else self.pre(x)))
        out = self.conv2(F.relu(self.bn1(out)))
        out = self.eca(out if self.post_body is None else self.post_body(out)) + x
        return out if self.post_add is None else self.post_add(out)


class A2S2KResNet(nn.Module):
    """Input ``(N, 1, bands, p, p)``, output logits ``(N, n_classes)``."""

    kind = "patch"
    slot_names = ("after_spatial",)

    def __init__(self, *, bands: int, n_classes: int, patch_size: int, attention: AttentionOption = None,
                 width: int = 24, reduction: int = 2) -> None:
        super().__init__()
        self.bands, self.n_classes, self.patch_size = bands, n_classes, patch_size
        spectral, spatial = (SPECTRAL_KERNEL, 1, 1), (1, 3, 3)
        self.branch1x1 = nn.Sequential(nn.Conv3d(1, width, spectral, stride=(2, 1, 1)), _bn_relu(width))
        self.branch3x3 = nn.Sequential(nn.Conv3d(1, width, (SPECTRAL_KERNEL, 3, 3), stride=(2, 1, 1),
                                                 padding=(0, 1, 1)), _bn_relu(width))
        self.squeeze = nn.Sequential(nn.Conv3d(width, bands // reduction, 1), nn.ReLU(inplace=True))
        self.excite = nn.Conv3d(bands // reduction, width, 1)
        self.spectral_units = nn.Sequential(ResidualUnit(width, spectral, (3, 0, 0), first=True),
                                            ResidualUnit(width, spectral, (3, 0, 0)))
        depth = (bands - SPECTRAL_KERNEL) // 2 + 1
        self.collapse = nn.Sequential(nn.Conv3d(width, 128, (depth, 1, 1)), nn.BatchNorm3d(128, eps=1e-3),
                                      nn.ReLU(inplace=True))
        self.spatial_conv = nn.Sequential(nn.Conv3d(1, width, (128, 3, 3)), _bn_relu(width))
        self.spatial_units = nn.Sequential(ResidualUnit(width, spatial, (0, 1, 1)),
                                           ResidualUnit(width, spatial, (0, 1, 1), last=True))
        self.slot = slot(slot_spec(attention, "after_spatial"), width)
        self.fc = nn.Linear(width, n_classes)

    def select(self, x: torch.Tensor) -> torch.Tensor:
        """The selective-kernel stem: both branches weighed by a softmax over their (shared) excitation."""
        branches = torch.stack((self.branch3x3(x), self.branch1x1(x)), 1)
        logits = self.excite(self.squeeze(branches.sum(1).mean((2, 3, 4), keepdim=True)))
        weights = torch.stack((logits, logits), 1).softmax(1)
        return (branches * weights).sum(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.select(x.unsqueeze(1) if x.dim() == 4 else x)
        x = self.collapse(self.spectral_units(x)).transpose(1, 2)      # the 128 maps become the band axis
        x = self.spatial_units(self.spatial_conv(x)).squeeze(2)
        return self.fc(self.slot(x).mean((2, 3)))


@register_model(A2S2KResNet, min_patch=3, min_bands=SPECTRAL_KERNEL, paper="Roy et al., IEEE TGRS 2021")
def a2s2k_resnet(*, bands: int, n_classes: int, patch_size: int = 9, attention: AttentionOption = None, width: int = 24,
                 reduction: int = 2) -> A2S2KResNet:
    """A2S2K-ResNet (Roy et al. 2021) at the authors' sizes (24 kernels, reduction 2; their Indian Pines
    setting is all 200 bands after PCA, 9×9, batch 32, Adam 1e-3). Smallest window 3, smallest band count
    7 (the 7-band spectral kernels; also at least 2 × reduction). Slot: ``after_spatial``."""
    check_sizes("a2s2k_resnet", bands, n_classes, patch_size)
    least_bands = max(SPECTRAL_KERNEL, 2 * reduction)
    if patch_size < 3 or bands < least_bands:
        raise ConfigError(f"a2s2k_resnet needs a window of at least 3 (its valid 3x3 convolution) and at least "
                          f"{least_bands} bands (its {SPECTRAL_KERNEL}-band kernels), got patch_size={patch_size}, "
                          f"bands={bands}")
    return A2S2KResNet(bands=bands, n_classes=n_classes, patch_size=patch_size, attention=attention, width=width,
                       reduction=reduction)
