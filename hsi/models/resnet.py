"""Residual networks (He et al., CVPR 2016) and pre-activation ResNets (He et al., ECCV 2016) for HSI patches.

A residual unit's body ends in a convolution; the plain unit adds BN there and ReLU after the addition, the
pre-activation unit starts with BN-ReLU and adds nothing after it. Every unit has one attention slot,
``unit``, on its body's output before the addition (where SE-, CBAM- and ECA-ResNets put their blocks), so
SE-ResNet is ResNet with ``attention="se"``.

Widths 32-64-128-256 (ImageNet's 64..512 halved): a PCA patch has 15–30 channels and a few hundred to a few
thousand labelled pixels to learn from, not 1.2 million images, and a quarter of the weights is a quarter of
the CPU time.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_positive_tuple
from ..errors import ConfigError
from .attention.registry import AttentionOption, AttentionSpec
from .backbone import PatchClassifier, bn_relu, check_sizes, conv1x1, conv3x3, slot, slot_spec, stage_strides, stem
from .registry import register_model

WIDTHS = (32, 64, 128, 256)


class ResidualUnit(nn.Module):
    """``x + slot(body(x))``, with BN-ReLU placed as in the plain or the pre-activation design.

    Subclasses give ``layers(in_channels, planes, stride)``, the body up to its last convolution, whose output
    has ``planes * expansion`` channels. A change of width or stride projects the shortcut by a 1×1 convolution.
    """

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, *, attention: AttentionSpec = None,
                 preact: bool = False) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.pre = bn_relu(in_channels) if preact else None
        self.body = nn.Sequential(*self.layers(in_channels, planes, stride),
                                  *(() if preact else (nn.BatchNorm2d(out_channels),)))
        self.slot = slot(attention, out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            projection = conv1x1(in_channels, out_channels, stride)
            self.shortcut = projection if preact else nn.Sequential(projection, nn.BatchNorm2d(out_channels))

    def layers(self, in_channels: int, planes: int, stride: int) -> list[nn.Module]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre is None:
            identity = x if self.shortcut is None else self.shortcut(x)
            return F.relu(self.slot(self.body(x)) + identity)
        activated = self.pre(x)
        identity = x if self.shortcut is None else self.shortcut(activated)
        return self.slot(self.body(activated)) + identity


class BasicBlock(ResidualUnit):
    """Two 3×3 convolutions."""

    def layers(self, in_channels: int, planes: int, stride: int) -> list[nn.Module]:
        return [conv3x3(in_channels, planes, stride), *bn_relu(planes), conv3x3(planes, planes)]


class Bottleneck(ResidualUnit):
    """1×1 reduction, the middle convolution (3×3, stride here as in torchvision), 1×1 expansion ×4."""

    expansion = 4

    def middle(self, planes: int, stride: int) -> list[nn.Module]:
        return [conv3x3(planes, planes, stride), *bn_relu(planes)]

    def layers(self, in_channels: int, planes: int, stride: int) -> list[nn.Module]:
        return [conv1x1(in_channels, planes), *bn_relu(planes), *self.middle(planes, stride),
                conv1x1(planes, planes * self.expansion)]


def make_layer(block: type[ResidualUnit], in_channels: int, planes: int, units: int, stride: int,
               **unit_options: Any) -> tuple[nn.Sequential, int]:
    """A stage of ``units`` residual units, the first with ``stride``; returns it and its output width."""
    layers = []
    for i in range(units):
        layers.append(block(in_channels, planes, stride if i == 0 else 1, **unit_options))
        in_channels = planes * block.expansion
    return nn.Sequential(*layers), in_channels


def residual_network(name: str, block: type[ResidualUnit], units: tuple[int, ...], *, bands: int, n_classes: int,
                     patch_size: int, attention: AttentionOption = None, preact: bool = False,
                     widths: tuple[int, ...] = WIDTHS, **unit_options: Any) -> PatchClassifier:
    """A stem of ``widths[0]``, then one stage per entry of ``units`` with ``widths[i]`` planes."""
    check_sizes(name, bands, n_classes, patch_size)
    units, widths = check_positive_tuple("units", units), check_positive_tuple("widths", widths)
    if len(widths) != len(units):
        raise ConfigError(f"{name}: widths must give one width per stage ({len(units)}), got {list(widths)}")
    spec = slot_spec(attention, "unit")
    stages, channels = [], widths[0]
    for planes, count, stride in zip(widths, units, stage_strides(patch_size, len(units))):
        stage, channels = make_layer(block, channels, planes, count, stride, attention=spec, preact=preact,
                                     **unit_options)
        stages.append(stage)
    return PatchClassifier(stem(bands, widths[0], activate=not preact), stages, bands=bands, n_classes=n_classes,
                           patch_size=patch_size, slot_names=("unit",), final=bn_relu(channels) if preact else None)


@register_model(PatchClassifier, paper="He et al., CVPR 2016")
def resnet18(**options: Any) -> PatchClassifier:
    """ResNet-18: BasicBlock × (2, 2, 2, 2)."""
    return residual_network("resnet18", BasicBlock, (2, 2, 2, 2), **options)


@register_model(PatchClassifier, paper="He et al., CVPR 2016")
def resnet34(**options: Any) -> PatchClassifier:
    """ResNet-34: BasicBlock × (3, 4, 6, 3)."""
    return residual_network("resnet34", BasicBlock, (3, 4, 6, 3), **options)


@register_model(PatchClassifier, paper="He et al., CVPR 2016")
def resnet50(**options: Any) -> PatchClassifier:
    """ResNet-50: Bottleneck × (3, 4, 6, 3)."""
    return residual_network("resnet50", Bottleneck, (3, 4, 6, 3), **options)


@register_model(PatchClassifier, paper="He et al., ECCV 2016")
def preact_resnet18(**options: Any) -> PatchClassifier:
    """Pre-activation ResNet-18: BN-ReLU before each convolution, identity shortcuts kept clean."""
    return residual_network("preact_resnet18", BasicBlock, (2, 2, 2, 2), preact=True, **options)


@register_model(PatchClassifier, paper="Hu et al., CVPR 2018")
def se_resnet18(*, attention: AttentionOption = "se", **options: Any) -> PatchClassifier:
    """SE-ResNet-18 (Hu et al., CVPR 2018): ResNet-18 with squeeze-excitation in every unit."""
    return resnet18(attention=attention, **options)


@register_model(PatchClassifier, paper="Hu et al., CVPR 2018")
def se_resnet50(*, attention: AttentionOption = "se", **options: Any) -> PatchClassifier:
    """SE-ResNet-50: ResNet-50 with squeeze-excitation in every unit."""
    return resnet50(attention=attention, **options)
