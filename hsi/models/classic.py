"""Classic pixel classifiers, fitted by scikit-learn and kept as plain tensors: an RBF SVM and a random forest.

Both read one pixel's PCA spectrum: the centre of whatever window the run cuts, so they run through the same
datasets, checkpoints, metrics and full-scene maps as the networks, and their input radius (for leakage) is 0.
``fit`` runs scikit-learn on the training pixels; the fitted estimator is then stored as buffers (support vectors
and dual coefficients; the trees' node arrays), so a checkpoint holds tensors only and loads with
``weights_only=True``. ``forward`` recomputes scikit-learn's own outputs from those buffers: the SVM's one-vs-rest
decision function, the forest's log class probabilities.
"""
from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checks import check_positive, is_whole
from ..errors import ConfigError
from .attention.registry import AttentionOption
from .registry import register_model


class FittedPixelClassifier(nn.Module):
    """Base: a patch model that reads the centre pixel of its window and whose buffers take whatever shapes the
    fitted estimator has."""

    kind = "patch"
    fitted_by = "scikit-learn"       # trained by ``fit`` on all training pixels at once, not by gradient steps
    input_radius = 0                 # reads only the centre pixel of its window

    def __init__(self, bands: int, n_classes: int, patch_size: int, buffers: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.bands, self.n_classes, self.patch_size = bands, n_classes, patch_size
        for name, value in buffers.items():
            self.register_buffer(name, value)
        self.dummy = nn.Parameter(torch.zeros(0), requires_grad=False)   # optimisers and .to() need one

    def _load_from_state_dict(self, state_dict: dict[str, torch.Tensor], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        for name in list(self._buffers):                                   # the fitted sizes come with the weights
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def fitted(self) -> bool:
        return any(buffer.numel() for buffer in self.buffers())

    def spectra(self, x: torch.Tensor) -> torch.Tensor:
        """The centre spectra ``(N, bands)`` float64 of ``(N, 1, bands, p, p)`` windows (or of ``(N, bands)``)."""
        if x.dim() == 5:
            x = x[:, 0, :, x.shape[-2] // 2, x.shape[-1] // 2]
        return x.reshape(len(x), self.bands).double()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            raise ConfigError(f"{type(self).__name__} is not fitted; train it (fit) before predicting")
        return super().__call__(x)


class RBFSVM(FittedPixelClassifier):
    """scikit-learn's ``SVC(kernel="rbf")``; C and γ chosen by stratified cross-validation on the training pixels
    (a class with fewer pixels than folds sits out of some validation folds: expected with 10 % of a rare class, so
    scikit-learn's warning about it is not shown)."""

    def __init__(self, bands: int, n_classes: int, patch_size: int = 1, C: float | None = None,
                 gamma: float | str | None = None, folds: int = 3) -> None:
        empty = torch.zeros(0, dtype=torch.float64)
        super().__init__(bands, n_classes, patch_size, {"support_vectors": empty.reshape(0, bands), "dual_coef": empty,
                                            "intercept": empty, "n_support": torch.zeros(0, dtype=torch.long),
                                            "gamma": empty, "classes": torch.zeros(0, dtype=torch.long)})
        self.C, self.gamma_option, self.folds = C, gamma, folds

    def fit(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.svm import SVC

        grid = {"C": [self.C] if self.C else [1, 10, 100, 1000],
                "gamma": [self.gamma_option] if self.gamma_option else ["scale", 0.01, 0.1, 1.0]}
        folds = min(self.folds, int(np.bincount(y).max()))
        if len(grid["C"]) * len(grid["gamma"]) > 1 and folds >= 2:
            cv = StratifiedKFold(folds, shuffle=True, random_state=0)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The least populated class in y has only",
                                        category=UserWarning)
                svc = GridSearchCV(SVC(kernel="rbf"), grid, cv=cv).fit(x, y).best_estimator_
        else:
            svc = SVC(kernel="rbf", C=grid["C"][0], gamma=grid["gamma"][0]).fit(x, y)
        f64 = torch.float64
        self.support_vectors = torch.tensor(svc.support_vectors_, dtype=f64)
        self.dual_coef = torch.tensor(svc.dual_coef_, dtype=f64)
        self.intercept = torch.tensor(svc.intercept_, dtype=f64)
        self.n_support = torch.tensor(svc.n_support_, dtype=torch.long)
        self.gamma = torch.tensor([svc._gamma], dtype=f64)
        self.classes = torch.tensor(svc.classes_, dtype=torch.long)
        return {"C": svc.C, "gamma": float(svc._gamma), "support_vectors": int(len(svc.support_vectors_))}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = torch.exp(-self.gamma * torch.cdist(self.spectra(x), self.support_vectors) ** 2)   # (N, S)
        starts = torch.cumsum(self.n_support, 0) - self.n_support
        present = len(self.classes)
        votes = torch.zeros(len(x), present, dtype=torch.float64, device=x.device)
        confidence = torch.zeros_like(votes)
        pair = 0
        for i in range(present):                  # libsvm's one-vs-one pairs, in its order
            si = slice(starts[i], starts[i] + self.n_support[i])
            for j in range(i + 1, present):
                sj = slice(starts[j], starts[j] + self.n_support[j])
                decision = (kernel[:, si] @ self.dual_coef[j - 1, si] + kernel[:, sj] @ self.dual_coef[i, sj]
                            + self.intercept[pair])
                votes[:, i] += decision >= 0
                votes[:, j] += decision < 0
                confidence[:, i] += decision
                confidence[:, j] -= decision
                pair += 1
        scores = votes + confidence / (3 * (confidence.abs() + 1))      # scikit-learn's one-vs-rest shape
        return _spread(scores, self.classes, self.n_classes, floor=-1.0).float()


class RandomForest(FittedPixelClassifier):
    """scikit-learn's ``RandomForestClassifier``; ``forward`` gives the log of its ``predict_proba``.

    The stored buffers are the trees' node arrays, ``(trees, nodes)``. From them ``flatten`` derives one flat node
    table for all trees (not saved: rebuilt after fitting and after loading), numbered so that a node's two children
    are neighbours and a leaf is its own child; ``forward`` then walks every (pixel, tree) pair down one level per
    step with four gathers, setting aside the pairs that reached a leaf whenever a quarter of those left have.
    """

    def __init__(self, bands: int, n_classes: int, patch_size: int = 1, trees: int = 200, seed: int = 0) -> None:
        long, f64 = torch.zeros(0, 0, dtype=torch.long), torch.zeros(0, 0, dtype=torch.float64)
        super().__init__(bands, n_classes, patch_size, {"left": long, "right": long, "feature": long, "threshold": f64,
                                            "leaf_proba": torch.zeros(0, 0, 0, dtype=torch.float64),
                                            "classes": torch.zeros(0, dtype=torch.long)})
        for name, dtype in (("flat_feature", torch.int32), ("flat_threshold", torch.float32),
                            ("flat_child", torch.int32)):
            self.register_buffer(name, torch.zeros(0, dtype=dtype), persistent=False)
        self.register_buffer("flat_proba", torch.zeros(0, 0), persistent=False)
        self.register_load_state_dict_post_hook(_flatten_after_loading)
        self.trees, self.seed = trees, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        from sklearn.ensemble import RandomForestClassifier

        forest = RandomForestClassifier(self.trees, random_state=self.seed, n_jobs=1).fit(x, y)
        nodes = max(tree.tree_.node_count for tree in forest.estimators_)

        def stack(field: str, fill: int, dtype: type) -> torch.Tensor:
            out = np.full((len(forest.estimators_), nodes), fill, dtype=dtype)
            for t, tree in enumerate(forest.estimators_):
                values = getattr(tree.tree_, field)
                out[t, :len(values)] = values
            return torch.from_numpy(out)

        self.left, self.right = stack("children_left", -1, np.int64), stack("children_right", -1, np.int64)
        self.feature, self.threshold = stack("feature", 0, np.int64).clamp(min=0), stack("threshold", 0, np.float64)
        proba = np.zeros((len(forest.estimators_), nodes, len(forest.classes_)))
        for t, tree in enumerate(forest.estimators_):
            values = tree.tree_.value[:, 0, :]
            proba[t, :len(values)] = values / values.sum(axis=1, keepdims=True)
        self.leaf_proba = torch.from_numpy(proba)
        self.classes = torch.tensor(forest.classes_, dtype=torch.long)
        self.flatten()
        return {"trees": self.trees, "nodes": int(nodes)}

    def flatten(self) -> None:
        """Derive the flat node table from the stored ``(trees, nodes)`` arrays: the trees' roots first, then level
        by level each inner node's children side by side, so the walk's next node is ``flat_child + (x > t)``."""
        (trees, nodes), device = self.left.shape, self.left.device
        first = torch.arange(trees, device=device)[:, None] * nodes                  # each tree's first flat id
        left, right = (self.left + first).flatten(), (self.right + first).flatten()
        inner = self.left.flatten() >= 0
        levels, frontier = [], first[:, 0]                           # old flat ids, in the new numbering's order
        while len(frontier):
            levels.append(frontier)
            frontier = frontier[inner[frontier]]
            frontier = torch.stack([left[frontier], right[frontier]], 1).flatten()
        order = torch.cat(levels)
        new = torch.full((trees * nodes,), -1, dtype=torch.long, device=device)
        new[order] = torch.arange(len(order), device=device)
        leaf = ~inner[order]
        child = torch.where(leaf, new[order], new[left[order].clamp(min=0)])
        # scikit-learn compares float32 features with float64 thresholds: x <= t exactly when x <= the largest
        # float32 not above t; a leaf's threshold +inf keeps its pairs on it
        threshold64 = self.threshold.flatten()[order]
        threshold = threshold64.float()
        below = torch.nextafter(threshold, torch.full_like(threshold, -np.inf))
        self.flat_threshold = torch.where(threshold.double() > threshold64, below, threshold).masked_fill(leaf, np.inf)
        self.flat_feature = self.feature.flatten()[order].int()
        self.flat_child = child.int()
        self.flat_proba = self.leaf_proba.reshape(trees * nodes, -1)[order].float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectra = self.spectra(x).float()            # scikit-learn's trees compare float32 features
        n, bands, trees = len(spectra), spectra.shape[1], self.left.shape[0]
        # the roots (flat ids 0 .. trees - 1) are the same for every pixel: their step is one column gather
        right = spectra.index_select(1, self.flat_feature[:trees]) > self.flat_threshold[:trees]
        node = (self.flat_child[:trees] + right).flatten()                   # (pixel, tree) pairs, one level down
        offset = (torch.arange(n, dtype=torch.int32, device=x.device) * bands).repeat_interleave(trees)
        pair = torch.arange(n * trees, device=x.device)
        reached = torch.empty_like(node)
        values = spectra.flatten()
        while len(node):
            child = self.flat_child.index_select(0, node)
            done = child == node                                        # a leaf is its own child
            finished = int(done.count_nonzero())
            if finished and 4 * finished >= len(node):                  # a quarter are at their leaf: set them aside
                reached.index_copy_(0, pair, node)                      # (those not at a leaf are written again later)
                rest = (~done).nonzero().squeeze(1)
                node, child, offset, pair = (t.index_select(0, rest) for t in (node, child, offset, pair))
            feature = self.flat_feature.index_select(0, node).add_(offset)
            node = child.add_(values.index_select(0, feature) > self.flat_threshold.index_select(0, node))
        proba = self.flat_proba.index_select(0, reached).view(n, trees, -1).mean(1)     # (N, classes present)
        # a class the forest never predicts here gets 1e-12, not log(0), so losses stay finite; classes absent from
        # training get -inf (probability exactly 0)
        return _spread(proba.clamp_min(1e-12).log(), self.classes, self.n_classes, floor=-torch.inf).float()


def _flatten_after_loading(module: RandomForest, incompatible_keys: object) -> None:
    if module.left.numel():
        module.flatten()


def _spread(scores: torch.Tensor, classes: torch.Tensor, n_classes: int, floor: float) -> torch.Tensor:
    """Scores of the classes present in training placed at their class index; absent classes get ``floor``."""
    out = torch.full((len(scores), n_classes), floor, dtype=scores.dtype, device=scores.device)
    out[:, classes] = scores
    return out


@register_model(RBFSVM, paper="Melgani and Bruzzone, IEEE TGRS 2004")
def svm(*, bands: int, n_classes: int, patch_size: int = 1, attention: AttentionOption = None, C: float | None = None,
        gamma: float | str | None = None, folds: int = 3) -> RBFSVM:
    """RBF SVM on single-pixel spectra, C and γ by cross-validation on the training pixels."""
    _check_pixel_input("svm", attention)
    for name, value, words in (("C", C, ()), ("gamma", gamma, ("scale", "auto"))):
        if value is None or value in words:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
            raise ConfigError(f"svm {name} must be a positive number{''.join(f' or {w!r}' for w in words)} (or left "
                              f"out: chosen by cross-validation), got {value!r}")
    if not is_whole(folds, 2):
        raise ConfigError(f"svm folds (of the C and gamma cross-validation) must be an integer >= 2, got {folds!r}")
    return RBFSVM(bands, n_classes, patch_size, C=C, gamma=gamma, folds=folds)


@register_model(RandomForest, paper="Breiman, Machine Learning 2001")
def rf(*, bands: int, n_classes: int, patch_size: int = 1, attention: AttentionOption = None, trees: int = 200,
       seed: int = 0) -> RandomForest:
    """Random forest on single-pixel spectra."""
    _check_pixel_input("rf", attention)
    return RandomForest(bands, n_classes, patch_size, trees=check_positive("trees", trees), seed=seed)


def _check_pixel_input(name: str, attention: AttentionOption) -> None:
    if attention is not None and attention != "none":
        raise ConfigError(f"{name} has no attention slot, got attention={attention!r}")
