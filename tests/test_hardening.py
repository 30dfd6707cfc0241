"""Damaged, edited and contended run folders (issue 28): one ``error:`` line and nothing changed, never a traceback
or another run's results."""
import contextlib
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from hsi.cli import main
from hsi.data.preprocess import fit_pca


def run_cli(*args):
    """``hsi ARGS`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def assert_one_error(result, *expected):
    code, printed, err = result
    assert code == 2 and printed == "", (code, printed, err)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the suite's finished run, to damage."""
    copy = tmp_path / "run"
    shutil.copytree(trained_run[0], copy)
    return copy


def edit_config(run_dir, change):
    path = run_dir / "config.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


DAMAGED_CONFIG = {
    "empty": (lambda text: "", "not valid JSON"),
    "truncated": (lambda text: text[: len(text) // 2], "not valid JSON"),
    "a list": (lambda text: "[1, 2]", "expected a JSON object of the run's settings, got list"),
    "fit is text": (lambda text: text.replace('"fit": {', '"fit": "x", "was": {'), "setting 'fit' must be a table"),
    "pca is text": (lambda text: text.replace('"pca": 15', '"pca": "ten"'), "setting 'pca' must be int, got str"),
    "no leakage": (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "leakage"}),
                   "field 'leakage' must be an object as hsi train writes it; it is missing"),
    "scene is a list": (lambda text: json.dumps({**json.loads(text), "scene": []}), "field 'scene'", "got list"),
    "pca is zero": (lambda text: text.replace('"pca": 15', '"pca": 0'), "--pca must be an integer >= 1, got 0"),
}


@pytest.mark.parametrize("case", DAMAGED_CONFIG)
@pytest.mark.parametrize("command", ["evaluate", "resume"])
def test_damaged_config_json_is_one_error_naming_file_and_field(run_copy, case, command):
    """#28 (8): these were JSONDecodeError, TypeError, AttributeError and KeyError tracebacks."""
    damage, *expected = DAMAGED_CONFIG[case]
    path = run_copy / "config.json"
    path.write_text(damage(path.read_text()))
    before = {p.name: p.read_bytes() for p in run_copy.iterdir()}
    args = ("evaluate", run_copy) if command == "evaluate" else ("train", "--resume", run_copy)
    assert_one_error(run_cli(*args), str(path), *expected)
    assert {p.name: p.read_bytes() for p in run_copy.iterdir()} == before


@pytest.fixture
def other_field(tmp_path, field):
    """The suite's field with its ground truth turned upside down: the same bands and label ids, other data."""
    gt = scipy.io.loadmat(field.gt)["gt"][::-1]
    scipy.io.savemat(tmp_path / "other_gt.mat", {"gt": gt})
    shutil.copy(field.cube, tmp_path / "other_cube.mat")
    return tmp_path / "other_cube.mat", tmp_path / "other_gt.mat"


def point_elsewhere(record, cube, gt):
    """What the probe did: forget the recorded files, point the settings at other ones."""
    for role in ("cube", "gt"):
        record["scene"]["origin"].pop(role)
    record["config"].update(cube=str(cube), gt=str(gt))


def test_edited_scene_settings_meet_the_recorded_checksum(run_copy, other_field):
    """#28 (4): with scene.origin's files deleted and the settings pointing at another scene, evaluate printed
    that scene's metrics."""
    edit_config(run_copy, lambda record: point_elsewhere(record, *other_field))
    assert_one_error(run_cli("evaluate", run_copy), str(other_field[0]), "not the one this run was trained on")


def test_deleted_scene_origin_is_refused(run_copy, other_field):
    def forget(record):
        point_elsewhere(record, *other_field)
        del record["scene"]["origin"]

    edit_config(run_copy, forget)
    assert_one_error(run_cli("evaluate", run_copy), "scene.origin.arrays_sha256")


def test_resuming_a_finished_run_changes_nothing(run_copy):
    """#28 (4): --resume of a finished run evaluated it again and rewrote metrics.json, timing.json, the map..."""
    before = {p.name: p.read_bytes() for p in run_copy.iterdir()}
    assert_one_error(run_cli("train", "--resume", run_copy), "is a finished run", "nothing changed")
    assert {p.name: p.read_bytes() for p in run_copy.iterdir()} == before


def test_predict_checks_the_whole_config_first(run_copy, tmp_path):
    """#28 (4): predict read no config.json setting, so an edited one went unnoticed."""
    edit_config(run_copy, lambda record: record["config"].update(padding="mirror-ish"))
    assert_one_error(run_cli("predict", run_copy, "--out", tmp_path / "m"), "setting 'padding' must be one of")
    assert not list(tmp_path.glob("m*"))


BAD_EXPERIMENTS = {
    "label is a number": ('model = "svm"\nlabel = 5', "model label must be text, got int 5"),
    "model is a number": ("model = 5", "model name must be text, got int 5"),
    "fit is text": ('model = "svm"\nfit = "x"', "model 'svm': setting 'fit' must be a table"),
    "model_kwargs is text": ('model = "svm"\nmodel_kwargs = "x"', "setting 'model_kwargs' must be dict, got str"),
    "a 300-character label": (f'model = "svm"\nlabel = "{"a" * 300}"', "is 300 characters long; at most 100"),
    "a fit value is text": ('model = "svm"\nfit = {epochs = "two"}', "setting 'epochs' must be int, got str"),
}


