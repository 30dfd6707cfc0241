"""The training loop: fit on the train split, choose the checkpoint on validation OA, predict in eval mode."""
from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .activations import ActivationStore
from .config import FitOptions
from .data.patches import PatchDataset
from .data.scene_samples import SceneSamples
from .distributed import ALONE, World, sync_batch_norm
from .errors import ConfigError
from .kinds import Batches, kind_of
from .metrics import epoch_score
from .progress import progress_mode

log = logging.getLogger("hsi")


class FittedAtOnce(Protocol):
    """A model with a ``fitted_by`` attribute (a scikit-learn classifier): fitted on every training spectrum."""

    fitted_by: str

    def spectra(self, x: torch.Tensor) -> torch.Tensor: ...

    def fit(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]: ...


class Trainer:
    """Owns the model, optimizer, scheduler, loader and RNG states, and everything needed to resume.

    Under ``torchrun`` (``here``, a :class:`~hsi.distributed.World` of several processes) the model is wrapped in
    ``DistributedDataParallel``, each process trains on its share of every global batch and the epoch's
    scores are summed over all processes, so every process takes the same decisions (best epoch, early stop).
    """

    def __init__(self, model: nn.Module, options: FitOptions, train_set: PatchDataset | SceneSamples,
                 val_set: PatchDataset | SceneSamples, n_classes: int, seed: int = 0, here: World = ALONE) -> None:
        options.check()
        self.options = options
        self.world = here
        self.device = here.device(options.device)
        self.kind = kind_of(model)
        if here.distributed and getattr(model, "fitted_by", None) is not None:
            raise ConfigError(f"{type(model).__name__} is fitted by {model.fitted_by} in one process; "
                              f"train it without torchrun")
        model = model.to(self.device)
        self.model = sync_batch_norm(model, self.device) if options.sync_bn and here.distributed else model
        self.network = self.model
        if here.distributed:
            # channels-last-3d batches (see to_device) give the first 3-D convolution's (C, 1, D, H, W) weight a
            # gradient whose strides differ from the weight's only along its size-1 dimension: the same layout
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
            self.network = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.n_classes = n_classes
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
        self.scheduler = self._make_scheduler()
        self.amp = options.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        weights = None
        if options.class_weights:
            assert train_set.labels is not None       # a training set is labelled
            weights = inverse_frequency_weights(train_set.labels, n_classes)
        self.loss = PixelLoss(weights, options.label_smoothing).to(self.device)
        # the last 1/32 of the budget stays in memory: the masks and small maps the backward pass reads first;
        # a larger share would sit on top of the step's largest maps (+124 MB at HybridSN's batch 256 for 1/8)
        self.activations = ActivationStore(options.memory_mb * 2**20 // 32)
        self.shuffle = torch.Generator().manual_seed(seed)
        self.train_loader = self._loader(train_set, shuffle=True)
        self.val_loader = self._loader(val_set) if len(val_set) else None
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_score: tuple[float, ...] = (-math.inf,)
        self.best_epoch = 0
        self.stale_epochs = 0
        self._fitted = ""           # what the one fit of a fitted-at-once classifier did, for its log line

    def _make_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler | None:
        if self.options.scheduler == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="max", factor=0.5, patience=5)
        if self.options.scheduler == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=self.options.epochs)
        return None

    def _loader(self, dataset: PatchDataset | SceneSamples, shuffle: bool = False) -> Batches:
        generator = self.shuffle if shuffle else torch.Generator()   # never draws from the global RNG
        return self.kind.loader(dataset, self.options.batch_size, generator, shuffle, self.options.workers,
                                self.device.type == "cuda", here=self.world)

    @property
    def fitted_at_once(self) -> bool:
        """The model is fitted on all training pixels in one call (a scikit-learn classifier), not by steps."""
        return getattr(self.model, "fitted_by", None) is not None

    @property
    def done(self) -> bool:
        if self.fitted_at_once:
            return self.epoch >= 1
        return self.epoch >= self.options.epochs or (
            self.options.patience is not None and self.stale_epochs >= self.options.patience)

    def run_epoch(self, progress: bool | str = True) -> tuple[dict[str, Any], bool]:
        """One pass over the training set in train mode, then validation in eval mode; returns the history row.

        ``progress``: True draws a tqdm bar over the epoch's batches (plain lines when stderr is no terminal,
        :mod:`hsi.progress`), ``"log"`` logs a plain line at every tenth of them (for logs and pipes), False shows
        nothing inside the epoch."""
        start = time.perf_counter()
        self.epoch += 1
        train_loss, train_oa = self._train_one_epoch(progress)
        val_loss, val_oa = self.validate()
        lr = self.optimizer.param_groups[0]["lr"]
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val_oa if self.val_loader else train_oa)
        elif self.scheduler is not None:
            self.scheduler.step()
        row = {"epoch": self.epoch, "train_loss": train_loss, "train_oa": train_oa, "val_loss": val_loss,
               "val_oa": val_oa, "lr": lr, "seconds": round(time.perf_counter() - start, 3)}
        score = epoch_score(row, self.options.checkpoint_on)
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_epoch, self.stale_epochs = score, self.epoch, 0
        else:
            self.stale_epochs += 1
        self.history.append(row)
        validation = f"val loss {val_loss:.4f}  OA {val_oa:.4f}" if self.val_loader else "no validation pixels"
        if self.fitted_at_once:         # one fit, no epochs: the line says what happened
            log.info("%s  train loss %.4f  OA %.4f  |  %s  (%.1fs)", self._fitted, train_loss, train_oa,
                     validation, row["seconds"])
        else:
            log.info("epoch %d/%d  train loss %.4f  OA %.4f  |  %s%s  (%.1fs)", self.epoch, self.options.epochs,
                     train_loss, train_oa, validation, "  *best*" if improved else "", row["seconds"])
        return row, improved

    def _train_one_epoch(self, progress: bool | str) -> tuple[float, float]:
        if self.fitted_at_once:
            return self._fit_at_once()
        self.network.train()
        loss_sum, weight_sum, correct, seen = 0.0, 0.0, 0.0, 0.0   # sums over the processes (float64)
        desc = f"epoch {self.epoch}/{self.options.epochs}"
        progress = progress_mode(progress)
        show = progress is True and self.world.is_main
        bar = tqdm(self.train_loader, desc=desc, leave=False, disable=not show, unit="batch")
        n_batches = len(self.train_loader)
        log_every = max(1, math.ceil(n_batches / 10)) if progress == "log" and self.world.is_main else 0
        for step, (x, y) in enumerate(bar, 1):
            x, y = to_device(x, self.device), y.to(self.device, non_blocking=True)
            labelled = y >= 0
            self.optimizer.zero_grad(set_to_none=True)
            with self.activations, torch.autocast(self.device.type, enabled=self.amp):
                logits = self.network(x)
                loss, weight = self.loss(logits.float(), y)             # summed over this process's pixels
            hits = (logits.argmax(1) == y)[labelled].sum()
            # one all-reduce per step: the global batch's loss weight, loss, hits and pixels
            batch_weight, batch_loss, batch_hits, batch_seen = self.world.sum(
                [weight.item(), loss.item(), hits.item(), labelled.sum().item()])
            # DDP averages gradients over the processes: scaled so, they are those of the global batch's mean
            self.scaler.scale(loss * (self.world.size / max(batch_weight, 1e-12))).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            loss_sum += batch_loss
            weight_sum += batch_weight
            correct += batch_hits
            seen += batch_seen
            bar.set_postfix(loss=f"{loss_sum / max(weight_sum, 1e-12):.4f}", acc=f"{correct / max(seen, 1):.4f}")
            if log_every and (step % log_every == 0 or step == n_batches):
                log.info("%s  batch %d/%d  train loss %.4f  OA %.4f", desc, step, n_batches,
                         loss_sum / max(weight_sum, 1e-12), correct / max(seen, 1))
        self.world.broadcast_buffers(self.model)        # unsynchronised batch norms: evaluate with rank 0's
        return loss_sum / weight_sum, correct / seen

    def _fit_at_once(self) -> tuple[float, float]:
        """Fit the model on every training pixel's spectrum, then score it on them (loss and OA, like an epoch)."""
        model = cast(FittedAtOnce, self.model)      # it has fitted_by (fitted_at_once), so spectra and fit
        spectra, labels = [], []
        for x, y in self.train_loader:
            spectra.append(model.spectra(x).numpy())
            labels.append(y.numpy())
        spectra_all, labels_all = np.concatenate(spectra), np.concatenate(labels)
        fitted = model.fit(spectra_all, labels_all)
        self._fitted = (f"{type(self.model).__name__} fitted by {model.fitted_by} on {len(labels_all)} training "
                        f"pixels in one pass: {fitted}")
        return self.score(self.train_loader)

    def validate(self) -> tuple[float, float]:
        """Loss and OA on the validation set (``nan`` when there is none)."""
        if self.val_loader is None:
            return float("nan"), float("nan")
        return self.score(self.val_loader)

    def score(self, loader: Batches) -> tuple[float, float]:
        """Loss (class-weighted as in training) and OA of the labelled pixels of ``loader``, in eval mode; under
        torchrun each process scores its share and the sums are added up."""
        logits, labels = labelled_pixels(*self.predict_logits(loader))
        loss_sum, weight_sum = self.loss(logits, labels) if len(labels) else (torch.zeros(()),) * 2
        correct = (logits.argmax(1) == labels).sum().item() if len(labels) else 0
        loss_sum, weight_sum, correct, seen = self.world.sum([loss_sum.item(), weight_sum.item(), correct,
                                                              len(labels)])
        return loss_sum / weight_sum, correct / seen

    def release(self) -> None:
        """Free what only training needs (the optimizer's moments and the gradients) before the test pass."""
        self.optimizer.state.clear()
        self.model.zero_grad(set_to_none=True)

    def predict_logits(self, loader: Batches) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and labels of every batch, in eval mode with autograd off."""
        return predict_logits(self.model, loader, self.device, self.amp)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the model weights that a resumed run needs to continue identically."""
        return {"epoch": self.epoch, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "scaler": self.scaler.state_dict(), "history": self.history, "best_epoch": self.best_epoch,
                "stale_epochs": self.stale_epochs,
                "rng": {"torch": torch.get_rng_state(), "shuffle": self.shuffle.get_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                        # under torchrun: every process's own stream (dropout), in rank order
                        "torch_by_rank": self.world.gather(torch.get_rng_state())
                        if self.world.distributed else []}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.history = list(state["history"])
        self.best_epoch = state["best_epoch"]
        if self.best_epoch:
            self.best_score = epoch_score(self.history[self.best_epoch - 1], self.options.checkpoint_on)
        self.stale_epochs = state["stale_epochs"]
        by_rank = state["rng"].get("torch_by_rank") or []
        if len(by_rank) == self.world.size:
            torch.set_rng_state(by_rank[self.world.rank])
        elif self.world.is_main:       # saved by another number of processes: the others keep their own seed
            torch.set_rng_state(state["rng"]["torch"])
        self.shuffle.set_state(state["rng"]["shuffle"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])


IGNORE = -1     # the label of pixels outside a subset in a scene model's label map


def inverse_frequency_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Class weights ``total / (n_classes * count)`` of the training labels (a class without pixels counts 1)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return torch.tensor(counts.sum() / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)


class PixelLoss(nn.Module):
    """The loss of training and of scoring alike: cross-entropy summed over the labelled pixels (label >= 0), each
    weighted by its class weight (or 1), against targets smoothed by ``label_smoothing``. Returns ``(loss sum,
    weight sum)``: the mean loss of a batch, or of a global batch summed over processes, is their ratio."""

    class_weights: torch.Tensor | None      # a buffer

    def __init__(self, class_weights: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_weights)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        class_weights = None if self.class_weights is None else self.class_weights.to(logits.device)
        loss = nn.functional.cross_entropy(logits, labels, weight=class_weights, ignore_index=IGNORE, reduction="sum",
                                           label_smoothing=self.label_smoothing)
        labelled = labels[labels != IGNORE]
        weights = torch.ones(len(labelled), device=labels.device) if class_weights is None else class_weights[labelled]
        return loss, weights.sum()


def labelled_pixels(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits ``(n, K)`` and classes ``(n,)`` of the labelled pixels of a batch: patch logits ``(N, K)`` pass
    as they are, scene logits ``(N, K, H, W)`` with label maps ``(N, H, W)`` are flattened and masked."""
    logits = logits.movedim(1, -1).reshape(-1, logits.shape[1]) if logits.dim() > 2 else logits
    labels = labels.reshape(-1)
    keep = labels != IGNORE
    return logits[keep], labels[keep]


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch on ``device``. On the CPU a one-channel volume ``(N, 1, D, H, W)`` also gets channels-last-3d
    strides (same values): oneDNN then runs the 3-D convolutions in NDHWC, ~15 % faster HybridSN training steps.
    Eval outputs are bit-identical; training differs only in float summation order."""
    x = x.to(device, non_blocking=True)
    if device.type == "cpu" and x.dim() == 5 and x.shape[1] == 1:
        x = x.to(memory_format=torch.channels_last_3d)
    return x


def predict_logits(model: nn.Module, loader: Batches, device: torch.device,
                   amp: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` over ``loader`` in eval mode under ``torch.inference_mode``; return (logits, labels)."""
    model.eval()
    outputs, labels = [], []
    with torch.inference_mode():
        for x, y in loader:
            if not len(x):          # this process's share of a last, small batch under torchrun
                continue
            with torch.autocast(device.type, enabled=amp):
                outputs.append(model(to_device(x, device)).float().cpu())
            labels.append(y)
    if not outputs:
        return torch.empty(0, 0), torch.empty(0, dtype=torch.long)
    return torch.cat(outputs), torch.cat(labels)
