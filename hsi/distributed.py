"""Training and mapping on several processes, launched by ``torchrun`` (``torch.distributed``, DDP).

``torchrun --nproc_per_node N -m hsi train ...`` starts N copies of the command; each reads ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` from its environment. :func:`world` joins them into one process group
(``nccl`` on CUDA, ``gloo`` on the CPU) with a timeout, so a rank that dies or hangs fails the job instead of
blocking it. Without ``torchrun`` it returns a world of one process and nothing here costs anything.

How work is shared so that the result does not depend on the number of processes:

- patch models: every process draws the same permutation of the training pixels per epoch (the run's seeded
  generator) and takes every N-th pixel of each global batch of ``--batch-size`` (:class:`ShardedBatches`);
  the loss is the sum over its pixels divided by the global number of pixels in the batch, so the averaged
  gradient is the single-process one. torch's ``DistributedSampler`` shards the epoch instead, padding it to a
  multiple of N with repeated pixels, so its batches and their sizes change with N.
- scene models: each step every process trains on its own random crop of the scene (``--crop``).
- batch norm: per process, or over the whole global batch with ``--sync-bn`` (torch's ``SyncBatchNorm`` on
  CUDA; :class:`GlobalBatchNorm` on the CPU, where torch's refuses to run).
- full-scene maps: tile ``i`` is computed by rank ``i mod N`` (:meth:`World.mine`).
"""
from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from .errors import ConfigError

DEFAULT_TIMEOUT_S = 600

T = TypeVar("T")
Draw = Callable[[torch.Tensor, torch.Generator | None], Sequence[Any]]   # a batch's indices -> its random draws


class _Sliceable(Protocol):
    def __getitem__(self, index: slice, /) -> Any: ...