@pytest.mark.parametrize("case", BAD_EXPERIMENTS)
def test_experiment_values_are_checked_before_anything_is_written(tmp_path, field, case):
    """#28 (9): AttributeError / TypeError tracebacks, or ENAMETOOLONG after experiment.json and splits/."""
    table, expected = BAD_EXPERIMENTS[case]
    path = tmp_path / "experiment.toml"
    path.write_text(f'cube = "{field.cube}"\ngt = "{field.gt}"\npca = 15\npatch = 9\nruns = 1\n\n'
                    f'[[models]]\n{table}\n')
    assert_one_error(run_cli("compare", "--config", path, "--out", tmp_path / "out"), str(path), expected)
    assert not (tmp_path / "out").exists()


@contextlib.contextmanager
def held_lock(path):
    """Another process holding an exclusive flock on ``path`` (what a running hsi writer holds) until the block
    ends; written with fcntl directly, not with hsi's code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(path)!r}, os.O_CREAT | os.O_RDWR)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(120)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        yield
    finally:
        holder.kill()
        holder.wait()


TRAIN = ["--pca", "15", "--patch", "9", "--train-ratio", "0.15", "--batch-size", "64", "--device", "cpu",
         "--epochs", "1", "--no-map"]


@pytest.mark.skipif(sys.platform == "win32", reason="the holder uses fcntl")
def test_a_second_train_into_a_claimed_folder_is_one_error(tmp_path, field):
    """#28 (3): two hsi train --out SAME at once both succeeded, one replacing the other's results."""
    out = tmp_path / "run"
    args = ("train", "--cube", field.cube, "--gt", field.gt, *TRAIN, "--out", out)
    with held_lock(out / ".hsi.lock"):
        assert_one_error(run_cli(*args), f"{out} is being written by another hsi process")
        assert [p.name for p in out.iterdir()] == [".hsi.lock"]
    code, printed, _ = run_cli(*args)           # its holder killed: the folder is free (and nothing is left)
    assert code == 0 and "OA " in printed and not (out / ".hsi.lock").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="the holder uses fcntl")
def test_a_second_compare_or_predict_into_a_claimed_output_is_one_error(tmp_path, field, trained_run):
    out = tmp_path / "cmp"
    with held_lock(out / ".hsi.lock"):
        assert_one_error(run_cli("compare", "--cube", field.cube, "--gt", field.gt, *TRAIN, "--models", "svm",
                                 "--runs", "1", "--out", out), f"{out} is being written by another hsi process")
        assert [p.name for p in out.iterdir()] == [".hsi.lock"]
    prefix = tmp_path / "maps" / "m"
    with held_lock(prefix.parent / ".m.lock"):
        assert_one_error(run_cli("predict", trained_run[0], "--out", prefix), f"{prefix} is being written by")
        assert [p.name for p in prefix.parent.iterdir()] == [".m.lock"]


def history_without_time(run_dir):
    lines = (run_dir / "history.csv").read_text().splitlines()
    return [",".join(line.split(",")[:-1]) for line in lines]        # seconds is the last column


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(trained_run, tmp_path):
    """#28 (11): config.json and split.npz written, no last.pt yet: 'not a resumable run folder' and 'not
    empty'. It now resumes from the start and ends as the uninterrupted run."""
    out, metrics = trained_run
    killed = tmp_path / "killed"
    killed.mkdir()
    for name in ("config.json", "split.npz"):
        shutil.copy(out / name, killed / name)
    code, printed, err = run_cli("train", "--resume", killed, "--quiet")
    assert code == 0, err
    assert json.loads((killed / "metrics.json").read_text()) == metrics
    assert history_without_time(killed) == history_without_time(out)


def test_leftovers_of_killed_writers_are_removed_on_the_next_start(trained_run, tmp_path):
    """#28 (12): .last.tmp-*.pt / .best.tmp-*.pt stayed in the run folder after a successful resume, and a
    killed predict's PREFIX_DIR/.map.tmp-*/ (partial map and probability cubes) for good."""
    out = trained_run[0]
    stopped = tmp_path / "stopped"          # trained to its last epoch, killed before its metrics were written
    stopped.mkdir()
    for name in ("config.json", "split.npz", "last.pt", "best.pt", "history.csv"):
        shutil.copy(out / name, stopped / name)
    leftovers = [stopped / ".last.tmp-0badc0de.pt", stopped / ".best.tmp-0badc0de.pt",
                 stopped / ".history.tmp-0badc0de.csv"]
    for path in leftovers:
        path.write_bytes(b"partial")
    (stopped / ".map.tmp-0badc0de").mkdir()
    (stopped / ".map.tmp-0badc0de" / "probs.img").write_bytes(bytes(4096))
    code, _, err = run_cli("train", "--resume", stopped, "--quiet")
    assert code == 0, err
    assert (stopped / "metrics.json").is_file()
    assert not [p.name for p in stopped.iterdir() if ".tmp-" in p.name]
    maps = tmp_path / "maps"
    (maps / ".m.tmp-0badc0de").mkdir(parents=True)
    (maps / ".m.tmp-0badc0de" / "map.img").write_bytes(bytes(4096))
    (maps / ".other.tmp-0badc0de").mkdir()          # another prefix's: not ours to remove
    code, _, err = run_cli("predict", out, "--out", maps / "m", "--format", "npy")
    assert code == 0, err
    assert sorted(p.name for p in maps.iterdir()) == [".other.tmp-0badc0de", "m.npy"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="names the fsynced files through /proc")
