"""Devices and seeding for the training loop: :mod:`workbench.device`'s names, re-exported here.

They live in :mod:`workbench.device`, below the methods, so that loading a checkpoint (which picks
a device) needs nothing from the training loop.
"""

from workbench.device import DeviceError, mps_available, pick_device, seed_everything

__all__ = ["DeviceError", "mps_available", "pick_device", "seed_everything"]
