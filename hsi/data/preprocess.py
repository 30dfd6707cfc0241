"""PCA band reduction (optionally whitened, optionally after per-band standardisation) as plain arrays."""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .mapped import Cube, MappedCube


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
    fit_pixels: int = 0       # how many pixels the fit used (0: not recorded, an older checkpoint)

    @property
    def bands(self) -> int:
        return self.components.shape[1]

    @property
    def n_components(self) -> int:
        return self.components.shape[0]

    def transform(self, cube: Cube, chunk_pixels: int = 65536) -> np.ndarray:
        """Reduce a cube a few rows at a time (about ``chunk_pixels`` pixels), so a memory-mapped scene is
        never read whole. Each chunk is centred in float32 (band values are far inside float32's exact range,
        and centring before the product keeps its rounding at the scale of the output, about 1e-6) and
        projected in torch, on the thread pool the model then uses: numpy's BLAS threads keep spinning after a
        product and would take the cores from the forward pass that follows."""
        if cube.shape[-1] != self.bands:
            raise ConfigError(f"the cube has {cube.shape[-1]} bands but the PCA was fitted on {self.bands}")
        chunk_rows = max(1, chunk_pixels // max(1, int(np.prod(cube.shape[1:-1]))))
        weights = torch.from_numpy(((self.components / self.band_std).T / self.scale).astype(np.float32))
        centre = torch.from_numpy((self.mean * self.band_std).astype(np.float32))    # the mean in band units
        out = np.empty(cube.shape[:-1] + (self.n_components,), dtype=np.float32)
        for start in range(0, cube.shape[0], chunk_rows):
            block = torch.from_numpy(np.asarray(cube[start:start + chunk_rows], dtype=np.float32))
            torch.matmul(block - centre, weights, out=torch.from_numpy(out[start:start + chunk_rows]))
            if isinstance(cube, MappedCube):
                cube.release()          # the pages read so far: else the whole file stays resident
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "components": self.components.tolist(), "scale": self.scale.tolist(),
                "band_std": self.band_std.tolist(), "fit_scope": self.fit_scope, "whiten": self.whiten,
                "standardize": self.standardize, "fit_pixels": self.fit_pixels}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Reducer:
        arrays = {k: np.asarray(d[k], dtype=np.float64) for k in ("mean", "components", "scale", "band_std")}
        return cls(**arrays, fit_scope=d["fit_scope"], whiten=bool(d["whiten"]), standardize=bool(d["standardize"]),
                   fit_pixels=int(d.get("fit_pixels", 0)))

    def fit_record(self) -> dict[str, Any]:
        """How the PCA was fitted, for ``config.json``."""
        how = ("training pixels gathered from the cube" if self.fit_scope == "train" else
               "every scene pixel, streamed in row chunks")
        return {"scope": self.fit_scope, "pixels": self.fit_pixels, "how": how}


def fit_pca(cube: Cube, n_components: int = 30, *, mask: np.ndarray | None = None, whiten: bool = False,
            standardize: bool = False, fit_scope: str | None = None, chunk_pixels: int = 65536,
            wavelengths: np.ndarray | None = None) -> Reducer:
    """Fit PCA on the pixels where ``mask`` is True (all pixels when ``mask`` is None).

    Pass the training mask for a leak-free fit; ``fit_scope`` defaults to ``"train"`` with a mask and
    ``"scene"`` without one. The masked pixels are gathered (fancy indexing, so a memory-mapped cube reads only
    them); without a mask the cube is streamed a few rows at a time, twice. The band covariance is accumulated
    in float64 over chunks of ``chunk_pixels`` pixels and eigen-decomposed, so memory is ``bands²`` plus one
    chunk (plus the gathered pixels) whatever the scene size. Components
    and variances equal scikit-learn's ``PCA`` (same sign convention: each component's largest loading is
    positive). Bands constant over the fitting pixels (all zero, say) carry nothing: a warning names them (with
    their ``wavelengths`` when given), and standardising leaves them at 0 rather than dividing by 0.
    """
    bands = cube.shape[-1]
    if not 1 <= n_components <= bands:
        raise ConfigError(f"PCA components must be between 1 and the band count {bands}, got {n_components}")
    pixels = None if mask is None else cube[np.asarray(mask, dtype=bool)]
    if pixels is not None and isinstance(cube, MappedCube):
        cube.release()              # the rows the gather read
    n = int(np.prod(cube.shape[:-1])) if pixels is None else len(pixels)
    if n < n_components:
        raise ConfigError(f"PCA with {n_components} components needs at least {n_components} fitting pixels, "
                          f"got {n}")
    mean = sum(chunk.sum(axis=0, dtype=np.float64) for chunk in _chunks(cube, pixels, chunk_pixels)) / n
    products = torch.zeros(bands, bands, dtype=torch.float64)
    for chunk in _chunks(cube, pixels, chunk_pixels):        # products in torch: see Reducer.transform
        centred = torch.from_numpy(chunk.astype(np.float64) - mean)
        products += centred.T @ centred
    covariance = products.numpy() / max(n - 1, 1)
    _warn_constant_bands(np.flatnonzero(np.diag(covariance) == 0), bands, n, wavelengths)
    band_std = np.sqrt(np.diag(covariance) * (max(n - 1, 1) / n)) if standardize else np.ones(bands)
    band_std[band_std == 0] = 1.0
    covariance /= np.outer(band_std, band_std)
    variances, vectors = (a.numpy() for a in torch.linalg.eigh(torch.from_numpy(covariance)))
    order = np.argsort(variances)[::-1][:n_components]
    components = vectors[:, order].T
    components *= np.sign(components[np.arange(n_components), np.abs(components).argmax(axis=1)])[:, None]
    scale = np.sqrt(np.clip(variances[order], 0, None)) if whiten else np.ones(n_components)
    scale[scale == 0] = 1.0
    return Reducer(mean=mean / band_std, components=components, scale=scale, band_std=band_std,
                   fit_scope=fit_scope or ("scene" if mask is None else "train"), whiten=whiten,
                   standardize=standardize, fit_pixels=n)


def _warn_constant_bands(constant: np.ndarray, bands: int, n: int, wavelengths: np.ndarray | None) -> None:
    if not len(constant):
        return
    if len(constant) == bands:
        warnings.warn(f"every band is constant over the {n} PCA fitting pixels (an all-zero or constant cube?): "
                      f"the reduced cube is 0 everywhere and nothing can be learnt from it", stacklevel=3)
        return
    named = [f"band {i}" + ("" if wavelengths is None else f" at {float(wavelengths[i]):g}") for i in constant[:10]]
    more = f" and {len(constant) - 10} more" if len(constant) > 10 else ""
    warnings.warn(f"{len(constant)} band(s) constant over the {n} PCA fitting pixels carry no information "
                  f"(counted from 0): {', '.join(named)}{more}", stacklevel=3)


def _chunks(cube: Cube, pixels: np.ndarray | None, chunk_pixels: int) -> Iterator[np.ndarray]:
    """(n, bands) blocks of about ``chunk_pixels``: of the gathered ``pixels``, else of the cube row by row."""
    if pixels is not None:
        yield from (pixels[i:i + chunk_pixels] for i in range(0, len(pixels), chunk_pixels))
        return
    step = max(1, chunk_pixels // max(1, int(np.prod(cube.shape[1:-1]))))
    for start in range(0, cube.shape[0], step):
        yield np.asarray(cube[start:start + step]).reshape(-1, cube.shape[-1])
        if isinstance(cube, MappedCube):
            cube.release()
