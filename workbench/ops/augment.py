"""Augmentations: contrast jitter, the 1.125x resize + random crop, and differentiable augmentation.

* :func:`contrast_jitter` is the background/foreground contrast jitter of sections 3.4 (ablation d)
  and 4.2, range (0.7, 1.3).
* :func:`resize_random_crop` is how real images are prepared in sections 3.3 and 4.2: resize to
  1.125 × resolution, then crop a random window of the resolution, so that real objects wander by
  about as much as the generated ones are shifted.
* :class:`DiffAugment` is differentiable augmentation for discriminators (colour, translation,
  cutout; Zhao et al. 2020), used by MOVE (colour only, section 5.3) and KDD GAN (section 6.2.1).

Random draws use an optional ``torch.Generator`` on the CPU and are moved to the data's device,
so results are reproducible across devices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from workbench.ops.shift import random_offsets, translate

__all__ = ["contrast_jitter", "center_crop_square", "resize_random_crop", "DiffAugment"]

# helpers


def _uniform(batch: int, low: float, high: float, *, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """(B, 1, 1, 1) factors uniform in [low, high), on ``like``'s device and dtype."""
    u = torch.rand(batch, 1, 1, 1, generator=generator)
    return (low + (high - low) * u).to(device=like.device, dtype=like.dtype)


# augmentations


def contrast_jitter(
    x: Tensor, *, low: float = 0.7, high: float = 1.3, generator: torch.Generator | None = None
) -> Tensor:
    """Scale each image's contrast by c ~ U(low, high) around its own mean: ``(x - μ) c + μ``.

    Applied separately to generated backgrounds and foregrounds before compositing (sections 3.4
    and 4.2), so that the background cannot cheaply fill parts of the object. The result is not
    clipped (clipping would cut the gradient), so it may leave [0, 1] slightly when c > 1.

    Args:
        x: (B, C, H, W) images.
    Returns:
        (B, C, H, W), one factor c per image.
    """
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return (x - mean) * _uniform(x.shape[0], low, high, like=x, generator=generator) + mean


def center_crop_square(x: Tensor) -> Tensor:
    """Crop the largest centred square of (B, C, H, W) images; (B, C, S, S) with S = min(H, W)."""
    h, w = x.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return x[..., top : top + side, left : left + side]


def resize_random_crop(
    x: Tensor, *, size: int, scale: float = 1.125, center_crop: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """Resize to ``round(scale * size)`` and take a random ``size`` × ``size`` crop per image.

    Sections 3.3 and 4.2 (chapter 4 first takes the centre crop). ``scale=1`` disables the crop
    (ablation (e) of table 3.1, "no random crops").

    Args:
        x: (B, C, H, W) real images.
    Returns:
        (B, C, size, size)
    """
    if center_crop:
        x = center_crop_square(x)
    big = max(size, round(scale * size))
    if x.shape[-2:] != (big, big):
        x = F.interpolate(x, size=(big, big), mode="bilinear", align_corners=False, antialias=True)
    if big == size:
        return x
    b = x.shape[0]
    corner = torch.randint(0, big - size + 1, (b, 2), generator=generator).to(x.device)  # (B, 2) top-left
    return translate(x, -corner)[..., :size, :size]  # moving content up-left puts the crop at the origin


@dataclass
class DiffAugment:
    """Differentiable augmentation for discriminator inputs (Zhao et al., 2020).

    Apply the same instance to real and fake batches. Magnitudes are those of the DiffAugment
    paper, rescaled to the workbench's images in [0, 1]: the paper adds U(-0.5, 0.5) to data in
    [-1, 1], which is ``brightness=0.25`` here (pass 0.5 for data in [-1, 1]). Saturation and
    contrast factors do not depend on the range. Nothing is clipped, so gradients pass everywhere.
    """

    policy: tuple[str, ...] = ("color", "translation", "cutout")  # any of: color, translation, cutout
    brightness: float = 0.25  # add U(-b, b) to every pixel (the paper's ±0.5 on [-1, 1] data)
    saturation: tuple[float, float] = (0.0, 2.0)  # scale the deviation from the channel mean
    contrast: tuple[float, float] = (0.5, 1.5)  # scale the deviation from the image mean
    translation: float = 0.125  # shift by up to this fraction of the size, zero fill
    cutout: float = 0.5  # zero a square of this fraction of the size at a random centre

    def __post_init__(self) -> None:
        unknown = set(self.policy) - {"color", "translation", "cutout"}
        if unknown:
            raise ValueError(f"unknown DiffAugment policy entries {sorted(unknown)}; use color, translation, cutout")

    def __call__(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        if "color" in self.policy:
            x = self.color(x, generator=generator)
        if "translation" in self.policy:
            x = self.translate(x, generator=generator)
        if "cutout" in self.policy:
            x = self.cut_out(x, generator=generator)
        return x

    def color(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Random brightness, then saturation, then contrast, one draw of each per image; (B, C, H, W)."""
        b = x.shape[0]
        x = x + _uniform(b, -self.brightness, self.brightness, like=x, generator=generator)
        mean = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
        x = (x - mean) * _uniform(b, *self.saturation, like=x, generator=generator) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
        return (x - mean) * _uniform(b, *self.contrast, like=x, generator=generator) + mean

    def translate(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Shift each image by integers uniform in ±``translation``·size per axis, zero fill; (B, C, H, W)."""
        offsets = random_offsets(x.shape[0], max_shift=self.translation, size=tuple(x.shape[-2:]), generator=generator)
        return translate(x, offsets.to(x.device))

    def cut_out(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Zero one ``cutout``·size square per image, centred uniformly in the image (clipped by the border)."""
        b, _, h, w = x.shape
        ch, cw = round(h * self.cutout), round(w * self.cutout)  # hole size
        centre = (torch.rand(b, 2, generator=generator) * torch.tensor([h, w])).long().to(x.device)  # (B, 2)
        top = (centre[:, 0] - ch // 2).view(b, 1, 1)
        left = (centre[:, 1] - cw // 2).view(b, 1, 1)
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        hole = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)  # (B, H, W)
        return x * (~hole).unsqueeze(1).to(x.dtype)
