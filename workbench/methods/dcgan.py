"""DCGAN: the workbench's plain single-layer GAN and the smallest example of the method protocol.

An unconditional generator G(z) learns to produce images like the dataset's, against a
discriminator D, with a choice of adversarial loss: hinge (eqs. 5.5/5.6, 6.2/6.3), non-saturating
with R1 (eqs. 4.5/4.6) or WGAN-GP (eqs. 3.5/3.6). It moves nothing: every other method of the
workbench is this loop with a composite (a shifted object over a background) in place of G(z).

Read it as the template for a method (see ``workbench/methods/base.py``): a config dataclass
with presets, modules and optimizers as attributes, an EMA declaration, two phases, a sample grid.

The thesis has no DCGAN; the ``paper`` preset follows the schedule of its chapter 6 (batch 64,
100k iterations, hinge loss) at 64 px, with Adam (β₁, β₂) = (0, 0.99) as in chapters 3 and 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from workbench.losses import ADVERSARIAL_LOSSES, WGANGP, Hinge, NonSaturatingR1
from workbench.methods.base import Method, Phase, TrainConfig, evaluating
from workbench.nets.dcgan import RESOLUTIONS, Discriminator, Generator

# config


@dataclass
class DCGANConfig(TrainConfig):
    """DCGAN options; the defaults are the ``paper`` preset."""

    dataset: str = "synthetic:easy"  # dataset spec for workbench.data.build_dataset
    resolution: int = 64  # image side in pixels: 16, 32 or 64
    z_dim: int = 128  # size of the latent code z ~ N(0, I)
    width: int = 64  # channels of the widest-resolution layer; they double at each halving
    loss: Literal["hinge", "nonsaturating-r1", "wgan-gp"] = "hinge"  # adversarial loss
    r1_weight: float = 0.1  # λ of R1 for the nonsaturating-r1 loss (eq. 4.6)
    gp_weight: float = 10.0  # λ of the gradient penalty for the wgan-gp loss (eq. 3.6)
    drift: float = 0.001  # ε of the drift term for the wgan-gp loss (eq. 3.6)
    d_steps: int = 1  # discriminator phases per generator phase
    lr_g: float = 2e-4  # generator Adam learning rate
    lr_d: float = 2e-4  # discriminator Adam learning rate
    betas: tuple[float, float] = (0.0, 0.99)  # Adam (β₁, β₂) for both networks
    ema_beta: float = 0.999  # decay of the generator's exponential moving average
    samples: int = 64  # images in each sample grid
    steps: int = 100_000
    batch_size: int = 64
    sample_every: int = 2000
    checkpoint_every: int = 10_000

    def __post_init__(self):
        super().__post_init__()
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution}")
        if self.loss not in ADVERSARIAL_LOSSES:
            raise ValueError(f"loss must be one of {sorted(ADVERSARIAL_LOSSES)}, got {self.loss!r}")
        if self.d_steps < 1 or self.samples < 1:
            raise ValueError("d_steps and samples must be >= 1")


PRESETS: dict[str, DCGANConfig] = {
    "paper": DCGANConfig(),
    "small": DCGANConfig(resolution=32, z_dim=64, width=32, ema_beta=0.99, samples=36, steps=2000, batch_size=32,
                         log_every=10, sample_every=250, checkpoint_every=500),  # ~3 min on 2 CPU cores
    "smoke": DCGANConfig(resolution=16, z_dim=32, width=16, ema_beta=0.9, samples=16, steps=20, batch_size=8,
                         log_every=5, sample_every=10, checkpoint_every=10),  # seconds
}


# method


class DCGAN(Method):
    """Unconditional DCGAN-style GAN: a discriminator phase (d_steps times), a generator phase, an EMA of G."""

    name = "dcgan"
    Config = DCGANConfig
    presets = PRESETS

    def __init__(self, config: DCGANConfig, *, device: str | torch.device = "cpu"):
        super().__init__(config, device=device)
        c = config
        self.generator = Generator(resolution=c.resolution, z_dim=c.z_dim, width=c.width).to(self.device)
        self.discriminator = Discriminator(resolution=c.resolution, width=c.width).to(self.device)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=c.lr_g, betas=c.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr_d, betas=c.betas)
        self.loss = {
            "hinge": Hinge(),
            "nonsaturating-r1": NonSaturatingR1(r1_weight=c.r1_weight),
            "wgan-gp": WGANGP(gp_weight=c.gp_weight, drift=c.drift),
        }[c.loss]
        self.ema_betas = {"generator": c.ema_beta}

    def build_dataset(self):
        """The training split of the config's dataset at the model's resolution."""
        from workbench.data import build_dataset

        return build_dataset(self.config.dataset, size=self.config.resolution, split="train")

    def phases(self) -> list[Phase]:
        """``d_steps`` discriminator steps on real batches, then one generator step (no real data)."""
        return [Phase("discriminator", self.discriminator_step, repeat=self.config.d_steps),
                Phase("generator", self.generator_step, real_data=False)]

    # phases

    def noise(self, n: int) -> torch.Tensor:
        """Latent codes z ~ N(0, I) from the global generator (restored on resume)."""
        return torch.randn(n, self.config.z_dim, device=self.device)  # (B, z_dim)

    def discriminator_step(self, batch: dict) -> dict:
        """One discriminator update on a real batch against fresh fakes; returns the loss's stats."""
        real = batch["image"] * 2 - 1  # (B, 3, R, R) in [-1, 1]
        with torch.no_grad():
            fake = self.generator(self.noise(real.shape[0]))  # (B, 3, R, R)
        loss, stats = self.loss.discriminator(self.discriminator, real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return stats

    def generator_step(self, batch: None) -> dict:
        """One generator update through the discriminator; returns the generator loss."""
        fake = self.generator(self.noise(self.config.batch_size))  # (B, 3, R, R)
        loss = self.loss.generator(self.discriminator(fake))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        return {"loss": loss.detach()}

    # samples

    @torch.no_grad()
    def sample(self) -> torch.Tensor:
        """``samples`` images from the EMA generator, always from the same latent codes."""
        z = torch.randn(self.config.samples, self.config.z_dim, generator=torch.Generator().manual_seed(self.config.seed))
        with evaluating(self.averaged("generator")) as generator:
            images = generator(z.to(self.device))  # (N, 3, R, R) in [-1, 1]
        return (images + 1) / 2
