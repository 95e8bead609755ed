"""U-Net (Ronneberger et al., 2015; thesis section 2.2.2, figure 2.1): an encoder-decoder with skips.

Chapter 3 uses it as the supervised "oracle" that stands in for Mask R-CNN (section 3.4.1), and
chapter 4 as its segmentation network S (section 4.2, "We choose the U-Net architecture").

Layout, for ``depth = D`` and stage widths ``w_i = min(width * 2**i, max_width)``::

    x (B, in, H, W)
    encoder  stage i = 0 .. D-1:  double conv -> skip_i (B, w_i, H/2^i, W/2^i), then 2x2 max-pool
    bottleneck:                   double conv at (B, w_D, H/2^D, W/2^D)
    decoder  stage i = D-1 .. 0:  2x up-sampling, concat skip_i, double conv -> (B, w_i, H/2^i, W/2^i)
    head:                         1x1 conv -> logits (B, out, H, W)

A *double conv* is two (3x3 conv with zero padding, norm, ReLU) layers. Up-sampling is bilinear
(``up="bilinear"``, the default: no checkerboard artifacts) or a learned 2x2 transposed
convolution (``up="transposed"``, as in the original U-Net and the thesis' U-Net discriminator).
H and W must be divisible by ``2**depth`` so that every skip matches its up-sampled partner.

Input scale: the network is scale-agnostic and the caller decides; the workbench feeds images in
[0, 1] (``workbench.methods.oracle`` does). The output is *logits*: apply ``sigmoid`` for a
one-channel mask, ``softmax`` over channels for several classes.

:meth:`UNet.encode` and :meth:`UNet.decode` expose the two halves, e.g. for a U-Net
discriminator that also reads a global score off the bottleneck (thesis eq. (4.9)).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["UNet", "NORMS", "UPSAMPLINGS", "stage_widths"]

NORMS = ("batch", "instance", "group", "none")  # normalisation layers after each 3x3 conv
UPSAMPLINGS = ("bilinear", "transposed")  # decoder up-sampling modes

# helpers


def stage_widths(*, width: int, depth: int, max_width: int) -> list[int]:
    """Channels of encoder stages 0 .. depth-1 and of the bottleneck (last entry): doubling, capped."""
    return [min(width * 2**i, max_width) for i in range(depth + 1)]


def make_norm(kind: str, channels: int) -> nn.Module:
    """The normalisation layer ``kind`` (one of :data:`NORMS`) for ``channels`` feature maps."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)  # at most 32 groups
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of {NORMS}")


# classes


class DoubleConv(nn.Sequential):
    """Two (3x3 conv, norm, ReLU) layers: (B, c_in, H, W) -> (B, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, *, norm: str = "batch"):
        bias = norm == "none"  # a norm layer right after the conv makes its bias redundant
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias), make_norm(norm, c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias), make_norm(norm, c_out), nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """Decoder stage: up-sample ``x`` 2x, concatenate ``skip``, double conv.

    (B, c_in, h, w) and (B, c_skip, 2h, 2w) -> (B, c_out, 2h, 2w).
    """

    def __init__(self, c_in: int, c_skip: int, c_out: int, *, norm: str = "batch", up: str = "bilinear"):
        super().__init__()
        if up == "bilinear":
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            c_up = c_in
        elif up == "transposed":
            self.up = nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2)
            c_up = c_out
        else:
            raise ValueError(f"unknown up-sampling {up!r}; choose one of {UPSAMPLINGS}")
        self.conv = DoubleConv(c_up + c_skip, c_out, norm=norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # (B, c_up, 2h, 2w)
        x = torch.cat([x, skip], dim=1)  # (B, c_up + c_skip, 2h, 2w)
        return self.conv(x)  # (B, c_out, 2h, 2w)


class UNet(nn.Module):
    """Images (B, in_channels, H, W) -> logits (B, out_channels, H, W); see the module docstring.

    Args:
        in_channels: input channels (3 for RGB images in [0, 1]).
        out_channels: output channels (1 for a binary mask's logits).
        width: channels of the first (full-resolution) stage; they double at each down-sampling.
        depth: number of 2x down-samplings; H and W must be multiples of ``2**depth``.
        max_width: cap on the channels of any stage.
        norm: "batch", "instance", "group" or "none", after every 3x3 conv.
        up: "bilinear" or "transposed" up-sampling in the decoder.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 1, *, width: int = 32, depth: int = 4,
                 max_width: int = 256, norm: str = "batch", up: Literal["bilinear", "transposed"] = "bilinear"):
        super().__init__()
        if min(in_channels, out_channels, width, max_width) < 1:
            raise ValueError("in_channels, out_channels, width and max_width must be >= 1, got "
                             f"{in_channels}, {out_channels}, {width}, {max_width}")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")
        if up not in UPSAMPLINGS:
            raise ValueError(f"unknown up-sampling {up!r}; choose one of {UPSAMPLINGS}")
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        self.widths = stage_widths(width=width, depth=depth, max_width=max_width)  # depth + 1 entries
        w = self.widths
        self.down = nn.ModuleList(DoubleConv(in_channels if i == 0 else w[i - 1], w[i], norm=norm) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(w[depth - 1], w[depth], norm=norm)
        # decoder stage i takes the output of stage i + 1 (or the bottleneck) and skip i
        self.up = nn.ModuleList(Up(w[i + 1], w[i], w[i], norm=norm, up=up) for i in reversed(range(depth)))
        self.head = nn.Conv2d(w[0], out_channels, 1)

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this (``2**depth``)."""
        return 2**self.depth

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless ``x`` is (B, in_channels, H, W) with H, W multiples of ``2**depth``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"UNet expects (B, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"UNet of depth {self.depth} needs H and W divisible by {self.multiple}, got {h}x{w}; "
                             f"resize or pad the input (e.g. to {-(-h // self.multiple) * self.multiple}x"
                             f"{-(-w // self.multiple) * self.multiple})")

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The skips of stages 0 .. depth-1 followed by the bottleneck: (B, w_i, H/2^i, W/2^i) each."""
        self.check_input(x)
        features = []
        for stage in self.down:
            x = stage(x)  # (B, w_i, H/2^i, W/2^i)
            features.append(x)
            x = self.pool(x)  # (B, w_i, H/2^(i+1), W/2^(i+1))
        features.append(self.bottleneck(x))  # (B, w_D, H/2^D, W/2^D)
        return features

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        """What :meth:`encode` returned -> logits (B, out_channels, H, W)."""
        *skips, x = features  # x: (B, w_D, H/2^D, W/2^D)
        for stage, skip in zip(self.up, reversed(skips)):
            x = stage(x, skip)  # (B, w_i, H/2^i, W/2^i)
        return self.head(x)  # (B, out_channels, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W), H and W multiples of ``2**depth`` -> logits (B, out_channels, H, W)."""
        return self.decode(self.encode(x))  # (B, out_channels, H, W)
