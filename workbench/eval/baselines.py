"""Reference segmenters without learning, to put the methods' scores in context.

Each baseline maps an image (H, W, 3) float32 in [0, 1] to a mask (H, W) float32 in [0, 1].
:data:`BASELINES` names them ``full``, ``center``, ``grabcut`` and ``spectral_residual``:

* :func:`full_mask`: everything is foreground. Its IoU is the object's area fraction, its recall 1.
* :func:`center_prior`: a centred ellipse whose axes are 2/3 of the image's width and height (it
  covers pi/9, about 35%, of the image): objects in photos sit near the centre.
* :func:`grabcut`: OpenCV's GrabCut (Rother et al. 2004) initialised with a centred rectangle that
  leaves a margin of 10% of the shorter side, 5 iterations; foreground = definite or probable
  foreground. OpenCV's random generator is seeded, so the result is deterministic.
* :func:`spectral_residual`: spectral-residual saliency (Hou & Zhang, CVPR 2007) computed at 64 px
  width, binarised with Otsu's threshold; :func:`spectral_residual_saliency` gives the soft map.
  It responds to *unexpected* structure, so it marks the edges of a large uniform object (a ring)
  rather than its inside, and textured objects on plain backgrounds best.

:func:`run_baselines` scores them on any dataset that follows the dict convention.
"""

from __future__ import annotations

import time
from typing import Callable

import cv2
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from workbench.eval.metrics import SegmentationMeter

Baseline = Callable[[np.ndarray], np.ndarray]
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma

# helpers


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"a baseline takes an (H, W, 3) image, got shape {image.shape}")
    return image.astype(np.float32, copy=False)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] -> contiguous uint8, rounded."""
    return np.ascontiguousarray(np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8))


def otsu(saliency: np.ndarray) -> np.ndarray:
    """Binarise an (H, W) map in [0, 1] with Otsu's threshold on 256 grey levels: float32 {0, 1}."""
    levels = np.clip(saliency * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if levels.min() == levels.max():  # no two classes to separate
        return np.zeros(saliency.shape, np.float32)
    _, binary = cv2.threshold(levels, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return binary.astype(np.float32)


# baselines


def full_mask(image: np.ndarray) -> np.ndarray:
    """Every pixel is foreground."""
    image = _check_image(image)
    return np.ones(image.shape[:2], np.float32)


def center_prior(image: np.ndarray, *, axes: float = 2 / 3) -> np.ndarray:
    """A centred ellipse with axes ``axes * W`` (horizontal) and ``axes * H`` (vertical)."""
    image = _check_image(image)
    h, w = image.shape[:2]
    y = (np.arange(h, dtype=np.float32) + 0.5 - h / 2) / (axes * h / 2)  # (H,) pixel centres
    x = (np.arange(w, dtype=np.float32) + 0.5 - w / 2) / (axes * w / 2)  # (W,)
    return ((y[:, None] ** 2 + x[None, :] ** 2) <= 1.0).astype(np.float32)  # (H, W)


def grabcut(image: np.ndarray, *, margin: float = 0.1, iterations: int = 5, seed: int = 0) -> np.ndarray:
    """GrabCut from the centred rectangle ``(m, m, W - 2m, H - 2m)``, ``m = round(margin * min(H, W))``."""
    image = _check_image(image)
    h, w = image.shape[:2]
    m = round(margin * min(h, w))
    if m < 1 or w - 2 * m < 1 or h - 2 * m < 1:
        raise ValueError(f"grabcut: a {h}x{w} image with margin {margin} leaves no background or no foreground")
    mask = np.zeros((h, w), np.uint8)
    bgd_model = np.zeros((1, 65), np.float64)  # GrabCut's colour models (5 Gaussians x 13 numbers)
    fgd_model = np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)  # GrabCut initialises its Gaussians with k-means
    rect = (m, m, w - 2 * m, h - 2 * m)  # (x, y, width, height)
    cv2.grabCut(to_uint8(image), mask, rect, bgd_model, fgd_model, iterations, cv2.GC_INIT_WITH_RECT)
    return ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.float32)


