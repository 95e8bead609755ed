"""Run a fully convolutional segmenter on images of any size at the scale it was trained on.

Section 4.2: "we first resize the input image to keep the same scale as during the training",
then, the U-Net being fully convolutional, run it on the (possibly non-square) result, "adding
reflective padding when the size of the feature maps from concatenated skip connections does not
match". Here the image is resized so that its *shorter* side is the training resolution, padded
by reflection to a multiple of the network's down-sampling factor, segmented, cropped back and
resized to the input size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["segment_at_scale", "segment_at_shorter_side", "resize_shorter_side", "pad_to_multiple", "PADDINGS"]

PADDINGS = {"edge": "replicate", "reflect": "reflect"}  # name of a padding -> F.pad mode


def segment_at_scale(segment: Callable[[Tensor], Tensor], images: Tensor, *, resolution: int, multiple: int,
                     batch_size: int = 64) -> Tensor:
    """Masks (B, 1, H, W) of ``images`` (B, 3, H, W) from ``segment`` run at the training scale.

    Args:
        segment: network input (b, 3, h, w) -> per-pixel output (b, 1, h, w), h and w multiples of ``multiple``.
        resolution: the training resolution; the shorter side is resized to it.
        multiple: the network's down-sampling factor (``2**depth`` for a U-Net).
        batch_size: images per call of ``segment``.
    """
    h, w = images.shape[-2:]
    scale = resolution / min(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    x = images if size == (h, w) else F.interpolate(images, size=size, mode="bilinear", align_corners=False,
                                                    antialias=scale < 1)  # (B, 3, h', w')
    pad_h, pad_w = -size[0] % multiple, -size[1] % multiple
    if pad_h or pad_w:  # reflect needs the pad to be smaller than the side
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if max(pad_h, pad_w) < min(size) else "replicate")
    out = torch.cat([segment(chunk) for chunk in x.split(batch_size)])  # (B, 1, h'+, w'+)
    out = out[..., : size[0], : size[1]]
    if size != (h, w):
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    return out  # (B, 1, H, W)


def resize_shorter_side(images: Tensor, size: int) -> Tensor:
    """Images (B, C, H, W) in [0, 1] resized so that the shorter side is ``size``, aspect kept (the official MOVE's
    ``infer.py``, torchvision's ``Resize(size)`` rule: the longer side ``int(size · long / short)``), bicubic with
    antialiasing, clamped to [0, 1]; unchanged when the shorter side is ``size`` already."""
    h, w = images.shape[-2:]
    if min(h, w) == size:
        return images
    short, long = (h, w) if h <= w else (w, h)
    long_new = int(size * long / short)
    new = (size, long_new) if h <= w else (long_new, size)
    return F.interpolate(images, size=new, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def pad_to_multiple(images: Tensor, multiple: int, *, padding: str = "edge") -> Tensor:
    """Images (B, C, H, W) padded on the right and bottom to multiples of ``multiple``: ``padding`` "edge"
    (repeat the last row and column) or "reflect" (mirror, as the official MOVE's ``infer.py``)."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
    h, w = images.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    if not (pad_h or pad_w):
        return images
    if padding == "reflect" and (pad_h >= h or pad_w >= w):
        raise ValueError(f"reflect padding of a {h}x{w} image by ({pad_h}, {pad_w}) px needs a larger image")
    return F.pad(images, (0, pad_w, 0, pad_h), mode=PADDINGS[padding])


def segment_at_shorter_side(segment: Callable[[Tensor], Tensor], images: Tensor, *, size: int | None) -> Tensor:
    """Masks (B, 1, H, W) of ``images`` (B, 3, H, W) in [0, 1], segmented with the shorter side resized to ``size``
    (:func:`resize_shorter_side`; ``None`` or 0: at their own size), the masks resized back (bilinear, antialiased),
    as the official MOVE's ``infer.py``. ``segment`` maps (B, 3, h, w) to (B, 1, h, w) at any size."""
    h, w = images.shape[-2:]
    mask = segment(resize_shorter_side(images.float(), size) if size else images)  # (B, 1, h', w')
    if mask.shape[-2:] != (h, w):
        mask = F.interpolate(mask, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return mask  # (B, 1, H, W)
