"""A small DCGAN-style generator and discriminator for 16, 32 and 64 px images.

The workbench's plain single-layer GAN (one image, no layers or masks), the smallest network pair
the shared training loop is shown with. Images inside GANs are in [-1, 1]: the generator ends in
tanh and the discriminator expects that range.

Channels double at every halving of the resolution: with ``width`` w and resolution R = 4·2ⁿ the
generator goes 4×4×(w·2ⁿ⁻¹) -> 8×8×(w·2ⁿ⁻²) -> ... -> (R/2)×(R/2)×w -> R×R×3, and the
discriminator mirrors it down to 4×4 and a linear head.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# helpers

RESOLUTIONS = (16, 32, 64)


def levels(resolution: int) -> int:
    """Number of 2× up/down-sampling steps between 4×4 and ``resolution``."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
    return int(math.log2(resolution)) - 2


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, zero biases, BatchNorm scales N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# classes


class Generator(nn.Module):
    """Latent code (B, z_dim) -> image (B, 3, R, R) in [-1, 1]."""

    def __init__(self, *, resolution: int = 64, z_dim: int = 128, width: int = 64):
        super().__init__()
        n = levels(resolution)
        channels = [width * 2 ** (n - 1 - i) for i in range(n)]  # 4×4 ... (R/2)×(R/2)
        self.z_dim = z_dim
        self.project = nn.Linear(z_dim, channels[0] * 16)
        self.bn0 = nn.BatchNorm2d(channels[0])
        blocks = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            blocks += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.ConvTranspose2d(channels[-1], 3, 4, stride=2, padding=1)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], -1, 4, 4)  # (B, C0, 4, 4)
        x = torch.relu(self.bn0(x))
        x = self.blocks(x)  # (B, w, R/2, R/2)
        return torch.tanh(self.to_rgb(x))  # (B, 3, R, R)


class Discriminator(nn.Module):
    """Image (B, 3, R, R) in [-1, 1] -> logits (B,). No normalisation, so gradient penalties apply."""

    def __init__(self, *, resolution: int = 64, width: int = 64):
        super().__init__()
        n = levels(resolution)
        channels = [width * 2**i for i in range(n)]  # (R/2)×(R/2) ... 4×4
        layers = [nn.Conv2d(3, channels[0], 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels[-1] * 16, 1)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, C, 4, 4)
        return self.head(h.flatten(1)).squeeze(1)  # (B,)
