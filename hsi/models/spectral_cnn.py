"""The 1-D spectral CNN of Hu et al. (J. Sensors 2015), sized by the paper's rules.

One pixel's spectrum goes through a 1-D convolution (20 kernels of ``ceil(bands / 9)`` bands), a max-pool of
``ceil(kernel / 5)`` (the size DeepHyperX infers from the paper's tables), tanh, a dense layer of 100 tanh units
and a Linear layer to the classes. Weights start uniform in [-0.05, 0.05], biases at zero, as the paper says.

No attention slot: the network has one 1-D map (20 channels along the spectrum) and no spatial extent for the
2-D blocks to reweight.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .attention.registry import AttentionOption
from .backbone import check_sizes
from .registry import register_model
from .spectra import centre_spectrum, check_no_attention


class SpectralCNN(nn.Module):
    """Input ``(N, bands)`` or any window ``(N, 1, bands, p, p)`` (only its centre pixel is read), output logits
    ``(N, n_classes)``."""

    kind = "patch"
    spectral_only = True
    input_radius = 0                 # reads only the centre pixel: leakage radius 0, mapped pixel by pixel

    def __init__(self, *, bands: int, n_classes: int, patch_size: int = 1) -> None:
        super().__init__()
        self.bands, self.n_classes, self.patch_size = bands, n_classes, patch_size
        kernel_size = math.ceil(bands / 9)
        pool_size = math.ceil(kernel_size / 5)
        self.conv = nn.Conv1d(1, 20, kernel_size)
        self.pool = nn.MaxPool1d(pool_size)
        self.features_size = 20 * ((bands - kernel_size + 1) // pool_size)
        self.fc1 = nn.Linear(self.features_size, 100)
        self.fc2 = nn.Linear(100, n_classes)
        for module in (self.conv, self.fc1, self.fc2):
            nn.init.uniform_(module.weight, -0.05, 0.05)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.pool(self.conv(centre_spectrum(x).unsqueeze(1))))
        return self.fc2(torch.tanh(self.fc1(x.flatten(1))))


@register_model(SpectralCNN, paper="Hu et al., Journal of Sensors 2015")
def spectral_cnn(*, bands: int, n_classes: int, patch_size: int = 1, attention: AttentionOption = None) -> SpectralCNN:
    """Hu et al. 2015's spectral CNN. Reads one spectrum: any odd window (1 included), any band count >= 1.
    No attention slot."""
    check_sizes("spectral_cnn", bands, n_classes, patch_size)
    check_no_attention("spectral_cnn", attention)
    return SpectralCNN(bands=bands, n_classes=n_classes, patch_size=patch_size)
