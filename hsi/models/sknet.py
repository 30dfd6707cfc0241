"""SKNet (Li et al., CVPR 2019) for HSI patches: residual units whose middle convolution selects its kernel.

An SK unit is a bottleneck: 1×1 reduction, an SK convolution (:class:`~hsi.models.attention.sk.SelectiveKernel`:
M branches of 3×3 convolutions with dilation 1..M, i.e. receptive fields 3×3, 5×5, ...; their sum pooled
globally, squeezed by an FC layer to ``max(C / r, L)`` units and expanded to one channel vector per branch;
a softmax across the branches weights their sum; the squeezing FC has a bias where the paper has BN, which
cannot normalise one pooled value per sample in a batch of one), then a 1×1 expansion to twice the middle
width, as in SKNet-50's 128 → 256. The default stage layout is SKNet-26's, ``(2, 2, 2, 2)`` units, with the
ResNet widths 32-64-128-256 as middle widths; the attention slot ``unit`` sits before the addition, as in ResNet.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ..checks import check_positive
from .attention.sk import SelectiveKernel
from .backbone import PatchClassifier
from .registry import register_model
from .resnet import Bottleneck, residual_network


class SKUnit(Bottleneck):
    """Bottleneck with an SK convolution of ``branches`` (M) branches, ``groups`` (G), ``reduction`` (r) and
    ``min_hidden`` (L) in the middle; the stride is the SK convolution's."""

    expansion = 2

    def __init__(self, in_channels: int, planes: int, stride: int = 1, *, branches: int = 2, groups: int = 32,
                 reduction: int = 16, min_hidden: int = 32,
                 **options: Any) -> None:
        dilations = tuple(range(1, check_positive("branches", branches) + 1))
        self.sk_options: dict[str, Any] = dict(dilations=dilations, groups=groups, reduction=reduction,
                                               min_hidden=min_hidden)
        super().__init__(in_channels, planes, stride, **options)

    def middle(self, planes: int, stride: int) -> list[nn.Module]:
        return [SelectiveKernel(planes, stride=stride, **self.sk_options)]


@register_model(PatchClassifier, paper="Li et al., CVPR 2019")
def sknet(*, units: tuple[int, ...] = (2, 2, 2, 2), **options: Any) -> PatchClassifier:
    """SKNet with ``units`` SK units per stage (M = 2, G = 32, r = 16, L = 32 by default)."""
    return residual_network("sknet", SKUnit, units, **options)
