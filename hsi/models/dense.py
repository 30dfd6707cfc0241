"""Run a trained HybridSN over a whole (padded) scene at once instead of patch by patch.

Every stage is made of valid, stride-1 convolutions, batch norm (an affine map in eval mode) and ReLU, so
computing a stage on the whole padded scene gives, at every position, exactly what it gives inside each
patch. The head's first Linear layer reads the last ``h × w`` map of a patch: on the whole scene it is a
convolution with an ``h × w`` kernel (the Linear weights reshaped in flatten order), and the later layers
act on each pixel's vector. An attention block pools over, or mixes positions of, its own window, so it is
not translation-equivariant: from the first occupied slot on, the network runs per window of the dense map
(the window each patch would have seen there), which is still exact and skips the stages before it.

The head's ``h × w`` convolution is most of the work (HybridSN: 17 × 17 × 64 → 256, 4.7 M multiply-adds per
pixel); for kernels of :data:`FFT_MIN_KERNEL` and more it is computed by overlap-save FFT in blocks of
:data:`FFT_BLOCK` output pixels (the same sums, ~2.5× faster on CPU, closer to the float64 result than the
direct float32 convolution).
"""
from __future__ import annotations

import math
from typing import TypeGuard

import torch
import torch.nn.functional as F
from torch import nn

from .footprint import layer_output_shapes
from .hybridsn import HybridSN

FFT_MIN_KERNEL = 7      # head kernels at least this wide go through the FFT
FFT_BLOCK = 16          # output block side of the overlap-save FFT (FFT size FFT_BLOCK + kernel - 1)
FFT_CHUNK = 32          # blocks transformed at once: bounds the FFT temporaries (~110 MB for HybridSN)
SpectrumCache = dict[tuple[object, ...], torch.Tensor]   # the head kernel's spectrum, by kernel, size, dtype, device


def supports_dense(model: nn.Module) -> TypeGuard[HybridSN]:
    return isinstance(model, HybridSN)


def first_window_slot(model: HybridSN) -> int | None:
    """Index of the first stage whose slot holds a block, or None when every slot is empty."""
    return next((i for i, slot in enumerate(model.slots) if not isinstance(slot, nn.Identity)), None)


def dense_logits(model: HybridSN, padded: torch.Tensor, batch_size: int = 256,
                 cache: SpectrumCache | None = None) -> torch.Tensor:
    """Logits ``(H, W, n_classes)`` for every pixel of a padded scene ``(1, 1, bands, H + p - 1, W + p - 1)``.

    The model must be in eval mode; ``batch_size`` bounds the windows run at once after an attention slot.
    ``cache`` (a dict kept across the tiles of one scene) holds the head kernel's spectrum.
    """
    x = padded
    for i, (stage, slot) in enumerate(zip(model.stages, model.slots)):
        x = stage(x)
        if not isinstance(slot, nn.Identity):
            return _per_window(model, x, i, batch_size)
    return _head_as_convolution(model, x, {} if cache is None else cache)


def _head_as_convolution(model: HybridSN, x: torch.Tensor, cache: SpectrumCache) -> torch.Tensor:
    first, rest = model.head[0], model.head[1:]
    assert isinstance(first, nn.Linear)
    size = model.window_sizes[-1]
    kernel = first.weight.view(first.out_features, x.shape[1], size, size)
    if size >= FFT_MIN_KERNEL:
        hidden = fft_valid_conv2d(x[0], kernel, first.bias, cache)     # (256, H, W)
    else:
        hidden = F.conv2d(x, kernel, first.bias)[0]
    height, width = hidden.shape[1:]
    return rest(hidden.flatten(1).T).view(height, width, -1)


def fft_valid_conv2d(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor,
                     cache: SpectrumCache | None = None, block: int = FFT_BLOCK,
                     chunk: int = FFT_CHUNK) -> torch.Tensor:
    """``F.conv2d(x[None], kernel, bias)[0]`` (valid cross-correlation, ``x`` (C, H, W), ``kernel``
    (O, C, k, k)) by overlap-save FFT: each ``block × block`` output block is the tail of the circular
    convolution of its ``(block + k - 1)²`` input window with the flipped kernel; channels are summed per
    frequency by one complex matrix product. ``cache`` keeps the kernel spectrum between calls."""
    channels, height, width = x.shape
    out_channels, _, k, _ = kernel.shape
    n, out_h, out_w = block + k - 1, height - k + 1, width - k + 1
    rows, cols = -(-out_h // block), -(-out_w // block)
    key = ("head_spectrum", kernel.data_ptr(), kernel._version, n, x.dtype, x.device)
    if cache is None or key not in cache:
        spectrum = torch.fft.rfft2(kernel.flip(-2, -1).to(x.dtype), s=(n, n))     # (O, C, n, n//2 + 1)
        spectrum = spectrum.permute(2, 3, 1, 0).flatten(0, 1).contiguous()     # (frequencies, C, O)
        if cache is not None:
            cache.clear()
            cache[key] = spectrum
    else:
        spectrum = cache[key]
    padded = F.pad(x, (0, cols * block + k - 1 - width, 0, rows * block + k - 1 - height))
    windows = padded.unfold(1, n, block).unfold(2, n, block).flatten(1, 2)    # (C, blocks, n, n), a view
    out = torch.empty(rows * cols, out_channels, block, block, dtype=x.dtype, device=x.device)
    for start in range(0, rows * cols, chunk):
        fx = torch.fft.rfft2(windows[:, start:start + chunk]).permute(2, 3, 1, 0).flatten(0, 1)  # (F, b, C)
        product = torch.bmm(fx, spectrum).unflatten(0, (n, n // 2 + 1)).permute(2, 3, 0, 1)      # (b, O, n, m)
        out[start:start + chunk] = torch.fft.irfft2(product, s=(n, n))[..., k - 1:, k - 1:]
    out = out.view(rows, cols, out_channels, block, block).permute(2, 0, 3, 1, 4)
    out = out.reshape(out_channels, rows * block, cols * block)[:, :out_h, :out_w]
    return out + bias[:, None, None]


def _per_window(model: HybridSN, x: torch.Tensor, stage: int, batch_size: int) -> torch.Tensor:
    size = model.window_sizes[stage]
    windows = x[0].unfold(1, size, 1).unfold(2, size, 1)             # (C, H, W, size, size), a view
    height, width = windows.shape[1:3]
    out = torch.empty(height * width, model.n_classes, dtype=x.dtype, device=x.device)
    rows = torch.arange(height, device=x.device).repeat_interleave(width)
    cols = torch.arange(width, device=x.device).repeat(height)
    for start in range(0, height * width, batch_size):
        r, c = rows[start:start + batch_size], cols[start:start + batch_size]
        batch = windows[:, r, c].transpose(0, 1)                    # (n, C, size, size)
        features = model.features(model.slots[stage](batch), start=stage + 1)
        out[start:start + batch_size] = model.head(features.flatten(1))
    return out.view(height, width, -1)


def activation_floats_per_pixel(model: HybridSN) -> int:
    """Floats the dense pass holds per scene pixel (every layer's output per position, summed over the
    stages run on the whole scene, plus the head's hidden vector): the estimate behind the tile size."""
    stop = first_window_slot(model)
    dense_stages = nn.Sequential(*model.stages[:None if stop is None else stop + 1])
    x = torch.zeros(1, 1, model.bands, model.patch_size, model.patch_size, device=next(model.parameters()).device)
    first = model.head[0]
    assert isinstance(first, nn.Linear)
    return first.out_features + sum(math.prod(s[1:-2]) for s in layer_output_shapes(dense_stages, x))
