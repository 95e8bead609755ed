"""Shift one object in one image, the classical way: the images of figures 5.1 and 5.2.

Given an image x and a mask m (numpy), :func:`shift_scene` builds what MOVE's discriminator
sees (section 5.2.3), with OpenCV's Telea inpainting standing in for the frozen MAE and the
image itself standing in for its autoencoding x̃:

* the background b̂: x inpainted inside the union of m and its shifted copy m_δ (eq. 5.4, before
  pooling), so that the shifted and the unshifted composites share the same inpainting;
* the shifted composite x̂_δ = m_δ·x_δ + (1 − m_δ)·b̂ (eq. 5.3) and the unshifted x̂_0;
* the copy-paste x̃_δ = m_δ·x_δ + (1 − m_δ)·x, which keeps the original object in place;
* the difference |x̂_δ − x̂_0|.

With a correct mask x̂_δ looks like a real photo of the moved object. A mask that is too large
drags background texture along; one that is too small leaves the object's rim behind, which the
inpainting smears into a ghost and the copy-paste shows as a duplicate (figure 5.1).

:func:`shift_error` puts a number on it when the true mask is known (synthetic scenes).
The composites are computed with the torch operators of :mod:`workbench.ops.composite`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from workbench.ops.classical import as_bool_mask, as_image, inpaint_telea
from workbench.ops.composite import copy_paste, layered_composite, mask_union, move_composite
from workbench.ops.shift import translate

__all__ = ["ShiftResult", "shift_scene", "shift_error", "shift_error_map", "shift_layers"]

# helpers


def _image_to_torch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]  # (1, 3, H, W)


def _mask_to_torch(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(mask.astype(np.float32))[None, None]  # (1, 1, H, W)


def _image_to_numpy(image: torch.Tensor) -> np.ndarray:
    return image[0].permute(1, 2, 0).numpy().astype(np.float32)  # (H, W, 3)


def _mask_to_numpy(mask: torch.Tensor) -> np.ndarray:
    return mask[0, 0].numpy() > 0.5  # (H, W) bool


def _offset(dy: int, dx: int) -> torch.Tensor:
    if int(dy) != dy or int(dx) != dx:
        raise ValueError(f"shifts must be whole pixels, got dy={dy!r}, dx={dx!r}")
    return torch.tensor([[int(dy), int(dx)]], dtype=torch.int64)  # (1, 2)


# classes


@dataclass(frozen=True)
class ShiftResult:
    """Everything :func:`shift_scene` computes; images float32 (H, W, 3), masks bool (H, W)."""

    image: np.ndarray  # x, the input
    mask: np.ndarray  # m, the mask that was used
    shifted_mask: np.ndarray  # m_δ
    union: np.ndarray  # m ∪ m_δ, the inpainted region (eq. 5.4 before pooling)
    background: np.ndarray  # b̂, Telea inpainting of x inside the union
    composite: np.ndarray  # x̂_δ (eq. 5.3)
    composite_unshifted: np.ndarray  # x̂_0, a "real" image for MOVE's discriminator
    copy_paste: np.ndarray  # x̃_δ, the shifted object pasted over the original image
    difference: np.ndarray  # |x̂_δ − x̂_0|
    dy: int
    dx: int


# operators


def shift_scene(
    image: np.ndarray, mask: np.ndarray, *, dy: int, dx: int, inpaint_radius: int = 3
) -> ShiftResult:
    """Inpaint the background behind ``mask`` and shift the object by (dy, dx) pixels.

    Args:
        image: float32 (H, W, 3) in [0, 1].
        mask: bool (H, W), the object to move.
        dy, dx: the shift δ in pixels; positive moves the object down / right.
        inpaint_radius: radius of the Telea inpainting (:func:`inpaint_telea`).
    """
    image, mask = as_image(image), as_bool_mask(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} and image {image.shape[:2]} differ in size")
    offset, zero = _offset(dy, dx), _offset(0, 0)  # (1, 2)
    x, m = _image_to_torch(image), _mask_to_torch(mask)  # (1, 3, H, W), (1, 1, H, W)

    with torch.no_grad():
        union = _mask_to_numpy(mask_union(m, offset))  # (H, W)
        background = inpaint_telea(image, union, radius=inpaint_radius)  # (H, W, 3)
        b = _image_to_torch(background)  # (1, 3, H, W)
        composite = move_composite(image=x, background=b, mask=m, offset=offset)  # (1, 3, H, W)
        composite_0 = move_composite(image=x, background=b, mask=m, offset=zero)  # (1, 3, H, W)
        pasted = copy_paste(image=x, mask=m, offset=offset)  # (1, 3, H, W)
        shifted_mask = _mask_to_numpy(translate(m, offset))  # (H, W)

    composite, composite_0 = _image_to_numpy(composite), _image_to_numpy(composite_0)
    return ShiftResult(
        image=image,
        mask=mask,
        shifted_mask=shifted_mask,
        union=union,
        background=background,
        composite=composite,
        composite_unshifted=composite_0,
        copy_paste=_image_to_numpy(pasted),
        difference=np.abs(composite - composite_0),
        dy=int(dy),
        dx=int(dx),
    )


def shift_error_map(result: ShiftResult, true_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the composite x̂_δ differs from the scene with the *true* object moved: the map of :func:`shift_error`.

    Returns ``(error, region)``: ``error`` float32 (H, W), the mean over the colour channels of
    |x̂_δ − x̃*_δ| (x̃*_δ the copy-paste with the true mask m*, i.e. the truly moved scene), 0 outside
    ``region``; ``region`` bool (H, W), the pixels where the truth is known (``m*_δ ∪ ¬m*``: behind the
    old object nobody knows the background) and that either mask touches (``m ∪ m_δ ∪ m* ∪ m*_δ``;
    everywhere else both images equal x). With the true mask the map is 0 everywhere; a mask that is
    too large shows the dragged background, one that is too small the missing rim.
    """
    true_mask = as_bool_mask(true_mask)
    if true_mask.shape != result.mask.shape:
        raise ValueError(f"true mask {true_mask.shape} and result {result.mask.shape} differ in size")
    x, m_true = _image_to_torch(result.image), _mask_to_torch(true_mask)
    offset = _offset(result.dy, result.dx)
    with torch.no_grad():
        reference = _image_to_numpy(copy_paste(image=x, mask=m_true, offset=offset))  # (H, W, 3)
        true_shifted = _mask_to_numpy(translate(m_true, offset))  # (H, W)
    known = true_shifted | ~true_mask  # (H, W)
    touched = result.union | true_mask | true_shifted  # (H, W)
    region = known & touched
    error = np.abs(result.composite - reference).mean(axis=2)  # (H, W)
    return np.where(region, error, 0.0).astype(np.float32), region


