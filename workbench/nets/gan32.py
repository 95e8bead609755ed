"""The ResNet GAN of KDD GAN (chapter 6): BigGAN's CIFAR-10 generator and discriminator.

Section 6.3 trains "the same architecture used in the original BigGAN work" on CIFAR-10. Its
32 px networks, with ``width`` = BigGAN's ``ch`` (64 for the thesis) and C = 4·width channels
everywhere:

**Generator** ``G(z, y) -> (B, 3, R, R)`` in [0, 1]: a linear layer from z to a 4×4×C map, three
up-ResBlocks (BN, ReLU, 2× nearest upsampling, 3×3 conv, BN, ReLU, 3×3 conv; a 1×1 conv on the
upsampled shortcut), then BN, ReLU, a 3×3 conv to RGB and tanh, mapped to the workbench's [0, 1].
Conditional (``num_classes > 0``): every BatchNorm of the blocks is a *conditional* BatchNorm whose
gain 1 + W_γ e(y) and bias W_β e(y) come from one class embedding e(y) shared by all layers.

**Discriminator** ``D(x, y) -> DiscriminatorOutput``: an "optimised" first ResBlock (conv, ReLU,
conv, 2× average pooling; pooled 1×1 shortcut), pre-activation down-ResBlocks to 8×8, two
ResBlocks at 8×8, ReLU and global *sum* pooling to (B, C). Then the thesis' feature map
φ: a linear layer to K = ``feature_dim`` features (K = 128, section 6.4.1), unnormalised (the
KDD loss projects them onto the sphere itself, eq. 6.9). The logit is a linear head on φ plus
the class projection yᵀVφ of eq. (6.16) (Miyato & Koyama): ``logits = w·φ + b + yᵀVφ``; the
label embeddings Vᵀy are returned too, so that the KDD loss can project its normalised φ.
D works on images in [−1, 1] (BigGAN's range): ``features`` maps the workbench's [0, 1] images
there first, and ``features_of_input`` is φ on that input space (where eq. 6.17's finite
difference and unit target are measured).
Every layer of D, and every layer of G but its BatchNorms, is spectrally normalised (BigGAN).

Other resolutions (16 and 64 px) add or remove one up-block in G and one down-block in D at
the same width; only 32 px is BigGAN's published layout. Weights start as N(0, 0.02) (the
``N02`` initialisation of BigGAN's CIFAR script).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["RESOLUTIONS", "DiscriminatorOutput", "Generator", "Discriminator", "ConditionalBatchNorm"]

RESOLUTIONS = (16, 32, 64)

# helpers


def _sn(module: nn.Module, enabled: bool = True) -> nn.Module:
    """``module`` with spectral normalisation of its weight (one power iteration per call)."""
    return spectral_norm(module) if enabled else module


def _init_n02(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases for convolutions, linear layers and embeddings."""
    if isinstance(module, (nn.Conv2d, nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


def _check_resolution(resolution: int) -> int:
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
    return int(math.log2(resolution))


def _check_labels(y: torch.Tensor | None, num_classes: int, batch: int, who: str) -> None:
    if num_classes == 0:
        if y is not None:
            raise ValueError(f"this {who} is unconditional (num_classes=0) but got labels")
        return
    if y is None:
        raise ValueError(f"this {who} is conditional ({num_classes} classes): pass labels y of shape ({batch},)")
    if y.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},), got {tuple(y.shape)}")


# classes: generator


class ConditionalBatchNorm(nn.Module):
    """BatchNorm2d with class-dependent gain and bias (BigGAN): x̂·(1 + W_γ e) + W_β e.

    With ``cond_dim=0`` it is a plain BatchNorm2d with its own affine parameters.
    """

    def __init__(self, channels: int, *, cond_dim: int = 0, spectral: bool = True):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=cond_dim == 0)
        self.cond_dim = cond_dim
        if cond_dim:
            self.gain = _sn(nn.Linear(cond_dim, channels, bias=False), spectral)
            self.bias = _sn(nn.Linear(cond_dim, channels, bias=False), spectral)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.bn(x)  # (B, C, H, W)
        if not self.cond_dim:
            return h
        gain = 1 + self.gain(cond)[:, :, None, None]  # (B, C, 1, 1)
        bias = self.bias(cond)[:, :, None, None]  # (B, C, 1, 1)
        return h * gain + bias