Items = TypeVar("Items", bound=_Sliceable)   # a list, range or tensor: what ``World.mine`` slices


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` takes CUDA when it is there, else the CPU; asking for CUDA without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not str(name).startswith("cuda:"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {name!r}")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


@dataclass(frozen=True)
class World:
    """This process's place among ``size`` processes; ``rank`` 0 writes every file."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def device(self, name: str | torch.device = "auto") -> torch.device:
        """The device of this process: ``cuda:LOCAL_RANK`` when CUDA is asked for (or ``auto`` finds it)."""
        device = name if isinstance(name, torch.device) else resolve_device(name)
        if self.distributed and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def mine(self, items: Items) -> Items:
        """The items this process handles: every ``size``-th, from the ``rank``-th."""
        return items[self.rank::self.size]

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum of a list of numbers over all processes (float64)."""
        total = torch.tensor(values, dtype=torch.float64, device=self._collective_device())
        if self.distributed:
            torch.distributed.all_reduce(total)
        return total.cpu().tolist()

    def share(self, obj: T) -> T:
        """Rank 0's ``obj``, on every process."""
        if not self.distributed:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: T) -> list[T]:
        """Every process's ``obj``, in rank order, on every process."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.size
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Give every process rank 0's buffers (batch-norm running statistics)."""
        if self.distributed:
            for buffer in model.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def _collective_device(self) -> torch.device:
        if self.distributed and torch.distributed.get_backend() == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")


ALONE = World()     # a process on its own: no torchrun


def world(device: str | torch.device = "auto") -> World:
    """The processes of this job: joins ``torchrun``'s process group on first call (backend ``nccl`` when this
    process uses CUDA, else ``gloo``), or a world of one when not launched by ``torchrun``."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return ALONE
    here = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not torch.distributed.is_initialized():
        on_cuda = here.device(device).type == "cuda"
        if on_cuda:
            torch.cuda.set_device(here.local_rank)
        torch.distributed.init_process_group("nccl" if on_cuda else "gloo",
                                             timeout=datetime.timedelta(seconds=_timeout_s()))
    return here


def _timeout_s() -> float:
    text = os.environ.get("HSI_DIST_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0
    if not seconds > 0:
        raise ConfigError(f"HSI_DIST_TIMEOUT must be a positive number of seconds, got {text!r}")
    return seconds


def finish() -> None:
    """Leave the process group (at the end of a command)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class ShardedBatches(torch.utils.data.Sampler):
    """Batch sampler: the global batches of a seeded permutation (or of the items in order), of which this
    process takes every ``world.size``-th item. The items are cut into the fewest batches of at most
    ``batch_size``, equal in size to within one item: no small last batch, whose batch-norm statistics would be
    noise that the running statistics, and so every evaluation, inherit (1,025 training pixels at 256 would
    leave a batch of one pixel; they make 5 batches of 205). The union of the processes' batches at a step is
    the batch a single process would take; a process whose share of a batch is empty gets an empty batch, so
    every process runs the same number of steps. With ``draw`` (``draw(indices, generator)``: one entry per item
    of a global batch, such as :meth:`~hsi.data.patches.PatchDataset.draw`) every item comes as an ``(index,
    params)`` pair, its random numbers drawn from the same generator as the order: augmentation is then part of
    the batch order, the same in every process and restored with the generator on resume."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = False,
                 here: World = ALONE, draw: Draw | None = None) -> None:
        self.n, self.batch_size, self.generator, self.shuffle, self.world = n, batch_size, generator, shuffle, here
        self.draw = draw

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[Any]]:
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        count = len(self)
        for step in range(count):
            batch = order[step * self.n // count:(step + 1) * self.n // count]
            if self.draw is None:
                yield self.world.mine(batch).tolist()
            else:
                params = self.draw(batch, self.generator)
                yield list(zip(self.world.mine(batch).tolist(), self.world.mine(params)))


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of the global batch, summed over all processes (two
    passes: the mean, then the squared deviations from it, as a single-process batch norm computes them). The
    backward pass sums its two per-channel reductions over the processes too, so the result equals one process
    holding the whole batch."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {input.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.distributed.is_initialized()):
            return super().forward(x)
        y, mean, var, count = _GlobalBatchNormFunction.apply(x, self.weight, self.bias, self.eps)
        batches, running_mean, running_var = self.num_batches_tracked, self.running_mean, self.running_var
        if batches is not None and running_mean is not None and running_var is not None:   # track_running_stats
            with torch.no_grad():
                batches.add_(1)
                momentum = 1.0 / batches.item() if self.momentum is None else self.momentum
                n = count.item()
                running_mean.lerp_(mean, momentum)
                running_var.lerp_(var * n / max(n - 1, 1), momentum)
        return y


class _GlobalBatchNormFunction(torch.autograd.Function):
    """y = x̂ · weight + bias, x̂ = (x - mean) / sqrt(var + eps) over the global batch, with the matching backward:
    dx = weight / sqrt(var + eps) · (dy - mean(dy) - x̂ · mean(dy · x̂)), the means over the global batch."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        dims, shape = _channel_dims(x)
        local = torch.cat([x.sum(dims, dtype=torch.float64),
                           torch.tensor([x.numel() / max(x.shape[1], 1)], dtype=torch.float64, device=x.device)])
        torch.distributed.all_reduce(local)
        count = local[-1:]
        mean = (local[:-1] / count.clamp_min(1)).to(x.dtype)
        centred = x - mean.view(shape)
        squares = centred.pow(2).sum(dims, dtype=torch.float64)
        torch.distributed.all_reduce(squares)
        var = (squares / count.clamp_min(1)).to(x.dtype)
        invstd = torch.rsqrt(var + eps)
        x_hat = centred.mul_(invstd.view(shape))
        if weight is None or bias is None:
            y = x_hat.clone()
        else:
            y = torch.addcmul(bias.view(shape), x_hat, weight.view(shape))
        ctx.save_for_backward(x_hat, weight, invstd, count)
        ctx.mark_non_differentiable(mean, var, count)
        return y, mean, var, count

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor, _mean: torch.Tensor, _var: torch.Tensor, _count: torch.Tensor
                 ) -> tuple[torch.Tensor | None, ...]:
        x_hat, weight, invstd, count = ctx.saved_tensors
        dims, shape = _channel_dims(dy)
        sum_dy = dy.sum(dims)
        sum_dy_x_hat = (dy * x_hat).sum(dims)
        sums = torch.cat([sum_dy, sum_dy_x_hat])
        torch.distributed.all_reduce(sums)
        mean_dy, mean_dy_x_hat = (sums / count.clamp_min(1).to(sums.dtype)).chunk(2)
        scale = invstd if weight is None else weight * invstd
        dx = (dy - mean_dy.view(shape) - x_hat * mean_dy_x_hat.view(shape)) * scale.view(shape)
        if weight is None:
            return dx, None, None, None
        return dx, sum_dy_x_hat, sum_dy, None


def _channel_dims(x: torch.Tensor) -> tuple[list[int], list[int]]:
    """The dimensions a batch norm reduces (all but the channels) and the shape that broadcasts a channel vector."""
    return [0, *range(2, x.dim())], [1, -1] + [1] * (x.dim() - 2)


def sync_batch_norm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every batch norm computing global-batch statistics: torch's ``SyncBatchNorm`` on CUDA,
    :class:`GlobalBatchNorm` elsewhere (same parameters and buffers, so checkpoints load in either)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert(model)


def _convert(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, _convert(child))
    return module


def refuse_under_torchrun(what: str) -> None:
    """A command that runs its own processes (or none) cannot be one of torchrun's ranks."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(f"{what} does not run under torchrun; launch it as a single process")
