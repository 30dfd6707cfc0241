"""The hsi command end to end, as a user runs it (subprocesses)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import torch

SMALL = ["--pca", "15", "--patch", "9", "--train-ratio", "0.15", "--batch-size", "64", "--device", "cpu"]


def hsi(*args, check=True, **kwargs):
    result = subprocess.run([sys.executable, "-m", "hsi.cli", *map(str, args)], capture_output=True, text=True,
                            timeout=600, **kwargs)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_train_writes_run_folder_and_evaluate_agrees(tmp_path, field, indian_pines):
    """A registry scene read from a data folder (here the field of Indian Pines under the registry's file names and
    keys, to keep it small): train one epoch, then evaluate."""
    data = tmp_path / "data"
    data.mkdir()
    scipy.io.savemat(data / "Indian_pines_corrected.mat", {"indian_pines_corrected": field.scene.cube})
    scipy.io.savemat(data / "Indian_pines_gt.mat", {"indian_pines_gt": scipy.io.loadmat(field.gt)["gt"]})
    out = tmp_path / "run"
    trained = hsi("train", "--dataset", "indian_pines", "--data-dir", data, "--epochs", 1, "--out", out, *SMALL)
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "split.npz", "best.pt", "last.pt", "history.csv", "metrics.json", "report.txt",
            "confusion.png", "curves.png", "map.png", "map.npy"} <= names
    assert json.loads((out / "config.json").read_text())["config"]["dataset"] == "indian_pines"
    assert torch.load(out / "best.pt", weights_only=True)["class_names"] == indian_pines.class_names
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"OA {100 * metrics['oa']:.2f}%" in trained.stdout
    printed = hsi("evaluate", out).stdout
    assert f"OA {100 * metrics['oa']:.2f}%" in printed and f"kappa {metrics['kappa']:.4f}" in printed
    assert f"AA {100 * metrics['aa']:.2f}%" in printed and "Soybean-mintill" in printed   # a class of the field


@pytest.fixture(scope="module")
def cli_run(trained_run):
    return trained_run[0]


def test_predict_writes_png_npy_envi(cli_run, tmp_path, field):
    import spectral

    result = hsi("predict", cli_run, "--format", "png,npy,envi,rgb", "--out", tmp_path / "scene")
    assert {"png", "npy", "envi", "rgb"} == {line.split(":")[0] for line in result.stdout.splitlines()}
    assert (tmp_path / "scene.png").is_file() and (tmp_path / "scene_rgb.png").is_file()
    ids = np.load(tmp_path / "scene.npy")
    image = spectral.open_image(str(tmp_path / "scene.hdr"))
    classes = np.asarray(image.read_band(0))
    checkpoint = torch.load(cli_run / "best.pt", weights_only=True)
    assert image.metadata["class names"] == ["Unclassified", *(n if n == f"class {i}" else f"{i} {n}" for i, n in
                                                               zip(checkpoint["label_ids"], checkpoint["class_names"]))]
    lookup = np.array(image.metadata["class lookup"], dtype=int).reshape(-1, 3)
    np.testing.assert_array_equal(lookup, [[0, 0, 0], *checkpoint["palette"]])
    label_ids = checkpoint["label_ids"]
    assert label_ids == field.scene.label_ids.tolist()
    np.testing.assert_array_equal(np.array([0] + label_ids)[classes], ids)
    assert set(np.unique(ids)) <= set(label_ids)                  # every pixel classified
    assert ids.shape == field.scene.labels.shape


def test_predict_draws_the_rgb_bands_asked_for_and_names_them(cli_run, tmp_path, field):
    from PIL import Image

    from hsi.viz import false_color

    hsi("predict", cli_run, "--format", "rgb", "--rgb-bands", "10, 20,30", "--out", tmp_path / "scene")
    with Image.open(tmp_path / "scene_rgb.png") as png:
        pixels, title = np.asarray(png.convert("RGB")), png.text["Title"]
    rows, cols = field.scene.labels.shape
    scale = pixels.shape[1] // cols
    shown = pixels[pixels.shape[0] - scale * rows::scale, ::scale]
    np.testing.assert_array_equal(shown, np.round(false_color(field.scene.cube, bands=(10, 20, 30)) * 255))
    assert title.endswith("\nR band 10, G band 20, B band 30")          # the .mat field records no wavelengths


def test_predict_refuses_bad_rgb_bands_before_predicting(cli_run, tmp_path, capsys):
    from hsi.cli import main

    result = hsi("predict", cli_run, "--format", "png,rgb", "--rgb-bands", "1,2,999", "--out", tmp_path / "m",
                 check=False)
    assert result.returncode == 2 and result.stderr == \
        "error: --rgb-bands '1,2,999': band 999 is out of range; the scene has 200 bands, counted from 0 (0..199)\n"
    for bad in ("1,2", "True"):         # the form, checked in this process (the same main)
        assert main(["predict", str(cli_run), "--rgb-bands", bad, "--out", str(tmp_path / "m")]) == 2
        assert capsys.readouterr().err == (f"error: --rgb-bands expects three band indices counted from 0 (R,G,B, "
                                           f"e.g. 29,19,9) or three wavelengths (e.g. 640nm,550nm,460nm), got "
                                           f"{bad!r}\n")
    assert not list(tmp_path.iterdir())


def test_datasets_lists_every_scene(ip_data_dir):
    from hsi.data.registry import SCENES

    lines = hsi("datasets", "--data-dir", ip_data_dir).stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(SCENES)
    assert str(ip_data_dir) in lines[0]                          # indian_pines: read from the folder given
    assert not any(str(ip_data_dir) in line for line in lines[1:])


def test_predict_refuses_an_unknown_format_before_predicting(cli_run, tmp_path):
    result = hsi("predict", cli_run, "--format", "png,tiff", "--out", tmp_path / "scene", check=False)
    assert result.returncode == 2 and result.stderr.strip() == \
        "error: unknown map format(s) ['tiff']; expected one or more of png, npy, envi, rgb, tif, cog, gpkg"
    assert not list(tmp_path.iterdir())


def test_evaluate_and_predict_refuse_a_folder_that_is_no_run(tmp_path):
    for command in ("evaluate", "predict"):
        result = hsi(command, tmp_path / "nowhere", check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
        assert "nowhere" in result.stderr


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "datasets", "download"])
def test_every_subcommand_has_help(command):
    out = hsi(command, "--help").stdout
    assert "usage: hsi " + command in out
