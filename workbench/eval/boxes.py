"""Boxes from masks, and the CorLoc metric of single-object discovery (thesis section 5.4.2).

MOVE turns a predicted mask into boxes like this (the official code never released it; this is
our implementation of the text): split the binary mask into connected components with OpenCV
(``cv2.connectedComponentsWithStats``, 8-connectivity), take the bounding box of each component,
and keep

* the box of the *largest* component (most pixels; ties go to the first in raster order) as the
  single prediction of the image, which CorLoc scores ("MOVE" rows of table 5.4); or
* all boxes whose component covers at least 1% of the image (``mode="all"``): the *Multi* boxes.

CorLoc (Correct Localization) is the fraction of images whose single predicted box has
IoU > 0.5 with ANY ground-truth box. When a dataset has masks but no boxes, the ground-truth boxes
are those of the connected components of the ground-truth mask, one per component, none dropped;
Pascal VOC annotation files give them directly (:func:`read_voc_boxes`).
An image with no predicted box (an empty mask), or with no ground-truth box, is a miss.

**Multi.** The thesis defines "Multi" (table 5.4, "MOVE (Ours) Multi + CAD") as a set of
*pseudo-boxes*, not as a scored prediction: "all the bounding boxes that we obtained from the
connected components analysis and after filtering those that have an area smaller than 1% of the
image", used to train a class-agnostic detector (CAD), whose single most confident box is then
scored by CorLoc. The workbench trains no detector, so what it reports for Multi is the quality
of those pseudo-boxes: ``corloc_multi`` is the fraction of images where *at least one* Multi box
has IoU > 0.5 with a ground-truth box (:func:`corloc_multi`), i.e. the CorLoc a detector would
reach if its top box were always the best of the image's Multi boxes. It is an upper bound for
that detector, never below the largest-component CorLoc when the largest component covers at least
1% of the image (the largest box is one of the Multi boxes), and it is not comparable to the
"Multi + CAD" numbers of table 5.4; read it beside the mean number of Multi boxes per image.

Box convention: ``(x0, y0, x1, y1)`` in pixels with exclusive ends, so the box covers columns
``x0 .. x1 - 1`` and its area is ``(x1 - x0) * (y1 - y0)``. (Pascal VOC annotations are inclusive
and 1-based: ``(xmin - 1, ymin - 1, xmax, ymax)`` converts them.)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
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


# Multi: every component of at least 1% of the image


def multi_boxes(mask: np.ndarray, *, min_area: float = MIN_AREA) -> np.ndarray:
    """The Multi pseudo-boxes (K, 4) of a binary mask: every component covering at least ``min_area``
    of the image, largest first (K = 0 for an empty mask)."""
    return mask_to_boxes(mask, mode="all", min_area=min_area)


def best_set_iou(boxes: np.ndarray, targets: np.ndarray) -> float:
    """The highest IoU between any of ``boxes`` (K, 4) and any of ``targets`` (M, 4); 0 when either is empty."""
    boxes, targets = np.asarray(boxes).reshape(-1, 4), np.asarray(targets).reshape(-1, 4)
    if len(boxes) == 0 or len(targets) == 0:
        return 0.0
    return float(box_iou(boxes, targets).max())


def corloc_multi_hits(pred_box_sets: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray]) -> np.ndarray:
    """Per image, whether ANY of its Multi boxes (K, 4) has IoU > 0.5 with any ground-truth box: (N,) bool."""
    if len(pred_box_sets) != len(gt_boxes):
        raise ValueError(f"{len(pred_box_sets)} predicted box sets for {len(gt_boxes)} images of ground truth")
    return np.array([best_set_iou(p, g) > 0.5 for p, g in zip(pred_box_sets, gt_boxes)], dtype=bool)


def corloc_multi(pred_box_sets: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray]) -> float:
    """The Multi figure (see the module docstring): the share of images where a Multi box hits a ground-truth box."""
    hits = corloc_multi_hits(pred_box_sets, gt_boxes)
    if len(hits) == 0:
        raise ValueError("corloc_multi of an empty set of images")
    return float(hits.mean())


# ground-truth boxes from annotation files


def read_voc_boxes(path: str | Path, *, difficult: bool = True) -> tuple[np.ndarray, tuple[int, int]]:
    """The object boxes (M, 4) and the image size ``(H, W)`` of a Pascal VOC annotation file.

    Boxes are converted from VOC's inclusive, 1-based ``xmin ymin xmax ymax`` to ``(x0, y0, x1, y1)``
    (see the module docstring). ``difficult=False`` drops the objects marked difficult (single-object
    discovery keeps them, as LOST and TokenCut do). Raises ``ValueError`` naming the file when it
    is not a readable VOC annotation.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
        size = root.find("size")
        h, w = int(float(size.findtext("height"))), int(float(size.findtext("width")))
        boxes = []
        for obj in root.iter("object"):
            if not difficult and obj.findtext("difficult", "0").strip() == "1":
                continue
            box = obj.find("bndbox")
            x0, y0, x1, y1 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append([x0 - 1, y0 - 1, x1, y1])
    except (ET.ParseError, AttributeError, TypeError, ValueError, OSError) as error:
        raise ValueError(f"{path}: not a readable Pascal VOC annotation (size and object/bndbox "
                         f"xmin, ymin, xmax, ymax expected): {error}") from error
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), (h, w)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, *, colour: tuple[float, float, float] = (0.1, 0.9, 0.2),
               thickness: int | None = None) -> np.ndarray:
    """A copy of the float (H, W, 3) image with each box ``(x0, y0, x1, y1)`` (exclusive ends) outlined.

    ``thickness`` defaults to about 1/200 of the longer side (at least 1 px); the outline lies inside
    the box.
    """
    out = np.ascontiguousarray(np.asarray(image, dtype=np.float32).copy())
    width = thickness or max(1, round(max(out.shape[:2]) / 200))
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.int64).reshape(-1, 4):
        cv2.rectangle(out, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), tuple(float(c) for c in colour), width)
    return out
