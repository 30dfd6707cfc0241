"""A training step's saved activations beyond a memory budget, kept in anonymous temporary files.

Autograd keeps every layer's input or output of a batch until the backward pass; HybridSN at 25x25x30 keeps
about 4.5 MB per patch, 1.1 GB for a batch of 256. Inside :class:`ActivationStore`, the saved CPU tensors of at
least ``least`` bytes beyond the last ``budget`` bytes of them are written to an unlinked temporary file and read
back when the backward pass needs it: the same bytes with the same strides, so the
gradients are bit-identical and only the time grows (a write and a read of each offloaded tensor). The files
have no name: a killed process leaves nothing behind.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import io
import tempfile
import weakref
from collections import deque
from typing import cast

import numpy as np
import torch

M_MMAP_THRESHOLD = -3       # glibc mallopt parameter


def return_freed_memory(threshold: int = 128 * 1024) -> bool:
    """Have glibc serve blocks of ``threshold`` bytes or more by ``mmap``, so that freeing them returns the
    memory to the system at once (by default glibc raises its threshold to the largest block freed, up to 32 MB,
    and keeps such blocks in its heap: a batch's tensors then stay resident). Returns False off glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))


class _Saved:
    """One saved tensor, in memory until :meth:`offload` writes it to an unlinked file; :meth:`load` gives it
    back (read once and shared while the last copy lives)."""

    def __init__(self, tensor: torch.Tensor, size: int) -> None:
        self.tensor: torch.Tensor | None = tensor
        self.size, self.shape, self.stride, self.dtype = size, tensor.shape, tensor.stride(), tensor.dtype
        self.file: io.BufferedRandom | None = None
        self._loaded: weakref.ref | None = None

    def offload(self, folder: str | None) -> None:
        tensor = self.tensor
        assert tensor is not None
        self.file = cast(io.BufferedRandom, tempfile.TemporaryFile(dir=folder))
        span = torch.as_strided(tensor.detach(), (tensor.numel(),), (1,), tensor.storage_offset())
        self.file.write(span.numpy().data.cast("B"))
        self.tensor = None

    def load(self) -> torch.Tensor:
        if self.tensor is not None:
            return self.tensor
        tensor = self._loaded() if self._loaded is not None else None
        if tensor is None:
            assert self.file is not None
            flat = torch.empty(int(np.prod(self.shape)), dtype=self.dtype)
            self.file.seek(0)
            self.file.readinto(flat.numpy().data.cast("B"))
            tensor = torch.as_strided(flat, self.shape, self.stride)
            self._loaded = weakref.ref(tensor)
        return tensor

    def __del__(self) -> None:
        if self.file is not None:
            self.file.close()


class ActivationStore:
    """Context of one training step: of the saved tensors, the last ``budget`` bytes stay in memory and the
    earlier ones go to files in ``folder`` (the system's temporary folder by default). The backward pass reads
    the last saved first and frees each after use, so what it finds in memory is freed early, while a tensor
    saved early (the first 3-D convolutions' large maps) would sit in memory through the whole backward pass.
    ``offloaded`` counts the bytes written in the last step."""

    def __init__(self, budget: int, folder: str | None = None, least: int = 1 << 20) -> None:
        self.budget, self.folder, self.least = budget, folder, least
        self.held = self.offloaded = 0
        self._seen: dict = {}
        self._in_memory: deque[_Saved] = deque()
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)

    def __enter__(self) -> ActivationStore:
        self.held = self.offloaded = 0
        self._seen, self._in_memory = {}, deque()
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._hooks.__exit__(*exc)
        self._seen, self._in_memory = {}, deque()

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor | _Saved:
        size = tensor.numel() * tensor.element_size()
        if size < self.least or tensor.device.type != "cpu" or not _dense(tensor):
            return tensor
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.stride())
        known = self._seen.get(key)     # a tensor saved twice (a ReLU's output is the next layer's input)
        if known is not None and known[0]() is not None:    # still alive: its memory is not another's yet
            return known[1]
        saved = _Saved(tensor, size)
        self._seen[key] = (weakref.ref(tensor), saved)
        self._in_memory.append(saved)
        self.held += size
        while self.held > self.budget:      # the earliest saved go to files first
            oldest = self._in_memory.popleft()
            oldest.offload(self.folder)
            self.held -= oldest.size
            self.offloaded += oldest.size
        return saved

    @staticmethod
    def _unpack(saved: torch.Tensor | _Saved) -> torch.Tensor:
        return saved.load() if isinstance(saved, _Saved) else saved


def _dense(tensor: torch.Tensor) -> bool:
    """The tensor covers one contiguous span of its storage, in some order of its dimensions."""
    if tensor.is_sparse or tensor.layout != torch.strided:
        return False
    order = sorted(range(tensor.dim()), key=lambda d: tensor.stride(d))
    expected = 1
    for d in order:
        if tensor.shape[d] != 1 and tensor.stride(d) != expected:
            return False
        expected *= tensor.shape[d]
    return True
