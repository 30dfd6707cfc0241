"""Leakage of a split: the share of test pixels whose input window holds a training or validation pixel."""
import numpy as np
import pytest

import hsi
from hsi.data.splits import make_split
from hsi.leakage import format_leakage, leakage_record, window_leakage


@pytest.fixture(scope="module")
def crop_labels(indian_pines):
    return indian_pines.labels[20:60, 30:75]      # 40x45, most Indian Pines classes' fields at their edges


def direct_count(split, radius):
    """Look at every test pixel's window, one at a time."""
    seen = (split.train >= 0) | (split.val >= 0)
    leaked = 0
    for r, c in zip(*np.nonzero(split.test >= 0)):
        window = seen[max(r - radius, 0):r + radius + 1, max(c - radius, 0):c + radius + 1]
        leaked += bool(window.any())
    return leaked


@pytest.mark.parametrize("radius", [0, 1, 4, 12])
@pytest.mark.parametrize("mode", ["random", "disjoint"])
def test_window_leakage_equals_a_direct_count(crop_labels, mode, radius):
    split = make_split(crop_labels, mode, train_ratio=0.1, patch_size=9, seed=0)
    record = window_leakage(split, radius)
    n_test = int((split.test >= 0).sum())
    assert record["test_pixels"] == n_test > 0
    assert record["leaked_pixels"] == direct_count(split, radius)
    assert record["fraction"] == record["leaked_pixels"] / n_test
    if radius == 0:
        assert record["leaked_pixels"] == 0           # a pixel is in one subset only
    assert window_leakage(split, None)["leaked_pixels"] == n_test     # a model reading the whole scene


def test_random_split_leaks_almost_everything_and_disjoint_nothing(indian_pines):
    random = make_split(indian_pines.labels, "random", train_ratio=0.1, seed=0)
    assert window_leakage(random, 12)["fraction"] > 0.99
    with pytest.warns(UserWarning):
        disjoint = make_split(indian_pines.labels, "disjoint", train_ratio=0.1, patch_size=25, seed=0)
    assert window_leakage(disjoint, 12)["leaked_pixels"] == 0
    assert window_leakage(disjoint, 13)["leaked_pixels"] > 0       # the buffer is exactly the window's radius


def test_record_says_what_the_pca_and_model_saw(crop_labels):
    split = make_split(crop_labels, "random", train_ratio=0.2, seed=1)
    record = leakage_record(split, 4, "scene", transductive=True)
    assert record["pca_saw_test"] and record["transductive"]
    line = format_leakage(record)
    assert f"{100 * record['fraction']:.2f} % of {record['test_pixels']} test pixels" in line
    assert "9x9 input" in line and "whole scene" in line and "transductive" in line
    assert not leakage_record(split, 4, "train")["pca_saw_test"]


def test_bad_radius_is_named():
    split = make_split(np.array([[0, 1], [1, 0]] * 4), "random", train_ratio=0.5, val_ratio=0, seed=0)
    with pytest.raises(hsi.ConfigError, match="radius must be a whole number"):
        window_leakage(split, -1)
