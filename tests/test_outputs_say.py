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


def test_per_class_error_bars_stay_within_0_and_100_percent():
    from hsi.viz import per_class_figure

    fig = per_class_figure({"a": [(0.98, 0.05), (0.02, 0.1), (0.5, 0.1)], "b": [(1.0, 0.0), (None, None), (0.9, 0.3)]},
                           ["x", "y", "z"], label_ids=[1, 2, 3])
    bars = [c.errorbar for c in fig.axes[0].containers if getattr(c, "errorbar", None) is not None]
    ends = np.concatenate([np.asarray(seg)[:, 1] for bar in bars for seg in bar.lines[2][0].get_segments() if len(seg)])
    assert ends.max() <= 100 + 1e-9 and ends.min() >= -1e-9 and np.isclose(ends.max(), 100)


def test_comparison_maps_fade_the_training_pixels_and_carry_the_titles_given(indian_pines):
    from hsi.viz import comparison_maps_figure, label_map_rgb

    split = make_split(indian_pines.labels, "random", train_ratio=0.1, seed=0)
    trained = (split.train >= 0) | (split.val >= 0)
    fig = comparison_maps_figure({"svm: test OA 71.39 %": indian_pines.labels.clip(0)}, indian_pines.labels,
                                 indian_pines.class_names, indian_pines.palette, indian_pines.label_ids,
                                 trained=trained, title="seed 0")
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["ground truth", "svm: test OA 71.39 %"]
    assert fig._suptitle.get_text() == "seed 0"
    shown, plain = np.asarray(panels[1].images[0].get_array()), label_map_rgb(indian_pines.labels.clip(0),
                                                                               indian_pines.palette)
    np.testing.assert_array_equal(shown[~trained], plain[~trained])
    assert (shown[trained].astype(int) > plain[trained]).any(axis=-1).all()        # faded towards white
    assert fig.legends[0].get_texts()[-1].get_text().startswith("faded: training")


def test_the_labelled_pixels_panel_fades_training_pixels_and_scores_only_test_pixels(indian_pines):
    from hsi.viz import class_map_figure, label_map_rgb

    gt = indian_pines.labels
    split = make_split(gt, "random", train_ratio=0.1, seed=0)
    trained = (split.train >= 0) | (split.val >= 0)
    predicted = np.where(trained, (gt + 1) % 16, gt).clip(0)     # wrong on every training pixel, right on the rest
    fig = class_map_figure(predicted, indian_pines.class_names, indian_pines.palette, ground_truth=gt,
                           mask_unlabelled="both", trained=trained)
    panel = [ax for ax in fig.axes if ax.images][1]
    n_test = int(((gt >= 0) & ~trained).sum())
    assert panel.get_title().endswith(f"OA 100.00 % on {n_test:,} test pixels; training/validation faded")
    shown, plain = np.asarray(panel.images[0].get_array()), label_map_rgb(np.where(gt >= 0, predicted, -1),
                                                                           indian_pines.palette)
    test = (gt >= 0) & ~trained
    np.testing.assert_array_equal(shown[test], plain[test])
    assert (shown[trained].astype(int) > plain[trained]).any(axis=-1).all()


def test_predict_png_names_the_model_and_the_test_oa(trained_run, tmp_path, monkeypatch):
    import hsi.outputs
    from hsi import cli

    seen = {}

    def record(job, prefix):
        seen["job"] = job
        return original(job, prefix)

    original = hsi.outputs.FORMATS.registered["png"]
    monkeypatch.setitem(hsi.outputs.FORMATS.registered, "png", record)
    assert cli.main(["predict", str(trained_run[0]), "--format", "png", "--out", str(tmp_path / "m"), "-q"]) == 0
    job = seen["job"]
    assert job.title.endswith(f"({trained_run[0].name}/best.pt)") and "hybridsn" in job.title.lower()
    assert job.trained is not None and job.trained.sum() > 0
    from hsi.viz import class_map_figure

    fig = class_map_figure(job.classes, job.class_names, job.palette, ground_truth=job.ground_truth,
                           mask_unlabelled="both", trained=job.trained)
    assert "test pixels" in [ax for ax in fig.axes if ax.images][1].get_title()
