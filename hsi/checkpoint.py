"""Checkpoints: plain tensors, numbers, strings, lists and dicts, read back with ``weights_only=True``.

A checkpoint carries everything needed to rebuild the model and apply it to a scene file (model name and
keyword arguments, weights, the fitted PCA, patch size, padding, class names, label ids, palette) and,
for resuming, the optimizer, scheduler, epoch, early-stopping and RNG states.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import torch
from torch import nn

from .atomic import atomic_path
from .data.mapped import Cube
from .data.preprocess import Reducer
from .data.scenes import Scene
from .errors import CheckpointError

FORMAT = "hsi-checkpoint/1"


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    """Write ``payload`` atomically (temporary file in the same directory, then rename). A failed write (a full
    disk) is the OSError it is, not torch's ``RuntimeError: [enforce fail at inline_container.cc] unexpected
    pos``."""
    with atomic_path(path) as tmp, open(tmp, "wb", buffering=0) as f:
        sink = _WholeWrites(f)
        try:
            torch.save({"format": FORMAT, **payload}, cast(IO[bytes], sink))   # torch calls only write and flush
        except RuntimeError:
            if sink.error is not None:          # torch's writer reports the failed write as a position mismatch
                raise sink.error from None
            raise


class _WholeWrites:
    """A file torch writes into: every write complete (a short one is retried, so a full disk raises), the
    OSError kept for ``save_checkpoint``."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        view, done = memoryview(data).cast("B"), 0
        try:
            while done < len(view):
                done += self.f.write(view[done:])
        except OSError as exc:
            self.error = exc
            raise
        return done

    def flush(self) -> None:
        self.f.flush()


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint without running any code stored in it; refuse anything else with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc) or "weights_only" in str(exc).lower().replace(" ", "_"):
            found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
            raise CheckpointError(f"{path}: refused to load: the file holds pickled Python objects"
                                  f"{f' ({found.group(1)})' if found else ''}, not plain tensors and numbers, and "
                                  f"loading it could run any code; hsi reads the checkpoints hsi train writes: "
                                  f"retrain, or ask whoever sent it for one (never load a file you did not make "
                                  f"with torch.load(weights_only=False))") from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"{path}: corrupted checkpoint ({first})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: corrupted or truncated checkpoint ({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an hsi checkpoint (expected a file written by hsi train)")
    return payload


@dataclass
class TrainedModel:
    """A model in eval mode with everything needed to apply it to a new scene."""

    model: torch.nn.Module
    reducer: Reducer | None      # None: the scene is fed as it is (already reduced to the model's bands)
    patch_size: int
    padding: str
    class_names: list
    label_ids: np.ndarray
    palette: np.ndarray
    bands_in: int
    name: str = ""               # the registry name ("resnet18"); a bare model's class name by default

    def __post_init__(self) -> None:
        self.name = self.name or type(self.model).__name__

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path | dict[str, Any]) -> TrainedModel:
        """Rebuild from a checkpoint path or an already loaded checkpoint dict."""
        from .models import build_model

        payload = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
        try:
            model = build_model(payload["model"]["name"], **payload["model"]["kwargs"])
            model.load_state_dict(payload["state_dict"])
            reducer = Reducer.from_dict(payload["preprocess"])
            return cls(model.eval(), reducer, int(payload["patch_size"]), payload["padding"],
                       list(payload["class_names"]), np.asarray(payload["label_ids"], dtype=np.int64),
                       np.asarray(payload["palette"], dtype=np.uint8), int(payload["bands_in"]),
                       payload["model"]["name"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint is incomplete or does not match its model ({exc})") from None

    @classmethod
    def from_model(cls, model: nn.Module, padding: str = "zero") -> TrainedModel:
        """Wrap a bare model (``bands`` and ``patch_size`` attributes) that takes scenes as they are."""
        from .data.registry import palette_for

        if not all(hasattr(model, name) for name in ("bands", "patch_size", "n_classes")):
            raise CheckpointError(f"{type(model).__name__} has no bands/patch_size/n_classes attributes; "
                                  f"pass a TrainedModel or a checkpoint instead")
        # plain attributes, which torch's stub types as Tensor | Module
        n_classes, patch_size, bands = cast(int, model.n_classes), cast(int, model.patch_size), cast(int, model.bands)
        ids = np.arange(1, n_classes + 1)
        return cls(model, None, patch_size, padding, [f"class {i}" for i in ids], ids, palette_for(ids), bands)

    def reduce(self, cube: Cube) -> np.ndarray:
        """The cube as the model sees it: PCA-reduced float32 (or as it is, without a fitted PCA)."""
        if self.reducer is None:
            return np.asarray(cube, dtype=np.float32)
        return self.reducer.transform(cube)

    def check_cube(self, cube: Cube, name: str = "the cube") -> None:
        """Refuse a cube whose band count differs from the one the model was trained on."""
        if cube.ndim != 3 or cube.shape[2] != self.bands_in:
            raise CheckpointError(f"the model was trained on {self.bands_in} bands but scene {name!r} has "
                                  f"shape {tuple(cube.shape)}; expected (rows, cols, {self.bands_in}) from the "
                                  f"same sensor and band set")

    def check_scene(self, scene: Scene) -> None:
        """Refuse a scene whose bands (or labelled classes) differ from the ones the model was trained on."""
        self.check_cube(scene.cube, scene.name)
        if scene.n_classes and not set(scene.label_ids.tolist()) <= set(self.label_ids.tolist()):
            extra = sorted(set(scene.label_ids.tolist()) - set(self.label_ids.tolist()))
            raise CheckpointError(f"scene {scene.name!r} has label ids {extra} that the model was not trained on "
                                  f"(its classes: {self.label_ids.tolist()})")
