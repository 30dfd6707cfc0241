"""Bad input costs one line; kills and Ctrl-C cost at most one epoch; checkpoints cannot run code."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

SMALL = ["--pca", "15", "--patch", "9", "--train-ratio", "0.15", "--batch-size", "64", "--device", "cpu"]


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "hsi.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.fixture(scope="module")
def crop_files(tmp_path_factory, field):
    """The suite's field of Indian Pines (40x48) as cube/gt .mat files (the files the suite's run was trained on),
    plus damaged variants."""
    d = tmp_path_factory.mktemp("inputs")
    cube = field.scene.cube
    gt = scipy.io.loadmat(field.gt)["gt"]
    assert 7 not in gt
    for name, source in (("cube.mat", field.cube), ("gt.mat", field.gt)):
        (d / name).write_bytes(source.read_bytes())
    data = (d / "cube.mat").read_bytes()
    (d / "truncated.mat").write_bytes(data[: len(data) // 3])
    scipy.io.savemat(d / "flat.mat", {"flat": cube[:, :, 0]})
    scipy.io.savemat(d / "two.mat", {"a": cube, "b": cube})
    scipy.io.savemat(d / "gt_small.mat", {"gt": gt[:-2]})
    scipy.io.savemat(d / "nan.mat", {"cube": np.where(cube > np.median(cube), np.nan, cube)})
    scipy.io.savemat(d / "gt_negative.mat", {"gt": gt.astype(np.int16) - 2})
    lonely = gt.copy()
    lonely[0, 0] = 7                       # a class with a single pixel: no split can train and test it
    scipy.io.savemat(d / "gt_lonely.mat", {"gt": lonely})
    scipy.io.savemat(d / "gt_one.mat", {"gt": np.where(gt > 0, 11, 0).astype(gt.dtype)})     # one class only
    return d


def train_args(d, cube="cube.mat", gt="gt.mat", *extra):
    return ["train", "--cube", d / cube, "--gt", d / gt, "--epochs", 1, *SMALL, *extra]


BAD_TRAIN = {
    "missing cube": (lambda d: train_args(d, "nope.mat"), "file not found"),
    "truncated mat": (lambda d: train_args(d, "truncated.mat"), "unreadable or truncated"),
    "no 3-D array": (lambda d: train_args(d, "flat.mat"), "no 3-D numeric array"),
    "ambiguous keys": (lambda d: train_args(d, "two.mat"), "several arrays could be the cube: ['a', 'b']"),
    "shape mismatch": (lambda d: train_args(d, "cube.mat", "gt_small.mat"), "label map is 38x48 but the cube"),
    "nan in cube": (lambda d: train_args(d, "nan.mat"), "NaN or Inf"),
    "negative labels": (lambda d: train_args(d, "cube.mat", "gt_negative.mat"), "negative labels"),
    "class left empty by split": (lambda d: train_args(d, "cube.mat", "gt_lonely.mat", "--split", "disjoint"),
                                  "no training pixel for class(es) class 7"),
    "even patch": (lambda d: train_args(d, "cube.mat", "gt.mat", "--patch", 10), "positive odd number, got 10"),
    "too large patch": (lambda d: train_args(d, "cube.mat", "gt.mat", "--patch", 81), "too large"),
    "too few pixels": (lambda d: train_args(d, "cube.mat", "gt_lonely.mat"), "too few"),
    # svm crashed in scikit-learn after writing config.json, HybridSN scored "OA 100 %" on its one class
    "one class (svm)": (lambda d: train_args(d, "cube.mat", "gt_one.mat", "--model", "svm"),
                        "gives training pixels to 1 class(es) (class 11) of the 1 in the ground truth"),
    "one class (hybridsn)": (lambda d: train_args(d, "cube.mat", "gt_one.mat"), "needs at least two classes"),
    "unknown model": (lambda d: train_args(d, "cube.mat", "gt.mat", "--model", "resnet"), "hybridsn_2d3d"),
    "unknown attention": (lambda d: train_args(d, "cube.mat", "gt.mat", "--attention", "magic"), "cbam"),
    "unknown dataset": (lambda d: ["train", "--dataset", "indian_pine", *SMALL], "known datasets: indian_pines"),
    "pca above bands": (lambda d: train_args(d, "cube.mat", "gt.mat", "--pca", 300), "band count 200"),
    "patch below model minimum": (lambda d: train_args(d, "cube.mat", "gt.mat", "--patch", 5), "at least"),
}


def assert_one_line_error(result, expected):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("case", BAD_TRAIN)
def test_bad_train_input_is_one_line_exit_2_nothing_written(crop_files, tmp_path, case):
    make, expected = BAD_TRAIN[case]
    out = tmp_path / "out"
    result = run_cli(*make(crop_files), "--out", out)
    assert_one_line_error(result, expected)
    assert not out.exists()


def test_unwritable_output_detected_before_training(crop_files, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli(*train_args(crop_files), "--out", blocker / "run")
    assert_one_line_error(result, "cannot be written")
    assert blocker.read_text() == "not a folder"


@pytest.fixture(scope="module")
def run_folder(trained_run):
    """The suite's trained run: trained on crop_files' cube.mat and gt.mat."""
    return trained_run[0]


def _corrupt(run, d):
    (run / "best.pt").write_bytes((run / "best.pt").read_bytes()[:300])


def test_predict_rejects_scene_with_other_bands(run_folder, crop_files, tmp_path, indian_pines):
    scipy.io.savemat(tmp_path / "ip.mat", {"cube": indian_pines.cube[:30, :30, :150]})
    before = set(run_folder.iterdir())
    result = run_cli("predict", run_folder, "--cube", tmp_path / "ip.mat")
    assert_one_line_error(result, "trained on 200 bands but scene")
    assert set(run_folder.iterdir()) == before


def test_predict_rejects_scene_with_other_classes(run_folder, crop_files):
    before = set(run_folder.iterdir())
    result = run_cli("predict", run_folder, "--cube", crop_files / "cube.mat", "--gt", crop_files / "gt_lonely.mat")
    assert_one_line_error(result, "label ids [7]")
    assert set(run_folder.iterdir()) == before


def test_predict_rejects_corrupted_checkpoint(run_folder, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "best.pt"):
        (broken / name).write_bytes((run_folder / name).read_bytes())
    _corrupt(broken, None)
    result = run_cli("predict", broken)
    assert_one_line_error(result, "corrupted")
    assert {p.name for p in broken.iterdir()} == {"config.json", "best.pt"}


class _Payload:
    """Unpickling this object would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (Path(self.marker),)


