"""A trained MOVE on one numpy image: its mask, its MAE inpainting, and its discriminator's verdict (chapter 5).

The app's Shift explorer and the notebooks work with numpy images of any size (float32
(H, W, 3) in [0, 1]) and bool masks; MOVE works at its training size S (``config.size``). These
functions resize the image (and a given mask) to S × S, call MOVE's own :meth:`~MOVE.predict`,
:meth:`~MOVE.compose` (every image of figure 5.2, eq. 5.3, 5.4) and discriminator, and resize the
views back to (H, W) with nearest-neighbour, so that every MOVE pixel stays visible.

Shifts are given in image pixels, as on the app's sliders, and become model pixels
``round(dx · S / W)``; the score is the discriminator's logit D(x̂_δ) of the shifted composite,
without the training-time DiffAugment, so that it is deterministic. The hinge loss (eq. 5.5)
pushes D to ≥ 1 on real images (x̃ and the unshifted composite x̂₀) and ≤ −1 on shifted
composites and copy-pastes: a correct mask and a small shift keep the score high.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pandas as pd
import torch

if TYPE_CHECKING:
    from workbench.methods.move import MOVE

__all__ = ["MoveViews", "compose_views", "discriminator_logits", "mae_inpainter", "model_shift", "predict_mask",
           "score_curve", "shift_scores", "verdicts"]

# helpers


def _to_model(image: np.ndarray, size: int, device: torch.device) -> torch.Tensor:
    """float32 (H, W, C) -> (1, C, S, S) resized with area averaging (bilinear when enlarging)."""
    shrink = size < image.shape[0] or size < image.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    out = cv2.resize(image.astype(np.float32), (size, size), interpolation=interpolation)
    out = out.reshape(size, size, -1)  # cv2 drops a single channel
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))[None].to(device)


def _to_image(view: torch.Tensor, shape: tuple[int, int], *, nearest: bool = True) -> np.ndarray:
    """(1, C, S, S) -> float32 (H, W, C) clipped to [0, 1], resized to ``shape`` (nearest-neighbour by default)."""
    array = view[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()  # (S, S, C)
    h, w = shape
    out = cv2.resize(array, (w, h), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR)
    return out.reshape(h, w, array.shape[2]).astype(np.float32)


def _check(image: np.ndarray, mask: np.ndarray | None = None) -> None:
    """ValueError unless the image is (H, W, 3) and the mask, when given, (H, W)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    if mask is not None and mask.shape != image.shape[:2]:
        raise ValueError(f"the mask is {mask.shape[1]}×{mask.shape[0]} px, "
                         f"the image {image.shape[1]}×{image.shape[0]}")


