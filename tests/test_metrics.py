"""Metrics against hand-computed values and scikit-learn; reports and run summaries."""
import json
import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from hsi.errors import ConfigError
from hsi.metrics import best_epoch, evaluate_predictions, format_report, format_summary, summarize_runs

NAMES = ["a", "b", "c", "d"]
#              true: 0 0 0 1 1 2 2 2 2      class 3 ("d") has no test pixel
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
PREDS = np.array([0, 0, 1, 1, 1, 2, 2, 0, 2])


def test_small_example_by_hand():
    m = evaluate_predictions(LABELS, PREDS, NAMES)
    assert m["confusion_matrix"] == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 3, 0], [0, 0, 0, 0]]
    assert m["oa"] == pytest.approx(7 / 9)
    assert m["per_class_accuracy"] == pytest.approx([2 / 3, 1.0, 3 / 4, None])
    assert m["aa"] == pytest.approx((2 / 3 + 1 + 3 / 4) / 3)        # the absent class is not averaged
    # kappa = (po - pe) / (1 - pe); true totals 3,2,4,0, predicted totals 3,3,3,0
    po, pe = 7 / 9, (3 * 3 + 2 * 3 + 4 * 3) / 81
    assert m["kappa"] == pytest.approx((po - pe) / (1 - pe)) and m["kappa"] == pytest.approx(2 / 3)
    assert m["support"] == [3, 2, 4, 0] and m["n_test"] == 9
    assert m["precision"] == pytest.approx([2 / 3, 2 / 3, 1.0, 0.0])
    assert m["recall"][:3] == pytest.approx([2 / 3, 1.0, 3 / 4])
    assert m["class_names"] == NAMES


def test_result_is_plain_json_without_nan():
    m = evaluate_predictions(LABELS, PREDS, NAMES)
    text = json.dumps(m, allow_nan=False)          # raises on NaN / numpy types
    assert json.loads(text) == m
    assert all(type(v) is float for v in (m["oa"], m["aa"], m["kappa"]))
    assert type(m["n_test"]) is int and all(type(v) is int for row in m["confusion_matrix"] for v in row)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_scikit_learn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    k, n = 7, 600
    y = rng.integers(0, k, n)
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))
    m = evaluate_predictions(y, p, [f"c{i}" for i in range(k)])
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, p))
    assert m["confusion_matrix"] == confusion_matrix(y, p, labels=range(k)).tolist()
    assert m["oa"] == pytest.approx(accuracy_score(y, p))
    assert m["aa"] == pytest.approx(balanced_accuracy_score(y, p))
    precision, recall, f1, support = precision_recall_fscore_support(y, p, labels=range(k), zero_division=0)
    np.testing.assert_allclose(m["precision"], precision)
    np.testing.assert_allclose(m["recall"], recall)
    np.testing.assert_allclose(m["per_class_accuracy"], recall)
    np.testing.assert_allclose(m["f1"], f1)
    assert m["support"] == support.tolist()


def test_absent_class_has_zero_row_and_no_accuracy():
    rng = np.random.default_rng(3)
    y = rng.choice([0, 1, 3], 200)                 # class 2 never in the test set ...
    p = rng.choice([0, 1, 2, 3], 200)              # ... but predicted sometimes
    m = evaluate_predictions(y, p, NAMES)
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (4, 4) and cm[2].sum() == 0 and cm[:, 2].sum() == (p == 2).sum()
    assert m["per_class_accuracy"][2] is None and m["support"][2] == 0
    present = [m["per_class_accuracy"][c] for c in (0, 1, 3)]
    assert m["aa"] == pytest.approx(np.mean(present))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, p))


def test_unlabelled_positions_are_ignored():
    labels = np.concatenate([LABELS, [-1, -1]])
    preds = np.concatenate([PREDS, [3, -1]])
    assert evaluate_predictions(labels, preds, NAMES) == evaluate_predictions(LABELS, PREDS, NAMES)


def test_a_single_class_everywhere_gives_kappa_one_not_nan():
    m = evaluate_predictions([1, 1, 1], [1, 1, 1], NAMES)
    assert (m["oa"], m["aa"], m["kappa"]) == (1.0, 1.0, 1.0)


def test_ground_truth_against_itself_on_indian_pines(indian_pines):
    labels = indian_pines.labels[indian_pines.labels >= 0]
    m = evaluate_predictions(labels, labels, indian_pines.class_names)
    assert (m["oa"], m["aa"], m["kappa"]) == (1.0, 1.0, 1.0)
    assert m["support"] == indian_pines.class_counts().tolist()
    assert np.array_equal(np.diag(m["confusion_matrix"]), indian_pines.class_counts())


@pytest.mark.parametrize("labels, preds, message", [
    ([], [], "empty"),
    ([-1, -1], [0, 1], "empty"),
    ([0, 1, 2], [0, 1], "entries"),
    ([0, 1, 4], [0, 1, 2], "labels holds [4]"),
    ([0, 1, 2], [0, 1, 7], "predictions holds [7]"),
    ([0, 1, 2], [0, -1, 2], "-1"),
    ([0.5, 1], [0, 1], "integer"),
    ([[0, 1]], [[0, 1]], "1-D"),
])
def test_bad_inputs_raise_config_error(labels, preds, message):
    with pytest.raises(ConfigError) as info:
        evaluate_predictions(np.array(labels), np.array(preds), NAMES)
    assert message in str(info.value)


