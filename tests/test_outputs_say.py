"""What the outputs say (issue 32): logs, warnings, file headers and figures checked against what a researcher
expects to read in them."""
import logging

import numpy as np
import pytest

from hsi.data.splits import make_split
from hsi.pipeline import train


def test_a_fitted_classifier_logs_its_one_fit_not_epoch_1_of_n(field, field_config, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="hsi"):
        train(field_config(model="svm", write_map=False, epochs=30), tmp_path / "svm", scene=field.scene,
              progress="log")
    lines = [r.getMessage() for r in caplog.records]
    assert not [line for line in lines if "epoch 1/" in line or "no dense form" in line], lines
    fitted = [line for line in lines if "fitted by scikit-learn" in line]
    assert len(fitted) == 1 and "training pixels in one pass" in fitted[0] and "val loss" in fitted[0], lines


def test_split_messages_name_classes_by_the_files_ids(indian_pines):
    with pytest.warns(UserWarning) as caught:
        make_split(indian_pines.labels, "fixed", train_per_class=30, seed=0, class_names=indian_pines.class_names,
                   label_ids=indian_pines.label_ids)
    message = str(caught[0].message)
    assert "class 1 (Alfalfa): 23 of 46" in message and "class 0 " not in message, message
