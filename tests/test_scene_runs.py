"""Scene models through the run folder: train, resume, evaluate, predict, with the leakage record."""
import json

import numpy as np
import pytest
import torch

from hsi import ConfigError
from hsi.cli import main
from hsi.config import FitOptions, RunConfig
from hsi.data.splits import Split
from hsi.leakage import window_leakage
from hsi.pipeline import Interrupted, evaluate_run, resume, train

NARROW = {"widths": [8, 8, 8], "context_width": 16}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sub_scene_files(tmp_path_factory, indian_pines):
    """A 64x64 Indian Pines sub-scene (9 classes) as cube and label .npy files."""
    folder = tmp_path_factory.mktemp("ip-sub")
    rows, cols = slice(20, 84), slice(60, 124)
    labels = indian_pines.labels[rows, cols]
    np.save(folder / "cube.npy", indian_pines.cube[rows, cols])
    np.save(folder / "gt.npy", np.where(labels >= 0, indian_pines.label_ids[np.maximum(labels, 0)], 0))
    return folder / "cube.npy", folder / "gt.npy"


def scene_config(files, **changes):
    cube, gt = files
    settings = dict(cube=str(cube), gt=str(gt), model="fcn8s", model_kwargs=NARROW, train_ratio=0.2, pca=10,
                    crop=40, augment=True, fit=FitOptions(epochs=3, lr=1e-2))
    return RunConfig(**{**settings, **changes})


def history_without_time(run_dir):
    lines = (run_dir / "history.csv").read_text().splitlines()
    return [line.rsplit(",", 1)[0] for line in lines]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, sub_scene_files):
    out = tmp_path_factory.mktemp("scene-run") / "run"
    return out, train(scene_config(sub_scene_files), out, progress=False)


def test_scene_run_folder_states_its_leakage(finished_run):
    out, metrics = finished_run
    for name in ("config.json", "split.npz", "best.pt", "last.pt", "history.csv", "metrics.json", "report.txt",
                 "map.png", "map.npy"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    record = config["leakage"]
    split = Split.load(out / "split.npz")
    assert config["model_kind"] == "scene" and record["transductive"] is True
    assert isinstance(record["radius"], int) and record["radius"] > 8
    assert record["test_pixels"] == metrics["n_test"] == (split.test >= 0).sum()
    assert record == {**window_leakage(split, record["radius"]), "pca_saw_test": False, "transductive": True}
    assert metrics["leakage"] == record
    report = (out / "report.txt").read_text()
    assert "transductive" in report and f"{2 * record['radius'] + 1}x{2 * record['radius'] + 1} input" in report
    assert np.load(out / "map.npy").shape == (64, 64)
    assert len((out / "history.csv").read_text().splitlines()) == 4


def test_evaluate_recomputes_the_same_metrics(finished_run):
    out, metrics = finished_run
    assert evaluate_run(out) == metrics


def test_resume_after_interruption_matches_uninterrupted(finished_run, sub_scene_files, tmp_path):
    out, metrics = finished_run

    def stop_after_first_epoch(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        train(scene_config(sub_scene_files), tmp_path / "r", progress=False, on_epoch=stop_after_first_epoch)
    assert resume(tmp_path / "r", progress=False) == metrics
    assert history_without_time(tmp_path / "r") == history_without_time(out)
    best, again = (torch.load(d / "best.pt", weights_only=True)["state_dict"] for d in (out, tmp_path / "r"))
    assert all(torch.equal(best[k], again[k]) for k in best)


def test_predict_writes_the_map_of_a_scene_run(finished_run, tmp_path, capsys):
    out, _ = finished_run
    assert main(["predict", str(out), "--out", str(tmp_path / "m"), "--format", "npy"]) == 0
    assert np.array_equal(np.load(tmp_path / "m.npy"), np.load(out / "map.npy"))


def test_crop_is_checked_against_the_model_kind(sub_scene_files, tmp_path):
    with pytest.raises(ConfigError, match="scene models"):
        train(scene_config(sub_scene_files, model="hybridsn", model_kwargs={}, patch=9, pca=15), tmp_path / "a",
              progress=False)
    with pytest.raises(ConfigError, match="too small"):
        train(scene_config(sub_scene_files, crop=8), tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
