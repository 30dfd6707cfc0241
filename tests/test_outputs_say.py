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


def _composite(path):
    """The rgb format's PNG: (its image pixel for pixel, the height of its title band, its Title text)."""
    from PIL import Image

    with Image.open(path) as png:
        pixels, title = np.asarray(png.convert("RGB")), png.text["Title"]
    return pixels, title


def _shown(pixels, shape):
    """The scene's pixels in a composite drawn in square blocks under a title band."""
    scale = pixels.shape[1] // shape[1]
    image = pixels[pixels.shape[0] - scale * shape[0]:]
    return image[::scale, ::scale], pixels[:pixels.shape[0] - scale * shape[0]]


def test_the_composite_shows_the_bands_asked_for_by_wavelength_and_names_them(indian_pines, tmp_path):
    from hsi.outputs import MapJob, write_outputs
    from hsi.viz import false_color

    values = np.ones(indian_pines.labels.shape, np.uint8)
    job = MapJob(values, ["a"], np.array([1]), np.zeros((1, 3), np.uint8), indian_pines,
                 rgb_bands="640nm,550nm,460nm")
    written = write_outputs(job, ["rgb"], tmp_path / "m")
    pixels, title = _composite(written["rgb"])
    bands = [int(np.argmin(np.abs(indian_pines.wavelengths - nm))) for nm in (640, 550, 460)]
    shown, band = _shown(pixels, values.shape)
    expected = np.round(false_color(indian_pines.cube, bands=bands) * 255).astype(np.uint8)
    np.testing.assert_array_equal(shown, expected)
    nm = [f"{indian_pines.wavelengths[b]:.0f} nm" for b in bands]
    assert title == (f"indian_pines: false colour (bands counted from 0)\nR band {bands[0]} ({nm[0]}), "
                     f"G band {bands[1]} ({nm[1]}), B band {bands[2]} ({nm[2]})")
    assert (band < 128).any() and (band == 255).mean() > 0.8          # the title is drawn above the image
    default = write_outputs(MapJob(values, ["a"], np.array([1]), np.zeros((1, 3), np.uint8), indian_pines),
                            ["rgb"], tmp_path / "d")
    assert "R band 25 (647 nm), G band 15 (548 nm), B band 7 (469 nm)" in _composite(default["rgb"])[1]


def test_rgb_bands_out_of_range_or_by_wavelength_without_wavelengths_stop_a_run_before_training(
        field, field_config, tmp_path):
    from hsi.errors import ConfigError

    for bad, message in (("1,2,999", "band 999 is out of range; the scene has 200 bands, counted from 0"),
                         ("640nm,550nm,460nm", "names wavelengths, but the scene records none")):
        with pytest.raises(ConfigError, match=message):
            train(field_config(rgb_bands=bad), tmp_path / "run", scene=field.scene, progress=False)
        assert not (tmp_path / "run").exists()
