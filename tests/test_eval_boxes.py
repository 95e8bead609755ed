"""Boxes from connected components and CorLoc, on hand-made masks."""

import numpy as np
import pytest

from workbench.eval import boxes as B
from workbench.eval.metrics import SegmentationMeter

# helpers


def two_blobs_and_a_speck() -> np.ndarray:
    m = np.zeros((100, 100), bool)
    m[10:40, 10:50] = True  # 1200 px, box (10, 10, 50, 40)
    m[60:90, 60:80] = True  # 600 px, box (60, 60, 80, 90)
    m[0:5, 90:95] = True  # 25 px < 1% of the image
    return m


# tests


def test_components_and_boxes():
    m = two_blobs_and_a_speck()
    boxes, areas = B.components(m)
    assert sorted(areas.tolist()) == [25, 600, 1200]
    assert B.largest_box(m).tolist() == [10, 10, 50, 40]
    assert B.mask_to_boxes(m, mode="all").tolist() == [[10, 10, 50, 40], [60, 60, 80, 90]]
    assert len(B.mask_to_boxes(m, mode="all", min_area=0.0)) == 3
    assert len(B.gt_boxes_from_mask(m)) == 3  # ground truth keeps every component
    assert B.largest_box(np.zeros((8, 8), bool)) is None
    with pytest.raises(ValueError, match="mode"):
        B.mask_to_boxes(m, mode="biggest")


def test_eight_connectivity_joins_diagonal_pixels():
    m = np.zeros((5, 5), bool)
    m[1, 1] = m[2, 2] = m[3, 3] = True
    assert B.mask_to_boxes(m, mode="all", min_area=0).tolist() == [[1, 1, 4, 4]]


def test_box_iou_by_hand():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    assert B.box_iou(a, b)[0] == pytest.approx([50 / 150, 1.0, 0.0])
    assert B.box_iou(a, b).shape == (1, 3)


def test_corloc_counts_a_match_with_any_gt_box():
    gt = [np.array([[0, 0, 10, 10], [50, 50, 60, 60]]), np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10]])]
    pred = [
        np.array([51, 50, 60, 60]),  # IoU 0.9 with the second box: hit
        np.array([0, 0, 10, 20]),  # IoU exactly 0.5: not > 0.5, miss
        None,  # empty prediction: miss
    ]
    assert B.corloc_hits(pred, gt).tolist() == [True, False, False]
    assert B.corloc(pred, gt) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        B.corloc(pred[:2], gt)


def test_corloc_from_masks_and_meter():
    gt = two_blobs_and_a_speck()
    pred_small_blob = np.zeros_like(gt)
    pred_small_blob[60:90, 60:80] = True
    pred_small_blob[10:12, 10:12] = True  # a stray speck: the largest component still wins
    pred_wrong = np.zeros_like(gt)
    pred_wrong[40:100, 0:60] = True
    assert B.corloc_from_masks([pred_small_blob, pred_wrong], [gt, gt]) == 0.5
    meter = SegmentationMeter(corloc=True)
    meter.update(np.stack([pred_small_blob, pred_wrong]).astype(np.float32), np.stack([gt, gt]))
    assert meter.compute()["corloc"] == 0.5
    table = meter.per_image()
    assert table["box_iou"][0] == pytest.approx(1.0) and table["corloc"].tolist() == [1.0, 0.0]
    # given boxes replace those derived from the masks
    meter = SegmentationMeter(corloc=True)
    meter.update(pred_wrong.astype(np.float32), gt, gt_boxes=[np.array([[0, 40, 60, 100]])])
    assert meter.compute()["corloc"] == 1.0
    with pytest.raises(ValueError, match="corloc=True"):
        SegmentationMeter().update(pred_wrong.astype(np.float32), gt, gt_boxes=[np.array([[0, 40, 60, 100]])])
