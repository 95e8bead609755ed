"""A compact StyleGAN2 generator: modulated, demodulated convolutions; chapter 4's network.

The thesis builds chapter 4 on "a conditional variant of StyleGAN2" (section 4.1.1). Karras et
al. (2020) replace StyleGAN's AdaIN by *weight modulation and demodulation*: every 3×3 convolution
scales its input channels by a per-sample style s = A(w) (an affine map of w, bias 1 at init),

    w'_{ijk} = s_i · w_{ijk},        w''_{ijk} = w'_{ijk} / sqrt(Σ_{i,k} w'_{ijk}² + ε),

so that with unit-variance inputs every output channel has unit variance again (no instance
normalisation of the activations, so no "droplet" artifacts). The rest:

- the mapping network of :mod:`workbench.nets.stylegan` (8 layers at ``lr_mul`` 0.01); a class
  label enters it as a normalised embedding concatenated with the normalised z (StyleGAN2-ADA's
  conditioning), which is how the layer label y (0: background, 1: foreground + mask) is read;
- a learned 4×4 constant input; per block two modulated convolutions (the first upsamples by 2,
  bilinearly, before the convolution: StyleGAN2 uses a transposed convolution with a FIR filter),
  each followed by per-pixel noise with a learned strength, a bias and a leaky ReLU with He gain;
- the *skip* output architecture: a modulated 1×1 to-RGB(A) per resolution (not demodulated),
  the outputs summed after bilinear upsampling; ``architecture="orig"`` is StyleGAN2's ablation
  without output skips (Karras et al. 2020, figure 7 and table 2: one to-RGB(A) at the last
  resolution, as Progressive GAN and StyleGAN), a ladder switch of issue 16;
- the equalised learning rate everywhere (:class:`~workbench.nets.stylegan.EqualLinear`);
- ``num_ws`` = one style per convolution plus one for the last to-RGB: every to-RGB reads the
  style of the convolution after it (as in StyleGAN2, where block r's to-RGB shares the index of
  block 2r's first convolution), so style mixing works per layer.

The interface is :class:`~workbench.nets.stylegan.StyleGenerator`'s (``styles``, ``style_stack``,
``synthesis``, ``w_avg``, ``num_ws``), so the layered generators take either network.

Shapes: z (B, z_dim); ws (B, num_ws, w_dim); images (B, C, R, R), roughly in [-1, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from workbench.nets.stylegan import GAIN, EqualLinear, StyleCodes, scale_colour_init

__all__ = ["ARCHITECTURES", "ModulatedConv2d", "StyleGAN2Generator"]

DEMOD_EPS = 1e-8  # ε of the demodulation
ARCHITECTURES = ("skip", "orig")  # output skips (StyleGAN2's generator) or one to-RGB at the end (its ablation)


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are modulated by a per-sample style and (optionally) demodulated.

    ``forward(x (B, C_in, H, W), w (B, w_dim)) -> (B, C_out, H', W')``; ``up`` doubles H and W
    (bilinear) before the convolution. The weight is drawn N(0, 1) and scaled by 1/√fan_in at run
    time (equalised learning rate); the style affine starts with bias 1 (s = 1 at init).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, *, w_dim: int, demodulate: bool = True, up: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.affine = EqualLinear(w_dim, c_in, bias_init=1.0)
        self.scale, self.padding = 1 / math.sqrt(c_in * kernel * kernel), kernel // 2
        self.demodulate, self.up = demodulate, up

    def modulated_weight(self, w: torch.Tensor) -> torch.Tensor:
        """Per-sample weights (B, C_out, C_in, k, k): w'' of the module docstring."""
        style = self.affine(w)  # (B, C_in)
        weight = self.weight[None] * self.scale * style[:, None, :, None, None]  # (B, C_out, C_in, k, k)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + DEMOD_EPS)
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The same as convolving each sample with :meth:`modulated_weight`, computed as StyleGAN2's
        non-fused path: scale the input channels by s, convolve with the shared weight, scale the
        output channels by the demodulation factor (one batched convolution, fast on a CPU)."""
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)  # (B, C_in, 2H, 2W)
        style = self.affine(w)  # (B, C_in)
        weight = self.weight * self.scale  # (C_out, C_in, k, k)
        out = F.conv2d(x * style[:, :, None, None], weight, padding=self.padding)  # (B, C_out, H, W)
        if self.demodulate:
            energy = style.square() @ weight.square().sum(dim=(2, 3)).T  # (B, C_out): Σ_{i,k} (s_i w_ijk)²
            out = out * torch.rsqrt(energy + DEMOD_EPS)[:, :, None, None]
        return out


