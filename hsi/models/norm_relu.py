"""Batch norm followed by ReLU in one autograd step that keeps less of a training batch.

Autograd would keep the batch norm's input for its backward pass and the ReLU's output for its own, and its
backward pass holds the incoming gradient, the ReLU's gradient and the input's gradient at once: for HybridSN's
third 3-D convolution at batch 256 that is three maps of 213 MB. :func:`batch_norm_relu` keeps the input and a
one-byte mask of the positive outputs, and writes the input's gradient over the input, batch slice by batch
slice. The forward pass is PyTorch's own batch norm (outputs and running statistics bit-identical); the
gradients follow the same formula as PyTorch's and differ from it only in float summation order.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

SLICE = 8       # samples per slice of the backward pass: its temporaries are this many samples' maps


class _BatchNormReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, running_mean: torch.Tensor,
                running_var: torch.Tensor, momentum: float, eps: float) -> torch.Tensor:
        y, mean, invstd = torch.native_batch_norm(x, weight, bias, running_mean, running_var, True, momentum, eps)
        y.relu_()
        ctx.save_for_backward(x, y > 0, weight, mean, invstd)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable      # written in place: no graph of the backward pass
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, positive, weight, mean, invstd = ctx.saved_tensors
        dims = [0, *range(2, x.dim())]
        channel = (1, -1) + (1,) * (x.dim() - 2)
        centre = mean.view(channel)
        sum_dz, sum_dz_xmu = torch.zeros_like(mean), torch.zeros_like(mean)
        for xs, dz in _slices(x, dy, positive):
            sum_dz += dz.sum(dims)
            sum_dz_xmu += (dz * (xs - centre)).sum(dims)
        count = x.numel() // x.shape[1]
        projection = (sum_dz_xmu * invstd * invstd / count).view(channel)
        mean_dz = (sum_dz / count).view(channel)
        scale = (invstd * weight).view(channel)
        for xs, dz in _slices(x, dy, positive):     # dx = (dz - mean(dz) - (x - mean) * projection) * scale
            xs.sub_(centre).mul_(projection).neg_().add_(dz).sub_(mean_dz).mul_(scale)
        return x, sum_dz_xmu * invstd, sum_dz, None, None, None, None


def _slices(x: torch.Tensor, dy: torch.Tensor, positive: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batch slices of the input and of the ReLU's gradient (``dy`` where the output is positive)."""
    for xs, dys, ps in zip(x.split(SLICE), dy.split(SLICE), positive.split(SLICE)):
        yield xs, dys * ps


def fusable(norm: nn.Module) -> bool:
    """``norm`` is a plain affine batch norm in training with running statistics, the case the fused step
    reproduces (a ``SyncBatchNorm``, a subclass or a norm without running statistics runs as it is)."""
    return (type(norm) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d) and norm.training
            and bool(norm.affine and norm.track_running_stats) and norm.momentum is not None)


def batch_norm_relu(norm: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """``relu(norm(x))``; in training, with gradients, through the fused step above. Its backward pass writes
    over ``x``, so ``x`` must be a result no other operation uses, such as a convolution's output. Mixed precision
    (a half-precision ``x`` under autocast) runs as PyTorch's."""
    if not (torch.is_grad_enabled() and fusable(norm) and x.grad_fn is not None and x.dtype == norm.weight.dtype):
        return F.relu(norm(x), inplace=True)
    assert norm.num_batches_tracked is not None and norm.momentum is not None     # fusable
    norm.num_batches_tracked.add_(1)
    return _BatchNormReLU.apply(x, norm.weight, norm.bias, norm.running_mean, norm.running_var, norm.momentum,
                                norm.eps)


class ConvNormReLU(nn.Sequential):
    """An ``nn.Sequential`` that runs each convolution, batch norm and ReLU in a row with the norm and ReLU as
    :func:`batch_norm_relu` (the same modules and state-dict keys as the plain ``nn.Sequential``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        modules = list(self)
        i = 0
        while i < len(modules):
            module = modules[i]
            if (isinstance(module, nn.modules.batchnorm._BatchNorm) and i > 0 and i + 1 < len(modules)
                    and isinstance(modules[i - 1], nn.modules.conv._ConvNd) and isinstance(modules[i + 1], nn.ReLU)):
                x = batch_norm_relu(module, x)
                i += 2
            else:
                x = module(x)
                i += 1
        return x