def shift_error(result: ShiftResult, true_mask: np.ndarray) -> float:
    """How far the composite x̂_δ is from the scene with the *true* object moved, where that is known.

    The truly moved scene is the copy-paste with the true mask m*: it is known on the moved
    object m*_δ and on the background away from the old object, ``K = m*_δ ∪ ¬m*`` (behind the
    old object nobody knows what the background looks like). The error is the mean absolute
    difference, over the colour channels and over the pixels of K that either mask touches
    (``m ∪ m_δ ∪ m* ∪ m*_δ``; everywhere else both images equal x): the mean of
    :func:`shift_error_map` over its region. It is 0 when ``result.mask`` is the true mask and
    grows with the dragged background of a mask that is too large and the missing rim of one that
    is too small. Range [0, 1].
    """
    error, region = shift_error_map(result, true_mask)
    if not region.any():
        return 0.0
    return float(error[region].mean())


def shift_layers(
    *, background: np.ndarray, foreground: np.ndarray, mask: np.ndarray, dy: int, dx: int
) -> np.ndarray:
    """The scene with the object truly moved, from its layers (eq. 3.1 with the shift of 3.2 / 4.2).

    ``(1 − m_δ)·B + m_δ·F_δ``: what a perfect mask *and* a perfect inpainter would give. Needs
    the true background B behind the object, which only synthetic scenes have.

    Args:
        background, foreground: float32 (H, W, 3) in [0, 1].
        mask: bool (H, W), where the foreground is.
    """
    background, foreground, mask = as_image(background), as_image(foreground), as_bool_mask(mask)
    if not background.shape == foreground.shape or mask.shape != background.shape[:2]:
        raise ValueError(f"layers differ in size: {background.shape}, {foreground.shape}, {mask.shape}")
    with torch.no_grad():
        moved = layered_composite(
            background=_image_to_torch(background),
            foreground=_image_to_torch(foreground),
            mask=_mask_to_torch(mask),
            offset=_offset(dy, dx),
        )  # (1, 3, H, W)
    return _image_to_numpy(moved)
