"""The movability operators: shifts, composites, mask pooling, mask losses and augmentations.

Every operator works on whole batches at once (no Python loop over images) and is
differentiable with respect to its image and mask inputs. Conventions: images (B, 3, H, W),
masks (B, 1, H, W) in [0, 1], offsets (B, 2) integer (dy, dx), content moves by +offset.
Classical (numpy/OpenCV) helpers for the apps live in :mod:`workbench.ops.classical` and
:mod:`workbench.ops.shift_scene`.
"""

from workbench.ops.augment import DiffAugment, center_crop_square, contrast_jitter, random_resized_crop, resize_random_crop
from workbench.ops.composite import copy_paste, inpainting_mask, layered_composite, mask_union, move_composite
from workbench.ops.mask_losses import binarization_loss, size_loss
from workbench.ops.pooling import pool_mask
from workbench.ops.shift import random_offsets, translate

__all__ = [
    "DiffAugment",
    "binarization_loss",
    "center_crop_square",
    "contrast_jitter",
    "copy_paste",
    "inpainting_mask",
    "layered_composite",
    "mask_union",
    "move_composite",
    "pool_mask",
    "random_offsets",
    "random_resized_crop",
    "resize_random_crop",
    "size_loss",
    "translate",
]
