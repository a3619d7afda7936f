"""PyTorch distributed data parallel (DDP) plumbing for runs started by ``torchrun`` (or ``accelerate launch``).

Nothing here starts processes: the launcher does, and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``. bertkit reads them, joins the process group (``nccl`` on CUDA,
``gloo`` on CPU), and gives every rank its share of each global batch; rank 0 alone writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bertkit.exceptions import ConfigError


@dataclass(frozen=True)
class Context:
    """Where this process stands: its rank among ``world_size`` processes and the device it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    created_group: bool = False
    """True when bertkit joined the process group itself (and so should leave it after training)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_rank() -> int:
    """This process's global rank from the launcher's environment (0 outside a distributed launch)."""
    return int(os.environ.get("RANK", "0"))


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True in a single-process run and on rank 0 of a distributed one: the process that writes files."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return env_rank() == 0


def setup(device_name: str) -> tuple[Context, str]:
    """Join the process group described by the launcher's environment, if any.

    Returns the context and the device name training should use: ``cuda:LOCAL_RANK`` when CUDA is used,
    the given name otherwise. A group someone else already set up (e.g. Accelerate) is reused."""
    import torch.distributed as dist

    world_size = env_world_size()
    if world_size <= 1:
        return Context(), device_name
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if device_name.startswith("cuda:"):
        raise ConfigError(
            f"--device {device_name}: under torchrun each process takes the GPU of its LOCAL_RANK; "
            "use --device cuda (or auto) and choose GPUs with CUDA_VISIBLE_DEVICES"
        )
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device_name = f"cuda:{local_rank}"
    elif device_name == "auto":
        device_name = "cpu"
    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        created = True
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, created), device_name


def teardown(context: Context, wait: bool = True) -> None:
    """Leave the process group if bertkit created it; ``wait=False`` after an error (the other ranks may
    never reach a barrier)."""
    import torch.distributed as dist

    if context.created_group and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model wrapped in DistributedDataParallel (gradients averaged across ranks after backward)."""
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def all_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum of ``value`` over all ranks (a copy; the input is left alone)."""
    import torch.distributed as dist

    total = value.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def gather_rows(index: np.ndarray, outputs: Any, n: int) -> Any:
    """Reassemble per-rank outputs into input order on every rank.

    Each rank holds ``outputs`` for the rows ``index`` (a strided, disjoint share of ``0..n-1``): an array
    whose first axis follows ``index``, or a list. Every row comes back exactly once, in order."""
    import torch.distributed as dist

    shares: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(shares, (np.asarray(index), outputs))
    order = np.concatenate([share[0] for share in shares])
    if sorted(order.tolist()) != list(range(n)):
        raise RuntimeError(f"validation shards do not cover rows 0..{n - 1} exactly once")
    inverse = np.argsort(order, kind="stable")
    if isinstance(outputs, np.ndarray):
        stacked = np.concatenate([np.asarray(share[1]) for share in shares], axis=0)
        return stacked[inverse]
    flat = [item for share in shares for item in share[1]]
    return [flat[i] for i in inverse]
