"""The engine and run folders through the Python API, on a small real Salinas-A setting."""
import csv
import json

import numpy as np
import pytest
import torch

from hsi.data.splits import Split
from hsi.engine import FitOptions
from hsi.runs import Interrupted, RunConfig, evaluate_run, resume, train, train_many

RUN_FILES = {"config.json", "split.npz", "best.pt", "last.pt", "history.csv", "metrics.json", "report.txt",
             "confusion.png", "curves.png", "map.png", "map.npy"}


def small_config(shared_data, **changes):
    fit = FitOptions(epochs=changes.pop("epochs", 3), batch_size=64, device="cpu")
    values = dict(dataset="salinas_a", data_dir=str(shared_data), pca=15, patch=9, train_ratio=0.05, seed=0,
                  fit=fit)
    values.update(changes)
    return RunConfig(**values)


def history_without_time(run_dir):
    with open(run_dir / "history.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, shared_data, salinas_a):
    out = tmp_path_factory.mktemp("runs") / "a"
    metrics = train(small_config(shared_data), out, scene=salinas_a, progress=False)
    return out, metrics


def test_run_folder_holds_every_artefact(finished_run):
    out, metrics = finished_run
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["seed"] == 0 and record["pca_fit_scope"] == "train"
    assert record["split"]["mode"] == "random" and set(record["versions"]) >= {"hsi", "torch", "numpy"}
    assert json.loads((out / "metrics.json").read_text())["oa"] == metrics["oa"]
    assert 0.3 < metrics["oa"] <= 1          # 3 short epochs already learn something on 6 classes
    label_map = np.load(out / "map.npy")
    assert label_map.shape == (83, 86) and set(np.unique(label_map)) <= {1, 10, 11, 12, 13, 14}


def test_checkpoints_load_weights_only_and_hold_what_prediction_needs(finished_run):
    out, _ = finished_run
    for name in ("best.pt", "last.pt"):
        payload = torch.load(out / name, weights_only=True)
        assert payload["model"]["name"] == "hybridsn" and payload["patch_size"] == 9
        assert payload["label_ids"] == [1, 10, 11, 12, 13, 14] and len(payload["class_names"]) == 6
        assert {"optimizer", "rng", "history"} <= set(payload["trainer"])
        assert len(payload["preprocess"]["components"]) == 15


def best_by_validation(run_dir):
    """(epoch with the highest validation OA, ties to the lower validation loss; how many epochs share that OA)."""
    scores = [(float(row["val_oa"]), -float(row["val_loss"])) for row in history_without_time(run_dir)]
    best = max(range(len(scores)), key=scores.__getitem__)
    return best + 1, sum(oa == scores[best][0] for oa, _ in scores)


def test_best_checkpoint_has_the_highest_validation_oa(finished_run):
    out, metrics = finished_run
    best_epoch, _ = best_by_validation(out)
    assert torch.load(out / "best.pt", weights_only=True)["epoch"] == best_epoch == metrics["best_epoch"]
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == len(history_without_time(out)) == 3


def test_validation_oa_ties_go_to_the_lower_validation_loss(tmp_path, shared_data, salinas_a):
    out = tmp_path / "tied"
    metrics = train(small_config(shared_data, epochs=8), out, scene=salinas_a, progress=False)
    best_epoch, tied = best_by_validation(out)
    assert tied > 1, "the run should reach 100 % validation OA in more than one epoch"
    assert torch.load(out / "best.pt", weights_only=True)["epoch"] == best_epoch == metrics["best_epoch"]


def test_evaluate_recomputes_the_same_metrics(finished_run):
    out, metrics = finished_run
    again = evaluate_run(out)
    for key in ("oa", "aa", "kappa"):
        assert again[key] == metrics[key]


def test_same_seed_same_results_other_seed_other_split(finished_run, tmp_path, shared_data, salinas_a):
    out, metrics = finished_run
    again = train(small_config(shared_data), tmp_path / "b", scene=salinas_a, progress=False)
    assert again == metrics
    assert history_without_time(tmp_path / "b") == history_without_time(out)
    other = train(small_config(shared_data, seed=1, epochs=1), tmp_path / "c", scene=salinas_a, progress=False)
    assert not np.array_equal(Split.load(tmp_path / "c" / "split.npz").train, Split.load(out / "split.npz").train)
    assert other["oa"] != metrics["oa"]


def test_resume_after_interruption_matches_uninterrupted(finished_run, tmp_path, shared_data, salinas_a):
    out, metrics = finished_run

    def stop_after_first_epoch(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        train(small_config(shared_data), tmp_path / "r", scene=salinas_a, progress=False,
              on_epoch=stop_after_first_epoch)
    assert torch.load(tmp_path / "r" / "last.pt", weights_only=True)["epoch"] == 1
    assert not (tmp_path / "r" / "metrics.json").exists()
    assert resume(tmp_path / "r", progress=False) == metrics
    assert history_without_time(tmp_path / "r") == history_without_time(out)


def test_runs_summary_mean_and_std(tmp_path, shared_data):
    summary = train_many(small_config(shared_data, epochs=1, write_map=False), 3, tmp_path / "many",
                         progress=False)
    folders = sorted(p.name for p in (tmp_path / "many").iterdir() if p.is_dir())
    assert folders == ["seed-0", "seed-1", "seed-2"]
    oas = [json.loads((tmp_path / "many" / f / "metrics.json").read_text())["oa"] for f in folders]
    assert summary["oa"]["mean"] == pytest.approx(np.mean(oas))
    assert summary["oa"]["std"] == pytest.approx(np.std(oas, ddof=1))
    assert "±" in (tmp_path / "many" / "summary.md").read_text()


def test_model_modes_train_for_steps_eval_for_validation(shared_data, salinas_a, tmp_path):
    """Record the module mode at every forward: train mode only inside optimizer steps."""
    from hsi.engine import Trainer
    from hsi.runs import build_for, prepare

    config = small_config(shared_data, epochs=1)
    prepared = prepare(salinas_a, config)
    model = build_for(config, salinas_a)
    modes = []
    model.register_forward_pre_hook(lambda module, args: modes.append(
        (module.training, torch.is_grad_enabled(), torch.is_inference_mode_enabled())))
    trainer = Trainer(model, config.fit, prepared.datasets["train"], prepared.datasets["val"], 6)
    trainer.run_epoch(progress=False)
    n_train_batches = len(trainer.train_loader)
    assert all(m == (True, True, False) for m in modes[:n_train_batches])
    assert modes[n_train_batches:] and all(m == (False, False, True) for m in modes[n_train_batches:])
