"""Exponential moving averages of modules (the "EMA generator" of GANs).

After every iteration each averaged parameter becomes β·avg + (1 - β)·param; buffers (BatchNorm
statistics) are copied. The averages are ordinary frozen modules in evaluation mode.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_copy(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` in evaluation mode, the start of its average."""
    return copy.deepcopy(module).eval().requires_grad_(False)


@torch.no_grad()
def ema_update(average: nn.Module, module: nn.Module, *, beta: float) -> None:
    """average <- β·average + (1 - β)·module for parameters; buffers are copied."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"EMA beta must be in [0, 1], got {beta}")
    for avg, param in zip(average.parameters(), module.parameters(), strict=True):
        avg.lerp_(param.detach(), 1.0 - beta)
    for avg, buf in zip(average.buffers(), module.buffers(), strict=True):
        avg.copy_(buf)