class UpBlock(nn.Module):
    """BigGAN's generator ResBlock: 2× nearest upsampling, two 3×3 convs, a 1×1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int, *, cond_dim: int, spectral: bool):
        super().__init__()
        self.bn1 = ConditionalBatchNorm(c_in, cond_dim=cond_dim, spectral=spectral)
        self.conv1 = _sn(nn.Conv2d(c_in, c_out, 3, padding=1), spectral)
        self.bn2 = ConditionalBatchNorm(c_out, cond_dim=cond_dim, spectral=spectral)
        self.conv2 = _sn(nn.Conv2d(c_out, c_out, 3, padding=1), spectral)
        self.conv_sc = _sn(nn.Conv2d(c_in, c_out, 1), spectral)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2, mode="nearest")  # (B, C_in, 2H, 2W)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))  # (B, C_out, 2H, 2W)
        return h + self.conv_sc(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    """Latent codes (B, z_dim) [and labels (B,)] -> images (B, 3, R, R) in [0, 1]; see the module docstring."""

    def __init__(self, *, resolution: int = 32, z_dim: int = 128, width: int = 64, num_classes: int = 0,
                 shared_dim: int = 128, spectral: bool = True):
        super().__init__()
        n_up = _check_resolution(resolution) - 2  # 4×4 -> R×R
        if width < 1 or z_dim < 1:
            raise ValueError(f"width and z_dim must be >= 1, got {width} and {z_dim}")
        c = 4 * width
        self.resolution, self.z_dim, self.num_classes = resolution, z_dim, num_classes
        cond_dim = shared_dim if num_classes else 0
        self.shared = nn.Embedding(num_classes, shared_dim) if num_classes else None  # e(y), shared by every CBN
        self.linear = _sn(nn.Linear(z_dim, c * 16), spectral)
        self.blocks = nn.ModuleList(UpBlock(c, c, cond_dim=cond_dim, spectral=spectral) for _ in range(n_up))
        self.out_bn = nn.BatchNorm2d(c)
        self.out_conv = _sn(nn.Conv2d(c, 3, 3, padding=1), spectral)
        self.apply(_init_n02)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        _check_labels(y, self.num_classes, z.shape[0], "generator")
        cond = self.shared(y) if self.shared is not None else None  # (B, shared_dim) or None
        h = self.linear(z).view(z.shape[0], -1, 4, 4)  # (B, C, 4, 4)
        for block in self.blocks:
            h = block(h, cond)  # (B, C, 2H, 2W)
        h = self.out_conv(F.relu(self.out_bn(h)))  # (B, 3, R, R)
        return (torch.tanh(h) + 1) / 2


# classes: discriminator


class DiscriminatorOutput(NamedTuple):
    """What the discriminator gives the losses (a NamedTuple, so DDP and pytrees see its tensors)."""

    features: torch.Tensor  # φ(x), (B, K), unnormalised: the KDD loss's feature space (eq. 6.7-6.9)
    logits: torch.Tensor  # (B,) w·φ + b + yᵀVφ: the hinge loss's D(x) (eqs. 6.2, 6.3)
    projection: torch.Tensor | None  # (B,) the class term yᵀVφ of eq. (6.16); None when unconditional
    class_vectors: torch.Tensor | None = None  # (B, K) the label embeddings Vᵀy (for yᵀVφ on normalised φ); None when unconditional


class DownBlock(nn.Module):
    """A discriminator ResBlock (pre-activation unless it is the first), optional 2× average pooling."""

    def __init__(self, c_in: int, c_out: int, *, downsample: bool, preactivation: bool):
        super().__init__()
        self.downsample, self.preactivation = downsample, preactivation
        self.conv1 = _sn(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.conv2 = _sn(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.conv_sc = _sn(nn.Conv2d(c_in, c_out, 1)) if (c_in != c_out or downsample) else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._pool(self.conv2(F.relu(self.conv1(h))))  # (B, C_out, H', W')
        shortcut = x
        if self.preactivation:  # BigGAN: conv then pool for pre-activation blocks, pool then conv for the first
            shortcut = self._pool(self.conv_sc(shortcut) if self.conv_sc is not None else shortcut)
        else:
            shortcut = self._pool(shortcut)
            shortcut = self.conv_sc(shortcut) if self.conv_sc is not None else shortcut
        return h + shortcut


class Discriminator(nn.Module):
    """Images (B, 3, R, R) in [0, 1] [and labels (B,)] -> :class:`DiscriminatorOutput`.

    ``feature_dim`` K sizes φ (a spectrally normalised linear layer from the pooled C channels);
    ``feature_dim=None`` takes the pooled features themselves as φ (K = C, BigGAN as published).
    """

    def __init__(self, *, resolution: int = 32, width: int = 64, feature_dim: int | None = 128, num_classes: int = 0):
        super().__init__()
        n_down = _check_resolution(resolution) - 3  # R×R -> 8×8
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        c = 4 * width
        self.num_classes = num_classes
        blocks = [DownBlock(3, c, downsample=True, preactivation=False)]  # the optimised first block
        blocks += [DownBlock(c, c, downsample=True, preactivation=True) for _ in range(n_down - 1)]
        blocks += [DownBlock(c, c, downsample=False, preactivation=True) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = c if feature_dim is None else feature_dim
        self.to_features = _sn(nn.Linear(c, feature_dim)) if feature_dim is not None else None  # φ
        self.head = _sn(nn.Linear(self.feature_dim, 1))  # w, b
        self.embed = _sn(nn.Embedding(num_classes, self.feature_dim)) if num_classes else None  # V of eq. (6.16)
        self.apply(_init_n02)

    @staticmethod
    def to_input(x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> D's input space [−1, 1] (BigGAN's image range)."""
        return x * 2 - 1

    def features_of_input(self, u: torch.Tensor) -> torch.Tensor:
        """φ on D's input space: images (B, 3, R, R) in [−1, 1] -> unnormalised features (B, K)."""
        h = F.relu(self.blocks(u))  # (B, C, 8, 8)
        h = h.sum(dim=(2, 3))  # (B, C) global sum pooling
        return self.to_features(h) if self.to_features is not None else h  # (B, K)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x): images (B, 3, R, R) in [0, 1] -> unnormalised features (B, K)."""
        return self.features_of_input(self.to_input(x))  # (B, K)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiscriminatorOutput:
        _check_labels(y, self.num_classes, x.shape[0], "discriminator")
        phi = self.features(x)  # (B, K)
        logits = self.head(phi).squeeze(1)  # (B,)
        projection = vectors = None
        if self.embed is not None:
            vectors = self.embed(y)  # (B, K) Vᵀy
            projection = (vectors * phi).sum(dim=1)  # (B,) yᵀVφ
            logits = logits + projection
        return DiscriminatorOutput(phi, logits, projection, vectors)
