import numpy as np
import pytest

import hsi
from hsi.data.preprocess import Reducer, fit_pca
from hsi.data.splits import make_split


def test_pca_fitted_on_train_sees_no_test_pixel(indian_pines):
    split = make_split(indian_pines.labels, "random", train_ratio=0.1, seed=0)
    train = split.train >= 0
    reducer = fit_pca(indian_pines.cube, 30, mask=train)
    # By construction: change every pixel outside the training mask; the fit must not move.
    poisoned = indian_pines.cube.copy()
    poisoned[~train] = 1e6
    again = fit_pca(poisoned, 30, mask=train)
    np.testing.assert_array_equal(again.components, reducer.components)
    np.testing.assert_array_equal(again.mean, reducer.mean)
    assert reducer.fit_scope == "train"
    assert fit_pca(indian_pines.cube, 30).fit_scope == "scene"


def test_transform_matches_sklearn_whitened(indian_pines):
    from sklearn.decomposition import PCA

    pixels = indian_pines.cube.reshape(-1, 200).astype(np.float64)
    expected = PCA(30, whiten=True, svd_solver="full").fit_transform(pixels)
    reduced = fit_pca(indian_pines.cube, 30, whiten=True).transform(indian_pines.cube)
    assert reduced.shape == (145, 145, 30) and reduced.dtype == np.float32
    np.testing.assert_allclose(reduced.reshape(-1, 30), expected, rtol=1e-4, atol=1e-3)
    assert abs(reduced.reshape(-1, 30).std(axis=0) - 1).max() < 1e-3


@pytest.mark.parametrize("standardize", [False, True])
def test_chunked_fit_equals_sklearn_pca(indian_pines, standardize):
    from sklearn.decomposition import PCA

    pixels = indian_pines.cube.reshape(-1, 200).astype(np.float64)
    band_std = pixels.std(axis=0) if standardize else np.ones(200)
    expected = PCA(30, svd_solver="full").fit(pixels / band_std)
    for chunk_pixels in (1000, 65536):          # 22 chunks with a partial last one, and a single chunk
        reducer = fit_pca(indian_pines.cube, 30, whiten=True, standardize=standardize, chunk_pixels=chunk_pixels)
        np.testing.assert_allclose(reducer.components, expected.components_, atol=1e-10)
        np.testing.assert_allclose(reducer.scale ** 2, expected.explained_variance_, rtol=1e-10)
        np.testing.assert_allclose(reducer.mean, expected.mean_, rtol=1e-12)
        np.testing.assert_allclose(reducer.band_std, band_std, rtol=1e-12)


def test_round_trip_through_plain_dict_and_other_scene(indian_pines):
    reducer = fit_pca(indian_pines.cube, 15, standardize=True)
    restored = Reducer.from_dict(reducer.to_dict())
    crop = indian_pines.cube[:40, :30]
    np.testing.assert_array_equal(restored.transform(crop), reducer.transform(crop))


@pytest.mark.parametrize("n", [0, 201])
def test_bad_component_count(indian_pines, n):
    with pytest.raises(hsi.ConfigError, match="band count 200"):
        fit_pca(indian_pines.cube, n)
