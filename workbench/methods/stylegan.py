"""The single-output (SO) GAN of table 3.2: the same StyleGAN, one image out, no layers, no shift.

Table 3.2 compares the FID of PerturbGAN's composites with a standard StyleGAN "producing the
entire images at once, trained for the same number of iterations". This is that baseline: the
generator of one PerturbGAN layer with 3 outputs, the same discriminator, loss (WGAN-GP with drift,
eq. 3.6), real-image crops, optimiser and presets, so that only the layered model differs.
"""

from __future__ import annotations

import torch

from workbench.methods.base import evaluating, tile_rows
from workbench.methods.perturbgan import PRESETS, PerturbGAN, PerturbGANConfig
from workbench.nets.stylegan import StyleGenerator, mixing_cutoffs

__all__ = ["SingleOutputGAN"]


class SingleOutputGAN(PerturbGAN):
    """StyleGAN G(z) -> image against PerturbGAN's discriminator; the mask options of the config are unused."""

    name = "stylegan"
    Config = PerturbGANConfig
    presets = PRESETS

    def build_generator(self) -> torch.nn.Module:
        c = self.config
        return StyleGenerator(resolution=c.resolution, out_channels=3, z_dim=c.z_dim, w_dim=c.w_dim,
                              mapping_layers=c.mapping_layers, width=c.width, max_width=c.max_width,
                              rgb_init=c.rgb_init)

    def fakes(self, n: int) -> tuple[torch.Tensor, None]:
        """Images (n, 3, r, r) in [-1, 1] of fresh codes, with style mixing (no layers); r = R but while growing."""
        z = torch.randn(n, self.config.z_dim, device=self.device)  # (n, z_dim)
        cutoff = mixing_cutoffs(n, self.module("generator").num_ws, probability=self.config.mixing)  # (n,)
        return self.to_stage(self.generator(z, mix_z=torch.randn_like(z), cutoff=cutoff)), None

    def generator_step(self, batch: None) -> dict:
        """-E[D(G(z))]: eq. (3.5) without the mask terms."""
        self.apply_stage()
        fake, _ = self.fakes(self.config.batch_size)
        loss = self.loss.generator(self.critic(fake))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.generator.parameters()))
        self.opt_g.step()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def generate(self, n: int, *, seed: int | None = None, truncation: float = 1.0, noise: str = "const",
                 ema: bool = True, **_) -> dict[str, torch.Tensor]:
        """``n`` images from the (EMA) generator: ``{"composite": (n, 3, R, R) in [0, 1], "z": (n, z_dim)}``."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, self.config.z_dim, generator=g).to(self.device)
        self.apply_stage()
        with evaluating(self.averaged("generator") if ema else self.module("generator")) as generator:
            images = generator(z, truncation=truncation, noise=noise)
        return {"composite": ((images + 1) / 2).clamp(0, 1), "z": z}

    @torch.no_grad()
    def sample(self) -> torch.Tensor:
        return tile_rows([self.generate(self.config.samples, seed=self.config.seed)["composite"]])
