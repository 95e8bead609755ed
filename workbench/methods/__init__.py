"""Trainable methods, one module per chapter, all following the protocol of ``base.py``.

``METHODS`` maps the names used by ``python -m workbench train NAME`` (and recorded in every
checkpoint) to the method classes.
"""

from workbench.methods.base import Method, Phase, TrainConfig
from workbench.methods.dcgan import DCGAN, DCGANConfig
from workbench.methods.kdd_gan import KDDGAN, KDDGANConfig
from workbench.methods.layered import LayeredConfig, LayeredGAN
from workbench.methods.layered_post import PostSegmenter, PostSegmenterConfig
from workbench.methods.mae import MAEPretraining
from workbench.methods.move import MOVE, MOVEConfig
from workbench.methods.oracle import OracleConfig, OracleUNet
from workbench.methods.perturbgan import PerturbGAN, PerturbGANConfig
from workbench.methods.perturbgan_encoder import PerturbEncoder, PerturbEncoderConfig
from workbench.methods.selfmask import SelfMask, SelfMaskConfig
from workbench.methods.stylegan import SingleOutputGAN

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (DCGAN, KDDGAN, LayeredGAN, MAEPretraining, MOVE, OracleUNet, PostSegmenter, PerturbEncoder, PerturbGAN,
                                                               SelfMask, SingleOutputGAN)}

__all__ = ["METHODS", "DCGAN", "DCGANConfig", "KDDGAN", "KDDGANConfig", "LayeredConfig", "LayeredGAN", "MAEPretraining", "MOVE", "MOVEConfig", "Method", "OracleConfig",
           "OracleUNet", "PerturbEncoder", "PerturbEncoderConfig", "PerturbGAN", "PerturbGANConfig", "Phase", "PostSegmenter", "PostSegmenterConfig", "SelfMask",
           "SelfMaskConfig", "SingleOutputGAN", "TrainConfig"]
