"""Pooling of a pixel mask to a patch grid (section 5.2.2).

MOVE inpaints whole P×P tiles, so the pixel mask is reduced to one value per tile: max pooling
guarantees that ``1 - m̂`` contains no part of the object (eq. 5.4); the losses of eq. (5.1) and
(5.2) are also applied to the max- and average-pooled masks.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["pool_mask"]


def pool_mask(mask: Tensor, *, patch: int, mode: str = "max") -> Tensor:
    """Reduce a (B, 1, H, W) mask to (B, 1, H/P, W/P) with max or average pooling over P×P tiles."""
    if int(patch) != patch or patch < 1:
        raise ValueError(f"patch must be a positive whole number of pixels, got {patch!r}")
    patch = int(patch)
    h, w = mask.shape[-2:]
    if h % patch or w % patch:
        raise ValueError(f"mask size {h}x{w} is not divisible by the patch size {patch}")
    if mode == "max":
        return F.max_pool2d(mask, kernel_size=patch, stride=patch)
    if mode in ("avg", "mean"):
        return F.avg_pool2d(mask, kernel_size=patch, stride=patch)
    raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
