"""Whole-scene fully convolutional networks: FCN-32s/16s/8s (Long et al., CVPR 2015) and FCN with FastFCN's
joint pyramid upsampling (Wu et al., 2019). These are *scene models*: input ``(1, bands, H, W)`` (the reduced
scene, channels first), output ``(1, n_classes, H, W)`` logits for every pixel.

The encoder is a chain of pooled stages (3x3 conv, BN, ReLU, 2x2 max pool) and a context stage (FCN's fc6/fc7
as a 3x3 and a 1x1 conv, each with BN, ReLU and dropout) followed by an attention slot named ``context``.

Widths: the default 64-128-256 over three pooled stages and a 512-wide context stage put the score map at
stride 8 (18x18 on Indian Pines' 145x145), and the skips named pool4 and pool3 after Long et al. are the
last-but-one and last-but-two pooled stages (strides 4 and 2 here). VGG-16's five pools would leave a 5x5
score map of a 145-pixel scene and a receptive field wider than the scene; its 2-3 convs per stage and
4096-wide fc layers are sized for ImageNet photos, while a 30-band PCA scene with ~1,000 training pixels
(Indian Pines at 10 %) overfits them. ``widths`` of five stages gives the paper's strides 8/16/32.
The input is zero-padded at the bottom and right to a multiple of the total stride and the logits are cropped
back to ``H x W``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_fraction, check_positive, check_positive_tuple
from ..errors import ConfigError
from .attention import create_attention
from .attention.registry import AttentionOption
from .hybridsn import _slot_specs
from .registry import register_model


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


def bilinear_kernel(channels: int, factor: int) -> torch.Tensor:
    """ConvTranspose2d weights ``(channels, channels, 2 * factor, 2 * factor)`` that upsample each channel
    bilinearly by ``factor`` (channel c to channel c only)."""
    size = 2 * factor
    centre = factor - 0.5
    profile = 1 - np.abs(np.arange(size) - centre) / factor
    weight = torch.zeros(channels, channels, size, size)
    weight[range(channels), range(channels)] = torch.from_numpy(np.outer(profile, profile)).float()
    return weight


class BilinearUpsample(nn.Module):
    """Fixed bilinear upsampling by ``factor`` as a transposed convolution (``n`` -> ``n * factor``, output pixel
    centres aligned with input pixel centres). The kernel is a buffer, not learned, as in the FCN authors'
    released nets (``param=[dict(lr_mult=0)]`` on every Deconvolution): learned, the kernels drifted about 18 %
    from bilinear on Indian Pines and drew period-2 stripes and checkerboards off the labelled fields."""

    weight: torch.Tensor

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("weight", bilinear_kernel(channels, factor))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.weight, stride=self.factor, padding=self.factor // 2)


def upsampler(channels: int, factor: int) -> BilinearUpsample:
    """Bilinear upsampling of ``channels`` maps by ``factor`` (:class:`BilinearUpsample`)."""
    return BilinearUpsample(channels, factor)


class Encoder(nn.Module):
    """Pooled conv-BN-ReLU stages, then the context stage and its attention slot.

    ``forward`` returns the pooled maps (stride 2, 4, ..., ``2 ** len(widths)``) and the context map (the
    last stride).
    """

    slot_names = ("context",)

    def __init__(self, bands: int, widths: tuple[int, ...], context_width: int, attention: AttentionOption,
                 dropout: float) -> None:
        super().__init__()
        widths, context_width = check_positive_tuple("widths", widths), check_positive("context_width", context_width)
        dropout = check_fraction("dropout", dropout)
        if len(widths) < 3:
            raise ConfigError(f"the FCN encoder needs at least 3 pooled stages, got widths {widths}")
        stages, channels = [], bands
        for width in widths:
            stages.append(nn.Sequential(*_conv_bn_relu(channels, width), nn.MaxPool2d(2)))
            channels = width
        self.stages = nn.ModuleList(stages)
        self.context = nn.Sequential(*_conv_bn_relu(channels, context_width), nn.Dropout(dropout),
                                     *_conv_bn_relu(context_width, context_width, 1), nn.Dropout(dropout))
        self.slot = create_attention(_slot_specs(attention, self.slot_names)["context"], context_width) or nn.Identity()
        self.widths, self.context_width = widths, context_width
        self.stride = 2 ** len(widths)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        pooled = []
        for stage in self.stages:
            x = stage(x)
            pooled.append(x)
        return pooled, self.slot(self.context(x))


class SceneModel(nn.Module):
    """Base of the scene models: pads the input to the encoder's stride, crops the logits back."""

    kind = "scene"
    patch_size = None          # reads whole scenes, not windows
    slot_names = Encoder.slot_names

    def __init__(self, bands: int, n_classes: int, widths: tuple[int, ...], context_width: int,
                 attention: AttentionOption, dropout: float) -> None:
        super().__init__()
        self.bands, self.n_classes = bands, n_classes
        self.encoder = Encoder(bands, widths, context_width, attention, dropout)
        self.stride = self.encoder.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = F.pad(x, (0, -width % self.stride, 0, -height % self.stride))
        return self.decode(*self.encoder(x))[..., :height, :width]

    def decode(self, pooled: list[torch.Tensor], context: torch.Tensor) -> torch.Tensor:
        """The logits at the padded input's size from the encoder's pooled maps and context map."""
        raise NotImplementedError


