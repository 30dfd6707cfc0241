"""What a forward pass holds in memory: the output shape of every layer, observed with forward hooks."""
from __future__ import annotations

import torch
from torch import nn


def layer_output_shapes(module: nn.Module, x: torch.Tensor) -> list[tuple[int, ...]]:
    """Output shapes of every leaf module of ``module`` while it runs ``x`` once, in eval mode and without
    gradients (every submodule's training mode is restored after)."""
    shapes = []
    modes = [(m, m.training) for m in module.modules()]
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(o.shape))
             for m in module.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            module.eval()(x)
    finally:
        for m, training in modes:
            m.training = training
        for hook in hooks:
            hook.remove()
    return shapes
