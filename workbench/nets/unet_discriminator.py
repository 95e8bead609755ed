"""Chapter 4's discriminators with a U-Net decoder (section 4.1.2, settings (a)-(c) of table 4.1).

The encoder is the StyleGAN discriminator of :mod:`workbench.nets.stylegan` and gives the global
logit D(x). A decoder mirrors it (transposed 2× convolutions, each followed by a concat with the
encoder's activations at that resolution and a 3×3 convolution, as in U-Net GAN, Schönfeld et al.
2020) and ends in a 1×1 convolution to per-pixel logits (every layer with the equalised learning rate of
the encoder):

* ``realism=True``: D_dec(x), a per-pixel realism logit (eq. 4.8), settings (a) and (b);
* ``segmenter=True``: D_seg(x), the mask logit of the segmenter S(x) = σ(D_seg(x)) trained with
  L_seg on generated composites (eq. 4.7), settings (a), (b) and (c).

With neither, there is no decoder and the network *is* the standard discriminator (setting (d)).
:func:`matched_width` picks the channels that give a U-Net discriminator about as many parameters
as the standard one, as section 4.2 does for (a) and (b).

Shapes: x (B, 3, R, R) in [-1, 1]; outputs :class:`DiscriminatorOutputs`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from workbench.nets.stylegan import EqualConv2d, StyleDiscriminator, channel_widths, lrelu

__all__ = ["DiscriminatorOutputs", "UNetDiscriminator", "matched_width", "parameter_count"]


class DiscriminatorOutputs(NamedTuple):
    """Global logits (B,); per-pixel realism logits (B, 1, R, R) or None; mask logits (B, 1, R, R) or None."""

    logits: torch.Tensor
    realism: torch.Tensor | None
    mask: torch.Tensor | None


def parameter_count(module: nn.Module) -> int:
    """Learnable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class EqualConvTranspose2d(nn.Module):
    """2× up-sampling transposed convolution (kernel 4, stride 2, padding 1) with equalised learning rate:
    each output pixel sums c_in·(4/2)² weighted inputs, the fan-in of He's constant."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_in, c_out, 4, 4))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.scale = 1 / math.sqrt(c_in * 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.weight * self.scale, self.bias, stride=2, padding=1)  # (B, c_out, 2H, 2W)


class UpBlock(nn.Module):
    """2× transposed conv (c_in -> c_out), concat the skip (c_out), 3×3 conv back to c_out; leaky ReLUs."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.up = EqualConvTranspose2d(c_in, c_out)
        self.conv = EqualConv2d(2 * c_out, c_out, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = lrelu(self.up(x))  # (B, c_out, 2r, 2r)
        return lrelu(self.conv(torch.cat([x, skip], dim=1)))  # (B, c_out, 2r, 2r)


class UNetDiscriminator(StyleDiscriminator):
    """StyleGAN discriminator plus an optional U-Net decoder; see the module docstring.

    Args:
        resolution, in_channels, width, max_width, mbstd_group, architecture: those of the encoder
            (:class:`~workbench.nets.stylegan.StyleDiscriminator`; ``"resnet"``: StyleGAN2's).
        realism: decode a per-pixel realism logit D_dec (eq. 4.8).
        segmenter: decode a mask logit D_seg (eq. 4.7).
    """

    def __init__(self, *, resolution: int, in_channels: int = 3, width: int = 64, max_width: int = 512,
                 realism: bool = False, segmenter: bool = False, mbstd_group: int = 4, architecture: str = "plain"):
        super().__init__(resolution=resolution, in_channels=in_channels, width=width, max_width=max_width,
                         mbstd_group=mbstd_group, architecture=architecture)
        self.realism, self.segmenter = realism, segmenter
        channels = int(realism) + int(segmenter)
        self.decoder = self.to_logits = None
        if channels:
            widths = channel_widths(resolution, width=width, max_width=max_width)
            ups = sorted(self.block_resolutions)  # 8 … R: the decoder's output resolutions
            self.decoder = nn.ModuleList(UpBlock(widths[r // 2], widths[r]) for r in ups)
            self.to_logits = EqualConv2d(widths[resolution], channels, 1)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutputs:
        """x (B, 3, R, R) -> :class:`DiscriminatorOutputs` (unconditional: chapter 4's D sees no label)."""
        if self.decoder is None:
            return DiscriminatorOutputs(super().forward(x), None, None)
        *skips, h = self.encode(x)  # skips at R … 8, h (B, C4, 4, 4)
        out = self.decode(skips, h)  # (B, channels, R, R)
        realism = out[:, :1] if self.realism else None
        mask = out[:, -1:] if self.segmenter else None
        return DiscriminatorOutputs(self.head(h), realism, mask)

    def decode(self, skips: list[torch.Tensor], h: torch.Tensor) -> torch.Tensor:
        """The decoder's per-pixel logits (B, channels, H, W) from :meth:`encode`'s outputs."""
        for block, skip in zip(self.decoder, reversed(skips)):
            h = block(h, skip)  # (B, C_r, r, r), r = 8 … R (or H/2^k × W/2^k on other sizes)
        return self.to_logits(h)

    def mask_logits(self, x: torch.Tensor) -> torch.Tensor:
        """D_seg(x): mask logits (B, 1, H, W) for any H, W that are multiples of R/4 (no global head)."""
        if not self.segmenter:
            raise ValueError("this discriminator has no mask output (segmenter=False)")
        *skips, h = self.encode(x)
        return self.decode(skips, h)[:, -1:]


def matched_width(*, resolution: int, width: int, max_width: int, realism: bool, segmenter: bool,
                  architecture: str = "plain") -> tuple[int, int]:
    """(width, max_width) scaled by one factor so that the U-Net discriminator has about as many
    parameters as the standard one of ``width``/``max_width`` (section 4.2)."""
    target = parameter_count(StyleDiscriminator(resolution=resolution, width=width, max_width=max_width,
                                                architecture=architecture))

    def scaled(percent: int) -> tuple[int, int]:
        return max(1, round(width * percent / 100)), max(1, round(max_width * percent / 100))

    def gap(percent: int) -> int:  # parameters over the target (grows with percent)
        w, m = scaled(percent)
        return parameter_count(UNetDiscriminator(resolution=resolution, width=w, max_width=m, realism=realism,
                                                 segmenter=segmenter, architecture=architecture)) - target

    low, high = 10, 100  # bisection on the percentage
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if gap(middle) < 0 else (low, middle)
    return scaled(min((low, high), key=lambda p: abs(gap(p))))
