"""A compact StyleGAN: mapping network, constant input, AdaIN styles, noise, skip RGB(A) outputs.

The generator of chapter 3 follows StyleGAN (Karras et al. 2019, section 3.3 of the thesis): a
mapping network turns z ~ N(0, I) into a style w; a learned 4×4 constant is upsampled block by
block, and every block has two layers (two 3×3 convolutions; at 4×4 the constant and one
convolution), each followed by per-pixel noise, a bias, a leaky ReLU and AdaIN with its own
affine map of w (so a block takes two style vectors, and the thesis' encoder predicts "5 scales ·
2 AdaIN layers" codes per generator at 64 px). Every
resolution has a 1×1 to-RGB(A) head and the outputs are summed after upsampling (StyleGAN2's
skip outputs), so ``out_channels`` may be 3 (an image), 4 (foreground + mask) or 7 (all three
layers). Progressive growing (section 3.3: from 8×8, ProGAN's schedule) is a state set by
:meth:`StyleGenerator.grow` and :meth:`StyleDiscriminator.grow`: the generator stops at the stage
resolution r, the newest to-RGB output faded in by α, and repeats each pixel to R×R so that
every caller still gets R×R (average-pooling it back to r is exact); the discriminator reads
r×r images through its own from-RGB at r, the next one down faded out by 1 - α. Without
``grow`` (stage R, α = 1) every resolution trains from the start, and the skip outputs give the
low resolutions a direct path.

Everything uses the equalised learning rate of ProGAN/StyleGAN: weights are drawn N(0, 1) and
scaled at run time by He's constant, so Adam's steps are the same relative size in every layer;
the mapping network learns 100× slower (``lr_mul = 0.01``). A class label (chapter 4) enters the
mapping network as a normalised embedding concatenated with z, and the discriminator as a
projection term.

Shapes: z (B, z_dim); w (B, w_dim); a style stack ``ws`` (B, num_ws, w_dim), one row per AdaIN
layer (and per generator for the layered model); images (B, C, R, R), roughly in [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RESOLUTIONS", "EqualLinear", "EqualConv2d", "MappingNetwork", "StyleCodes", "StyleGenerator", "StyleDiscriminator",
           "channel_widths", "mixing_cutoffs", "mix_styles", "scale_colour_init"]

RESOLUTIONS = (8, 16, 32, 64, 128, 256)
NOISE_MODES = ("random", "const", "none")
GAIN = math.sqrt(2)  # He gain for leaky ReLU activations

# helpers


def channel_widths(resolution: int, *, width: int, max_width: int) -> dict[int, int]:
    """Channels per resolution 4 … R: ``width`` at R, doubling at every halving, capped at ``max_width``."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
    levels = int(math.log2(resolution)) - 1  # 4, 8, ..., R
    return {4 * 2**i: min(width * 2 ** (levels - 1 - i), max_width) for i in range(levels)}


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise every vector of (B, C, ...) to unit root-mean-square over C."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU (slope 0.2) with He gain, as in StyleGAN."""
    return F.leaky_relu(x, 0.2) * GAIN