class SynthesisLayer(nn.Module):
    """Modulated 3×3 convolution -> per-pixel noise -> bias -> leaky ReLU with He gain."""

    def __init__(self, c_in: int, c_out: int, *, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(c_in, c_out, 3, w_dim=w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.register_buffer("const_noise", torch.randn(1, 1, resolution, resolution,
                                                        generator=torch.Generator().manual_seed(resolution)))

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, noise: str = "random") -> torch.Tensor:
        x = self.conv(x, w)  # (B, C_out, r, r)
        if noise == "random":
            x = x + self.noise_strength * torch.randn_like(x[:, :1])
        elif noise == "const":
            x = x + self.noise_strength * self.const_noise
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2) * GAIN


class ToRGB(nn.Module):
    """Modulated 1×1 convolution (not demodulated) plus a bias: features -> output channels."""

    def __init__(self, c_in: int, c_out: int, *, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(c_in, c_out, 1, w_dim=w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.view(1, -1, 1, 1)


class StyleGAN2Generator(StyleCodes):
    """StyleGAN2 generator G(z[, label]) -> (B, out_channels, R, R); see the module docstring.

    ``w_avg`` tracks the mean style in training mode for the truncation trick (ψ = ``truncation``).
    ``rgb_init`` scales the initial to-RGB weights of the first ``colour_channels`` outputs (default:
    all), as in :class:`~workbench.nets.stylegan.StyleGenerator`: at 1 (StyleGAN2) the summed skip
    outputs of chapter 4's ``small`` generator start at a standard deviation of 1.2–1.4, against
    the scenes' 0.4 (issue 16); a workbench switch, not StyleGAN2's. ``architecture``: one of
    ``ARCHITECTURES`` (see the module docstring).
    """

    def __init__(self, *, resolution: int, out_channels: int = 3, z_dim: int = 512, w_dim: int = 512,
                 mapping_layers: int = 8, width: int = 64, max_width: int = 512, num_classes: int = 0,
                 w_avg_beta: float = 0.995, rgb_init: float = 1.0, colour_channels: int | None = None,
                 architecture: str = "skip"):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
        super().__init__(resolution=resolution, out_channels=out_channels, z_dim=z_dim, w_dim=w_dim,
                         mapping_layers=mapping_layers, width=width, max_width=max_width, num_classes=num_classes,
                         w_avg_beta=w_avg_beta)
        widths = self.widths
        self.architecture = architecture
        self.layers, self.to_rgb = nn.ModuleList(), nn.ModuleList()
        self.first_layer = []  # index of each resolution's first convolution in self.layers
        for r, c in widths.items():
            self.first_layer.append(len(self.layers))
            if r > 4:
                self.layers.append(SynthesisLayer(widths[r // 2], c, w_dim=w_dim, resolution=r, up=True))
            self.layers.append(SynthesisLayer(c, c, w_dim=w_dim, resolution=r))
            if architecture == "skip" or r == resolution:
                self.to_rgb.append(ToRGB(c, out_channels, w_dim=w_dim))
                scale_colour_init(self.to_rgb[-1].conv.weight, rgb_init, colour_channels)  # 1: StyleGAN2 (see the docstring)
        self.num_ws = len(self.layers) + 1  # the last to-RGB has a style of its own

    def synthesis(self, ws: torch.Tensor, *, noise: str = "random") -> torch.Tensor:
        """Styles (B, num_ws, w_dim) -> image (B, out_channels, R, R); ``noise`` is random, const or none."""
        self.check_styles(ws, noise)
        x = self.const.expand(ws.shape[0], -1, -1, -1)  # (B, C4, 4, 4)
        if self.architecture == "orig":
            for i, layer in enumerate(self.layers):
                x = layer(x, ws[:, i], noise=noise)  # (B, C_r, r, r)
            return self.to_rgb[0](x, ws[:, len(self.layers)])  # (B, out_channels, R, R)
        out = None
        ends = [*self.first_layer[1:], len(self.layers)]
        for start, end, to_rgb in zip(self.first_layer, ends, self.to_rgb):
            for i in range(start, end):
                x = self.layers[i](x, ws[:, i], noise=noise)  # (B, C_r, r, r)
            rgb = to_rgb(x, ws[:, end])  # (B, out_channels, r, r): the style of the next convolution
            out = rgb if out is None else F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=False) + rgb
        return out

