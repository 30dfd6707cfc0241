"""Test-set metrics (OA, AA, Cohen's kappa, per-class scores, confusion matrix), reports, run summaries and the
rule that picks the best epoch.

Everything returned is plain JSON: Python ints, floats, lists and ``None`` (never NaN), so a metrics dict can
be written with ``json.dumps`` and compared after reading it back. Accuracies are fractions in [0, 1];
the text reports print them as percentages.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError


def evaluate_predictions(labels: np.ndarray, predictions: np.ndarray, class_names: Sequence[str],
                         label_ids: Sequence[int] | np.ndarray | None = None) -> dict[str, Any]:
    """Score ``predictions`` against ``labels`` (1-D arrays of classes ``0..K-1``, ``K = len(class_names)``).

    ``label_ids`` (K ids, e.g. ``scene.label_ids``) are the numbers the reports print for the classes: the
    ground-truth file's own ids; without them the reports number classes by index 0..K-1.

    Positions whose label is ``-1`` (unlabelled) are ignored, so a flattened ground truth and class map can be
    passed directly. Returns a dict of plain Python values:

    ``oa``                 overall accuracy (correct / tested pixels)
    ``aa``                 average accuracy: mean per-class recall over the classes that have test pixels
    ``kappa``              Cohen's kappa (1.0 when labels and predictions are all one and the same class)
    ``per_class_accuracy`` K recalls; ``None`` for a class without test pixels
    ``precision``, ``recall``, ``f1``  K values from scikit-learn with ``zero_division=0``
    ``support``            K test-pixel counts
    ``confusion_matrix``   K x K counts, rows = true class, columns = predicted class
    ``class_names``, ``label_ids``, ``n_test``
    """
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

    names = _check_class_names(class_names)
    k = len(names)
    ids = list(range(k)) if label_ids is None else [int(i) for i in np.asarray(label_ids).ravel()]
    if len(ids) != k:
        raise ConfigError(f"label_ids has {len(ids)} entries but there are {k} class names; expected one id per "
                          f"class")
    y_true = _as_classes(labels, "labels", k, allow_unlabelled=True)
    y_pred = _as_classes(predictions, "predictions", k, allow_unlabelled=True)
    if y_true.shape != y_pred.shape:
        raise ConfigError(f"labels has {y_true.size} entries but predictions has {y_pred.size}; "
                          f"expected one prediction per label")
    keep = y_true >= 0
    y_true, y_pred = y_true[keep], y_pred[keep]
    if y_true.size == 0:
        raise ConfigError("labels is empty (or only -1, unlabelled); expected at least one test pixel to score")
    if (y_pred < 0).any():
        raise ConfigError(f"predictions holds -1 (no class) for {int((y_pred < 0).sum())} labelled pixel(s); "
                          f"expected a class 0..{k - 1} for every scored pixel")

    classes = list(range(k))
    cm = confusion_matrix(y_true, y_pred, labels=classes)
    support = cm.sum(axis=1)
    correct = np.diag(cm)
    n = int(cm.sum())
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=classes, average=None,
                                                               zero_division=0)
    per_class = [float(correct[c] / support[c]) if support[c] else None for c in classes]
    tested = [a for a in per_class if a is not None]
    if np.unique(np.concatenate([y_true, y_pred])).size == 1:
        kappa = 1.0          # chance agreement is 1: kappa is 0/0; the raters agree on everything
    else:
        kappa = float(cohen_kappa_score(y_true, y_pred, labels=classes))
    return {
        "oa": float(correct.sum() / n),
        "aa": float(np.mean(tested)),
        "kappa": kappa,
        "per_class_accuracy": per_class,
        "precision": [float(v) for v in precision],
        "recall": [float(v) for v in recall],
        "f1": [float(v) for v in f1],
        "support": [int(v) for v in support],
        "confusion_matrix": cm.astype(int).tolist(),
        "class_names": names,
        "label_ids": ids,
        "n_test": n,
    }


def format_report(metrics: dict[str, Any], title: str | None = None) -> str:
    """A plain-text report in the spirit of HybridSN's ``classification_report.txt``.

    Title, one line ``OA 97.12%  AA 95.43%  kappa 0.9672``, a per-class table (precision, recall = the class
    accuracy, F1, support; percentages) and the confusion matrix (rows = true class, columns = predicted).
    Classes are numbered by ``metrics["label_ids"]`` (the ground truth file's ids), else by index.
    """
    names = list(metrics["class_names"])
    k = len(names)
    ids = list(metrics.get("label_ids") or range(k))
    lines = []
    if title:
        lines += [str(title), "=" * len(str(title))]
    lines.append(f"OA {100 * metrics['oa']:.2f}%  AA {100 * metrics['aa']:.2f}%  kappa {metrics['kappa']:.4f}")
    extra = f"test pixels: {metrics['n_test']}  classes: {k}"
    if metrics.get("best_epoch") is not None:
        extra += f"  best epoch: {metrics['best_epoch']}"
    if metrics.get("val_oa") is not None:
        extra += f" (validation accuracy {100 * metrics['val_oa']:.2f}%)"
    lines.append(extra)
    if metrics.get("leakage"):
        from .leakage import format_leakage

        lines.append(format_leakage(metrics["leakage"]))
    split = metrics.get("split") or {}
    for key, what in (("classes_without_training", "no training pixel in this fold (their test pixels count as "
                                                   "errors)"), ("classes_without_test", "no test pixel in this fold")):
        if split.get(key):
            lines.append(f"classes with {what}: {', '.join(split[key])}")
    lines.append("")

    width = max([len("class")] + [len(n) for n in names])
    idx_w = max(2, max(len(str(i)) for i in ids))
    header = f"{'#':>{idx_w}}  {'class':<{width}}  {'precision':>9}  {'recall':>7}  {'f1':>7}  {'support':>7}"
    lines += ["Per-class scores (%; recall = class accuracy)", header, "-" * len(header)]
    acc = metrics.get("per_class_accuracy", [None] * k)
    for c, name in enumerate(names):
        recall = "-" if acc[c] is None else f"{100 * metrics['recall'][c]:.2f}"
        lines.append(f"{ids[c]:>{idx_w}}  {name:<{width}}  {100 * metrics['precision'][c]:>9.2f}  {recall:>7}  "
                     f"{100 * metrics['f1'][c]:>7.2f}  {metrics['support'][c]:>7d}")
    lines.append("-" * len(header))
    lines.append(f"{'':>{idx_w}}  {'overall accuracy':<{width}}  {'':>9}  {100 * metrics['oa']:>7.2f}  {'':>7}  "
                 f"{metrics['n_test']:>7d}")
    lines.append(f"{'':>{idx_w}}  {'average accuracy':<{width}}  {'':>9}  {100 * metrics['aa']:>7.2f}")
    lines.append("")

    cm = np.asarray(metrics["confusion_matrix"], dtype=np.int64).reshape(k, k)
    cell = max(len(str(int(cm.max(initial=0)))), idx_w, 3)
    lines.append("Confusion matrix (rows: true class, columns: predicted class)")
    lines.append(f"{'':>{idx_w}}  " + " ".join(f"{i:>{cell}d}" for i in ids))
    for c in range(k):
        lines.append(f"{ids[c]:>{idx_w}}  " + " ".join(f"{v:>{cell}d}" for v in cm[c]))
    return "\n".join(lines) + "\n"


def summarize_runs(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Mean, sample standard deviation (ddof=1; 0.0 for one run) and values of OA, AA, kappa across runs.

    ``results`` is a list of :func:`evaluate_predictions` dicts for the same classes. Per-class accuracy is
    averaged over the runs in which the class had test pixels (``None`` if it had none in any run).
    """
    results = list(results)
    if not results:
        raise ConfigError("results is empty; expected the metrics of at least one run")
    names = list(results[0]["class_names"])
    for i, r in enumerate(results):
        if list(r["class_names"]) != names:
            raise ConfigError(f"results[{i}] has classes {list(r['class_names'])} but results[0] has {names}; "
                              f"expected runs on the same classes")
    summary: dict[str, Any] = {}
    for key in ("oa", "aa", "kappa"):
        values = [float(r[key]) for r in results]
        mean, std = _mean_std(values)
        summary[key] = {"mean": mean, "std": std, "values": values}
    means, stds = [], []
    for c in range(len(names)):
        mean, std = _mean_std([r["per_class_accuracy"][c] for r in results
                               if r["per_class_accuracy"][c] is not None])
        means.append(mean)
        stds.append(std)
    summary["per_class_accuracy"] = {"mean": means, "std": stds}
    summary["n_runs"] = len(results)
    summary["class_names"] = names
    summary["label_ids"] = list(results[0].get("label_ids") or range(len(names)))
    return summary


CHECKPOINT_RULES = ("val", "train", "last")


def epoch_score(row: Mapping[str, Any], on: str = "val") -> tuple[float, ...]:
    """What the best checkpoint maximises for one history row. ``on="val"``: validation OA, a tie going to the
    lower validation loss (a small validation set often reaches 100 % early), training OA and loss when there is
    no validation; ``"train"``: training OA then loss (the official HybridSN code); ``"last"``: the latest epoch."""
    if on == "last":
        return (row["epoch"],)
    split = "val" if on == "val" and math.isfinite(row["val_oa"]) else "train"
    return row[f"{split}_oa"], -row[f"{split}_loss"]


def best_epoch(history: Iterable[Mapping[str, Any]], on: str = "val") -> int:
    """Epoch number of the history row with the highest :func:`epoch_score`, the earliest on an exact tie."""
    return max(history, key=lambda row: epoch_score(row, on))["epoch"]


def format_folds(folds: Iterable[dict[str, Any]]) -> str:
    """A Markdown table of spatial block folds: each ``{"fold", "block", "classes_without_training",
    "classes_without_test"}`` (``fold`` as it should read, e.g. ``1`` or ``"1 (seed 5)"``)."""
    lines = ["| fold | block (rows, cols) | classes without training pixels | classes without test pixels |",
             "| --- | --- | --- | --- |"]
    for fold in folds:
        r0, r1, c0, c1 = fold["block"]
        lines.append(f"| {fold['fold']} | {r0}:{r1}, {c0}:{c1} | {', '.join(fold['classes_without_training']) or '-'} "
                     f"| {', '.join(fold['classes_without_test']) or '-'} |")
    return "\n".join(lines) + "\n"


def format_summary(summary: dict[str, Any]) -> str:
    """A Markdown table of ``mean ± std`` over runs.

    OA, AA and per-class accuracy are in percent; kappa is multiplied by 100, as papers report it.
    """
    n = summary["n_runs"]

    def cell(mean: float | None, std: float | None, scale: float = 100) -> str:
        return "-" if mean is None or std is None else f"{scale * mean:.2f} ± {scale * std:.2f}"

    lines = [f"Mean ± sample standard deviation over {n} run{'s' if n != 1 else ''} "
             f"(OA, AA and class accuracies in %, kappa × 100).", "",
             "| metric | mean ± std | runs |", "| --- | ---: | --- |"]
    for key, label in (("oa", "OA (%)"), ("aa", "AA (%)"), ("kappa", "kappa × 100")):
        s = summary[key]
        runs = ", ".join(f"{100 * v:.2f}" for v in s["values"])
        lines.append(f"| {label} | {cell(s['mean'], s['std'])} | {runs} |")
    lines += ["", "| # | class | accuracy (%) |", "| ---: | --- | ---: |"]
    per_class = summary["per_class_accuracy"]
    ids = summary.get("label_ids") or range(len(summary["class_names"]))
    for c, (label_id, name) in enumerate(zip(ids, summary["class_names"])):
        lines.append(f"| {label_id} | {_md(name)} | {cell(per_class['mean'][c], per_class['std'][c])} |")
    return "\n".join(lines) + "\n"


def _mean_std(values: Sequence[float]) -> tuple[float, float] | tuple[None, None]:
    if not values:
        return None, None
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std


def _md(text: object) -> str:
    return str(text).replace("|", "\\|")


def _check_class_names(class_names: Iterable[object] | None) -> list[str]:
    if isinstance(class_names, str) or class_names is None:
        raise ConfigError(f"class_names must be a list of names, got {class_names!r}")
    names = [str(n) for n in class_names]
    if not names:
        raise ConfigError("class_names is empty; expected one name per class")
    return names


def _as_classes(values: np.ndarray | Sequence[int], what: str, k: int, allow_unlabelled: bool = False) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(f"{what} must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.size == 0:
        raise ConfigError(f"{what} is empty; expected at least one test pixel to score")
    if not np.issubdtype(arr.dtype, np.integer):
        if arr.dtype.kind not in "fb" or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ConfigError(f"{what} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    low = -1 if allow_unlabelled else 0
    bad = (arr < low) | (arr >= k)
    if bad.any():
        values = sorted(set(arr[bad].tolist()))[:5]
        raise ConfigError(f"{what} holds {values} outside 0..{k - 1}; expected classes 0..{k - 1} "
                          f"for {k} class names" + (" (-1 = unlabelled)" if allow_unlabelled else ""))
    return arr

