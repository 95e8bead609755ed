"""The layered generator of chapter 3: background, foreground and mask from one latent code.

``G(z) = [G_B(z), G_F(z), G_m(z)]`` (section 3.2.1) as two StyleGAN generators that read the
same z: one for the background (3 channels), one for the foreground and its mask (3 + 1
channels, the mask through a sigmoid). ``single=True`` is ablation (h) of table 3.1: one
generator with 7 outputs. With ``num_classes`` both generators are class-conditional.

Both generators see the same z and, under style mixing, the same second code z₂ and crossover
point, so the pair stays one sample. The *style stack* of the pair, (B, num_ws, w_dim), is the
background's AdaIN styles followed by the foreground's (or the single generator's): the codes
that the encoder of section 3.2.3 predicts, "one per AdaIN layer and generator".

Chapter 4 halves the model: :class:`ConditionalLayeredGenerator` is *one* class-conditional
StyleGAN2 (``network="stylegan2"``, :mod:`workbench.nets.stylegan2`; ``"stylegan"`` keeps chapter
3's StyleGAN) with 4 outputs, run twice on the same z: ``G(z, 0) = [B, discarded mask]`` and
``G(z, 1) = [F, m]`` (section 4.1.1), the sigmoid on the foreground's mask only.

Colours are roughly in [-1, 1] (linear outputs); the mask is in [0, 1].
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from workbench.nets.stylegan import StyleGenerator, mixing_cutoffs
from workbench.nets.stylegan2 import StyleGAN2Generator

GENERATOR_NETWORKS = {"stylegan": StyleGenerator, "stylegan2": StyleGAN2Generator}  # chapter 4: StyleGAN2 (4.1.1)

__all__ = ["Layers", "LayeredGenerator", "ConditionalLayeredGenerator", "BACKGROUND", "FOREGROUND", "GENERATOR_NETWORKS"]

BACKGROUND, FOREGROUND = 0, 1  # the class labels of chapter 4's conditional generator


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
            self.generators = nn.ModuleList([StyleGenerator(out_channels=7, colour_channels=6, **options)])
        else:  # the mask logit is the last channel; rgb_init scales the colours only
            self.generators = nn.ModuleList([StyleGenerator(out_channels=3, **options),
                                             StyleGenerator(out_channels=4, colour_channels=3, **options)])
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

    @property
    def stage(self) -> int:
        """The progressive-growing stage resolution (R when not growing)."""
        return self.generators[0].stage

    def grow(self, stage: int, fade: float = 1.0) -> None:
        """Progressive growing: every generator synthesises at ``stage`` (see :meth:`StyleGenerator.grow`)."""
        for generator in self.generators:
            generator.grow(stage, fade)

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


class ConditionalLayeredGenerator(nn.Module):
    """Chapter 4's generator: one StyleGAN G(z, y) with 4 outputs; y = 0 gives B, y = 1 gives F and m.

    The same z (and, under style mixing, the same z₂ and crossover point) is read with both labels,
    so the two calls are one sample. Both calls run as one batch of 2B. The style stack is
    (B, 2·num_ws, w_dim): the background's styles, then the foreground's, as in
    :class:`LayeredGenerator`. ``network`` names the generator (``GENERATOR_NETWORKS``); keyword
    options are those of :class:`~workbench.nets.stylegan.StyleGenerator` except ``num_classes`` and
    ``out_channels``.
    """

    def __init__(self, *, network: str = "stylegan2", **options):
        super().__init__()
        if network not in GENERATOR_NETWORKS:
            raise ValueError(f"network must be one of {sorted(GENERATOR_NETWORKS)}, got {network!r}")
        # the mask logit is the last channel; rgb_init scales the colours only
        self.generator = GENERATOR_NETWORKS[network](out_channels=4, num_classes=2, colour_channels=3, **options)
        g = self.generator
        self.resolution, self.z_dim, self.w_dim, self.num_classes = g.resolution, g.z_dim, g.w_dim, g.num_classes
        self.num_ws = 2 * g.num_ws

    def style_stack(self, z: torch.Tensor, labels: torch.Tensor | None = None, *, truncation: float = 1.0,
                    mixing: float = 0.0) -> torch.Tensor:
        """Styles (B, 2·num_ws, w_dim) of z for y = 0 then y = 1; ``mixing``: the style-mixing probability (0.9)."""
        if labels is not None:
            raise ValueError("the conditional layered generator sets its own labels (0: background, 1: foreground)")
        b, g = z.shape[0], self.generator
        mix_z = cutoff = None
        if mixing > 0:
            mix_z = torch.randn_like(z).repeat(2, 1)  # (2B, z_dim): z₂ shared by both calls
            cutoff = mixing_cutoffs(b, g.num_ws, probability=mixing).repeat(2)  # (2B,)
        labels = torch.cat([z.new_full((b,), BACKGROUND, dtype=torch.long), z.new_full((b,), FOREGROUND, dtype=torch.long)])
        ws = g.style_stack(z.repeat(2, 1), labels, truncation=truncation, mix_z=mix_z, cutoff=cutoff)  # (2B, n, w)
        return torch.cat([ws[:b], ws[b:]], dim=1)  # (B, 2n, w_dim)

    def mean_styles(self) -> torch.Tensor:
        """Mean styles (2·num_ws, w_dim); the generator keeps one ``w_avg`` over both classes."""
        return self.generator.w_avg.expand(self.num_ws, -1)

    def synthesis(self, ws: torch.Tensor, *, noise: str = "random") -> Layers:
        """Styles (B, 2·num_ws, w_dim) -> :class:`Layers` (the background's mask channel is discarded)."""
        if ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must have {self.num_ws} style rows, got {tuple(ws.shape)}")
        n = self.generator.num_ws
        out = self.generator.synthesis(torch.cat([ws[:, :n], ws[:, n:]]), noise=noise)  # (2B, 4, R, R)
        background, front = out.chunk(2)  # (B, 4, R, R) each
        return Layers(background[:, :3], front[:, :3], torch.sigmoid(front[:, 3:]))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, *, truncation: float = 1.0,
                mixing: float = 0.0, noise: str = "random") -> Layers:
        return self.synthesis(self.style_stack(z, labels, truncation=truncation, mixing=mixing), noise=noise)
