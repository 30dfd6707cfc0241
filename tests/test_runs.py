"""The engine and run folders through the Python API, on a small real setting (a field of Indian Pines)."""
import csv
import json
from dataclasses import asdict

import numpy as np
import pytest
import torch

import hsi
from hsi.data.splits import Split
from hsi.experiments import train_folds, train_many
from hsi.pipeline import Interrupted, evaluate_run, prepare, resume, train

RUN_FILES = {"config.json", "split.npz", "best.pt", "last.pt", "history.csv", "metrics.json", "report.txt",
             "confusion.png", "curves.png", "map.png", "map.npy", "map_rgb.png"}


def history_without_time(run_dir):
    with open(run_dir / "history.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def test_run_folder_holds_every_artefact(trained_run, field):
    out, metrics = trained_run
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["seed"] == 0 and record["pca_fit_scope"] == "train"
    assert record["split"]["mode"] == "random" and set(record["versions"]) >= {"hsi", "torch", "numpy"}
    assert json.loads((out / "metrics.json").read_text())["oa"] == metrics["oa"]
    scene = field.scene
    assert 1 / scene.n_classes < metrics["oa"] <= 1      # 3 short epochs already beat guessing among the classes
    label_map = np.load(out / "map.npy")
    assert label_map.shape == scene.labels.shape and set(np.unique(label_map)) <= set(scene.label_ids.tolist())


def test_checkpoints_load_weights_only_and_hold_what_prediction_needs(trained_run, field):
    out, _ = trained_run
    for name in ("best.pt", "last.pt"):
        payload = torch.load(out / name, weights_only=True)
        assert payload["model"]["name"] == "hybridsn" and payload["patch_size"] == 9
        assert payload["label_ids"] == field.scene.label_ids.tolist() == [2, 8, 10, 11, 14]
        assert len(payload["class_names"]) == 5
        assert {"optimizer", "rng", "history"} <= set(payload["trainer"])
        assert len(payload["preprocess"]["components"]) == 15


def best_by_validation(run_dir):
    """(epoch with the highest validation OA, ties to the lower validation loss; how many epochs share that OA)."""
    scores = [(float(row["val_oa"]), -float(row["val_loss"])) for row in history_without_time(run_dir)]
    best = max(range(len(scores)), key=scores.__getitem__)
    return best + 1, sum(oa == scores[best][0] for oa, _ in scores)


def test_best_checkpoint_has_the_highest_validation_oa(trained_run):
    out, metrics = trained_run
    best_epoch, _ = best_by_validation(out)
    assert torch.load(out / "best.pt", weights_only=True)["epoch"] == best_epoch == metrics["best_epoch"]
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == len(history_without_time(out)) == 3
    assert metrics["val_oa"] == float(history_without_time(out)[best_epoch - 1]["val_oa"])   # beside the test OA
    report = (out / "report.txt").read_text()
    assert f"best epoch: {best_epoch} (validation accuracy {100 * metrics['val_oa']:.2f}%)" in report


def test_validation_oa_ties_go_to_the_lower_validation_loss(trained_run):
    out, metrics = trained_run
    best_epoch, tied = best_by_validation(out)
    assert tied > 1, "the suite's run should reach its best validation OA in more than one epoch"
    first_best = max(float(row["val_oa"]) for row in history_without_time(out))
    first_epoch = 1 + [float(row["val_oa"]) for row in history_without_time(out)].index(first_best)
    assert best_epoch != first_epoch, "the tie should be won by a later epoch with a lower validation loss"
    assert torch.load(out / "best.pt", weights_only=True)["epoch"] == best_epoch == metrics["best_epoch"]


def test_evaluate_recomputes_the_same_metrics(trained_run):
    out, metrics = trained_run
    again = evaluate_run(out)
    for key in ("oa", "aa", "kappa"):
        assert again[key] == metrics[key]


def test_resume_after_interruption_matches_uninterrupted(trained_run, tmp_path, field, field_config):
    """The same seed gives the same run, also when it was interrupted after one epoch and resumed."""
    out, metrics = trained_run

    def stop_after_first_epoch(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        train(field_config(), tmp_path / "r", scene=field.scene, progress=False,
              on_epoch=stop_after_first_epoch)
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=True)["epoch"] == 1
    assert not (tmp_path / "r" / "metrics.json").exists()
    assert history_without_time(tmp_path / "r") == history_without_time(out)[:1]
    assert resume(tmp_path / "r", progress=False) == metrics
    assert history_without_time(tmp_path / "r") == history_without_time(out)


def test_an_augmented_run_resumes_exactly(tmp_path, field, field_config):
    """The window orientations are drawn with the batch order from the run's saved generator, so a run with
    augmentation, interrupted and resumed, repeats the uninterrupted one."""
    config = field_config(epochs=2, augment=True, write_map=False)
    whole = train(config, tmp_path / "whole", scene=field.scene, progress=False)

    def stop_after_first_epoch(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        train(config, tmp_path / "r", scene=field.scene, progress=False, on_epoch=stop_after_first_epoch)
    assert resume(tmp_path / "r", progress=False) == whole
    assert history_without_time(tmp_path / "r") == history_without_time(tmp_path / "whole")


def test_other_seed_other_split(trained_run, field, field_config):
    out, _ = trained_run
    same = prepare(field.scene, field_config()).split
    other = prepare(field.scene, field_config(seed=1)).split
    np.testing.assert_array_equal(same.train, Split.load(out / "split.npz").train)
    assert not np.array_equal(other.train, same.train)


def test_numpy_integer_settings_are_checked_to_plain_ints_and_bools_refused(field_config):
    config = field_config(seed=np.int64(2), pca=np.int32(15))
    config.check()
    assert type(config.seed) is int and type(config.pca) is int
    json.dumps(asdict(config))                                     # what config.json needs
    with pytest.raises(hsi.ConfigError, match="--seed must be an integer >= 0, got True"):
        field_config(seed=True).check()


def test_runs_summary_mean_and_std(tmp_path, field_config):
    summary = train_many(field_config(epochs=1, write_map=False), 2, tmp_path / "many", progress=False)
    folders = sorted(p.name for p in (tmp_path / "many").iterdir() if p.is_dir())
    assert folders == ["seed-0", "seed-1"]
    oas = [json.loads((tmp_path / "many" / f / "metrics.json").read_text())["oa"] for f in folders]
    assert oas[0] != oas[1]
    assert summary["oa"]["mean"] == pytest.approx(np.mean(oas))
    assert summary["oa"]["std"] == pytest.approx(np.std(oas, ddof=1))
    assert "±" in (tmp_path / "many" / "summary.md").read_text()


def test_block_cross_validation_trains_every_fold_and_names_what_each_lacks(tmp_path, field_config):
    out = tmp_path / "cv"
    summary = train_folds(field_config(model="svm", split="blocks", folds=2, write_map=False), out, progress=False)
    metrics = [json.loads((out / f"fold-{fold}" / "metrics.json").read_text()) for fold in (0, 1)]
    assert summary["oa"]["mean"] == pytest.approx(np.mean([m["oa"] for m in metrics]))
    table = (out / "summary.md").read_text()
    for fold, m in enumerate(metrics):
        split = json.loads((out / f"fold-{fold}" / "config.json").read_text())["split"]
        facts = {key: split[key] for key in ("block", "classes_without_training", "classes_without_test")}
        assert m["split"] == facts and summary["folds"][fold] == {"fold": fold, **facts}
        r0, r1, c0, c1 = facts["block"]
        assert f"| {fold} | {r0}:{r1}, {c0}:{c1} | {', '.join(facts['classes_without_training']) or '-'} |" in table
    assert metrics[0]["split"]["block"] != metrics[1]["split"]["block"]


def test_model_modes_train_for_steps_eval_for_validation(field, field_config):
    """Record the module mode at every forward: train mode only inside optimizer steps."""
    from hsi.engine import Trainer
    from hsi.pipeline import build_for

    config = field_config(epochs=1)
    prepared = prepare(field.scene, config)
    model = build_for(config, field.scene)
    modes = []
    model.register_forward_pre_hook(lambda module, args: modes.append(
        (module.training, torch.is_grad_enabled(), torch.is_inference_mode_enabled())))
    trainer = Trainer(model, config.fit, prepared.datasets["train"], prepared.datasets["val"],
                      field.scene.n_classes)
    trainer.run_epoch(progress=False)
    n_train_batches = len(trainer.train_loader)
    assert all(m == (True, True, False) for m in modes[:n_train_batches])
    assert modes[n_train_batches:] and all(m == (False, False, True) for m in modes[n_train_batches:])


def test_label_smoothing_is_the_smoothed_cross_entropy_of_the_training_loss(field, field_config):
    """The trainer's loss with --label-smoothing EPS, on a model's logits for real training windows, equals the
    cross-entropy against targets (1 - EPS) one-hot + EPS / K written out by hand; EPS = 1 is refused."""
    from hsi.engine import Trainer
    from hsi.errors import ConfigError
    from hsi.pipeline import build_for

    config = field_config(epochs=1)
    config.fit.label_smoothing = 0.2
    prepared = prepare(field.scene, config)
    model = build_for(config, field.scene)
    trainer = Trainer(model, config.fit, prepared.datasets["train"], prepared.datasets["val"], field.scene.n_classes)
    x, y = next(iter(trainer.train_loader))
    with torch.no_grad():
        logits = model.eval()(x)
        loss, weight = trainer.loss(logits, y)
    k = logits.shape[1]
    target = 0.8 * torch.nn.functional.one_hot(y, k) + 0.2 / k
    expected = -(target * torch.log_softmax(logits, 1)).sum()
    assert weight.item() == len(y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    plain = torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
    assert loss.item() != pytest.approx(plain, rel=1e-3)          # smoothed, not the plain cross-entropy
    config.fit.label_smoothing = 1.0
    with pytest.raises(ConfigError, match="label-smoothing must be in"):
        config.check()