def mixing_cutoffs(batch: int, num_ws: int, *, probability: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Style-mixing crossover points (B,): with ``probability`` a layer index in [1, num_ws), else ``num_ws`` (no mixing).

    StyleGAN's mixing regularisation (p = 0.9 in section 3.3): layers before the cutoff take the
    style of z, layers from it on the style of a second code z₂.
    """
    mix = torch.rand(batch, generator=generator) < probability  # (B,)
    cut = torch.randint(1, max(num_ws, 2), (batch,), generator=generator)  # (B,)
    return torch.where(mix, cut, torch.full_like(cut, num_ws))


def mix_styles(w: torch.Tensor, w2: torch.Tensor, cutoff: torch.Tensor, num_ws: int) -> torch.Tensor:
    """Stack styles (B, num_ws, w_dim): ``w`` for layers below ``cutoff`` (B,), ``w2`` from there on."""
    layer = torch.arange(num_ws, device=w.device).view(1, num_ws, 1)  # (1, L, 1)
    return torch.where(layer < cutoff.to(w.device).view(-1, 1, 1), w[:, None], w2[:, None])  # (B, L, w_dim)


@torch.no_grad()
def scale_colour_init(weight: torch.Tensor, rgb_init: float, colour_channels: int | None = None) -> None:
    """Scale the initial to-RGB ``weight`` (C_out, C_in, 1, 1) of the first ``colour_channels`` outputs (all
    when None) by ``rgb_init``, in place: the ``rgb_init`` switch of both generators (issue 16)."""
    weight[:colour_channels].mul_(rgb_init)  # [:None] is every channel


# layers


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: weight N(0, 1/lr_mul²), scaled by lr_mul/√fan_in at run time."""

    def __init__(self, c_in: int, c_out: int, *, bias_init: float = 0.0, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((c_out,), float(bias_init)) / lr_mul)
        self.scale, self.lr_mul = lr_mul / math.sqrt(c_in), lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    """Convolution (stride 1, same padding) with equalised learning rate."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.scale, self.padding = 1 / math.sqrt(c_in * kernel * kernel), kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class MappingNetwork(nn.Module):
    """z (and a class label) -> w through ``layers`` leaky-ReLU MLP layers (StyleGAN's f)."""

    def __init__(self, *, z_dim: int, w_dim: int, layers: int, num_classes: int = 0, lr_mul: float = 0.01):
        super().__init__()
        self.embed = EqualLinear(num_classes, z_dim) if num_classes else None
        dims = [z_dim * (2 if num_classes else 1)] + [w_dim] * layers
        self.layers = nn.ModuleList(EqualLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims[:-1], dims[1:]))
        self.num_classes = num_classes

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = pixel_norm(z)  # (B, z_dim)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this generator is class-conditional: pass labels (B,)")
            onehot = F.one_hot(labels.long(), self.num_classes).to(z.dtype)  # (B, classes)
            x = torch.cat([x, pixel_norm(self.embed(onehot))], dim=1)  # (B, 2·z_dim)
        for layer in self.layers:
            x = lrelu(layer(x))
        return x  # (B, w_dim)


class StyleLayer(nn.Module):
    """[2× upsample] -> 3×3 conv -> noise -> bias, leaky ReLU -> AdaIN(w) (one StyleGAN layer)."""

    def __init__(self, c_in: int, c_out: int, *, w_dim: int, resolution: int, up: bool = False, conv: bool = True):
        super().__init__()
        self.up = up
        self.conv = EqualConv2d(c_in, c_out, 3, bias=False) if conv else None
        self.noise_weight = nn.Parameter(torch.zeros(c_out))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.style = EqualLinear(w_dim, 2 * c_out)  # AdaIN scale and bias from w
        with torch.no_grad():
            self.style.bias[:c_out] = 1.0  # scale starts at 1
        self.register_buffer("const_noise", torch.randn(1, 1, resolution, resolution,
                                                        generator=torch.Generator().manual_seed(resolution)))

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, noise: str = "random") -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)  # (B, C, 2H, 2W)
        if self.conv is not None:
            x = self.conv(x)  # (B, C', H, W)
        if noise == "random":
            x = x + self.noise_weight.view(1, -1, 1, 1) * torch.randn_like(x[:, :1])
        elif noise == "const":
            x = x + self.noise_weight.view(1, -1, 1, 1) * self.const_noise
        x = lrelu(x + self.bias.view(1, -1, 1, 1))
        scale, bias = self.style(w).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)  # (B, C', 1, 1) each
        return scale * F.instance_norm(x) + bias  # AdaIN


# networks


