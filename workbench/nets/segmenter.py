"""MOVE's segmenter head: frozen ViT patch features -> a full-resolution soft mask (section 5.3).

The head reads the (B, D, H/P, W/P) grid of features that a frozen self-supervised ViT gives
(DINO ViT-S/8 in the thesis, P = 8; or an MAE encoder, P = 16 or the workbench's P = 8) and
returns a mask (B, 1, H, W) in [0, 1]:

1. a new trainable LayerNorm over the feature channels (the features themselves stay frozen);
2. log2(P) upsampling blocks, each a nearest 2x upsampling, a 3x3 convolution with padding,
   BatchNorm and a LeakyReLU, so that the grid grows back to the image size (3 blocks for P = 8,
   4 for P = 16, the "one more upsampling block" of the MAE-features ablation of table 5.6);
3. one more such block without upsampling;
4. a 1x1 convolution to one channel (the linear projection of section 5.3) and a sigmoid.

Padding: the convolutions pad by repeating the edge ("replicate"; the thesis only says "with
padding"). Zero padding hands the head a free "image border" feature as wide as a token, and on
the synthetic scenes MOVE then settles on a thin frame along the border (it meets the minimum
area, and shifting it leaves few artifacts); ``padding_mode="zeros"`` gives that behaviour back.

Widths: the first block has ``width`` channels and every following upsampling block halves them
(never below ``min_width``), because the last blocks run at full image resolution; the block
without upsampling keeps the last width. ``conv_per_block`` > 1 adds 3x3 conv/BN/LeakyReLU layers
inside each block (the deeper head of the ImageNet100 row of table 5.6).

The official MOVE head (``conv_minc128``, :func:`official_head` builds it) differs in four
details, all options here: widths ``max(128, int(D · 0.5^(k+1)))`` for block k (explicit
``widths=``; [192, 128, 128, 128] on DINO ViT-S/8), convolutions with a bias, zero padding,
LeakyReLU slope 0.01 and LayerNorm eps 1e-6. With MAE features the official head has no
LayerNorm of its own (``norm=False``): it reads the MAE's final, already normalised latent.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SegmenterHead", "head_widths", "official_head_widths", "official_head"]

# helpers


def head_widths(patch_size: int, *, width: int, min_width: int = 16) -> list[int]:
    """Channels of the log2(P) upsampling blocks followed by the block without upsampling."""
    ups = int(round(math.log2(patch_size)))
    if patch_size < 1 or 2**ups != patch_size:
        raise ValueError(f"the patch size must be a power of two (8, 16, ...), got {patch_size}")
    widths = [max(min_width, width // 2**i) for i in range(ups)]
    return widths + [widths[-1] if widths else width]


def official_head_widths(embed_dim: int, patch_size: int, *, min_width: int = 128, mult: float = 0.5) -> list[int]:
    """The official MOVE head's widths: ``max(min_width, int(D · mult^(k+1)))`` for the log2(P) + 1 blocks."""
    ups = int(round(math.log2(patch_size)))
    if patch_size < 1 or 2**ups != patch_size:
        raise ValueError(f"the patch size must be a power of two (8, 16, ...), got {patch_size}")
    return [max(min_width, int(embed_dim * mult ** (k + 1))) for k in range(ups + 1)]


def conv_block(c_in: int, c_out: int, *, convs: int, slope: float, padding_mode: str,
               bias: bool = False) -> list[nn.Module]:
    """``convs`` times (3x3 conv with padding, BatchNorm, LeakyReLU)."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, padding_mode=padding_mode, bias=bias),
                   nn.BatchNorm2d(c_out), nn.LeakyReLU(slope)]
    return layers


# classes


class SegmenterHead(nn.Module):
    """Features (B, D, H/P, W/P) -> mask (B, 1, H, W) in [0, 1]; see the module docstring."""

    def __init__(self, *, in_dim: int, patch_size: int, width: int = 128, min_width: int = 16,
                 conv_per_block: int = 1, slope: float = 0.2, padding_mode: str = "replicate",
                 widths: list[int] | None = None, bias: bool = False, norm: bool = True, norm_eps: float = 1e-5):
        super().__init__()
        if conv_per_block < 1:
            raise ValueError(f"conv_per_block must be >= 1, got {conv_per_block}")
        self.in_dim, self.patch_size = in_dim, patch_size
        if widths is None:
            widths = head_widths(patch_size, width=width, min_width=min_width)
        elif len(widths) != int(round(math.log2(patch_size))) + 1:
            raise ValueError(f"widths needs log2({patch_size}) + 1 = {int(round(math.log2(patch_size))) + 1} "
                             f"entries, got {widths}")
        # the new trainable LayerNorm on the frozen features (none when they are already normalised)
        self.norm = nn.LayerNorm(in_dim, eps=norm_eps) if norm else nn.Identity()
        blocks: list[nn.Module] = []
        c_in = in_dim
        for i, c_out in enumerate(widths):
            upsample = i < len(widths) - 1
            layers = ([nn.Upsample(scale_factor=2, mode="nearest")] if upsample else []) + \
                conv_block(c_in, c_out, convs=conv_per_block, slope=slope, padding_mode=padding_mode, bias=bias)
            blocks.append(nn.Sequential(*layers))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Conv2d(c_in, 1, 1)  # linear projection to one channel

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """The mask before the sigmoid, (B, 1, H, W)."""
        if features.ndim != 4 or features.shape[1] != self.in_dim:
            raise ValueError(f"expected features (B, {self.in_dim}, h, w), got {tuple(features.shape)}")
        h = self.norm(features.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, D, h, w), channels-last in memory
        h = self.blocks(h)  # (B, C, H, W)
        return self.out(h)  # (B, 1, H, W)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(features))  # (B, 1, H, W)


# constructors


def official_head(*, in_dim: int, patch_size: int, min_width: int = 128, conv_per_block: int = 1,
                  padding_mode: str = "zeros", norm: bool = True) -> SegmenterHead:
    """The official MOVE head ``conv_minc<min_width>`` (``blockd<conv_per_block>``): see the module docstring.

    ``padding_mode="replicate"`` is the workbench's variant; ``norm=False`` for features that are
    already normalised (the MAE's final latent).
    """
    return SegmenterHead(in_dim=in_dim, patch_size=patch_size, widths=official_head_widths(
        in_dim, patch_size, min_width=min_width), conv_per_block=conv_per_block, slope=0.01,
        padding_mode=padding_mode, bias=True, norm=norm, norm_eps=1e-6)
