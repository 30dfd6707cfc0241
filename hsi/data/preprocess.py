"""PCA band reduction (optionally whitened, optionally after per-band standardisation) as plain arrays."""
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass
class Reducer:
    """A fitted transform ``cube (rows, cols, bands) -> (rows, cols, n_components)`` float32.

    Plain arrays only, so it travels inside a checkpoint and applies to any scene with the same bands.
    ``fit_scope`` records which pixels it was fitted on: ``"train"`` (leak-free) or ``"scene"`` (paper).
    """

    mean: np.ndarray          # (bands,) subtracted before projecting (after standardising)
    components: np.ndarray    # (n_components, bands)
    scale: np.ndarray         # (n_components,) divisor after projecting: 1, or sqrt(variance) when whitened
    band_std: np.ndarray      # (bands,) divisor before centring: 1, or each band's std when standardised
    fit_scope: str = "train"
    whiten: bool = False
    standardize: bool = False

    @property
    def bands(self):
        return self.components.shape[1]

    @property
    def n_components(self):
        return self.components.shape[0]

    def transform(self, cube, chunk_rows=256):
        """Reduce a cube row-chunk by row-chunk, so the float64 intermediate stays small."""
        if cube.shape[-1] != self.bands:
            raise ConfigError(f"the cube has {cube.shape[-1]} bands but the PCA was fitted on {self.bands}")
        weights = (self.components / self.band_std).T / self.scale          # (bands, n)
        offset = (self.mean @ self.components.T) / self.scale              # (n,)
        out = np.empty(cube.shape[:-1] + (self.n_components,), dtype=np.float32)
        for start in range(0, cube.shape[0], chunk_rows):
            block = cube[start:start + chunk_rows].astype(np.float64)
            out[start:start + chunk_rows] = block @ weights - offset
        return out

    def to_dict(self):
        return {"mean": self.mean.tolist(), "components": self.components.tolist(), "scale": self.scale.tolist(),
                "band_std": self.band_std.tolist(), "fit_scope": self.fit_scope, "whiten": self.whiten,
                "standardize": self.standardize}

    @classmethod
    def from_dict(cls, d):
        arrays = {k: np.asarray(d[k], dtype=np.float64) for k in ("mean", "components", "scale", "band_std")}
        return cls(**arrays, fit_scope=d["fit_scope"], whiten=bool(d["whiten"]), standardize=bool(d["standardize"]))


def fit_pca(cube, n_components=30, *, mask=None, whiten=False, standardize=False, fit_scope=None):
    """Fit PCA on the pixels where ``mask`` is True (all pixels when ``mask`` is None).

    Pass the training mask for a leak-free fit; ``fit_scope`` defaults to ``"train"`` with a mask and
    ``"scene"`` without one.
    """
    from sklearn.decomposition import PCA

    bands = cube.shape[-1]
    if not 1 <= n_components <= bands:
        raise ConfigError(f"PCA components must be between 1 and the band count {bands}, got {n_components}")
    pixels = cube.reshape(-1, bands) if mask is None else cube[np.asarray(mask, dtype=bool)]
    if len(pixels) < n_components:
        raise ConfigError(f"PCA with {n_components} components needs at least {n_components} fitting pixels, "
                          f"got {len(pixels)}")
    pixels = pixels.astype(np.float64)
    band_std = pixels.std(axis=0) if standardize else np.ones(bands)
    band_std[band_std == 0] = 1.0
    pca = PCA(n_components=n_components, svd_solver="full").fit(pixels / band_std)
    scale = np.sqrt(pca.explained_variance_) if whiten else np.ones(n_components)
    scale[scale == 0] = 1.0
    return Reducer(mean=pca.mean_, components=pca.components_, scale=scale, band_std=band_std,
                   fit_scope=fit_scope or ("scene" if mask is None else "train"), whiten=whiten,
                   standardize=standardize)
