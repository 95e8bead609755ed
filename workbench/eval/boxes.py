"""Boxes from masks, and the CorLoc metric of single-object discovery (thesis section 5.4.2).

MOVE turns a predicted mask into boxes like this (the official code never released it; this is
our implementation of the text): split the binary mask into connected components with OpenCV
(``cv2.connectedComponentsWithStats``, 8-connectivity), take the bounding box of each component,
and keep

* the box of the *largest* component (most pixels; ties go to the first in raster order) as the
  single prediction of the image, which CorLoc scores; or
* all boxes whose component covers at least 1% of the image (``mode="all"``), which the thesis
  uses as pseudo-boxes ("Multi") for a class-agnostic detector.

CorLoc (Correct Localization) is the fraction of images whose single predicted box has
IoU > 0.5 with ANY ground-truth box. When a dataset has masks but no boxes, the ground-truth boxes
are those of the connected components of the ground-truth mask, one per component, none dropped.
An image with no predicted box (an empty mask), or with no ground-truth box, is a miss.

Box convention: ``(x0, y0, x1, y1)`` in pixels with exclusive ends, so the box covers columns
``x0 .. x1 - 1`` and its area is ``(x1 - x0) * (y1 - y0)``. (Pascal VOC annotations are inclusive
and 1-based: ``(xmin - 1, ymin - 1, xmax, ymax)`` converts them.)
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

MIN_AREA = 0.01  # "all" mode keeps components covering at least this fraction of the image

# helpers


def _as_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must have shape (H, W), got {mask.shape}")
    return np.ascontiguousarray(mask > 0.5 if mask.dtype != bool else mask, dtype=np.uint8)


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components (8-connectivity) of a binary (H, W) mask.

    Returns ``boxes`` (K, 4) int64 as ``(x0, y0, x1, y1)`` and ``areas`` (K,) int64 pixel counts, one
    row per component in OpenCV's label order (raster order of first pixel); background excluded.
    """
    m = _as_mask(mask)
    _, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    stats = stats[1:].astype(np.int64)  # (K, 5): x, y, w, h, area; row 0 is the background
    x, y, w, h, area = stats.T
    return np.stack([x, y, x + w, y + h], axis=1).reshape(-1, 4), area


def mask_to_boxes(mask: np.ndarray, *, mode: str = "largest", min_area: float = MIN_AREA) -> np.ndarray:
    """Boxes (K, 4) of a binary mask: ``mode="largest"`` gives the box of the largest component
    (K = 1, or 0 for an empty mask); ``mode="all"`` every component covering at least ``min_area``
    of the image, largest first."""
    boxes, areas = components(mask)
    if mode == "largest":
        return boxes[np.argmax(areas)][None] if len(areas) else boxes
    if mode == "all":
        h, w = np.shape(mask)
        keep = areas >= min_area * h * w
        order = np.argsort(-areas[keep], kind="stable")
        return boxes[keep][order]
    raise ValueError(f"mode must be 'largest' or 'all', got {mode!r}")


def largest_box(mask: np.ndarray) -> np.ndarray | None:
    """The box ``(x0, y0, x1, y1)`` of the largest connected component, or None for an empty mask."""
    boxes = mask_to_boxes(mask, mode="largest")
    return boxes[0] if len(boxes) else None


def gt_boxes_from_mask(mask: np.ndarray) -> np.ndarray:
    """Ground-truth boxes (K, 4) from a ground-truth mask: one per connected component."""
    return components(mask)[0]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` (N, 4) and ``b`` (M, 4), ``(x0, y0, x1, y1)``: (N, M) float64."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])  # (N, M)
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])  # (N,)
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # (M,)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def best_box_iou(box: np.ndarray | None, targets: np.ndarray) -> float:
    """The highest IoU of one box with any of ``targets`` (M, 4); 0 when either is missing."""
    targets = np.asarray(targets).reshape(-1, 4)
    if box is None or len(targets) == 0:
        return 0.0
    return float(box_iou(np.asarray(box)[None], targets).max())


def corloc_hits(pred_boxes: Sequence[np.ndarray | None], gt_boxes: Sequence[np.ndarray]) -> np.ndarray:
    """Per image, whether its single predicted box has IoU > 0.5 with any ground-truth box: (N,) bool.

    ``pred_boxes``: one ``(4,)`` box (or None) per image; ``gt_boxes``: one ``(M, 4)`` array per image.
    """
    if len(pred_boxes) != len(gt_boxes):
        raise ValueError(f"{len(pred_boxes)} predicted boxes for {len(gt_boxes)} images of ground truth")
    return np.array([best_box_iou(p, g) > 0.5 for p, g in zip(pred_boxes, gt_boxes)], dtype=bool)


def corloc(pred_boxes: Sequence[np.ndarray | None], gt_boxes: Sequence[np.ndarray]) -> float:
    """CorLoc: the fraction of images whose predicted box has IoU > 0.5 with any ground-truth box."""
    hits = corloc_hits(pred_boxes, gt_boxes)
    if len(hits) == 0:
        raise ValueError("corloc of an empty set of images")
    return float(hits.mean())


def corloc_from_masks(pred_masks: Sequence[np.ndarray], gt_masks: Sequence[np.ndarray]) -> float:
    """CorLoc from binary predicted masks (largest component) and ground-truth masks (all components)."""
    return corloc([largest_box(m) for m in pred_masks], [gt_boxes_from_mask(m) for m in gt_masks])
