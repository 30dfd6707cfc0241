"""A run folder stands on its own: config.json records where the scene was read from (paths, sizes, sha256), and
evaluate / predict / resume use that record from any working directory and environment, or say clearly why not."""
import contextlib
import hashlib
import io
import json
import logging
import shutil

import numpy as np
import pytest
import scipy.io

from hsi.cli import main
from hsi.data.scenes import load_recorded, scene_record
from hsi.errors import DataError

SMALL = ["--pca", "15", "--patch", "9", "--train-ratio", "0.05", "--epochs", "1", "--batch-size", "64",
         "--device", "cpu", "--no-map"]
CUBE, GT = "Indian_pines_corrected.mat", "Indian_pines_gt.mat"


def run_cli(*args):
    """``hsi ARGS`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run(tmp_path_factory, indian_pines):
    """``HSI_DATA_DIR=<data> hsi train --dataset indian_pines ...`` on .mat files written from tensorly's arrays;
    returns (run folder, data folder, printed OA line, log messages of the training)."""
    root = tmp_path_factory.mktemp("provenance")
    data = root / "data"
    data.mkdir()
    ground_truth = np.where(indian_pines.labels >= 0, indian_pines.label_ids[indian_pines.labels], 0)
    scipy.io.savemat(data / CUBE, {"indian_pines_corrected": indian_pines.cube})
    scipy.io.savemat(data / GT, {"indian_pines_gt": ground_truth.astype(np.uint8)})
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("hsi")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HSI_DATA_DIR", str(data))
            mp.chdir(root)
            code, printed, _ = run_cli("train", "--dataset", "indian_pines", *SMALL, "--out", root / "R")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert code == 0
    return root / "R", data, printed.split("  (")[0], messages


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Another working directory, without HSI_DATA_DIR."""
    monkeypatch.delenv("HSI_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_config_records_resolved_paths_sizes_and_sha256(run):
    run_dir, data, _, _ = run
    origin = json.loads((run_dir / "config.json").read_text())["scene"]["origin"]
    for role, name in (("cube", CUBE), ("gt", GT)):
        path = data / name
        assert origin[role] == {"path": str(path.resolve()), "size": path.stat().st_size,
                                "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def test_evaluate_elsewhere_prints_the_training_metrics_once(run, elsewhere):
    run_dir, _, trained_line, _ = run
    code, printed, _ = run_cli("evaluate", run_dir)
    assert code == 0
    assert printed.count("OA ") == 1 and trained_line in printed


def test_predict_elsewhere_writes_the_files_own_label_ids(run, elsewhere, indian_pines):
    run_dir = run[0]
    code, _, _ = run_cli("predict", run_dir, "--format", "npy", "--out", elsewhere / "m")
    assert code == 0
    ids = np.load(elsewhere / "m.npy")
    assert set(np.unique(ids).tolist()) <= set(indian_pines.label_ids.tolist())
    assert ids.min() >= 1


def test_a_changed_byte_is_a_clear_error(run, elsewhere):
    run_dir, data, _, _ = run
    path = data / GT
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        code, printed, err = run_cli("evaluate", run_dir)
    finally:
        path.write_bytes(original)
    assert code == 2 and printed == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert str(path.resolve()) in err and "changed since this run was trained" in err


def test_moved_files_name_the_options_and_data_dir_finds_them(run, elsewhere):
    run_dir, data, trained_line, _ = run
    moved = elsewhere / "moved"
    shutil.move(data, moved)
    try:
        code, _, err = run_cli("evaluate", run_dir)
        assert code == 2 and "no longer there" in err
        assert all(option in err for option in ("--data-dir", "--cube", "--gt"))
        code, printed, _ = run_cli("evaluate", run_dir, "--data-dir", moved)
        assert code == 0 and trained_line in printed
        code, printed, _ = run_cli("evaluate", run_dir, "--cube", moved / CUBE, "--gt", moved / GT)
        assert code == 0 and trained_line in printed
    finally:
        shutil.move(moved, data)


def test_data_dir_with_other_data_is_refused(run, elsewhere, indian_pines):
    run_dir = run[0]
    other = elsewhere / "other"
    other.mkdir()
    shutil.copy(run[1] / CUBE, other / CUBE)
    ground_truth = np.where(indian_pines.labels >= 0, indian_pines.label_ids[indian_pines.labels], 0)
    ground_truth[0, 0] = 2 if ground_truth[0, 0] != 2 else 3
    scipy.io.savemat(other / GT, {"indian_pines_gt": ground_truth.astype(np.uint8)})
    code, _, err = run_cli("evaluate", run_dir, "--data-dir", other)
    assert code == 2 and "not the one this run was trained on" in err


def test_tensorly_scene_is_recorded_by_version_and_array_checksum(indian_pines):
    import tensorly

    record = scene_record(indian_pines)
    assert record["tensorly"] == tensorly.__version__ and "cube" not in record
    again = load_recorded(record)
    np.testing.assert_array_equal(again.cube, indian_pines.cube)
    with pytest.raises(DataError, match="not the one this run was trained on"):
        load_recorded({**record, "arrays_sha256": "0" * 64})


def test_cli_logs_progress_lines_inside_an_epoch_when_stderr_is_not_a_terminal(run):
    """The fixture ran the CLI with stderr redirected to a buffer (not a terminal): plain lines, no tqdm bar."""
    steps = [m.split("batch ")[1].split()[0] for m in run[3] if m.startswith("epoch 1/1  batch ")]
    done, total = map(int, steps[-1].split("/"))
    assert len(steps) >= 2 and done == total


def test_report_numbers_classes_by_the_ground_truth_files_ids(run, indian_pines):
    lines = (run[0] / "report.txt").read_text().splitlines()
    rows = [line.split()[0] for line in lines if any(line.split()[1:2] == [n] for n in indian_pines.class_names)]
    assert rows == [str(i) for i in indian_pines.label_ids]
