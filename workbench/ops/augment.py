"""Augmentations: contrast jitter, the 1.125x resize + random crop, and differentiable augmentation.

* :func:`contrast_jitter` is the background/foreground contrast jitter of sections 3.4 (ablation d)
  and 4.2, range (0.7, 1.3).
* :func:`resize_random_crop` is how real images are prepared in sections 3.3 and 4.2: resize to
  1.125 × resolution, then crop a random window of the resolution, so that real objects wander by
  about as much as the generated ones are shifted.
* :func:`random_resized_crop` is MOVE's training crop (section 5.3): area share (0.9, 1), aspect
  ratio (3/4, 4/3), resized to the training size. :func:`random_crop_box` and :func:`resized_crop`
  do the same on one image at its original size, resampled once with antialiasing, as the official
  MOVE's PIL pipeline does (``MOVEConfig.image_pipeline="official"``).
* :func:`cutmix_masks` draws the boxes of CutMix consistency regularisation (U-Net GAN, setting (b)
  of table 4.1).
* :class:`DiffAugment` is differentiable augmentation for discriminators (colour, translation,
  cutout; Zhao et al. 2020), used by MOVE (colour only, section 5.3) and KDD GAN (section 6.2.1).

Random draws use an optional ``torch.Generator`` on the CPU and are moved to the data's device,
so results are reproducible across devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from workbench.ops.shift import random_offsets, translate

__all__ = ["contrast_jitter", "scale_contrast", "center_crop_square", "resize_random_crop", "random_resized_crop",
           "random_crop_box", "resized_crop", "cutmix_masks",
           "DiffAugment"]

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
    return scale_contrast(x, _uniform(x.shape[0], low, high, like=x, generator=generator))


def scale_contrast(x: Tensor, factor: Tensor | float) -> Tensor:
    """``(x - μ) c + μ`` with μ each image's mean over channels and pixels; ``factor`` c is a float or (B, 1, 1, 1)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return (x - mean) * factor + mean


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


