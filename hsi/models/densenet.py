"""DenseNet-BC (Huang et al., CVPR 2017) for HSI patches.

Three dense blocks of ``(depth - 4) // 6`` layers, each BN-ReLU-1×1(4k)-BN-ReLU-3×3(k) with its k new maps
concatenated to its input (growth rate k); transitions BN-ReLU-1×1 keep ``θ = 0.5`` of the channels and
halve the map by 2×2 average pooling while the window allows it (:func:`~hsi.models.backbone.stage_strides`).

The attention slot, ``block``, sits after each dense block, on its whole concatenated output, before the
transition compresses it. Inside a dense layer a block would see only the k (default 24) new maps, too few
channels for a channel gate's bottleneck, and there is no addition to put it before; after the block it
re-weights every map the transition is about to mix, as a block after a residual stage does.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..checks import check_positive
from ..errors import ConfigError
from .attention.registry import AttentionOption
from .backbone import PatchClassifier, bn_relu, check_sizes, conv1x1, conv3x3, slot, slot_spec, stage_strides, stem
from .registry import register_model

N_BLOCKS = 3


class DenseLayer(nn.Module):
    """BN-ReLU-1×1 (4k maps) - BN-ReLU-3×3 (k maps), concatenated to the input."""

    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(bn_relu(in_channels), conv1x1(in_channels, 4 * growth),
                                    bn_relu(4 * growth), conv3x3(4 * growth, growth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.layers(x)], dim=1)


def transition(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """BN-ReLU-1×1 compression, then 2×2 average pooling when ``stride`` is 2 (ceil mode: odd maps keep
    their border)."""
    pool = [nn.AvgPool2d(2, ceil_mode=True)] if stride == 2 else []
    return nn.Sequential(bn_relu(in_channels), conv1x1(in_channels, out_channels), *pool)


@register_model(PatchClassifier, paper="Huang et al., CVPR 2017")
def densenet_bc(*, bands: int, n_classes: int, patch_size: int = 25, attention: AttentionOption = None, depth: int = 40,
                growth: int = 24,
                compression: float = 0.5) -> PatchClassifier:
    """DenseNet-BC of ``depth`` (6n + 4) with growth rate ``growth``; the stem has ``2 * growth`` maps."""
    check_sizes("densenet_bc", bands, n_classes, patch_size)
    depth, growth = check_positive("depth", depth), check_positive("growth", growth)
    if depth < 10 or (depth - 4) % 6:
        raise ConfigError(f"densenet_bc depth must be 6n + 4 with n >= 1 (10, 16, 22, 40, 100, ...), got {depth}")
    if not 0 < compression <= 1:
        raise ConfigError(f"densenet_bc compression must be in (0, 1], got {compression!r}")
    spec = slot_spec(attention, "block")
    layers_per_block = (depth - 4) // 6
    channels = 2 * growth
    stages = []
    for index, stride in enumerate(stage_strides(patch_size, N_BLOCKS)):
        stage: dict[str, nn.Module] = {}
        if index > 0:
            compressed = max(1, int(compression * channels))
            stage["transition"] = transition(channels, compressed, stride)
            channels = compressed
        for layer in range(1, layers_per_block + 1):
            stage[f"layer{layer}"] = DenseLayer(channels, growth)
            channels += growth
        stage["slot"] = slot(spec, channels)
        stages.append(nn.Sequential(OrderedDict(stage)))
    return PatchClassifier(stem(bands, 2 * growth, activate=False), stages, bands=bands, n_classes=n_classes,
                           patch_size=patch_size, slot_names=("block",), final=bn_relu(channels))