def _inputs(method: "MOVE", image: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """The image (1, 3, S, S) and the mask as a soft (1, 1, S, S) at the method's size."""
    _check(image, mask)
    size = method.config.size
    return _to_model(image, size, method.device), _to_model(mask.astype(np.float32)[..., None], size, method.device)


# classes


@dataclass
class MoveViews:
    """The images of figure 5.2 for one shift, as float32 (H, W, 3) at the image's size."""

    background: np.ndarray  # b̂: the MAE's inpainting of the mask and its shifted copy (eq. 5.4)
    shifted: np.ndarray  # x̂_δ: the object pasted δ away on b̂ (eq. 5.3)
    copy_paste: np.ndarray  # the shifted object over the (autoencoded) image
    offset: tuple[int, int]  # δ in model pixels (dy, dx)
    size: int  # the side S the views were computed at


# functions


def model_shift(dy: float, dx: float, *, shape: tuple[int, int], size: int) -> tuple[int, int]:
    """A shift in image pixels (dy, dx) of an (H, W) image -> model pixels at size S: round(d · S / side)."""
    h, w = shape
    return round(dy * size / h), round(dx * size / w)


@torch.no_grad()
def predict_mask(method: "MOVE", image: np.ndarray) -> np.ndarray:
    """MOVE's soft mask of ``image``, float32 (H, W) in [0, 1]: predicted at S × S, resized back bilinearly."""
    _check(image)
    x = _to_model(image, method.config.size, method.device)  # (1, 3, S, S)
    mask = method.predict(x)  # (1, 1, S, S)
    return _to_image(mask, image.shape[:2], nearest=False)[..., 0]


def discriminator_logits(method: "MOVE", images: torch.Tensor) -> torch.Tensor:
    """D's logits (B,) of images (B, 3, S, S) in [0, 1]: :meth:`MOVE.critic` without its random DiffAugment."""
    with torch.no_grad():
        return method.critic(images, augment=False)


@torch.no_grad()
def compose_views(method: "MOVE", image: np.ndarray, mask: np.ndarray, *, dy: float, dx: float) -> MoveViews:
    """b̂, x̂_δ and the copy-paste of :meth:`MOVE.compose` for the image, a mask and a shift in image pixels."""
    x, m = _inputs(method, image, mask)
    offset = model_shift(dy, dx, shape=image.shape[:2], size=method.config.size)
    images = method.compose(x, m, torch.tensor([offset], device=method.device))
    shape = image.shape[:2]
    return MoveViews(background=_to_image(images["background"], shape), shifted=_to_image(images["shifted"], shape),
                     copy_paste=_to_image(images["copy_paste"], shape), offset=offset, size=method.config.size)


@torch.no_grad()
def shift_scores(method: "MOVE", image: np.ndarray, mask: np.ndarray, offsets: np.ndarray | list) -> np.ndarray:
    """D(x̂_δ) for each shift δ (N, 2) given in *model* pixels (dy, dx): float32 (N,), one batch.

    The composites come from the method's own MAE (:meth:`MOVE.compose`), the one D was trained against.
    """
    x, m = _inputs(method, image, mask)
    offsets = torch.as_tensor(np.asarray(offsets), dtype=torch.long, device=method.device).reshape(-1, 2)  # (N, 2)
    n = offsets.shape[0]
    latent = method.encode_mae(x) if method.config.share_encoder else None  # one encoder pass for every shift
    images = method.compose(x.expand(n, -1, -1, -1), m.expand(n, -1, -1, -1), offsets,
                            latent=None if latent is None else latent.expand(n, -1, -1))
    return discriminator_logits(method, images["shifted"]).cpu().numpy()


@torch.no_grad()
def verdicts(method: "MOVE", image: np.ndarray, mask: np.ndarray, *, dy: float, dx: float) -> dict[str, float]:
    """D's logits for the images of one shift (image pixels): ``shifted`` x̂_δ, ``composed`` x̂₀ (no shift),
    ``copy_paste`` and ``real`` (x̃, the autoencoded image; x itself for the MSE inpainter)."""
    x, m = _inputs(method, image, mask)
    offset = model_shift(dy, dx, shape=image.shape[:2], size=method.config.size)
    images = method.compose(x.expand(2, -1, -1, -1), m.expand(2, -1, -1, -1),
                            torch.tensor([offset, (0, 0)], device=method.device))  # δ, then no shift
    batch = torch.cat([images["shifted"], images["copy_paste"][:1], images["autoencoded"][:1]])  # (4, 3, S, S)
    logits = discriminator_logits(method, batch).tolist()
    return dict(zip(("shifted", "composed", "copy_paste", "real"), logits))


def score_curve(method: "MOVE", image: np.ndarray, mask: np.ndarray, *, axis: str, held: float,
                max_shift: float, points: int | None = None) -> pd.DataFrame:
    """D(x̂_δ) along one slider's axis, up to ``max_shift`` image pixels either way.

    ``axis`` "dx" moves dx and holds dy at ``held`` (image pixels); "dy" the other way round.
    Shifts are every model pixel, or every k-th (k as small as keeps at most ``points`` shifts),
    symmetric about 0. Returns a table with columns ``shift`` (image pixels along the axis),
    ``score`` (D's logit) and ``axis``. One batch of composites, made by the method's own MAE.
    """
    if axis not in ("dx", "dy"):
        raise ValueError(f"axis must be 'dx' or 'dy', got {axis!r}")
    h, w = image.shape[:2]
    size = method.config.size
    side = w if axis == "dx" else h
    reach = round(max_shift * size / side)  # model pixels
    stride = 1 if points is None else max(1, -(-(2 * reach + 1) // max(points, 1)))
    steps = [stride * i for i in range(-(reach // stride), reach // stride + 1)]
    held_model = round(held * size / (h if axis == "dx" else w))
    offsets = [(held_model, s) if axis == "dx" else (s, held_model) for s in steps]
    scores = shift_scores(method, image, mask, offsets)
    return pd.DataFrame({"shift": [s * side / size for s in steps], "score": scores.astype(float), "axis": axis})


def mae_inpainter(weights: str | Path, *, arch: str = "mae_vit_large_patch16", size: int = 224,
                  inpainter: str = "gan") -> "MOVE":
    """A MOVE around an official MAE checkpoint, for :func:`compose_views` only (untrained head and D).

    ``weights`` is a path or a file name in :func:`workbench.nets.mae.weights_dir`; ``inpainter``
    "gan" pastes the MAE's autoencoding (the GAN-loss MAE, as MOVE does), "mse" the real pixels.
    """
    from workbench.methods.move import MOVE, MOVEConfig

    config = MOVEConfig(dataset="synthetic:easy", size=size, features="mae", mae_weights=str(weights), mae_run=None,
                        mae_arch=arch, inpainter=inpainter, head_width=8, discriminator="conv", disc_weights=None,
                        disc_width=8, steps=1)
    return MOVE(config).eval()
