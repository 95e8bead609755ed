"""The shared training loop: devices, seeding, config flags, progress, logs, EMA, checkpoints, DDP.

- ``Trainer(method, out_dir=..., callbacks=[...]).fit()`` trains any method of ``workbench.methods``
  (the protocol is in ``workbench/methods/base.py``).
- ``launch.main(method, argv)`` is ``python -m workbench train METHOD ...``.
- ``load_method(path)`` gives a trained method back from a checkpoint or run folder.
"""

from workbench.checkpoint import (Checkpoint, CheckpointError, StateDictMismatchError, find_checkpoint, load_pth,
                                  load_state_dict_strict, read_checkpoint)
from workbench.config import ConfigError
from workbench.device import DeviceError, pick_device, seed_everything
from workbench.nets.ema import ema_copy, ema_update
from workbench.train.checkpoint import load_method
from workbench.train.sampler import InfiniteBatchSampler
from workbench.train.trainer import NonFiniteError, Trainer

__all__ = [
    "Checkpoint", "CheckpointError", "ConfigError", "DeviceError", "InfiniteBatchSampler", "NonFiniteError",
    "StateDictMismatchError", "Trainer", "ema_copy", "ema_update", "find_checkpoint", "load_method", "load_pth",
    "load_state_dict_strict", "pick_device", "read_checkpoint", "seed_everything",
]