def test_atomic_writes_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    """#28 (12): the temporary file is fsynced before it is renamed, and its folder after (else a power loss can
    leave the new name pointing at an empty file)."""
    import os

    from hsi.atomic import write_json_atomic

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source, target):
        events.append(("replace", str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_json_atomic(tmp_path / "metrics.json", {"oa": 1.0})
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    assert ".metrics.tmp-" in events[0][1] and events[1][1] == str(tmp_path / "metrics.json")
    assert events[2][1] == str(tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"oa": 1.0}


def cli_with_file_size_limit(limit, *args):
    """``python -m hsi.cli ARGS`` in a process that may write no file beyond ``limit`` bytes: a write past it
    fails with EFBIG, as a write to a full disk fails with ENOSPC (SIGXFSZ ignored, as the default kills)."""
    import resource
    import signal

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([sys.executable, "-m", "hsi.cli", *map(str, args)], capture_output=True, text=True,
                            timeout=600, preexec_fn=limited)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_a_full_disk_during_training_is_one_error_naming_the_file(tmp_path, field):
    """#28 (10): 'RuntimeError: [enforce fail at inline_container.cc] ... unexpected pos' traceback."""
    out = tmp_path / "run"
    result = cli_with_file_size_limit(512 * 1024, "train", "--cube", field.cube, "--gt", field.gt, *TRAIN,
                                      "--out", out, "--quiet")
    assert_one_error(result, f"{out / 'last.pt'}: File too large", "files written before this one are intact")
    assert json.loads((out / "config.json").read_text())["config"]["pca"] == 15
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "split.npz"]     # no partial checkpoint


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX resource limits")
def test_a_full_disk_during_predict_is_one_error_and_leaves_nothing(tmp_path, trained_run):
    """#28 (10): an OSError traceback; the half-written map must not stay either."""
    result = cli_with_file_size_limit(20_000, "predict", trained_run[0], "--out", tmp_path / "m", "--probs",
                                      "--format", "npy")
    assert_one_error(result, "File too large", "files written before this one are intact")
    assert list(tmp_path.iterdir()) == []


def test_a_cube_without_its_labels_is_one_error_naming_gt(tmp_path, field):
    """#28 also found: --cube without --gt said 'n_classes must be at least 1, got 0'."""
    out = tmp_path / "run"
    assert_one_error(run_cli("train", "--cube", field.cube, *TRAIN, "--out", out), "--gt is missing")
    assert not out.exists()


def test_constant_bands_are_named_in_a_warning_and_stay_finite(indian_pines):
    """#28 also found: an all-zero cube or a constant band trained without a word."""
    cube = indian_pines.cube[:40, :40].astype(np.float32)
    cube[..., 5], cube[..., 9] = 0, 7
    with pytest.warns(UserWarning, match=r"2 band\(s\) constant .*: band 5 at 1.5, band 9 at 1.9$"):
        reducer = fit_pca(cube, 10, standardize=True, whiten=True, wavelengths=np.arange(200) / 10 + 1)
    assert np.isfinite(reducer.transform(cube)).all()
    with pytest.warns(UserWarning, match="every band is constant"):
        fit_pca(np.zeros_like(cube), 10, standardize=True)


def test_pixel_models_train_on_a_scene_smaller_than_the_patch(tmp_path, indian_pines):
    """#28 also found: svm and rf refused a 12 x 12 scene because of the 25 x 25 patch they never read; a model
    that reads windows still gets the check."""
    np.save(tmp_path / "cube.npy", indian_pines.cube[10:22, 30:42])
    labels = indian_pines.labels[10:22, 30:42]
    np.save(tmp_path / "gt.npy", np.where(labels >= 0, indian_pines.label_ids[np.maximum(labels, 0)], 0))
    scene = ("--cube", tmp_path / "cube.npy", "--gt", tmp_path / "gt.npy", "--pca", "15", "--train-ratio", "0.3",
             "--no-map", "-q")
    code, printed, err = run_cli("train", *scene, "--model", "svm", "--out", tmp_path / "svm")
    assert code == 0 and "OA " in printed, err
    assert_one_error(run_cli("train", *scene, "--model", "hybridsn", "--out", tmp_path / "net"),
                     "patch size 25 is too large for a 12x12 scene")
