"""The projected discriminator exactly as MOVE's official code runs it (Projected GAN, Sauer et al. 2021).

Thesis section 5.3: MOVE uses the projected discriminator "in its standard setting". This module
is that setting, module for module, so that it reproduces the official logits (tests against
reference tensors in ``tests/test_move_parity_discriminator.py``). The frozen CNN is
:class:`workbench.nets.discriminators.EfficientNetPyramid` (``tf_efficientnet_lite0``, inputs
mapped to [-1, 1] and resized to 224 px, four stages of 24/40/112/320 channels at strides
4/8/16/32), which the method owns. This module holds the rest:

- **cross-channel mixing** (CCM): a fixed random 1x1 convolution *with bias* per stage,
  24->64, 40->128, 112->256, 320->512 (``scratch.layer{s}_ccm``);
- **cross-scale mixing** (CSM): fixed, top-down; each step adds the finer CCM map (except at the
  coarsest), upsamples x2 bilinearly (``align_corners=True``) and applies a fixed random 1x1
  convolution with bias: o3 = conv(up(c3)) 512->256, o2 = conv(up(o3 + c2)) 256->128,
  o1 = conv(up(o2 + c1)) 128->64, o0 = conv(up(o1 + c0)) 64->64 (``scratch.layer{s}_csm``);
  at 224 px the maps are 64x112², 64x56², 128x28², 256x14²;
- four **mini discriminators** (``mini_discs.{s}``), one per o_s: DownBlocks (spectral-norm 4x4
  stride-2 convolution with bias, BatchNorm2d, LeakyReLU 0.2) from a *nominal* resolution of
  128/64/32/16 down to 8, widths from Projected GAN's table (64 at 128 and 64, 128 at 32, 256 at
  16, 512 at 8), then a spectral-norm 4x4 convolution without bias to one channel: a 4x4 map of
  patch logits at 224 px.

The output is every patch logit, (B, 64) at 224 px, laid out ``[:, 16·s + 4·i + j]``; the hinge
loss of eq. (5.5)/(5.6) averages over all of them (:meth:`workbench.losses.Hinge.from_sets`). BatchNorm in training mode uses the statistics of the batch of each call, so
the method calls the discriminator once per input set, as the official loop does.

Spectral norm is ``torch.nn.utils.spectral_norm`` (the hook-based one, keys ``weight_orig``,
``weight_u``, ``weight_v``): one power iteration per training-mode call, v first, then u, as the
official code; ``torch.nn.utils.parametrizations.spectral_norm`` orders it differently.

The random mixing weights are buffers (never trained, but saved with the discriminator, so that a
reload judges alike); everything is drawn from ``seed`` (PyTorch's default initialisation of the
layers), independently of the global random state. 10,331,328 trainable parameters.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

__all__ = ["ProjectedGANDiscriminator", "FrozenConv1x1", "official_key", "from_official_state"]

WIDTHS = {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 64, 256: 32, 512: 16, 1024: 8}  # Projected GAN's widths
NOMINAL = (128, 64, 32, 16)  # nominal side of each mini discriminator's input (im_res 256, x2 by the CSM, /4 ... /32)

# helpers


def sn_conv(c_in: int, c_out: int, *, stride: int, padding: int, bias: bool) -> nn.Module:
    """A 4x4 convolution with hook-based spectral norm (one power iteration per training-mode call)."""
    return spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=stride, padding=padding, bias=bias))


def mixing_channels(channels: Sequence[int], width: int = 64) -> tuple[list[int], list[int]]:
    """(CCM outputs, CSM outputs) per scale: (w, 2w, 4w, 8w) and (w, w, 2w, 4w) (Projected GAN, ``expand``)."""
    if len(channels) != 4:
        raise ValueError(f"the projected discriminator mixes four scales, got {len(channels)} feature maps")
    return [width, 2 * width, 4 * width, 8 * width], [width, width, 2 * width, 4 * width]


# classes


class FrozenConv1x1(nn.Module):
    """A fixed 1x1 convolution with bias: ``weight`` (C_out, C_in, 1, 1) and ``bias`` (C_out,) are buffers."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        init = nn.Conv2d(c_in, c_out, 1)  # PyTorch's default initialisation, as the official random layers
        self.register_buffer("weight", init.weight.detach().clone())
        self.register_buffer("bias", init.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))  # (B, C_out, H, W)


