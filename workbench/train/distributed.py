"""Multi-process training with ``torchrun`` and PyTorch DDP.

``torchrun --nproc_per_node=N -m workbench train METHOD ...`` starts N processes and sets
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. Each process joins
the process group (nccl on cuda, gloo on cpu), trains its own shard of the data, and DDP averages
the gradients, so the parameters stay identical. Only rank 0 logs, samples and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

# classes


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a multi-process run (rank 0 of 1 without one)."""

    rank: int = 0  # global process index
    world_size: int = 1  # number of processes
    local_rank: int = 0  # process index on this machine (its GPU)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, samples and checkpoints."""
        return self.rank == 0


# functions


def launched_by_torchrun() -> bool:
    """Whether ``torchrun`` started this process as one of several (``WORLD_SIZE > 1``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def local_rank() -> int:
    """This process's index on its machine under ``torchrun`` (0 otherwise): its GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when started by ``torchrun``; a single process otherwise."""
    if not launched_by_torchrun():
        return dist_info()
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return dist_info()


def dist_info() -> DistInfo:
    """Rank and world size of this process (0 and 1 without a process group)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank())
    return DistInfo()


def cleanup_distributed() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` without a process group)."""
    info = dist_info()
    if info.world_size == 1:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(modules) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every process, so that all states stay equal.

    DDP broadcasts them at the start of each forward; after an iteration each rank's last forward
    has still left its own statistics behind.
    """
    if dist_info().world_size == 1:
        return
    for module in modules:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def mean_over_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average named scalars over all processes (identity without a process group)."""
    if dist_info().world_size == 1 or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    tensor /= dist.get_world_size()
    means = dict(zip(keys, tensor.tolist()))
    return {k: means[k] for k in values}
