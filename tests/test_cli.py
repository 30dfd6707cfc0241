"""The hsi command end to end, as a user runs it (subprocesses)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

SMALL = ["--pca", "15", "--patch", "9", "--train-ratio", "0.05", "--batch-size", "64", "--device", "cpu"]


def hsi(*args, check=True, **kwargs):
    result = subprocess.run([sys.executable, "-m", "hsi.cli", *map(str, args)], capture_output=True, text=True,
                            timeout=600, **kwargs)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("cli") / "run"
    hsi("train", "--dataset", "salinas_a", "--data-dir", shared_data, "--epochs", 2, "--out", out, *SMALL)
    return out


def test_train_writes_run_folder_and_evaluate_agrees(cli_run):
    names = {p.name for p in cli_run.iterdir()}
    assert {"config.json", "split.npz", "best.pt", "last.pt", "history.csv", "metrics.json", "report.txt",
            "confusion.png", "curves.png", "map.png", "map.npy"} <= names
    metrics = json.loads((cli_run / "metrics.json").read_text())
    printed = hsi("evaluate", cli_run).stdout
    assert f"OA {100 * metrics['oa']:.2f}%" in printed and f"kappa {metrics['kappa']:.4f}" in printed
    assert f"AA {100 * metrics['aa']:.2f}%" in printed and "Lettuce_romaine_7wk" in printed


def test_predict_writes_png_npy_envi(cli_run, tmp_path):
    import spectral

    result = hsi("predict", cli_run, "--format", "png,npy,envi,rgb", "--out", tmp_path / "scene")
    assert {"png", "npy", "envi", "rgb"} == {line.split(":")[0] for line in result.stdout.splitlines()}
    assert (tmp_path / "scene.png").is_file() and (tmp_path / "scene_rgb.png").is_file()
    ids = np.load(tmp_path / "scene.npy")
    image = spectral.open_image(str(tmp_path / "scene.hdr"))
    classes = np.asarray(image.read_band(0))
    checkpoint = torch.load(cli_run / "best.pt", weights_only=True)
    assert image.metadata["class names"] == ["Unclassified", *checkpoint["class_names"]]
    lookup = np.array(image.metadata["class lookup"], dtype=int).reshape(-1, 3)
    np.testing.assert_array_equal(lookup, [[0, 0, 0], *checkpoint["palette"]])
    label_ids = [1, 10, 11, 12, 13, 14]
    np.testing.assert_array_equal(np.array([0] + label_ids)[classes], ids)
    assert set(np.unique(ids)) <= set(label_ids)                  # every pixel classified
    assert ids.shape == (83, 86)


def test_datasets_lists_every_scene(shared_data):
    out = hsi("datasets", "--data-dir", shared_data).stdout
    assert "indian_pines" in out and "tensorly" in out or "local" in out
    assert len(out.splitlines()) == 7


def test_predict_refuses_an_unknown_format_before_predicting(cli_run, tmp_path):
    result = hsi("predict", cli_run, "--format", "png,tiff", "--out", tmp_path / "scene", check=False)
    assert result.returncode == 2 and result.stderr.strip() == \
        "error: unknown map format(s) ['tiff']; expected one or more of png, npy, envi, rgb, tif"
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