def test_empty_class_names_raise():
    with pytest.raises(ConfigError, match="class_names"):
        evaluate_predictions([0], [0], [])


def test_format_report_has_the_cli_strings_and_every_class():
    m = evaluate_predictions(LABELS, PREDS, ["Alfalfa", "Corn-notill", "Buildings-Grass-Trees-Drives", "Oats"])
    text = format_report(m, title="indian_pines / hybridsn")
    assert text.startswith("indian_pines / hybridsn\n")
    assert f"OA {100 * m['oa']:.2f}%" in text and f"AA {100 * m['aa']:.2f}%" in text
    assert f"kappa {m['kappa']:.4f}" in text
    assert "OA 77.78%  AA 80.56%  kappa 0.6667" in text
    for name in m["class_names"]:
        assert name in text
    lines = text.splitlines()
    start = lines.index("Confusion matrix (rows: true class, columns: predicted class)")
    rows = [[int(v) for v in line.split()[1:]] for line in lines[start + 2:start + 6]]
    assert rows == m["confusion_matrix"]
    oats = next(line for line in lines if "Oats" in line)
    assert " - " in oats                           # no recall for a class without test pixels


def test_summarize_runs_matches_numpy():
    rng = np.random.default_rng(7)
    runs = []
    for _ in range(3):
        y = rng.integers(0, 4, 300)
        runs.append(evaluate_predictions(y, np.where(rng.random(300) < 0.8, y, rng.integers(0, 4, 300)), NAMES))
    s = summarize_runs(runs)
    assert s["n_runs"] == 3 and s["class_names"] == NAMES
    for key in ("oa", "aa", "kappa"):
        values = [r[key] for r in runs]
        assert s[key]["values"] == values
        assert s[key]["mean"] == pytest.approx(np.mean(values))
        assert s[key]["std"] == pytest.approx(np.std(values, ddof=1))
    per_class = np.array([r["per_class_accuracy"] for r in runs])
    np.testing.assert_allclose(s["per_class_accuracy"]["mean"], per_class.mean(0))
    np.testing.assert_allclose(s["per_class_accuracy"]["std"], per_class.std(0, ddof=1))
    json.dumps(s, allow_nan=False)


def test_summarize_one_run_and_a_class_never_tested():
    s = summarize_runs([evaluate_predictions(LABELS, PREDS, NAMES)])
    assert s["oa"]["std"] == 0.0 and s["n_runs"] == 1
    assert s["per_class_accuracy"]["mean"][3] is None and s["per_class_accuracy"]["std"][3] is None
    json.dumps(s, allow_nan=False)


def test_summarize_refuses_nothing_or_mixed_classes():
    with pytest.raises(ConfigError, match="empty"):
        summarize_runs([])
    with pytest.raises(ConfigError, match="same classes"):
        summarize_runs([evaluate_predictions(LABELS, PREDS, NAMES),
                        evaluate_predictions(LABELS, PREDS, ["w", "x", "y", "z"])])


def test_format_summary_is_a_markdown_table_with_plus_minus():
    a = evaluate_predictions(LABELS, PREDS, NAMES)
    b = evaluate_predictions(LABELS, LABELS, NAMES)
    s = summarize_runs([a, b])
    text = format_summary(s)
    assert "±" in text and "| OA (%) |" in text and "kappa × 100" in text
    assert f"{100 * s['oa']['mean']:.2f} ± {100 * s['oa']['std']:.2f}" in text
    assert f"{100 * s['kappa']['mean']:.2f} ± {100 * s['kappa']['std']:.2f}" in text
    assert "| 3 | d | - |" in text


def test_best_epoch_is_highest_validation_oa_then_lowest_loss_then_earliest():
    rows = [{"epoch": 1, "train_loss": 0.9, "train_oa": 0.5, "val_loss": 0.50, "val_oa": 0.90},
            {"epoch": 2, "train_loss": 0.5, "train_oa": 0.8, "val_loss": 0.30, "val_oa": 1.00},
            {"epoch": 3, "train_loss": 0.3, "train_oa": 0.9, "val_loss": 0.10, "val_oa": 1.00},
            {"epoch": 4, "train_loss": 0.2, "train_oa": 1.0, "val_loss": 0.10, "val_oa": 1.00},
            {"epoch": 5, "train_loss": 0.1, "train_oa": 1.0, "val_loss": 0.05, "val_oa": 0.99}]
    assert best_epoch(rows) == 3                   # 100 % at epochs 2-4; 3 and 4 tie on loss too: the earlier
    no_val = [{**row, "val_loss": math.nan, "val_oa": math.nan} for row in rows]
    assert best_epoch(no_val) == 5                 # without validation: training OA, ties to the lower loss