class FCN(SceneModel):
    """FCN with ``skips`` skip fusions: 0 (FCN-32s), 1 (FCN-16s: + pool4) or 2 (FCN-8s: + pool4 + pool3),
    pool4 and pool3 being the last-but-one and last-but-two pooled stages. 1x1 score layers, each
    fusion after a 2x bilinear upsampling, then one bilinear upsampling to the input resolution (fixed, not
    learned, as in the authors' released nets); the skip score layers start at zero."""

    def __init__(self, *, bands: int, n_classes: int, skips: int, widths: tuple[int, ...], context_width: int,
                 attention: AttentionOption, dropout: float) -> None:
        super().__init__(bands, n_classes, widths, context_width, attention, dropout)
        self.score = nn.Conv2d(context_width, n_classes, 1)
        skip_scores = [nn.Conv2d(widths[-2 - i], n_classes, 1) for i in range(skips)]
        for layer in skip_scores:
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        self.skip_scores = nn.ModuleList(skip_scores)
        self.skip_ups = nn.ModuleList(upsampler(n_classes, 2) for _ in range(skips))
        self.final_up = upsampler(n_classes, self.stride // 2 ** skips)

    def decode(self, pooled: list[torch.Tensor], context: torch.Tensor) -> torch.Tensor:
        x = self.score(context)
        for i, (up, score) in enumerate(zip(self.skip_ups, self.skip_scores)):
            x = up(x) + score(pooled[-2 - i])
        return self.final_up(x)


class SeparableConv(nn.Sequential):
    """FastFCN's separable convolution: depthwise 3x3 at ``dilation``, BN, pointwise 1x1 to ``out_channels``;
    then BN and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__(nn.Conv2d(in_channels, in_channels, 3, padding=dilation, dilation=dilation,
                                   groups=in_channels, bias=False),
                         nn.BatchNorm2d(in_channels), nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class JPU(nn.Module):
    """Joint pyramid upsampling: the last three maps each through a 3x3 conv-BN-ReLU to ``width`` channels,
    bilinearly resized to the first one's size, concatenated, then separable convolutions (to ``width``
    channels each) at ``dilations`` in parallel, concatenated: ``len(dilations) * width`` channels at the
    finest of the three strides."""

    def __init__(self, in_channels: tuple[int, ...], width: int, dilations: tuple[int, ...] = (1, 2, 4, 8)) -> None:
        super().__init__()
        self.reduce = nn.ModuleList(nn.Sequential(*_conv_bn_relu(c, width)) for c in in_channels)
        self.dilated = nn.ModuleList(SeparableConv(len(in_channels) * width, width, d) for d in dilations)
        self.out_channels = len(dilations) * width

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        size = maps[0].shape[-2:]
        maps = [F.interpolate(reduce(m), size=size, mode="bilinear", align_corners=False) if i else reduce(m)
                for i, (reduce, m) in enumerate(zip(self.reduce, maps))]
        x = torch.cat(maps, dim=1)
        return torch.cat([branch(x) for branch in self.dilated], dim=1)


class FCNJPU(SceneModel):
    """The FCN encoder with a JPU head over (pool3, pool4, context), a 1x1 score layer and fixed bilinear
    upsampling back to the input resolution."""

    def __init__(self, *, bands: int, n_classes: int, widths: tuple[int, ...], context_width: int,
                 attention: AttentionOption, dropout: float, jpu_width: int) -> None:
        super().__init__(bands, n_classes, widths, context_width, attention, dropout)
        self.jpu = JPU((*self.encoder.widths[-3:-1], context_width), check_positive("jpu_width", jpu_width))
        self.score = nn.Conv2d(self.jpu.out_channels, n_classes, 1)
        self.final_up = upsampler(n_classes, self.stride // 4)   # JPU output is at pool3's stride

    def decode(self, pooled: list[torch.Tensor], context: torch.Tensor) -> torch.Tensor:
        return self.final_up(self.score(self.jpu([pooled[-3], pooled[-2], context])))


WIDTHS = (64, 128, 256)


def _fcn(skips: int, bands: int, n_classes: int, attention: AttentionOption, widths: tuple[int, ...],
         context_width: int, dropout: float) -> FCN:
    return FCN(bands=bands, n_classes=n_classes, skips=skips, widths=widths, context_width=context_width,
               attention=attention, dropout=dropout)


@register_model(FCN, paper="Long et al., CVPR 2015")
def fcn32s(*, bands: int, n_classes: int, patch_size: int | None = None, attention: AttentionOption = None,
           widths: tuple[int, ...] = WIDTHS, context_width: int = 512,
           dropout: float = 0.5) -> FCN:
    """FCN-32s: the context scores upsampled once. ``patch_size`` is ignored (scene model). Slot: ``context``."""
    return _fcn(0, bands, n_classes, attention, widths, context_width, dropout)


@register_model(FCN, paper="Long et al., CVPR 2015")
def fcn16s(*, bands: int, n_classes: int, patch_size: int | None = None, attention: AttentionOption = None,
           widths: tuple[int, ...] = WIDTHS, context_width: int = 512,
           dropout: float = 0.5) -> FCN:
    """FCN-16s: the context scores upsampled 2x and fused with pool4's scores. Slot: ``context``."""
    return _fcn(1, bands, n_classes, attention, widths, context_width, dropout)


@register_model(FCN, paper="Long et al., CVPR 2015")
def fcn8s(*, bands: int, n_classes: int, patch_size: int | None = None, attention: AttentionOption = None,
          widths: tuple[int, ...] = WIDTHS, context_width: int = 512,
          dropout: float = 0.5) -> FCN:
    """FCN-8s: FCN-16s's fused scores upsampled 2x and fused with pool3's scores. Slot: ``context``."""
    return _fcn(2, bands, n_classes, attention, widths, context_width, dropout)


@register_model(FCNJPU, paper="Long et al., CVPR 2015; JPU: Wu et al., FastFCN, arXiv 2019")
def fcn_jpu(*, bands: int, n_classes: int, patch_size: int | None = None, attention: AttentionOption = None,
            widths: tuple[int, ...] = WIDTHS, context_width: int = 512, dropout: float = 0.5,
            jpu_width: int = 64) -> FCNJPU:
    """FCN encoder + FastFCN's JPU over pool3, pool4 and the context map. Slot: ``context``."""
    return FCNJPU(bands=bands, n_classes=n_classes, widths=widths, context_width=context_width,
                  attention=attention, dropout=dropout, jpu_width=jpu_width)
