"""Checkpoints for the training loop and its users: load a trained method of any kind by the name
its checkpoint records (:func:`load_method`).

The folder format itself (writing, reading, weights, EMA, RNG states) is :mod:`workbench.checkpoint`,
below the methods; its names are re-exported here. :func:`load_method` needs the registry of every
method (``workbench.methods.METHODS``), so it lives above the methods: a method that builds on
another's run loads it with :func:`workbench.checkpoint.load_method_as` and its class instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from workbench.checkpoint import (CONFIG_FILE, EMA_FILE, FORMAT, LOCK_FILE, MODULES_FILE, STATE_FILE, TENSORS_FILE,
                                  Checkpoint, CheckpointError, RunInUseError, RunLock, StateDictMismatchError,
                                  atomic_write_text, find_checkpoint, find_linked_path, remove_orphans,
                                  load_method_as, load_method_weights, load_optimizer_state, load_pth,
                                  load_state_dict_strict, method_from_checkpoint, method_record, optimizer_state,
                                  read_checkpoint, resolve_linked_runs, rng_state, set_rng_state, step_of,
                                  write_checkpoint)

if TYPE_CHECKING:
    from workbench.methods.base import Method

__all__ = [
    "CONFIG_FILE", "EMA_FILE", "FORMAT", "LOCK_FILE", "MODULES_FILE", "STATE_FILE", "TENSORS_FILE", "Checkpoint",
    "CheckpointError", "RunInUseError", "RunLock", "StateDictMismatchError", "atomic_write_text", "remove_orphans", "find_checkpoint", "find_linked_path", "load_method", "load_method_as",
    "load_method_weights", "load_optimizer_state", "load_pth", "load_state_dict_strict", "method_from_checkpoint",
    "method_record", "optimizer_state", "read_checkpoint", "resolve_linked_runs", "rng_state", "set_rng_state",
    "step_of", "write_checkpoint",
]


def load_method(path: str | Path, *, device: str | torch.device = "cpu", method: str | None = None) -> "Method":
    """The trained method in a checkpoint (or a run's newest), in evaluation mode, with its EMA copies.

    The method's class is the one registered under the name the checkpoint records (``method``, when
    given, must match it). For notebooks, apps and evaluation: ``load_method("runs/dcgan/x").sample()``.
    """
    from workbench.methods import METHODS

    checkpoint = read_checkpoint(path, method=method)
    if checkpoint.method not in METHODS:
        raise CheckpointError(f"{checkpoint.path} was written by method {checkpoint.method!r}, "
                              f"which this workbench does not have ({', '.join(sorted(METHODS))})")
    return load_method_as(METHODS[checkpoint.method], checkpoint.path, device=device)
