"""hsi.compare: models side by side on shared splits, leakage beside every score, resumable."""
import csv
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import hsi
import hsi.experiments as comparison
from hsi.cli import main
from hsi.config import FitOptions, RunConfig
from hsi.data.splits import Split, make_split
from hsi.leakage import window_leakage
from hsi.pipeline import Interrupted, train

MODELS = [comparison.ModelSpec("hybridsn"), comparison.ModelSpec("svm", options={"model_kwargs": {"C": 100}}),
          comparison.ModelSpec("fcn8s")]


@pytest.fixture(scope="module")
def crop(indian_pines, tmp_path_factory):
    """A 48x48 Indian Pines sub-scene (10 classes, 1,510 labelled pixels) written to .npy files."""
    folder = tmp_path_factory.mktemp("crop")
    ids = np.where(indian_pines.labels >= 0, indian_pines.label_ids[indian_pines.labels], 0)[8:56, :48]
    np.save(folder / "cube.npy", indian_pines.cube[8:56, :48])
    np.save(folder / "gt.npy", ids.astype(np.uint8))
    return hsi.load_scene(folder / "cube.npy", folder / "gt.npy")


def base_config():
    return RunConfig(pca=15, patch=9, train_ratio=0.3, val_ratio=0.2, seed=5,
                     fit=FitOptions(epochs=2, batch_size=64, device="cpu"))


@pytest.fixture(scope="module")
def compared(crop, tmp_path_factory):
    out = tmp_path_factory.mktemp("comparison") / "a"
    return out, hsi.compare(base_config(), MODELS, out, runs=2, scene=crop)


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_every_model_and_seed_shares_one_split_and_gets_its_leakage(compared):
    out, rows = compared
    assert [(r["model"], r["seed"]) for r in rows] == [(m.label, s) for s in (5, 6) for m in MODELS]
    for row in rows:
        shared = Split.load(out / "splits" / f"seed-{row['seed']}.npz")
        run = Split.load(out / row["run_dir"] / "split.npz")
        for part in ("train", "val", "test"):
            np.testing.assert_array_equal(getattr(run, part), getattr(shared, part))
        record = json.loads((out / row["run_dir"] / "metrics.json").read_text())["leakage"]
        radius = {"hybridsn": 4, "svm": 0}.get(row["model"], record["radius"])
        assert record == {**window_leakage(shared, radius), "pca_saw_test": False,
                          "transductive": row["model"] == "fcn8s"}
        assert row["leakage"] == record["fraction"]
    by_model = {r["model"]: r for r in rows if r["seed"] == 5}
    assert by_model["svm"]["leakage"] == 0                 # a pixel's own spectrum only: nothing leaks
    assert by_model["hybridsn"]["leakage"] > 0.9           # random split: training pixels in most 9x9 windows
    assert by_model["fcn8s"]["leakage"] >= by_model["hybridsn"]["leakage"]
    assert json.loads((out / "svm" / "seed-5" / "config.json").read_text())["model_kind"] == "patch"


def test_results_files_and_figures(compared, crop):
    out, rows = compared
    table = read_rows(out / "results.csv")
    assert len(table) == 6 and {"oa", "leakage", *(f"acc:{n}" for n in crop.class_names)} <= set(table[0])
    for row, line in zip(rows, table):
        assert float(line["oa"]) == row["oa"] and line["model"] == row["model"]
        metrics = json.loads((out / row["run_dir"] / "metrics.json").read_text())
        assert row["val_oa"] == metrics["val_oa"] and float(line["val_oa"]) == metrics["val_oa"]
    timing = read_rows(out / "timing.csv")
    assert all(float(t["train_seconds"]) > 0 and float(t["map_seconds"]) > 0 for t in timing)
    text = (out / "results.md").read_text()
    for spec in MODELS:
        mine = [r["oa"] for r in rows if r["model"] == spec.label]
        assert f"| {spec.label} | 2 | {100 * np.mean(mine):.2f} ± {100 * np.std(mine, ddof=1):.2f} |" in text
        val = [r["val_oa"] for r in rows if r["model"] == spec.label]
        gap = [v - oa for v, oa in zip(val, mine, strict=True)]         # validation − test OA, in points
        assert (f"| {100 * np.mean(val):.2f} ± {100 * np.std(val, ddof=1):.2f} | "
                f"{100 * np.mean(gap):.2f} ± {100 * np.std(gap, ddof=1):.2f} |") in text
    assert "(transductive)" in text and all(str(i) in text for i in crop.label_ids)
    assert (out / "maps.png").stat().st_size > 10_000 and (out / "per_class.png").stat().st_size > 10_000