class ScaleMixing(nn.Module):
    """One CSM step: (x [+ finer]) -> bilinear x2 (align_corners=True) -> fixed 1x1 conv."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.out_conv = FrozenConv1x1(c_in, c_out)

    def forward(self, x: torch.Tensor, finer: torch.Tensor | None = None) -> torch.Tensor:
        if finer is not None:
            x = x + finer  # (B, C, H, W)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)  # (B, C, 2H, 2W)
        return self.out_conv(x)


class DownBlock(nn.Module):
    """SN conv 4x4 stride 2 (bias) -> BatchNorm2d -> LeakyReLU(0.2): halves the map."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.main = nn.Sequential(sn_conv(c_in, c_out, stride=2, padding=1, bias=True), nn.BatchNorm2d(c_out),
                                  nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class MiniDiscriminator(nn.Module):
    """DownBlocks from a nominal side ``start`` to 8, then an SN 4x4 conv to one channel: patch logits (B, 1, h, w)."""

    def __init__(self, c_in: int, start: int, end: int = 8):
        super().__init__()
        widths = dict(WIDTHS)
        widths[start] = c_in
        layers: list[nn.Module] = []
        side = start
        while side > end:
            layers.append(DownBlock(widths[side], widths[side // 2]))
            side //= 2
        layers.append(sn_conv(widths[end], 1, stride=1, padding=0, bias=False))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class ProjectedGANDiscriminator(nn.Module):
    """Fixed CCM + CSM over four frozen feature maps, then four BN mini discriminators -> patch logits (B, 64).

    Args:
        channels: channels of the frozen network's four maps, finest first (EfficientNet-lite0: 24, 40, 112, 320).
        width: ``cout`` of Projected GAN (64): the CCM gives (w, 2w, 4w, 8w) channels, the CSM (w, w, 2w, 4w).
        seed: draws the fixed mixing and the initial trainable weights.
    """

    def __init__(self, *, channels: Sequence[int], width: int = 64, seed: int = 0):
        super().__init__()
        ccm, csm = mixing_channels(channels, width)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.scratch = nn.Module()
            for s, (c_in, c_out) in enumerate(zip(channels, ccm)):
                setattr(self.scratch, f"layer{s}_ccm", FrozenConv1x1(c_in, c_out))
            for s in (3, 2, 1, 0):  # the official creation order (coarsest first)
                setattr(self.scratch, f"layer{s}_csm", ScaleMixing(ccm[s] if s == 3 else csm[s + 1], csm[s]))
            self.mini_discs = nn.ModuleList(MiniDiscriminator(c, start) for c, start in zip(csm, NOMINAL))

    def mix(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """CCM then top-down CSM: the maps o_0 .. o_3 that the mini discriminators read."""
        if len(features) != 4:
            raise ValueError(f"expected 4 feature maps, got {len(features)}")
        c = [getattr(self.scratch, f"layer{s}_ccm")(f) for s, f in enumerate(features)]  # (B, ccm_s, r_s, r_s)
        o3 = self.scratch.layer3_csm(c[3])  # (B, 4w, 2 r_3, 2 r_3)
        o2 = self.scratch.layer2_csm(o3, c[2])
        o1 = self.scratch.layer1_csm(o2, c[1])
        o0 = self.scratch.layer0_csm(o1, c[0])
        return [o0, o1, o2, o3]

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        maps = self.mix(features)
        logits = [disc(m).flatten(1) for disc, m in zip(self.mini_discs, maps)]  # [(B, h_s·w_s)]
        return torch.cat(logits, dim=1)  # (B, 64) at 224 px: [:, 16·s + 4·i + j]


# official checkpoint names


def official_key(key: str) -> str:
    """The official name (``D.feature_network.scratch.*`` / ``D.discriminator.mini_discs.*``) of one of our keys."""
    if key.startswith("scratch."):
        return "D.feature_network." + key
    if key.startswith("mini_discs."):
        return "D.discriminator." + key
    raise KeyError(f"{key} is not a key of ProjectedGANDiscriminator")


def from_official_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict from the official discriminator's tensors (official key names; other keys are left out)."""
    out = {}
    for key, value in state.items():
        for prefix in ("D.feature_network.scratch.", "D.discriminator.mini_discs."):
            if key.startswith(prefix):
                out[key.removeprefix("D.feature_network.").removeprefix("D.discriminator.")] = value
    return out


def official_efficientnet_key(timm_key: str) -> str:
    """The official name of a timm ``tf_efficientnet_lite0`` tensor inside the discriminator.

    The official feature network regroups timm's modules: layer0 = (conv_stem, bn1, act1,
    blocks.0, blocks.1), layer1 = blocks.2, layer2 = blocks.3-4, layer3 = blocks.5-6.
    """
    prefix = "D.feature_network.pretrained."
    if timm_key.startswith("conv_stem."):
        return prefix + "layer0.0." + timm_key.removeprefix("conv_stem.")
    if timm_key.startswith("bn1."):
        return prefix + "layer0.1." + timm_key.removeprefix("bn1.")
    if timm_key.startswith("blocks."):
        _, block, rest = timm_key.split(".", 2)
        layer, index = {0: (0, 3), 1: (0, 4), 2: (1, 0), 3: (2, 0), 4: (2, 1), 5: (3, 0), 6: (3, 1)}[int(block)]
        return f"{prefix}layer{layer}.{index}.{rest}"
    raise KeyError(f"{timm_key} is not used by the official discriminator")