def test_pickled_object_checkpoint_is_refused_and_not_executed(run_folder, tmp_path):
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "config.json").write_bytes((run_folder / "config.json").read_bytes())
    marker = tmp_path / "pwned"
    payload = torch.load(run_folder / "best.pt", weights_only=True)
    payload["extra"] = _Payload(marker)
    torch.save(payload, evil / "best.pt")
    result = run_cli("predict", evil)
    assert_one_line_error(result, "refused to load")
    assert "objects (getattr)" in result.stderr and "hsi train writes" in result.stderr     # named, advice
    assert "can still be loaded" not in result.stderr     # torch's advice: load it with weights_only=False
    assert not marker.exists()


def _start_training(d, out, epochs):
    args = ["train", "--cube", d / "cube.mat", "--gt", d / "gt.mat", "--epochs", epochs, "--out", out, "--no-map",
            *SMALL]
    # Ctrl-C as in a terminal even when the suite itself runs in the background (where SIGINT is ignored).
    return subprocess.Popen([sys.executable, "-m", "hsi.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_epochs(out, n, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = out / "history.csv"
        if history.is_file() and len(history.read_text().splitlines()) > n:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    raise AssertionError(f"no {n} epochs in {timeout}s")


def _history(out):
    return [line.rsplit(",", 1)[0] for line in (out / "history.csv").read_text().splitlines()]


def test_resume_after_sigkill_matches_uninterrupted_run(crop_files, tmp_path):
    whole = tmp_path / "whole"
    straight = _start_training(crop_files, whole, 3)
    killed = tmp_path / "killed"
    process = _start_training(crop_files, killed, 3)        # the two runs side by side
    _wait_for_epochs(killed, 1, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert straight.wait(timeout=600) == 0, straight.communicate()
    epoch = torch.load(killed / "last.pt", weights_only=True)["epoch"]
    assert 1 <= epoch < 3 and not (killed / "metrics.json").exists()
    result = run_cli("train", "--resume", killed)
    assert result.returncode == 0, result.stderr
    assert json.loads((killed / "metrics.json").read_text()) == json.loads((whole / "metrics.json").read_text())
    assert _history(killed) == _history(whole)
    assert not [p for p in killed.iterdir() if ".tmp-" in p.name]


def test_sigint_saves_last_and_exits_130(crop_files, tmp_path):
    out = tmp_path / "interrupted"
    process = _start_training(crop_files, out, 50)
    _wait_for_epochs(out, 1, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "Traceback" not in stderr and f"hsi train --resume {out}" in stderr
    payload = torch.load(out / "last.pt", weights_only=True)
    assert payload["epoch"] >= 1 and payload["state_dict"]