class StyleCodes(nn.Module):
    """What StyleGAN's and StyleGAN2's generators share: z (and a label) -> the stack of styles -> ``synthesis``.

    The constructor builds the mapping network, the learned 4×4 constant and the ``w_avg`` buffer and
    keeps ``widths`` (channels per resolution); a subclass adds its layers, sets ``num_ws`` and defines
    ``synthesis(ws (B, num_ws, w_dim), *, noise)``.
    """

    def __init__(self, *, resolution: int, out_channels: int, z_dim: int, w_dim: int, mapping_layers: int,
                 width: int, max_width: int, num_classes: int, w_avg_beta: float):
        super().__init__()
        self.widths = channel_widths(resolution, width=width, max_width=max_width)
        self.resolution, self.out_channels, self.z_dim, self.w_dim = resolution, out_channels, z_dim, w_dim
        self.num_classes, self.w_avg_beta = num_classes, w_avg_beta
        self.mapping = MappingNetwork(z_dim=z_dim, w_dim=w_dim, layers=mapping_layers, num_classes=num_classes)
        self.const = nn.Parameter(torch.randn(1, self.widths[4], 4, 4))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def check_styles(self, ws: torch.Tensor, noise: str) -> None:
        """Raise ValueError unless ``ws`` is (B, num_ws, w_dim) and ``noise`` one of :data:`NOISE_MODES`."""
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")
        if ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be (B, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")

    def styles(self, z: torch.Tensor, labels: torch.Tensor | None = None, *, truncation: float = 1.0) -> torch.Tensor:
        """w (B, w_dim) of z; updates ``w_avg`` in training mode; ψ-truncated towards it when ``truncation`` < 1."""
        w = self.mapping(z, labels)  # (B, w_dim)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().mean(0), 1 - self.w_avg_beta)
        if truncation != 1:
            w = self.w_avg.lerp(w, truncation)
        return w

    def style_stack(self, z: torch.Tensor, labels: torch.Tensor | None = None, *, truncation: float = 1.0,
                    mix_z: torch.Tensor | None = None, cutoff: torch.Tensor | None = None) -> torch.Tensor:
        """The styles of every styled layer (B, num_ws, w_dim); with ``mix_z`` and ``cutoff`` (B,), style mixing."""
        w = self.styles(z, labels, truncation=truncation)  # (B, w_dim)
        if mix_z is None or cutoff is None:
            return w[:, None].expand(-1, self.num_ws, -1)
        return mix_styles(w, self.styles(mix_z, labels, truncation=truncation), cutoff, self.num_ws)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, *, truncation: float = 1.0,
                mix_z: torch.Tensor | None = None, cutoff: torch.Tensor | None = None,
                noise: str = "random") -> torch.Tensor:
        return self.synthesis(self.style_stack(z, labels, truncation=truncation, mix_z=mix_z, cutoff=cutoff),
                              noise=noise)


