"""What the outputs say (issue 32): logs, warnings, file headers and figures checked against what a researcher
expects to read in them."""
import logging

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


@pytest.mark.parametrize("stop_in, says", [(1, "no epoch had completed; the initial state is saved in"),
                                           (2, "epoch 1, the last completed, is saved in")])
def test_the_interrupt_message_says_which_epoch_last_pt_holds(stop_in, says, field, tmp_path, capsys, monkeypatch):
    from hsi import cli
    from hsi.engine import Trainer

    train_one_epoch = Trainer._train_one_epoch

    def ctrl_c_in_epoch(trainer, progress):         # Ctrl-C pressed during epoch ``stop_in``
        if trainer.epoch == stop_in:
            raise KeyboardInterrupt
        return train_one_epoch(trainer, progress)

    monkeypatch.setattr(Trainer, "_train_one_epoch", ctrl_c_in_epoch)
    code = cli.main(["train", "--cube", str(field.cube), "--gt", str(field.gt), "--pca", "15", "--patch", "9",
                     "--epochs", "3", "--device", "cpu", "--no-map", "-q", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_INTERRUPTED and says in err and "resume with: hsi train --resume" in err, err
    assert ("last completed epoch" not in err) and str(tmp_path / "run") in err


def test_the_api_writes_plain_lines_not_tqdm_bars_into_a_redirected_stderr(field, field_config, tmp_path, capsys,
                                                                            caplog):
    with caplog.at_level(logging.INFO, logger="hsi"):
        train(field_config(epochs=1, write_map=False), tmp_path / "run", scene=field.scene, progress=True)
    err = capsys.readouterr().err                   # stderr is captured here: no terminal
    assert "\r" not in err and "batch/s" not in err and "epoch 1/1:" not in err, err
    assert any("epoch 1/1  batch" in r.getMessage() for r in caplog.records)      # the CLI's plain lines