def cutmix_masks(batch: int, size: int, *, flip: bool = True, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> Tensor:
    """CutMix masks (B, 1, size, size): 1 inside one random box per image, 0 outside (Yun et al. 2019).

    The box covers a share λ ~ U(0, 1) of the image (sides ``size·√λ``) at a uniform centre,
    clipped at the border. With ``flip`` each mask is inverted with probability 1/2, as U-Net GAN
    does, so that real (1) and generated (0) parts cover half the image on average.
    """
    lam = torch.rand(batch, generator=generator)  # (B,) area share
    side = (size * lam.sqrt()).round()  # (B,)
    centre = torch.rand(batch, 2, generator=generator) * size  # (B, 2) (y, x)
    low = (centre - side[:, None] / 2).clamp(0, size)  # (B, 2)
    high = (centre + side[:, None] / 2).clamp(0, size)  # (B, 2)
    grid = torch.arange(size) + 0.5  # pixel centres
    inside_y = (grid[None] >= low[:, :1]) & (grid[None] < high[:, :1])  # (B, size)
    inside_x = (grid[None] >= low[:, 1:]) & (grid[None] < high[:, 1:])  # (B, size)
    box = inside_y[:, :, None] & inside_x[:, None, :]  # (B, size, size)
    if flip:
        box = box ^ (torch.rand(batch, generator=generator) < 0.5)[:, None, None]
    return box.float()[:, None].to(device)  # (B, 1, size, size)


def random_resized_crop(x: torch.Tensor, *, size: int, scale: tuple[float, float] = (0.9, 1.0),
                        ratio: tuple[float, float] = (0.75, 4 / 3), tries: int = 10, mode: str = "bilinear",
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """A random crop of each image, of area share in ``scale`` and aspect ratio in ``ratio``, resized to ``size``.

    Vectorised version of torchvision's RandomResizedCrop (MOVE, section 5.3): ``tries`` candidate boxes
    per image, the first that fits is used, else the whole image; ``mode`` ("bilinear", or "bicubic"
    as the official MOVE) resampling through one ``grid_sample`` for the batch, without the
    antialiasing PIL applies when it shrinks. (B, 3, H, W) -> (B, 3, size, size).
    """
    if mode not in ("bilinear", "bicubic"):
        raise ValueError(f"mode must be 'bilinear' or 'bicubic', got {mode!r}")
    b, _, h, w = x.shape
    area = scale[0] + (scale[1] - scale[0]) * torch.rand(b, tries, generator=generator)  # (B, T) share of the area
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * torch.rand(b, tries, generator=generator)
    r = log_r.exp()  # (B, T) width / height of the crop in pixels
    cw, ch = (area * r * h / w).sqrt(), (area / r * w / h).sqrt()  # (B, T) crop size as a share of W and H
    fits = (cw <= 1) & (ch <= 1)  # (B, T)
    first = fits.float().argmax(dim=1)  # (B,) first fitting try (0 when none fits)
    pick = lambda t: t.gather(1, first[:, None]).squeeze(1)  # noqa: E731
    any_fit = fits.any(dim=1)
    cw = torch.where(any_fit, pick(cw), torch.ones(b))
    ch = torch.where(any_fit, pick(ch), torch.ones(b))
    left = (1 - cw) * torch.rand(b, generator=generator)  # (B,) share of W
    top = (1 - ch) * torch.rand(b, generator=generator)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = cw, 2 * left + cw - 1  # x_in = cw·x_out + centre, in [-1, 1] coordinates
    theta[:, 1, 1], theta[:, 1, 2] = ch, 2 * top + ch - 1
    grid = F.affine_grid(theta.to(x), [b, x.shape[1], size, size], align_corners=False)  # (B, S, S, 2)
    return F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)


def random_crop_box(height: int, width: int, *, scale: tuple[float, float] = (0.9, 1.0),
                    ratio: tuple[float, float] = (0.75, 4 / 3), tries: int = 10,
                    generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """A random crop box (top, left, h, w) in whole pixels of a ``height`` × ``width`` image (torchvision's rule).

    Up to ``tries`` draws of an area share in ``scale`` and a log-uniform aspect ratio (w/h) in
    ``ratio``, sides rounded to pixels; the first box that fits is placed uniformly at random. When
    none fits, the centred box of the whole image clamped to ``ratio``. This is the box of
    torchvision's ``RandomResizedCrop``, which the official MOVE applies to the original photo.
    """
    area = height * width
    lo, hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(tries):
        u = torch.rand(2, generator=generator).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(lo + (hi - lo) * u[1])
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    if width / height < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif width / height > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def resized_crop(x: Tensor, box: tuple[int, int, int, int], *, size: int, mode: str = "bicubic") -> Tensor:
    """The ``box`` (top, left, h, w) of images (..., C, H, W) resized once to ``size`` × ``size``, antialiased.

    ``mode`` "bicubic" (the official MOVE's PIL resampling: a = −0.5, antialiased when shrinking,
    clamped to [0, 1] as PIL's 8-bit output is) or "bilinear"; "nearest" for masks. Compare
    :func:`random_resized_crop`, which resamples a batch already resized once, without antialiasing.
    """
    top, left, h, w = box
    crop = x[..., top : top + h, left : left + w]
    batched = crop if crop.dim() == 4 else crop.unsqueeze(0)  # (B, C, h, w)
    if mode == "nearest":
        out = F.interpolate(batched, size=(size, size), mode="nearest")
    elif mode in ("bicubic", "bilinear"):
        out = F.interpolate(batched, size=(size, size), mode=mode, antialias=True, align_corners=False)
        out = out.clamp(0, 1) if mode == "bicubic" else out
    else:
        raise ValueError(f"mode must be 'bicubic', 'bilinear' or 'nearest', got {mode!r}")
    return out if crop.dim() == 4 else out[0]


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
