"""The layered generator of chapter 3: background, foreground and mask from one latent code.

``G(z) = [G_B(z), G_F(z), G_m(z)]`` (section 3.2.1) as two StyleGAN generators that read the
same z: one for the background (3 channels), one for the foreground and its mask (3 + 1
channels, the mask through a sigmoid). ``single=True`` is ablation (h) of table 3.1: one
generator with 7 outputs. With ``num_classes`` both generators are class-conditional.

Both generators see the same z and, under style mixing, the same second code z₂ and crossover
point, so the pair stays one sample. The *style stack* of the pair, (B, num_ws, w_dim), is the
background's AdaIN styles followed by the foreground's (or the single generator's): the codes
that the encoder of section 3.2.3 predicts, "one per AdaIN layer and generator".

Colours are roughly in [-1, 1] (linear outputs); the mask is in [0, 1].
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from workbench.nets.stylegan import StyleGenerator, mixing_cutoffs

__all__ = ["Layers", "LayeredGenerator"]


class Layers(NamedTuple):
    """One generated layered scene: background (B, 3, R, R), foreground (B, 3, R, R), mask (B, 1, R, R)."""

    background: torch.Tensor
    foreground: torch.Tensor
    mask: torch.Tensor


class LayeredGenerator(nn.Module):
    """Background + foreground/mask StyleGAN generators on a shared z; see the module docstring.

    Keyword options are those of :class:`~workbench.nets.stylegan.StyleGenerator` (resolution,
    z_dim, w_dim, mapping_layers, width, max_width, num_classes).
    """

    def __init__(self, *, single: bool = False, **options):
        super().__init__()
        self.single = single
        if single:
            self.generators = nn.ModuleList([StyleGenerator(out_channels=7, **options)])
        else:
            self.generators = nn.ModuleList([StyleGenerator(out_channels=3, **options),
                                             StyleGenerator(out_channels=4, **options)])
        first = self.generators[0]
        self.resolution, self.z_dim, self.w_dim, self.num_classes = first.resolution, first.z_dim, first.w_dim, first.num_classes
        self.num_ws = sum(g.num_ws for g in self.generators)

    def style_stack(self, z: torch.Tensor, labels: torch.Tensor | None = None, *, truncation: float = 1.0,
                    mixing: float = 0.0) -> torch.Tensor:
        """The pair's styles (B, num_ws, w_dim) of z; ``mixing`` is the style-mixing probability (section 3.3: 0.9)."""
        mix_z = cutoff = None
        if mixing > 0:
            mix_z = torch.randn_like(z)  # (B, z_dim): z₂, shared by both generators
            cutoff = mixing_cutoffs(z.shape[0], self.generators[0].num_ws, probability=mixing)  # (B,)
        return torch.cat([g.style_stack(z, labels, truncation=truncation, mix_z=mix_z, cutoff=cutoff)
                          for g in self.generators], dim=1)

    def mean_styles(self) -> torch.Tensor:
        """The pair's mean styles (num_ws, w_dim): every generator's ``w_avg`` repeated over its layers."""
        return torch.cat([g.w_avg.expand(g.num_ws, -1) for g in self.generators])

    def synthesis(self, ws: torch.Tensor, *, noise: str = "random") -> Layers:
        """Styles (B, num_ws, w_dim) -> :class:`Layers`."""
        if ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must have {self.num_ws} style rows, got {tuple(ws.shape)}")
        if self.single:
            out = self.generators[0].synthesis(ws, noise=noise)  # (B, 7, R, R)
            return Layers(out[:, :3], out[:, 3:6], torch.sigmoid(out[:, 6:]))
        n = self.generators[0].num_ws
        background = self.generators[0].synthesis(ws[:, :n], noise=noise)  # (B, 3, R, R)
        front = self.generators[1].synthesis(ws[:, n:], noise=noise)  # (B, 4, R, R)
        return Layers(background, front[:, :3], torch.sigmoid(front[:, 3:]))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, *, truncation: float = 1.0,
                mixing: float = 0.0, noise: str = "random") -> Layers:
        return self.synthesis(self.style_stack(z, labels, truncation=truncation, mixing=mixing), noise=noise)
