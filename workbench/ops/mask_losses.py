"""Mask regularisers shared by chapters 3, 4 and 5.

Both return a scalar averaged over the batch (the expectation over z in eq. 3.3/3.4, or the
mean over the n images in eq. 5.1/5.2) and accept masks of any spatial size (B, 1, H, W), so
they apply equally to pooled masks.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["size_loss", "binarization_loss"]


def size_loss(mask: Tensor, *, min_area: float) -> Tensor:
    """Minimum-size hinge: ``mean_b max{0, η - mean_p m_b[p]}`` (eq. 3.3, 4.3, 5.1).

    ``min_area`` is η (chapters 3, 4) or θ_min (chapter 5), a fraction of the image area.
    """
    area = mask.flatten(1).mean(dim=1)  # (B,)
    return torch.clamp(min_area - area, min=0).mean()


def binarization_loss(mask: Tensor) -> Tensor:
    """Binarisation loss ``mean min{m, 1 - m}`` over pixels and batch (eq. 3.4, 4.4, 5.2)."""
    return torch.minimum(mask, 1 - mask).mean()
