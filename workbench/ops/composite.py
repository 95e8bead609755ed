"""Composites of a shifted object over a background (eq. 3.1, 3.2, 4.2, 5.3, 5.4).

All images are (B, 3, H, W), masks (B, 1, H, W) in [0, 1], offsets (B, 2) integer (dy, dx)
in the content-moves convention of :func:`workbench.ops.shift.translate`.
"""

from __future__ import annotations

from torch import Tensor

from workbench.ops.pooling import pool_mask
from workbench.ops.shift import translate

__all__ = ["layered_composite", "move_composite", "copy_paste", "mask_union", "inpainting_mask"]


def layered_composite(*, background: Tensor, foreground: Tensor, mask: Tensor, offset: Tensor | None = None) -> Tensor:
    """The layered composite of eq. (3.1), with the shift of eq. (3.2) and (4.2).

    ``x̂ = (1 - m_Δ) ⊙ B + m_Δ ⊙ F_Δ`` where foreground and mask are shifted together and the
    background is not. With ``offset=None`` this is the unshifted composite of eq. (3.1)/(4.1).
    """
    if offset is not None:
        foreground = translate(foreground, offset)  # (B, 3, H, W)
        mask = translate(mask, offset)  # (B, 1, H, W)
    return (1 - mask) * background + mask * foreground


def move_composite(*, image: Tensor, background: Tensor, mask: Tensor, offset: Tensor) -> Tensor:
    """MOVE's shifted composite x̂_δ of eq. (5.3).

    ``x̂_δ = m_δ ⊙ x̃_δ + (1 - m_δ) ⊙ b̂``: the object cut out of ``image`` (the autoencoded x̃
    in MOVE) by ``mask``, shifted by ``offset`` and pasted on the inpainted ``background`` b̂.
    ``offset = 0`` gives the "real" composite x̂_{δ=0}.
    """
    return layered_composite(background=background, foreground=image, mask=mask, offset=offset)


def copy_paste(*, image: Tensor, mask: Tensor, offset: Tensor) -> Tensor:
    """MOVE's copy-paste fake x̃_δ (section 5.2.3): the shifted object pasted on the image itself.

    ``x̃_δ = m_δ ⊙ x̃_δ + (1 - m_δ) ⊙ x̃`` (the thesis' typeset formula drops the shift on the
    first term; the text and figure 5.2 are unambiguous). The original object stays in the
    background, so a wrong mask produces visible duplicates.
    """
    return layered_composite(background=image, foreground=image, mask=mask, offset=offset)


def mask_union(mask: Tensor, offset: Tensor) -> Tensor:
    """The union of the mask and its shifted copy, ``m ⊙ (1 - m_δ) + m_δ`` (eq. 5.4, before pooling).

    Equal to ``1 - (1 - m) ⊙ (1 - m_δ)``; written as the official MOVE computes it, so that the
    float32 rounding matches too.
    """
    shifted = translate(mask, offset)  # (B, 1, H, W) m_δ
    return mask * (1 - shifted) + shifted


def inpainting_mask(mask: Tensor, offset: Tensor, *, patch: int) -> Tensor:
    """The low-resolution inpainting mask m̂ = maxpool_P(mask union) of eq. (5.4).

    Returns:
        (B, 1, H/P, W/P): 1 where a patch must be inpainted.
    """
    return pool_mask(mask_union(mask, offset), patch=patch, mode="max")
