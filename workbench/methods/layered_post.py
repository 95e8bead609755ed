"""Post-training (setting (d) of table 4.1): a U-Net segmenter on pairs from a frozen layered generator.

Section 4.1.2, "U-Net post-training with generated data": the trained generator of a ``layered``
run (any setting) makes shifted, contrast-jittered composites x̂ (eq. 4.2) and their shifted masks
m_Δ; a U-Net S learns x̂ -> m_Δ with the binary cross-entropy of eq. (4.7). Every batch is fresh
(an endless synthetic training set). Schedule (section 4.3.2): Adam, lr 1e-3 dropped to 2e-4
halfway, batch 64, 150K iterations (the ``paper`` preset).

The network, the optimiser schedule, the flips and the EMA are the supervised oracle's
(:class:`~workbench.methods.oracle.OracleUNet`); only the data differ. At inference the U-Net is
fully convolutional: :meth:`PostSegmenter.predict` resizes an image so that its shorter side is the
side the generator's training crops came from (1.125·R, ``test_side``), pads by reflection where the skips need it, and maps the mask back (section 4.2).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from workbench.checkpoint import load_method_as
from workbench.methods.base import Method, Phase, evaluating, tile_rows
from workbench.methods.oracle import OracleConfig, OracleUNet
from workbench.ops.rescale import segment_at_scale

__all__ = ["PostSegmenter", "PostSegmenterConfig", "PRESETS"]


@dataclass
class PostSegmenterConfig(OracleConfig):
    """Post-training options; the defaults are the ``paper`` preset. ``resolution`` and ``dataset``
    come from the generator's run."""

    generator: str = ""  # the trained `layered` run or checkpoint folder (its EMA generator is frozen)
    dataset: str = ""  # unused for training (the data are generated); recorded from the generator's run
    resolution: int = 128
    test_side: int = 0  # shorter side of test images at inference (0: resolution); set from the generator's 1.125·R
    width: int = 32
    depth: int = 4
    max_width: int = 256
    bce_weight: float = 1.0  # eq. (4.7): binary cross-entropy
    dice_weight: float = 0.0
    lr: float = 1e-3
    lr_late: float = 2e-4
    lr_late_from: float = 0.5
    betas: tuple[float, float] = (0.9, 0.999)
    ema_beta: float = 0.999
    steps: int = 150_000
    batch_size: int = 64
    log_every: int = 50
    sample_every: int = 5000
    checkpoint_every: int = 10_000


PRESETS: dict[str, PostSegmenterConfig] = {
    "paper": PostSegmenterConfig(),
    "small": PostSegmenterConfig(resolution=32, width=16, depth=3, max_width=128, ema_beta=0.98, steps=1000,
                                 batch_size=32, log_every=10, sample_every=250, checkpoint_every=500),
    "smoke": PostSegmenterConfig(resolution=16, width=8, depth=2, max_width=16, ema_beta=0.5, samples=3, steps=4,
                                 batch_size=4, log_every=2, sample_every=2, checkpoint_every=2),
}


class PostSegmenter(OracleUNet):
    """A U-Net trained on a frozen ``layered`` generator's composites and masks; see the module docstring."""

    name = "layered-post"
    Config = PostSegmenterConfig
    linked_runs = ("generator",)
    presets = PRESETS
    frozen = ("gan_generator",)

    def __init__(self, config: PostSegmenterConfig, *, device: str | torch.device = "cpu", gan: Method | None = None):
        device = torch.device(device)
        if gan is None and config.generator:
            gan = self.load_gan(config.generator, device)
        if gan is not None:
            config = replace(config, resolution=gan.config.resolution, dataset=gan.config.dataset, test_side=gan.test_side)
        super().__init__(config, device=device)
        self.gan = gan  # None: a segmenter loaded to predict only (its run recorded no generator path)
        if gan is not None:
            self.gan_generator = copy.deepcopy(gan.averaged("generator")).eval().requires_grad_(False)  # frozen copy

    @staticmethod
    def load_gan(path: str, device: torch.device) -> Method:
        """The trained ``layered`` run (or checkpoint folder) at ``path``."""
        from workbench.methods.layered import LayeredGAN

        return load_method_as(LayeredGAN, Path(path).expanduser(), device=device)

    def require_gan(self) -> None:
        if self.gan is None:
            raise ValueError("post-training needs a trained generator: pass --generator RUN_OR_CHECKPOINT "
                             "(a `python -m workbench train layered` run)")

    def build_dataset(self):
        return None  # every batch is generated

    def phases(self) -> list[Phase]:
        self.require_gan()
        return [Phase("segmenter", self.segmenter_step, real_data=False)]

    @torch.no_grad()
    def generated_batch(self, n: int) -> dict:
        """n fresh (composite in [0, 1], shifted mask) pairs from the frozen generator, as a data batch."""
        self.require_gan()
        images, masks = self.gan.training_pairs(n, generator=self.gan_generator)
        return {"image": images, "mask": masks}

    def segmenter_step(self, batch: dict | None) -> dict:
        """One BCE step (eq. 4.7) of the U-Net on a fresh generated batch."""
        return super().segmenter_step(self.generated_batch(self.config.batch_size))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
        """Soft masks (B, 1, H, W) of images (B, 3, H, W) in [0, 1] of any size, at the training scale (section 4.2)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"predict expects images (B, 3, H, W) in [0, 1], got shape {tuple(images.shape)}")
        with evaluating(self.averaged("net")) as net:
            masks = segment_at_scale(lambda x: torch.sigmoid(net(x)), images.to(self.device, torch.float32),
                                     resolution=self.config.test_side or self.config.resolution, multiple=net.multiple,
                                     batch_size=batch_size)
        return masks.clamp(0, 1).to(images.device)

    segment = predict  # the name the joint segmenters use

    @torch.no_grad()
    def sample(self) -> torch.Tensor:
        """Columns of fixed generated pairs; rows composite, generated mask, prediction."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.config.seed)  # the same pairs in every grid
            pairs = self.generated_batch(self.config.samples)
        expand = lambda m: m.expand(-1, 3, -1, -1)  # noqa: E731
        return tile_rows([pairs["image"], expand(pairs["mask"]), expand(self.predict(pairs["image"]))])