def spectral_residual_saliency(image: np.ndarray, *, width: int = 64, sigma: float = 2.5) -> np.ndarray:
    """Spectral-residual saliency map (Hou & Zhang 2007): (H, W) float32 in [0, 1].

    The grey image is resized to ``width`` pixels wide. With ``F`` its 2-D Fourier transform,
    ``L = log|F|`` and ``P`` the phase of ``F``, the spectral residual is ``R = L - mean3x3(L)`` (the
    local mean is periodic, like the spectrum). The saliency is ``|IFFT(exp(R + iP))|^2``, blurred by
    a Gaussian of ``sigma`` pixels (at ``width``), resized back bilinearly and scaled to [0, 1].
    """
    image = _check_image(image)
    h, w = image.shape[:2]
    grey = image @ GREY_WEIGHTS  # (H, W)
    small_h = max(1, round(h * width / w))
    small = cv2.resize(grey, (width, small_h), interpolation=cv2.INTER_AREA).astype(np.float64)  # (h', w')
    spectrum = np.fft.fft2(small)
    log_amplitude = np.log(np.abs(spectrum) + 1e-12)
    phase = np.angle(spectrum)
    local_mean = sum(np.roll(log_amplitude, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0
    residual = log_amplitude - local_mean
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2  # (h', w')
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), sigma)
    saliency = cv2.resize(saliency, (w, h), interpolation=cv2.INTER_LINEAR)  # (H, W)
    lo, hi = float(saliency.min()), float(saliency.max())
    if hi - lo < 1e-12:
        return np.zeros((h, w), np.float32)
    return ((saliency - lo) / (hi - lo)).astype(np.float32)


def spectral_residual(image: np.ndarray, *, width: int = 64, sigma: float = 2.5) -> np.ndarray:
    """Spectral-residual saliency binarised by Otsu's threshold: (H, W) float32 in {0, 1}."""
    return otsu(spectral_residual_saliency(image, width=width, sigma=sigma))


BASELINES: dict[str, Baseline] = {
    "full": full_mask,
    "center": center_prior,
    "grabcut": grabcut,
    "spectral_residual": spectral_residual,
}

# running


def _item_arrays(item: dict, index: int) -> tuple[np.ndarray, np.ndarray]:
    if "mask" not in item:
        raise ValueError(f"dataset item {index} ({item.get('name', '?')}) has no 'mask': baselines need ground truth")
    image = torch.as_tensor(item["image"])  # (3, H, W)
    mask = torch.as_tensor(item["mask"])  # (1, H, W)
    shapes_ok = image.ndim == 3 and image.shape[0] == 3 and mask.ndim == 3 and mask.shape[0] == 1
    if not shapes_ok or image.shape[1:] != mask.shape[1:]:
        raise ValueError(
            f"dataset item {index}: expected image (3, H, W) and mask (1, H, W), "
            f"got {tuple(image.shape)} and {tuple(mask.shape)}"
        )
    return image.permute(1, 2, 0).float().cpu().numpy(), mask[0].cpu().numpy() > 0.5


def run_baselines(
    dataset, *, n: int | None = None, names: list[str] | None = None, progress: bool = True
) -> pd.DataFrame:
    """Score baselines on the first ``n`` items of a map-style dataset (all when None).

    Items are dicts with "image" (3, H, W) and "mask" (1, H, W). Returns one row per baseline:
    baseline, iou, accuracy, f_beta (at 0.5), max_f_beta, max_f_beta_per_image, mae, corloc, n,
    seconds_per_image (wall time of the baseline alone).
    """
    names = list(BASELINES) if names is None else list(names)
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINES)}")
    total = len(dataset) if n is None else min(n, len(dataset))
    if total < 1:
        raise ValueError("run_baselines: the dataset is empty")
    meters = {name: SegmentationMeter(corloc=True) for name in names}
    seconds = dict.fromkeys(names, 0.0)
    for i in tqdm(range(total), desc="baselines", unit="image", disable=not progress):
        item = dataset[i]
        image, gt = _item_arrays(item, i)
        for name in names:
            start = time.perf_counter()
            pred = BASELINES[name](image)  # (H, W)
            seconds[name] += time.perf_counter() - start
            meters[name].update(pred, gt, names=[str(item.get("name", i))])
    rows = []
    for name in names:
        s = meters[name].compute()
        rows.append({
            "baseline": name,
            **{k: s[k] for k in ["iou", "accuracy", "f_beta", "max_f_beta", "max_f_beta_per_image", "mae", "corloc"]},
            "n": total,
            "seconds_per_image": seconds[name] / total,
        })
    return pd.DataFrame(rows)