def test_a_stopped_comparison_resumes_to_the_same_results(compared, crop, tmp_path):
    """A comparison killed during seed 6's hybridsn run (after its first epoch, before fcn8s started) and run
    again, two runs at a time in worker processes (``jobs=2``): finished runs are reused, the stopped one resumed,
    the missing one trained; results.csv is the same as the uninterrupted one-at-a-time comparison's."""
    out, _ = compared
    stopped = tmp_path / "b"
    shutil.copytree(out, stopped, ignore=shutil.ignore_patterns("results.*", "timing.csv", "*.png"))
    for label in ("hybridsn", "fcn8s"):
        shutil.rmtree(stopped / label / "seed-6")
    with pytest.raises(Interrupted):
        train(MODELS[0].config(base_config(), 6), stopped / "hybridsn" / "seed-6", scene=crop,
              split=Split.load(stopped / "splits" / "seed-6.npz"), progress=False,
              on_epoch=lambda row: (_ for _ in ()).throw(KeyboardInterrupt))
    rows = hsi.compare(base_config(), MODELS, stopped, runs=2, scene=crop, jobs=2)
    assert (stopped / "results.csv").read_text() == (out / "results.csv").read_text()
    assert len(rows) == 6 and (stopped / "maps.png").is_file()


def test_the_blocks_split_compares_every_fold_on_shared_fold_splits(crop, tmp_path):
    """Spatial block cross-validation side by side: every model runs every fold of the seed, on the fold's split
    (saved once), and results.md names each fold's block and the classes it cannot train on or test."""
    base = RunConfig(pca=15, patch=9, split="blocks", folds=2, val_ratio=0.2, seed=5, write_map=False,
                     fit=FitOptions(epochs=1, device="cpu"))
    models = [comparison.ModelSpec("svm", options={"model_kwargs": {"C": 100}}), comparison.ModelSpec("rf")]
    rows = hsi.compare(base, models, tmp_path / "cv", runs=1, scene=crop)
    assert [(r["model"], r["seed"], r["fold"]) for r in rows] == [(m, 5, f) for f in (0, 1) for m in ("svm", "rf")]
    text = (tmp_path / "cv" / "results.md").read_text()
    for fold in (0, 1):
        expected = make_split(crop.labels, "blocks", folds=2, fold=fold, patch_size=9, val_ratio=0.2, seed=5,
                              class_names=crop.class_names)
        for run in [tmp_path / "cv" / "splits" / f"seed-5-fold-{fold}.npz",
                    *(tmp_path / "cv" / m / f"seed-5-fold-{fold}" / "split.npz" for m in ("svm", "rf"))]:
            np.testing.assert_array_equal(Split.load(run).test, expected.test)
            np.testing.assert_array_equal(Split.load(run).train, expected.train)
        r0, r1, c0, c1 = expected.info["block"]
        assert (f"| {fold} | {r0}:{r1}, {c0}:{c1} | {', '.join(expected.info['classes_without_training']) or '-'} "
                f"| {', '.join(expected.info['classes_without_test']) or '-'} |") in text
    table = read_rows(tmp_path / "cv" / "results.csv")
    assert [(t["model"], t["seed"], t["fold"]) for t in table] == \
        [(m, "5", str(f)) for f in (0, 1) for m in ("svm", "rf")]
    assert "| svm | 2 |" in text and "mean ± std over seeds and folds" in text


