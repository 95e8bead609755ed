"""Integer shifts of image batches: the perturbation behind every method of the thesis.

Convention. ``translate(x, offset)`` moves the *content* of ``x`` by ``offset = (dy, dx)``
pixels: ``out[p] = x[p - offset]``, with zeros where nothing moved in. The thesis writes the
shifted mask as ``m[p + Δ]`` (eq. 3.2, 4.2, 5.3), which is ``translate(m, -Δ)``. Because every
method draws Δ from a distribution that is symmetric around zero, the sign convention does not
change what is learned; we keep the intuitive one (positive dx moves the object right).
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import Tensor

__all__ = ["translate", "random_offsets", "as_offsets"]

# helpers


def as_offsets(offset: Tensor | tuple[int, int] | list[int], batch: int, device: torch.device) -> Tensor:
    """Return ``offset`` as a (B, 2) int64 tensor of (dy, dx); a single pair is broadcast."""
    offset = torch.as_tensor(offset, device=device)
    if offset.dtype.is_floating_point:
        offset = offset.round()
    offset = offset.to(torch.int64)
    if offset.ndim == 1:
        offset = offset.expand(batch, 2)
    if offset.shape != (batch, 2):
        raise ValueError(f"offset must have shape (B, 2) = ({batch}, 2) or (2,), got {tuple(offset.shape)}")
    return offset


# operators


def translate(x: Tensor, offset: Tensor | tuple[int, int], *, fill: float | Sequence[float] = 0.0) -> Tensor:
    """Shift each image of a batch by its own integer offset, filling the uncovered strip with ``fill``.

    ``out[b, :, i, j] = x[b, :, i - dy_b, j - dx_b]`` where that index lies inside the image,
    and ``fill`` elsewhere. This is the shift of eq. (3.2), (4.2) and (5.3) (see the module docstring
    for the sign). One gather for the whole batch, no Python loop; differentiable in ``x``.

    Args:
        x: (B, C, H, W) images or masks.
        offset: (B, 2) integer (dy, dx) per image, or one (dy, dx) pair for all.
        fill: the value of the uncovered pixels, one number or one per channel. The official MOVE
            shifts ImageNet-normalised images with zero fill, which is ``fill=IMAGENET_MEAN`` on an
            image in [0, 1] (the mean colour, not black).
    """
    if x.ndim != 4:
        raise ValueError(f"translate expects a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    offset = as_offsets(offset, b, x.device)  # (B, 2)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - offset[:, 0].view(b, 1, 1)  # (B, H, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - offset[:, 1].view(b, 1, 1)  # (B, 1, W)
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)  # (B, H, W)
    source = rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)  # (B, H, W) flat source index
    gathered = x.reshape(b, c, h * w).gather(2, source.view(b, 1, h * w).expand(b, c, h * w))  # (B, C, H*W)
    out = gathered.view(b, c, h, w) * inside.unsqueeze(1).to(x.dtype)
    values = torch.as_tensor(fill, dtype=x.dtype, device=x.device).reshape(-1)  # (1,) or (C,)
    if not bool((values == 0).all()):
        if values.numel() not in (1, c):
            raise ValueError(f"fill must be one value or {c} (one per channel), got {values.numel()}")
        out = torch.where(inside.unsqueeze(1), out, values.view(1, -1, 1, 1).expand(b, c, h, w))
    return out


def random_offsets(
    batch: int,
    *,
    max_shift: float,
    size: int | tuple[int, int],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    sampling: Literal["uniform", "rounded"] = "uniform",
    scale: Literal["per_axis", "min_side"] = "per_axis",
) -> Tensor:
    """Draw integer shifts in ``[-δH, δH] × [-δW, δW]`` with ``δ = max_shift``.

    The Δ ~ U([-δ, δ]²) of eq. (3.2)/(4.2) and the δ of eq. (5.3), with δ given relative to the
    image size (the thesis uses 0.125 for chapters 3 and 4 and Δ = 1/8 for MOVE). Two ways to make
    the draw an integer, each axis independently:

    - ``"uniform"``: every integer in ``[-round(δH), round(δH)]`` equally likely.
    - ``"rounded"``: ``round(U(-1, 1) · δ · H)``, as the official MOVE draws it; with δH an integer L,
      the interior values have probability 1/(2L) and the two endpoints ±L half of that.

    ``scale="min_side"`` uses ``min(H, W)`` for both axes, as the official MOVE does (its shifts
    are ``δ · min(H, W)`` at most on either axis); ``"per_axis"`` scales dy by H and dx by W. The two
    agree on square images.

    Returns:
        (B, 2) int64 tensor of (dy, dx).
    """
    h, w = (size, size) if isinstance(size, int) else size
    if scale not in ("per_axis", "min_side"):
        raise ValueError(f"scale must be 'per_axis' or 'min_side', got {scale!r}")
    if scale == "min_side":
        h = w = min(h, w)
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if sampling not in ("uniform", "rounded"):
        raise ValueError(f"sampling must be 'uniform' or 'rounded', got {sampling!r}")
    # draw on the CPU generator for reproducibility across devices, then move
    unit = torch.rand(batch, 2, generator=generator)  # (B, 2) in [0, 1)
    if sampling == "rounded":
        scale = torch.tensor([max_shift * h, max_shift * w])  # (2,) δ·size in pixels
        offsets = ((unit * 2 - 1) * scale).round().to(torch.int64)  # (B, 2) in [-δ·size, δ·size]
    else:
        limits = torch.tensor([round(max_shift * h), round(max_shift * w)])  # (2,)
        offsets = (unit * (2 * limits + 1)).floor().to(torch.int64) - limits  # (B, 2) in [-lim, lim]
    return offsets.to(device) if device is not None else offsets
