"""build_model: a bad model option is one ConfigError naming the option and what it takes, for every family."""
import re

import pytest

import hsi

BAD_OPTIONS = [
    ("hybridsn", {"nope": 1}, "hybridsn has no option 'nope'; its options: batch_norm, dropout"),
    ("svm", {"kernel": "linear"}, "svm has no option 'kernel'; its options: C, gamma, folds"),
    ("resnet18", {"nope": 1}, "resnet18 has no option 'nope'"),
    ("hybridsn", {"dropout": 1.0}, "dropout must be a number in [0, 1), got 1.0"),
    ("hybridsn_2d3d", {"dropout": -0.1}, "dropout must be a number in [0, 1), got -0.1"),
    ("resnet18", {"widths": 8}, "widths must be a sequence of integers >= 1, got 8"),
    ("sknet", {"units": 3}, "units must be a sequence of integers >= 1, got 3"),
    ("resnest", {"units": (2, 0, 2, 2)}, "each of units must be an integer >= 1, got 0"),
    ("fcn8s", {"widths": 64}, "widths must be a sequence of integers >= 1, got 64"),
    ("fcn16s", {"context_width": 0}, "context_width must be an integer >= 1, got 0"),
    ("fcn32s", {"dropout": 2}, "dropout must be a number in [0, 1), got 2"),
    ("fcn_jpu", {"jpu_width": 0}, "jpu_width must be an integer >= 1, got 0"),
    ("svm", {"C": -1}, "svm C must be a positive number (or left out: chosen by cross-validation), got -1"),
    ("svm", {"gamma": "x"}, "svm gamma must be a positive number or 'scale' or 'auto' (or left out: chosen by "
                            "cross-validation), got 'x'"),
    ("svm", {"folds": 1}, "svm folds (of the C and gamma cross-validation) must be an integer >= 2, got 1"),
    ("rf", {"trees": 0}, "trees must be an integer >= 1, got 0"),
]


@pytest.mark.parametrize("name, options, message", BAD_OPTIONS)
def test_a_bad_option_is_named(name, options, message):
    with pytest.raises(hsi.ConfigError, match=f"^{re.escape(message)}$"):
        hsi.build_model(name, bands=15, n_classes=4, patch_size=9, **options)


def test_good_options_reach_the_model():
    svm = hsi.build_model("svm", bands=15, n_classes=4, gamma="auto", C=10, folds=2)
    assert (svm.gamma_option, svm.C, svm.folds) == ("auto", 10, 2)
    assert hsi.build_model("rf", bands=15, n_classes=4, trees=5).trees == 5
    fcn = hsi.build_model("fcn8s", bands=15, n_classes=4, widths=[8, 16, 32], dropout=0.0)
    assert fcn.encoder.widths == (8, 16, 32) and [m.out_channels for m in fcn.skip_scores] == [4, 4]
