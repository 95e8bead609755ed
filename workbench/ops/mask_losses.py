"""Mask regularisers shared by chapters 3, 4 and 5.

Both return a scalar averaged over the batch (the expectation over z in eq. 3.3/3.4, or the
mean over the n images in eq. 5.1/5.2) and accept masks of any spatial size (B, 1, H, W), so
they apply equally to pooled masks.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["SIZE_LOSS_ON", "size_loss", "max_size_loss", "bracket_size_loss", "binarization_loss", "dice_loss", "mask_iou"]


SIZE_LOSS_ON = ("original", "shifted")  # the mask the size hinges read: G_m(z) (eqs. 3.3, 4.3) or the shifted m_Δ


def size_loss(mask: Tensor, *, min_area: float) -> Tensor:
    """Minimum-size hinge: ``mean_b max{0, η - mean_p m_b[p]}`` (eq. 3.3, 4.3, 5.1).

    ``min_area`` is η (chapters 3, 4) or θ_min (chapter 5), a fraction of the image area.
    """
    area = mask.flatten(1).mean(dim=1)  # (B,)
    return torch.clamp(min_area - area, min=0).mean()


def max_size_loss(mask: Tensor, *, max_area: float) -> Tensor:
    """Maximum-size hinge ``mean_b max{0, mean_p m_b[p] - max_area}``: the mirror of :func:`size_loss`.

    Not in the thesis. The workbench adds it to chapter 4's ``small`` preset, where a full-frame
    mask (foreground = the whole scene) is the short-budget GAN's easy way out (see the README).
    """
    area = mask.flatten(1).mean(dim=1)  # (B,)
    return torch.clamp(area - max_area, min=0).mean()


def bracket_size_loss(mask: Tensor, *, min_area: float, max_area: float = 1.0) -> Tensor:
    """The layered GANs' L_size: eq. (3.3)/(4.3)'s lower hinge at ``min_area`` η, plus the workbench's upper
    hinge :func:`max_size_loss` at ``max_area`` when it is below 1 (chapters 3 and 4's ``max_mask``)."""
    size = size_loss(mask, min_area=min_area)
    return size + max_size_loss(mask, max_area=max_area) if max_area < 1 else size


def binarization_loss(mask: Tensor) -> Tensor:
    """Binarisation loss ``mean min{m, 1 - m}`` over pixels and batch (eq. 3.4, 4.4, 5.2)."""
    return torch.minimum(mask, 1 - mask).mean()


def dice_loss(mask: Tensor, target: Tensor) -> Tensor:
    """Soft Dice loss, mean over images of ``1 − (2 Σ p·g + 1) / (Σ p + Σ g + 1)`` (the +1 keeps empty masks finite).

    Soft mask p and target g: (B, 1, H, W) -> (). The supervised segmenters' loss (SelfMask, the oracle U-Net).
    """
    p, g = mask.flatten(1), target.flatten(1)  # (B, H·W)
    return (1 - (2 * (p * g).sum(1) + 1) / (p.sum(1) + g.sum(1) + 1)).mean()


@torch.no_grad()
def mask_iou(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image IoU (B,) of binary masks (B, 1, H, W) (bool, or float in {0, 1}); 1 when both are empty.

    The same definition as :func:`workbench.eval.metrics.iou`, on tensors, for training logs and quick scores.
    """
    pred, target = pred.flatten(1).bool(), target.flatten(1).bool()  # (B, H·W)
    inter, union = (pred & target).sum(1).double(), (pred | target).sum(1).double()  # (B,)
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
