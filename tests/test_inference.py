"""predict_scene: every pixel, tiles that give the untiled result, modes, probabilities, bare models."""
import logging

import numpy as np
import pytest
import torch

import hsi
from hsi.data.preprocess import fit_pca
from hsi.inference import default_tile, scene_logits


@pytest.fixture(scope="module")
def trained(untrained_hybridsn):
    return untrained_hybridsn


@pytest.fixture(scope="module")
def untiled(trained, indian_pines):
    return scene_logits(trained, indian_pines, mode="dense", tile=1000)


@pytest.mark.parametrize("tile", [7, 50, 64, 144])
def test_tiles_give_the_untiled_result(trained, indian_pines, untiled, tile, assert_same_logits):
    assert_same_logits(scene_logits(trained, indian_pines, mode="dense", tile=tile), untiled)


def test_memory_budget_picks_the_tile(trained, indian_pines, untiled):
    small = default_tile(trained.model, memory_mb=8)
    assert 16 <= small < 145 < default_tile(trained.model, memory_mb=1024)
    labels = hsi.predict_scene(trained, indian_pines, memory_mb=8)
    np.testing.assert_array_equal(labels, untiled.argmax(-1))


def test_labels_and_probabilities(trained, indian_pines, untiled):
    labels, probs = hsi.predict_scene(trained, indian_pines, return_probs=True)
    assert labels.shape == (145, 145) and labels.dtype == np.int64 and probs.shape == (145, 145, 16)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
    np.testing.assert_array_equal(labels, probs.argmax(-1))
    np.testing.assert_array_equal(labels, untiled.argmax(-1))


def test_scene_with_other_bands_is_refused(trained, indian_pines):
    with pytest.raises(hsi.CheckpointError, match="trained on 200 bands"):
        hsi.predict_scene(trained, indian_pines.cube[:20, :20, :150])


class CentreSpectrum(torch.nn.Module):
    """A model with no dense form: a linear classifier of the centre pixel's spectrum."""

    def __init__(self, bands, n_classes, patch_size):
        super().__init__()
        self.bands, self.n_classes, self.patch_size = bands, n_classes, patch_size
        self.linear = torch.nn.Linear(bands, n_classes)

    def forward(self, x):
        return self.linear(x[:, 0, :, self.patch_size // 2, self.patch_size // 2])


def test_auto_falls_back_to_patch_mode_and_says_so_once(indian_pines, caplog):
    torch.manual_seed(0)
    reduced = fit_pca(indian_pines.cube, 15).transform(indian_pines.cube)
    model = CentreSpectrum(15, 16, 5)
    with caplog.at_level(logging.INFO, logger="hsi"):
        labels = hsi.predict_scene(model, reduced, mode="auto")
    assert [r.message for r in caplog.records].count(
        "CentreSpectrum has no dense form: predicting window by window (patch mode)") == 1
    with torch.no_grad():
        expected = model.linear(torch.from_numpy(reduced)).argmax(-1).numpy()
    np.testing.assert_array_equal(labels, expected)
    with pytest.raises(hsi.ConfigError, match="no dense form"):
        hsi.predict_scene(model, reduced, mode="dense")


def test_bad_mode(trained, indian_pines):
    with pytest.raises(hsi.ConfigError, match="mode must be one of auto, dense, patch"):
        hsi.predict_scene(trained, indian_pines, mode="fast")


@pytest.mark.parametrize("mode", ["dense", "patch"])
@pytest.mark.parametrize("tile", [0, -3, 2.5, True])
def test_bad_tile_is_refused_in_every_mode(trained, indian_pines, mode, tile):
    with pytest.raises(hsi.ConfigError, match=f"tile must be a whole number of pixels >= 1, got {tile!r}$"):
        hsi.predict_scene(trained, indian_pines, mode=mode, tile=tile)


@pytest.mark.parametrize("name, options", [("spectral_cnn", {}), ("spectralformer", {"pixelwise": True})])
def test_a_pixel_model_maps_each_spectrum_once_and_gives_the_window_by_window_map(indian_pines, name, options):
    """A model that reads only its window's centre (``input_radius`` 0) is mapped over the pixels' spectra,
    with no window cut, and the logits equal those of its 9 x 9 windows."""
    from hsi.distributed import ALONE
    from hsi.inference import _patch_tiles, as_trained

    torch.manual_seed(0)
    model = hsi.build_model(name, bands=20, n_classes=16, patch_size=9, **options).eval()
    cube = np.ascontiguousarray(indian_pines.cube[:12, :10, :20], dtype=np.float32) / 1000
    assert model.input_radius == 0
    seen = []
    hook = model.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape[-2:])))
    tiles = list(hsi.inference.logit_tiles(model, cube, tile=5))
    hook.remove()
    assert set(seen) == {(1, 1)}                     # spectra, not 9 x 9 windows
    assert [region for region, _ in tiles] == [(0, 5, 0, 10), (5, 10, 0, 10), (10, 12, 0, 10)]   # bands of rows
    windows = np.concatenate([logits for _, logits in _patch_tiles(as_trained(model), cube, None, 64,
                                                                      torch.device("cpu"), 1024, False, ALONE)])
    np.testing.assert_allclose(np.concatenate([logits for _, logits in tiles]), windows, rtol=1e-5, atol=1e-5)


