"""Trainable methods, one module per chapter, all following the protocol of ``base.py``.

``METHODS`` maps the names used by ``python -m workbench train NAME`` (and recorded in every
checkpoint) to the method classes.
"""

from workbench.methods.base import Method, Phase, TrainConfig
from workbench.methods.dcgan import DCGAN, DCGANConfig

METHODS: dict[str, type[Method]] = {DCGAN.name: DCGAN}

__all__ = ["METHODS", "DCGAN", "DCGANConfig", "Method", "Phase", "TrainConfig"]