def _compare_cli(field, out):
    args = ["compare", "--cube", field.cube, "--gt", field.gt, "--models", "hybridsn,svm", "--runs", 2, "--seed", 5,
            "--epochs", 4, "--patch", 9, "--pca", 15, "--train-ratio", 0.3, "--device", "cpu", "--out", out]
    return subprocess.Popen([sys.executable, "-m", "hsi.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_the_command_killed_mid_way_and_run_again_ends_as_an_uninterrupted_one(field, tmp_path):
    """``hsi compare`` SIGKILLed during its third run (seed 6's hybridsn, after an epoch) and started again: the
    two finished runs are reused, the stopped one resumed, the last one trained, and results.csv is the one of
    the same command left to finish (both run side by side)."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    straight, process = _compare_cli(field, whole), _compare_cli(field, killed)
    history = killed / "hybridsn" / "seed-6" / "history.csv"
    deadline = time.monotonic() + 300
    while not (history.is_file() and len(history.read_text().splitlines()) > 1):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stdout, stderr = straight.communicate(timeout=600)
    assert straight.returncode == 0, stderr
    assert [line.split("] ")[1].split(":")[0] for line in stderr.splitlines() if "] " in line] == \
        ["hybridsn seed 5", "svm seed 5", "hybridsn seed 6", "svm seed 6"]          # a progress line per run
    assert "| hybridsn | 2 |" in stdout                                               # the printed results.md
    assert not (killed / "results.csv").exists() and not (killed / "hybridsn" / "seed-6" / "metrics.json").exists()
    again = _compare_cli(field, killed)
    _, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    assert (killed / "results.csv").read_text() == (whole / "results.csv").read_text()
    assert not [p for p in killed.rglob("*") if ".tmp-" in p.name]


BAD_COMPARE = {
    "unknown model": (["--models", "hybridsn,nosuch"], "unknown model 'nosuch' in the comparison; known models: "),
    "model twice": (["--models", "svm,svm"], "model labels must differ, got ['svm', 'svm']; a model compared twice"),
    "no models": ([], "give --models NAME,NAME,... or --config EXPERIMENT.toml"),
    "no runs": (["--models", "svm", "--runs", "0"], "--runs must be at least 1, got 0"),
    "config and models": (["--models", "svm", "--config", "exp.toml"], "--config names the scene and the models"),
    "blocks without folds": (["--models", "svm", "--split", "blocks"], "the blocks split needs a number of folds"),
    "folds without blocks": (["--models", "svm", "--folds", "3"],
                             "--folds applies to the blocks split (--split blocks), not to the random split"),
    "negative seed": (["--models", "svm", "--seed", "-1"], "--seed must be an integer >= 0, got -1"),
    "no PCA components": (["--models", "svm", "--pca", "0"], "--pca must be an integer >= 1, got 0"),
    "split impossible on this scene": (["--models", "svm", "--train-per-class", "300"],
                                       "class 2 has 166 labelled pixels, too few for 300 training pixels"),
}


@pytest.mark.parametrize("case", BAD_COMPARE)
def test_bad_compare_input_is_one_line_exit_2_nothing_written(case, field, tmp_path, capsys):
    extra, expected = BAD_COMPARE[case]
    out = tmp_path / "out"
    code = main(["compare", "--cube", str(field.cube), "--gt", str(field.gt), "--out", str(out), *extra])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {expected}"), lines
    assert not out.exists()


def test_another_comparison_in_the_same_folder_is_refused(compared, crop):
    out, _ = compared
    with pytest.raises(hsi.ConfigError, match="holds another comparison"):
        hsi.compare(base_config(), MODELS[:2], out, runs=2, scene=crop)


def test_experiment_file(tmp_path):
    (tmp_path / "exp.toml").write_text('dataset = "indian_pines"\nsplit = "disjoint"\nruns = 3\n'
                                       '[fit]\nepochs = 5\n\n[[models]]\nmodel = "hybridsn"\n\n'
                                       '[[models]]\nmodel = "resnet18"\nlabel = "resnet18-cbam"\nattention = "cbam"\n'
                                       'fit = {epochs = 7}\n')
    base, models, runs, out = comparison.read_experiment(tmp_path / "exp.toml")
    assert (base.dataset, base.split, base.fit.epochs, runs, out) == ("indian_pines", "disjoint", 5, 3, None)
    config = models[1].config(base, seed=2)
    assert (config.model, config.attention, config.fit.epochs, config.seed, config.split) == \
        ("resnet18", "cbam", 7, 2, "disjoint")
    (tmp_path / "bad.toml").write_text('dataset = "indian_pines"\nepoch = 5\n[[models]]\nmodel = "hybridsn"\n')
    with pytest.raises(hsi.ConfigError, match=r"unknown setting\(s\) \['epoch'\]"):
        comparison.read_experiment(tmp_path / "bad.toml")


def test_a_comparison_begun_before_a_setting_existed_is_still_the_same_comparison(tmp_path):
    """experiment.json written before rgb_bands (or fit.label_smoothing) existed: the missing settings are their
    defaults, so the comparison resumes; a setting that differs is still refused."""
    base = RunConfig(dataset="indian_pines")
    experiment = {"base": comparison.asdict(base), "models": [], "seeds": [0]}
    older = json.loads(json.dumps(experiment))
    del older["base"]["rgb_bands"], older["base"]["fit"]["label_smoothing"]
    tmp_path.joinpath("experiment.json").write_text(json.dumps(older))
    comparison._check_out(tmp_path, experiment)
    experiment["base"]["rgb_bands"] = "1,2,3"
    with pytest.raises(hsi.ConfigError, match="holds another comparison"):
        comparison._check_out(tmp_path, experiment)
