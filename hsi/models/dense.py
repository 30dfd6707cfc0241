"""Run a trained HybridSN over a whole (padded) scene at once instead of patch by patch.

Every stage is made of valid, stride-1 convolutions, batch norm (an affine map in eval mode) and ReLU, so
computing a stage on the whole padded scene gives, at every position, exactly what it gives inside each
patch. The head's first Linear layer reads the last ``h × w`` map of a patch: on the whole scene it is a
convolution with an ``h × w`` kernel (the Linear weights reshaped in flatten order), and the later layers
act on each pixel's vector. An attention block pools over, or mixes positions of, its own window, so it is
not translation-equivariant: from the first occupied slot on, the network runs per window of the dense map
(the window each patch would have seen there), which is still exact and skips the stages before it.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .hybridsn import HybridSN


def supports_dense(model):
    return isinstance(model, HybridSN)


def first_window_slot(model):
    """Index of the first stage whose slot holds a block, or None when every slot is empty."""
    return next((i for i, slot in enumerate(model.slots) if not isinstance(slot, nn.Identity)), None)


def dense_logits(model, padded, batch_size=256):
    """Logits ``(H, W, n_classes)`` for every pixel of a padded scene ``(1, 1, bands, H + p - 1, W + p - 1)``.

    The model must be in eval mode; ``batch_size`` bounds the windows run at once after an attention slot.
    """
    x = padded
    for i, (stage, slot) in enumerate(zip(model.stages, model.slots)):
        x = stage(x)
        if not isinstance(slot, nn.Identity):
            return _per_window(model, x, i, batch_size)
    return _head_as_convolution(model, x)


def _head_as_convolution(model, x):
    first, rest = model.head[0], model.head[1:]
    size = model.window_sizes[-1]
    kernel = first.weight.view(first.out_features, x.shape[1], size, size)
    hidden = F.conv2d(x, kernel, first.bias)[0]                      # (256, H, W)
    height, width = hidden.shape[1:]
    return rest(hidden.flatten(1).T).view(height, width, -1)


def _per_window(model, x, stage, batch_size):
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


def activation_floats_per_pixel(model):
    """Floats the dense pass holds per scene pixel (every layer's output per position, summed over the
    stages run on the whole scene, plus the head's hidden vector): the estimate behind the tile size."""
    stop = first_window_slot(model)
    dense_stages = model.stages[:None if stop is None else stop + 1]
    counts = [model.head[0].out_features]
    hooks = [m.register_forward_hook(lambda m, i, o: counts.append(o[0].numel() / (o.shape[-1] * o.shape[-2])))
             for m in dense_stages.modules() if not list(m.children())]
    x = torch.zeros(1, 1, model.bands, model.patch_size, model.patch_size)
    training = model.training
    try:
        with torch.no_grad():
            model.eval()
            for stage in dense_stages:
                x = stage(x)
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    return sum(counts)
