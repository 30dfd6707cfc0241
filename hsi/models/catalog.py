"""What each registered model is, in one row: its kind, size, limits, how a scene is mapped and its attention slots.

``hsi models`` prints these rows. The limits are the ones declared with :func:`~hsi.models.registry.register_model`
(a test holds each builder to them); kind, mapping, slots and parameter count are read off the model the builder
returns, built on PyTorch's ``meta`` device (shapes without memory: HybridSN-2D3D's 123 M parameters cost nothing).
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

import torch
from torch import nn

from .dense import supports_dense
from .registry import build_model, list_models, model_entry

BANDS, CLASSES = 30, 16      # the size the parameters are counted at
WINDOW = 25                  # ... and the window, for a builder without a default window of its own


@dataclass(frozen=True)
class ModelRow:
    """One model: ``kind`` is ``"patch"``, ``"pixel"`` (a patch model reading only its window's centre) or
    ``"scene"``; ``window`` the window its ``parameters`` are counted at (None for scene models), ``parameters``
    None for a model fitted by scikit-learn (its size comes from the fit)."""

    name: str
    kind: str
    window: int | None
    parameters: int | None
    min_patch: int
    min_bands: int
    mapping: str
    slots: tuple[str, ...]
    summary: str
    paper: str

    @property
    def min_window(self) -> str:
        return "whole scene" if self.kind == "scene" else f"{self.min_patch}×{self.min_patch}"

    @property
    def size(self) -> str:
        if self.parameters is None:
            return "set by the fit"
        return f"{self.parameters:,}" + (f" at {self.window}×{self.window}" if self.window else "")

    @property
    def attention(self) -> str:
        return f"yes: {', '.join(self.slots)}" if self.slots else "no"


def mapping_of(model: nn.Module) -> str:
    """How a scene is mapped with ``model``, by the rules :mod:`hsi.inference` follows."""
    if getattr(model, "kind", "patch") == "scene":
        return "whole scene, tiled"
    if getattr(model, "input_radius", None) == 0:
        return "per pixel"
    return "dense, exact" if supports_dense(model) else "window by window"


def model_row(name: str) -> ModelRow:
    """The row of the registered model ``name`` (an unknown name is a ConfigError listing the known ones)."""
    entry = model_entry(name)
    default = inspect.signature(entry.builder).parameters.get("patch_size")
    window = default.default if default is not None and isinstance(default.default, int) else WINDOW
    with torch.device("meta"):
        model = build_model(name, bands=BANDS, n_classes=CLASSES, patch_size=window)
    scene = getattr(model, "kind", "patch") == "scene"
    pixel = getattr(model, "input_radius", None) == 0
    fitted = getattr(model, "fitted_by", None) is not None
    return ModelRow(name=name, kind="scene" if scene else "pixel" if pixel else "patch",
                    window=None if scene else window, parameters=None if fitted else
                    sum(p.numel() for p in model.parameters()), min_patch=entry.min_patch,
                    min_bands=entry.min_bands, mapping=mapping_of(model), slots=tuple(getattr(model, "slot_names", ())),
                    summary=first_sentence(entry.builder.__doc__ or ""), paper=entry.paper)


def model_rows() -> list[ModelRow]:
    """The rows of every registered model, in :func:`~hsi.models.registry.list_models` order."""
    return [model_row(name) for name in list_models()]


def first_sentence(text: str) -> str:
    """The first sentence of a docstring's first paragraph."""
    paragraph = " ".join(inspect.cleandoc(text).split("\n\n")[0].split())
    return re.split(r"(?<=[.!?])\s+(?=[A-Z`])", paragraph)[0]


COLUMNS = ("model", "kind", "smallest window", "smallest bands", "mapping", "attention slot", "parameters")


def _cells(row: ModelRow, code: bool = False) -> tuple[str, ...]:
    return (f"`{row.name}`" if code else row.name, row.kind, row.min_window, str(row.min_bands), row.mapping,
            row.attention, row.size)


def plain_table(rows: list[ModelRow]) -> str:
    """The rows as aligned plain text, a header first."""
    lines = [COLUMNS, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


def markdown_table(rows: list[ModelRow]) -> str:
    """The rows as a markdown table."""
    lines = [COLUMNS, ("---",) * len(COLUMNS), *(_cells(row, code=True) for row in rows)]
    return "\n".join(f"| {' | '.join(line)} |" for line in lines)


def details(row: ModelRow) -> str:
    """One model in detail: what it is, the paper it follows, its limits, size, mapping and slots."""
    window = "the whole scene (any size)" if row.kind == "scene" else f"odd, at least {row.min_patch}×{row.min_patch}"
    return "\n".join([
        f"{row.name}: {row.summary}",
        f"paper:       {row.paper or '-'}",
        f"kind:        {row.kind}",
        f"window:      {window}",
        f"bands:       at least {row.min_bands} (--pca)",
        f"parameters:  {row.size} ({BANDS} bands, {CLASSES} classes)",
        f"mapping:     {row.mapping}",
        f"attention:   {row.attention}",
    ])

