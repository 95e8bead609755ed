"""Devices and seeding: cuda, then mps, then cpu, chosen automatically and overridable.

Used below the methods (loading a checkpoint picks a device) and by the training loop
(:mod:`workbench.train.device` re-exports these names).
"""

from __future__ import annotations

import random

import numpy as np
import torch

# classes


class DeviceError(RuntimeError):
    """A requested device is unknown or not available on this machine."""


# functions


def mps_available() -> bool:
    """Whether this PyTorch build can use Apple's MPS backend here."""
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def pick_device(name: str | torch.device = "auto", *, local_rank: int = 0) -> torch.device:
    """The device for ``name``: "auto" (cuda, then mps, then cpu), "cpu", "cuda", "cuda:N" or "mps".

    A bare "cuda" means ``cuda:<local_rank>``, the GPU of this process under ``torchrun``.
    """
    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return pick_device("cuda", local_rank=local_rank)
        return torch.device("mps") if mps_available() else torch.device("cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} was asked for, but this PyTorch build sees no CUDA GPU; "
                              "use --device auto or --device cpu")
        index = local_rank if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device cuda:{index} was asked for, but only {torch.cuda.device_count()} GPU(s) are visible")
        return torch.device("cuda", index)
    if device.type == "mps":
        if not mps_available():
            raise DeviceError(f"device {name!r} was asked for, but the Apple MPS backend is not available here")
        return torch.device("mps")
    raise DeviceError(f"device type {device.type!r} is not supported; use auto, cpu, cuda, cuda:N or mps")


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
