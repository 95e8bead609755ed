"""Classical (numpy / OpenCV) mask and inpainting operators for the apps and notebooks.

These are the hand-made counterparts of MOVE's learned pieces (chapter 5): a mask can be
made too large or too small on purpose (figure 5.1, rows 2 and 3), and the background
behind it can be filled in with OpenCV's Telea inpainting instead of a frozen MAE.

Conventions: images are float32 (H, W, 3) in [0, 1]; masks are bool (H, W).

Morphology uses a Euclidean disc of radius ``k`` pixels, i.e. the offsets (dy, dx) with
``dy² + dx² <= k²`` inside a (2k+1) x (2k+1) window. ``dilate_mask(m, k)`` therefore adds
every pixel within distance ``k`` of the mask, and ``erode_mask(m, k)`` removes every
pixel within distance ``k`` of the background. Outside the image counts as background for
dilation and as object for erosion (erosion is the dual ``~dilate(~m, k)``), so an object
cut by the image border is not eaten away from the border side.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

__all__ = ["as_bool_mask", "as_image", "disc", "dilate_mask", "erode_mask", "perturb_mask", "inpaint_telea", "PERTURB_MODES"]

PERTURB_MODES = ("exact", "dilate", "erode")  # figure 5.1: correct, too large, too small

# helpers


def as_bool_mask(mask: np.ndarray) -> np.ndarray:
    """A (H, W) bool mask from a bool, integer or float (threshold 0.5) array."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be (H, W), got shape {mask.shape}")
    if mask.dtype == bool:
        return mask
    if np.issubdtype(mask.dtype, np.floating):
        return mask > 0.5
    return mask != 0


def as_image(image: np.ndarray) -> np.ndarray:
    """A float32 (H, W, 3) image in [0, 1] from a float or integer (H, W, 3) array.

    Integer images (uint8, uint16, ...) are divided by their type's maximum, so an 8-bit photo
    passed as is gives the same result as its float version; float images are taken as they are.
    Other shapes (grayscale, RGBA) raise ValueError; :func:`workbench.data.images.read_image`
    converts such files to RGB.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"an image must be (H, W, 3), got shape {image.shape}")
    if image.dtype == bool or not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"an image must hold floats in [0, 1] or integers, got dtype {image.dtype}")
    if np.issubdtype(image.dtype, np.integer):
        return (image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)).clip(0.0, 1.0)
    return image.astype(np.float32, copy=False)


def _check_k(k: int) -> int:
    """``k`` as an int; ValueError unless it is a whole number >= 0."""
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative integer number of pixels, got {k!r}")
    return int(k)


def disc(k: int) -> np.ndarray:
    """The structuring element: a (2k+1, 2k+1) uint8 array, 1 where ``dy² + dx² <= k²``."""
    k = _check_k(k)
    yy, xx = np.mgrid[-k : k + 1, -k : k + 1]
    return (yy**2 + xx**2 <= k**2).astype(np.uint8)


# operators


def dilate_mask(mask: np.ndarray, k: int) -> np.ndarray:
    """Grow a mask by ``k`` pixels (Euclidean disc); ``k = 0`` returns a copy."""
    mask, k = as_bool_mask(mask), _check_k(k)
    if k == 0:
        return mask.copy()
    grown = cv2.dilate(
        mask.astype(np.uint8), disc(k), borderType=cv2.BORDER_CONSTANT, borderValue=0
    )  # (H, W) uint8; outside the image is background
    return grown.astype(bool)


def erode_mask(mask: np.ndarray, k: int) -> np.ndarray:
    """Shrink a mask by ``k`` pixels (Euclidean disc): ``~dilate_mask(~mask, k)``."""
    mask = as_bool_mask(mask)
    return ~dilate_mask(~mask, k)


def perturb_mask(
    mask: np.ndarray, *, mode: Literal["exact", "dilate", "erode"] = "exact", k: int = 0
) -> np.ndarray:
    """The three masks of figure 5.1 (b): ``exact`` (correct), ``dilate`` (too large, it takes
    a ring of background along) or ``erode`` (too small, it leaves the object's rim behind)."""
    if mode == "exact":
        _check_k(k)
        return as_bool_mask(mask).copy()
    if mode == "dilate":
        return dilate_mask(mask, k)
    if mode == "erode":
        return erode_mask(mask, k)
    raise ValueError(f"mode must be one of {PERTURB_MODES}, got {mode!r}")


def inpaint_telea(image: np.ndarray, mask: np.ndarray, *, radius: int = 3) -> np.ndarray:
    """Fill the masked pixels from their surroundings with Telea's fast-marching method.

    OpenCV's ``cv2.inpaint(..., cv2.INPAINT_TELEA)`` works on 8-bit images, so the masked pixels
    carry 8-bit precision; the pixels outside the mask are returned unchanged (not quantized).

    Args:
        image: float32 (H, W, 3) in [0, 1].
        mask: bool (H, W), True where the image must be filled in.
        radius: neighbourhood radius in pixels that the method draws from.

    Returns:
        float32 (H, W, 3) in [0, 1].
    """
    image, mask = as_image(image), as_bool_mask(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} and image {image.shape[:2]} differ in size")
    if radius < 1:
        raise ValueError(f"radius must be >= 1, got {radius}")
    if not mask.any():
        return image.copy()
    image_u8 = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)  # (H, W, 3)
    filled = cv2.inpaint(image_u8, mask.astype(np.uint8), float(radius), cv2.INPAINT_TELEA)
    filled = filled.astype(np.float32) / 255.0  # (H, W, 3)
    return np.where(mask[..., None], filled, image).astype(np.float32)