class StyleGenerator(StyleCodes):
    """StyleGAN generator G(z[, label]) -> (B, out_channels, R, R); see the module docstring.

    ``num_ws`` = 2 per resolution (4×4 … R×R). ``w_avg`` tracks the mean style in training mode,
    for the truncation trick (ψ = ``truncation``; 1 disables it).

    ``rgb_init`` scales the initial to-RGB weights of the first ``colour_channels`` outputs (default:
    all; the layered generators leave their mask logit alone) (StyleGAN: 1). At 1 the summed skip
    outputs start with a standard deviation of about 3.5 against real images' 0.4, and with the
    equalised learning rate Adam moves a weight by about ``lr`` per step, so a short run spends its
    first thousand steps shrinking the image (issue 16); a workbench switch, not StyleGAN's.
    """

    def __init__(self, *, resolution: int, out_channels: int = 3, z_dim: int = 512, w_dim: int = 512,
                 mapping_layers: int = 8, width: int = 64, max_width: int = 512, num_classes: int = 0,
                 w_avg_beta: float = 0.995, rgb_init: float = 1.0, colour_channels: int | None = None):
        super().__init__(resolution=resolution, out_channels=out_channels, z_dim=z_dim, w_dim=w_dim,
                         mapping_layers=mapping_layers, width=width, max_width=max_width, num_classes=num_classes,
                         w_avg_beta=w_avg_beta)
        widths = self.widths
        self.layers, self.to_rgb = nn.ModuleList(), nn.ModuleList()
        for r, c in widths.items():
            c_in = widths.get(r // 2, c)
            first = (StyleLayer(c, c, w_dim=w_dim, resolution=r, conv=False) if r == 4
                     else StyleLayer(c_in, c, w_dim=w_dim, resolution=r, up=True))
            self.layers.extend([first, StyleLayer(c, c, w_dim=w_dim, resolution=r)])
            self.to_rgb.append(EqualConv2d(c, out_channels, 1))
            scale_colour_init(self.to_rgb[-1].weight, rgb_init, colour_channels)  # 1: StyleGAN (see the docstring)
        self.num_ws = len(self.layers)
        self.stage, self.fade = resolution, 1.0  # progressive growing: see grow()

    def grow(self, stage: int, fade: float = 1.0) -> None:
        """Synthesise at ``stage`` × ``stage`` (4 … R), the newest to-RGB output scaled by ``fade`` α ∈ [0, 1]
        (ProGAN's fade-in, in StyleGAN2's skip form); the image is still returned at R × R."""
        if stage not in self.widths or not 0 <= fade <= 1:
            raise ValueError(f"stage must be one of {sorted(self.widths)} and fade in [0, 1], got {stage}, {fade}")
        self.stage, self.fade = stage, float(fade)

    def synthesis(self, ws: torch.Tensor, *, noise: str = "random") -> torch.Tensor:
        """Styles (B, num_ws, w_dim) -> image (B, out_channels, R, R); ``noise`` is random, const or none."""
        self.check_styles(ws, noise)
        x = self.const.expand(ws.shape[0], -1, -1, -1)  # (B, C4, 4, 4)
        out = None
        for i, (r, to_rgb) in enumerate(zip(self.widths, self.to_rgb)):
            if r > self.stage:
                break
            x = self.layers[2 * i](x, ws[:, 2 * i], noise=noise)
            x = self.layers[2 * i + 1](x, ws[:, 2 * i + 1], noise=noise)  # (B, C_r, r, r)
            rgb = to_rgb(x)  # (B, out_channels, r, r)
            if r == self.stage and out is not None:
                rgb = self.fade * rgb  # growing: the newest resolution fades in
            out = rgb if out is None else F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=False) + rgb
        if self.stage < self.resolution:  # (B, C, R, R): each pixel repeated, so pooling back to the stage is exact
            out = F.interpolate(out, scale_factor=self.resolution // self.stage, mode="nearest")
        return out



class MinibatchStd(nn.Module):
    """Append the mean standard deviation over groups of ``group`` samples as one more channel (ProGAN)."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = math.gcd(self.group, b)
        std = x.view(g, -1, c, h, w).var(dim=0, unbiased=False).add(1e-8).sqrt()  # (B/g, C, H, W)
        std = std.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1).repeat(g, 1, h, w)  # (B, 1, H, W)
        return torch.cat([x, std], dim=1)


DISCRIMINATOR_ARCHITECTURES = ("plain", "resnet")  # StyleGAN's blocks; StyleGAN2's residual blocks


class StyleDiscriminator(nn.Module):
    """StyleGAN's discriminator: from-RGB, two 3×3 convs and a 2× average pool per resolution, then
    minibatch standard deviation, a 3×3 conv and two dense layers at 4×4 -> one logit per image.

    ``architecture="resnet"`` is StyleGAN2's residual discriminator (Karras et al. 2020, figure 7c):
    every block also adds a 1×1, bias-free projection of its pooled input, and the sum is scaled
    by 1/√2 to keep the variance.

    With ``num_classes`` the logit gains the projection term ⟨embed(y), h⟩ (conditional, chapter 4).
    :meth:`features` returns the activations at ``feature_resolution`` for the perceptual loss
    of eq. (3.7) (the thesis: 512 × 8 × 8).
    """

    def __init__(self, *, resolution: int, in_channels: int = 3, width: int = 64, max_width: int = 512,
                 num_classes: int = 0, mbstd_group: int = 4, architecture: str = "plain", grow_from: int = 0):
        super().__init__()
        if architecture not in DISCRIMINATOR_ARCHITECTURES:
            raise ValueError(f"architecture must be one of {DISCRIMINATOR_ARCHITECTURES}, got {architecture!r}")
        widths = channel_widths(resolution, width=width, max_width=max_width)
        self.resolution, self.architecture = resolution, architecture
        self.from_rgb = EqualConv2d(in_channels, widths[resolution], 1)
        if grow_from and (grow_from not in widths or grow_from >= resolution):
            raise ValueError(f"grow_from must be a resolution in {sorted(widths)[:-1]}, got {grow_from}")
        # progressive growing: one more from-RGB per resolution grow_from … R/2 (ProGAN); none without it
        self.grow_from_rgb = nn.ModuleDict({str(r): EqualConv2d(in_channels, c, 1) for r, c in widths.items()
                                            if grow_from and grow_from <= r < resolution})
        self.fade = 1.0  # progressive growing: weight of the newest block; see grow()
        self.blocks = nn.ModuleList()
        self.block_resolutions = [r for r in sorted(widths, reverse=True) if r > 4]
        for r in self.block_resolutions:
            convs = [EqualConv2d(widths[r], widths[r], 3), EqualConv2d(widths[r], widths[r // 2], 3)]
            if architecture == "resnet":
                convs.append(EqualConv2d(widths[r], widths[r // 2], 1, bias=False))  # the residual projection
            self.blocks.append(nn.ModuleList(convs))
        c4 = widths[4]
        self.mbstd = MinibatchStd(mbstd_group)
        self.conv4 = EqualConv2d(c4 + 1, c4, 3)
        self.dense = EqualLinear(c4 * 16, c4)
        self.out = EqualLinear(c4, 1)
        self.embed = EqualLinear(num_classes, c4) if num_classes else None
        self.num_classes = num_classes

    def grow(self, fade: float = 1.0) -> None:
        """Progressive growing: images of a stage r < R are read by the from-RGB at r (built by ``grow_from``);
        the first block's output is α·block + (1 - α)·from-RGB(pooled image) at r/2 with α = ``fade``."""
        if not 0 <= fade <= 1:
            raise ValueError(f"fade must be in [0, 1], got {fade}")
        self.fade = float(fade)

    def is_stage(self, x: torch.Tensor) -> bool:
        """Whether images (B, C, r, r) are a growing stage r < R (read by their own from-RGB, from block r on);
        any other size goes through every block, as the U-Net discriminators' segmenters need."""
        return str(x.shape[-1]) in self.grow_from_rgb

    def from_image(self, x: torch.Tensor) -> torch.Tensor:
        """from-RGB of images (B, C_in, r, r): the growing stage's own, else the main one."""
        conv = self.grow_from_rgb[str(x.shape[-1])] if self.is_stage(x) else self.from_rgb
        return lrelu(conv(x))  # (B, C_r, r, r)

    def blocks_down(self, x: torch.Tensor, *, stop: int = 4) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Run the blocks from the image's resolution down to ``stop``; yield each block's (first-conv
        activations (B, C_r, r, r), output (B, C_{r/2}, r/2, r/2)). One loop for :meth:`trunk` and :meth:`encode`.
        While a stage (R included) fades in (α < 1), the first output is faded with the pooled image's from-RGB."""
        image, stage = x, self.is_stage(x)
        x = self.from_image(x)  # (B, C_r, r, r)
        for r, block in zip(self.block_resolutions, self.blocks):
            if stage and r > image.shape[-1]:  # a growing stage starts at its own block
                continue
            if r <= stop:
                break
            skip = lrelu(block[0](x))  # (B, C_r, r, r)
            out = F.avg_pool2d(lrelu(block[1](skip)), 2)  # (B, C_{r/2}, r/2, r/2)
            if len(block) == 3:  # residual: (main + projected pooled input) / √2
                out = (out + block[2](F.avg_pool2d(x, 2))) * math.sqrt(0.5)
            if self.fade < 1 and r == image.shape[-1] and (stage or r == self.resolution):  # growing: the newest block fades in
                out = self.fade * out + (1 - self.fade) * self.from_image(F.avg_pool2d(image, 2))
            x = out
            yield skip, x

    def trunk(self, x: torch.Tensor, *, stop: int = 4) -> torch.Tensor:
        """Activations (B, C_stop, stop, stop) after the blocks down to resolution ``stop``."""
        h = None
        for _, h in self.blocks_down(x, stop=stop):
            pass
        return h if h is not None else self.from_image(x)  # stop = R: no block runs

    def features(self, x: torch.Tensor, *, resolution: int = 8) -> torch.Tensor:
        """The discriminator's features at ``resolution`` (B, C, r, r): the D_feat of eq. (3.7)."""
        if resolution not in [4, *self.block_resolutions]:
            raise ValueError(f"features exist at resolutions {[4, *self.block_resolutions]}, not {resolution}")
        return self.trunk(x, stop=resolution)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Skips for a U-Net decoder: the first conv's activations at each block resolution R … 8
        ((B, C_r, r, r) each), then the trunk's output (B, C4, 4, 4)."""
        skips, outputs = zip(*self.blocks_down(x))
        return [*skips, outputs[-1]]

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.trunk(x), labels)

    def head(self, h: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Trunk output (B, C4, 4, 4) -> one logit per image (B,)."""
        h = lrelu(self.conv4(self.mbstd(h)))  # (B, C4, 4, 4)
        h = lrelu(self.dense(h.flatten(1)))  # (B, C4)
        logits = self.out(h).squeeze(1)  # (B,)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is class-conditional: pass labels (B,)")
            onehot = F.one_hot(labels.long(), self.num_classes).to(h.dtype)  # (B, classes)
            logits = logits + (self.embed(onehot) * h).sum(1) / math.sqrt(h.shape[1])
        return logits