def test_a_pixel_models_row_bands_keep_the_cubes_own_bands_within_the_budget(indian_pines):
    """The row bands of a pixel model after a PCA are sized by the bands read from the cube (200 here), not by the
    5 reduced ones: each band read stays within ``memory_mb`` (before, all 40 rows were read at once)."""
    from hsi.checkpoint import TrainedModel
    from hsi.data.preprocess import Reducer

    torch.manual_seed(0)
    model = hsi.build_model("spectral_cnn", bands=5, n_classes=16, patch_size=1).eval()
    cube = indian_pines.cube[:40, :48]
    rng = np.random.default_rng(0)
    reducer = Reducer(mean=np.zeros(200), components=rng.standard_normal((5, 200)) / 100, scale=np.ones(5),
                      band_std=np.ones(200))
    trained = TrainedModel(model, reducer, 1, "zero", [f"class {i}" for i in range(1, 17)], np.arange(1, 17),
                           np.zeros((16, 3), np.uint8), 200)
    regions = [region for region, _ in hsi.inference.logit_tiles(trained, cube, memory_mb=1)]
    assert len(regions) > 1
    assert max((r1 - r0) * (c1 - c0) * 200 * 4 for r0, r1, c0, c1 in regions) <= 2**20


@pytest.mark.parametrize("name", ["spectral_cnn", "hybridsn"])
def test_map_bands_are_sized_for_the_cube_as_read(indian_pines, name):
    """#28: a pixel model's bands of rows were sized for the 15 reduced bands alone, and each was read from the
    file with all its bands first: svm on a 2.7 GB line read 5.4 GB at once. The same for window-by-window maps."""
    from hsi.checkpoint import TrainedModel
    from hsi.distributed import ALONE
    from hsi.inference import _patch_tiles, _pixel_tiles

    cube = indian_pines.cube
    model = hsi.build_model(name, bands=15, n_classes=16, patch_size=9).eval()
    trained = TrainedModel(model, fit_pca(cube[::4, ::4], 15), 9, "zero", list(indian_pines.class_names),
                           indian_pines.label_ids, indian_pines.palette, cube.shape[2])
    tiles = _pixel_tiles if name == "spectral_cnn" else _patch_tiles
    budget_mb = 4
    (r0, r1, _, _), _ = next(tiles(trained, cube, None, 256, torch.device("cpu"), budget_mb, False, ALONE))
    margin = 0 if name == "spectral_cnn" else 4
    assert (r1 - r0 + 2 * margin) * (cube.shape[1] + 2 * margin) * cube.shape[2] * 4 <= budget_mb * 2**20
