import numpy as np
import pytest
import torch

import hsi
from hsi.data.augment import make_augmentation
from hsi.data.patches import PatchDataset, check_patch_size, pad_cube
from hsi.data.preprocess import fit_pca


@pytest.fixture(scope="module")
def reduced(indian_pines):
    return fit_pca(indian_pines.cube, 30).transform(indian_pines.cube)


def test_border_patch_equals_hand_made_window(reduced):
    padded = pad_cube(reduced, 25)
    dataset = PatchDataset(padded, [(0, 0), (144, 144)], [3, 4], 25)
    window, label = dataset[0]
    expected = np.zeros((25, 25, 30), np.float32)
    expected[12:, 12:] = reduced[:13, :13]          # the pixel sits at the window centre, zeros outside the scene
    assert window.shape == (1, 30, 25, 25) and label == 3
    np.testing.assert_array_equal(window[0].numpy(), expected.transpose(2, 0, 1))
    corner, _ = dataset[1]
    np.testing.assert_array_equal(corner[0, :, 12, 12].numpy(), reduced[144, 144])
    assert corner[0, :, 13:, :].abs().sum() == 0


def test_reflect_padding_and_2d_layout(reduced):
    padded = pad_cube(reduced, 5, mode="reflect")
    window, _ = PatchDataset(padded, [(0, 0)], [0], 5, spectral_channel=False)[0]
    assert window.shape == (30, 5, 5)
    np.testing.assert_array_equal(window[:, 2 + 1, 2 + 2].numpy(), reduced[1, 2])
    np.testing.assert_array_equal(window[:, 2 - 1, 2 - 2].numpy(), reduced[1, 2])  # mirrored


def test_all_labelled_patches_are_views_of_one_array(indian_pines, reduced):
    padded = pad_cube(reduced, 25)
    rows, cols = np.nonzero(indian_pines.labels >= 0)
    dataset = PatchDataset(padded, np.stack([rows, cols], 1), indian_pines.labels[rows, cols], 25)
    assert len(dataset) == 10249
    assert np.shares_memory(dataset.windows, padded) and dataset.windows.base is not None
    x, y = dataset.__getitems__(list(range(0, 10249, 1000)))
    assert x.shape == (11, 1, 30, 25, 25) and y.tolist() == indian_pines.labels[rows, cols][::1000].tolist()


def test_augmentation_is_seeded_and_keeps_the_centre(reduced):
    padded = pad_cube(reduced, 7)
    coords = [(50, 60)] * 32

    def batch(seed):
        ds = PatchDataset(padded, coords, [0] * 32, 7, augmentation=make_augmentation("flip"),
                          generator=torch.Generator().manual_seed(seed))
        return ds.__getitems__(list(range(32)))[0]

    a, b = batch(1), batch(1)
    torch.testing.assert_close(a, b)
    assert len({x.numpy().tobytes() for x in a}) > 1      # several orientations were drawn
    torch.testing.assert_close(a[:, 0, :, 3, 3], torch.from_numpy(reduced[50, 60]).expand(32, 30))


def test_orientation_codes_flip_then_turn_each_window(reduced):
    """``(index, [code])`` items of the flip augmentation: bit 0 of the code flips the window left-right,
    ``code // 2`` turns it a quarter turn counter-clockwise that many times."""
    padded = pad_cube(reduced, 7)
    ds = PatchDataset(padded, [(50, 60), (10, 20)], [0, 1], 7, augmentation=make_augmentation("flip"))
    plain = ds.windows_at([0, 1]).unsqueeze(1)
    for code in range(8):
        turned = ds.__getitems__([(0, [code]), (1, [7 - code])])[0]
        for i, c in enumerate((code, 7 - code)):
            expected = plain[i].flip(-1) if c % 2 else plain[i]
            torch.testing.assert_close(turned[i], torch.rot90(expected, c // 2, dims=(-2, -1)))


@pytest.mark.parametrize("size", [4, 0, True, 9.0])
def test_bad_patch_size(reduced, size):
    with pytest.raises(hsi.ConfigError, match="patch size"):
        pad_cube(reduced, size)


def test_a_window_larger_than_the_scene_is_refused_where_windows_are_read(reduced):
    """pad_cube pads any scene (a pixel model reads only the centre); a window model's run checks the size."""
    assert pad_cube(reduced[:3, :3], 25, mode="reflect").shape == (27, 27, reduced.shape[2])
    with pytest.raises(hsi.ConfigError, match="patch size 301 is too large for a 145x145 scene"):
        check_patch_size(301, reduced.shape)
