"""The receptive-field radius of a scene model, measured by a gradient probe.

A copy of the model in eval mode gets positive weights (``U(0.5, 1.5) / fan-in``), positive biases and
scales, unit batch-norm statistics, and a positive input; then no sum can cancel and no ReLU can block, so the
gradient of a block of outputs reaches exactly the input pixels the architecture connects them to. The block
spans one period of the encoder's stride (every alignment of the pooling grid), and the radius returned is an
upper bound on the Chebyshev distance from any output pixel to any input pixel it depends on (exact to within
the stride).
"""
from __future__ import annotations

import copy
from typing import cast

import torch
from torch import nn


def receptive_field_radius(model: nn.Module, sides: tuple[int, ...] = (8, 16)) -> int | None:
    """Radius in pixels, or None when the output depends on the whole scene (a global block: pooling over the
    image, self-attention, ...). ``sides`` are the probe sizes tried, in multiples of ``model.stride``."""
    stride = cast(int, model.stride)   # a plain attribute of scene models; torch's stub types it Tensor | Module
    for side in (s * stride for s in sides):
        radius, inside = _probe(model, side, stride)
        if inside:
            return radius
    return None


def _probe(model: nn.Module, side: int, stride: int) -> tuple[int, bool]:
    """(radius, whether the dependence stays inside the probe) for a ``side`` x ``side`` probe."""
    generator = torch.Generator().manual_seed(0)
    probe = copy.deepcopy(model).cpu().float().eval()
    with torch.no_grad():
        for parameter in probe.parameters():
            if parameter.dim() >= 2:
                parameter.copy_((torch.rand(parameter.shape, generator=generator) + 0.5) / parameter[0].numel())
            else:
                parameter.fill_(1.0)
        for module in probe.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()       # mean 0, variance 1
    x = (torch.rand(1, cast(int, model.bands), side, side, generator=generator) + 0.5).requires_grad_()
    start = side // 2 - stride // 2
    block = slice(start, start + stride)
    grad, = torch.autograd.grad(probe(x)[..., block, block].sum(), x)
    rows, cols = torch.nonzero(grad.abs().sum((0, 1)) > 0, as_tuple=True)
    last = start + stride - 1
    radius = int(max(last - rows.min(), rows.max() - start, last - cols.min(), cols.max() - start))
    inside = min(rows.min(), cols.min()) > 0 and max(rows.max(), cols.max()) < side - 1
    return radius, bool(inside)
