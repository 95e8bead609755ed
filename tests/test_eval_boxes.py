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


# Multi, VOC annotations and `eval --boxes`


def voc_xml(boxes, *, h=100, w=100, difficult=()) -> str:
    """A Pascal VOC annotation with ``(x0, y0, x1, y1)`` boxes written 1-based and inclusive."""
    objects = "".join(
        f"<object><name>thing</name><difficult>{int(i in difficult)}</difficult><bndbox><xmin>{x0 + 1}</xmin>"
        f"<ymin>{y0 + 1}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for i, (x0, y0, x1, y1) in enumerate(boxes))
    return f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objects}</annotation>"


@pytest.fixture
def box_folders(tmp_path):
    """Four predictions of the two-blob ground truth, with known CorLoc 1/4 and Multi 2/4.

    a: a large wrong blob plus blob B exactly (largest misses, Multi hits; 2 Multi boxes)
    b: blob A exactly (both hit; 1 box)
    c: a 25-pixel speck inside A (largest misses; the speck is under 1%: 0 Multi boxes)
    d: empty (both miss)
    """
    import cv2

    gt = two_blobs_and_a_speck()
    gt[0:5, 90:95] = False  # two objects, A (10, 10, 50, 40) and B (60, 60, 80, 90)
    a = np.zeros_like(gt)
    a[45:100, 0:40] = True
    a[60:90, 60:80] = True
    b = np.zeros_like(gt)
    b[10:40, 10:50] = True
    c = np.zeros_like(gt)
    c[20:25, 20:25] = True
    d = np.zeros_like(gt)
    folders = {name: tmp_path / name for name in ("pred", "gt", "ann")}
    for folder in folders.values():
        folder.mkdir()
    for name, pred in zip("abcd", (a, b, c, d)):
        assert cv2.imwrite(str(folders["pred"] / f"{name}.png"), pred.astype(np.uint8) * 255)
        assert cv2.imwrite(str(folders["gt"] / f"{name}.png"), gt.astype(np.uint8) * 255)
        (folders["ann"] / f"{name}.xml").write_text(voc_xml([(10, 10, 50, 40), (60, 60, 80, 90)]))
    (folders["ann"] / "unused.xml").write_text(voc_xml([(0, 0, 5, 5)]))  # more annotations than predictions is fine
    return folders


def test_multi_boxes_and_corloc_multi():
    m = two_blobs_and_a_speck()
    assert B.multi_boxes(m).tolist() == [[10, 10, 50, 40], [60, 60, 80, 90]]  # the speck is under 1%
    assert len(B.multi_boxes(np.zeros((10, 10), bool))) == 0
    gt = [np.array([[60, 60, 80, 90]]), np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10]])]
    sets = [B.multi_boxes(m), np.array([[0, 0, 10, 20]]), np.zeros((0, 4))]  # hit (2nd box), IoU 0.5 (miss), none
    assert B.corloc_multi_hits(sets, gt).tolist() == [True, False, False]
    assert B.corloc_multi(sets, gt) == pytest.approx(1 / 3)
    assert B.best_set_iou(sets[0], gt[0]) == 1.0
    # the largest component alone misses the first image: Multi is never below it, here above
    assert B.corloc([B.largest_box(m)], gt[:1]) == 0.0
    with pytest.raises(ValueError):
        B.corloc_multi(sets[:2], gt)


def test_read_voc_boxes(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text(voc_xml([(10, 10, 50, 40), (0, 0, 3, 3)], h=120, w=90, difficult=(1,)))
    boxes, size = B.read_voc_boxes(path)
    assert size == (120, 90) and boxes.tolist() == [[10, 10, 50, 40], [0, 0, 3, 3]]
    assert B.read_voc_boxes(path, difficult=False)[0].tolist() == [[10, 10, 50, 40]]
    (tmp_path / "bad.xml").write_text("<annotation><object/></annotation>")
    with pytest.raises(ValueError, match="bad.xml"):
        B.read_voc_boxes(tmp_path / "bad.xml")


def test_evaluate_folders_with_boxes(box_folders):
    from workbench.eval.folders import evaluate_folders

    per_image, summary = evaluate_folders(box_folders["pred"], box_folders["gt"], boxes=True, progress=False)
    s = summary.iloc[0]
    assert s["corloc"] == 0.25 and s["corloc_multi"] == 0.5 and s["multi_boxes"] == 0.75
    assert list(summary.columns)[-3:] == ["corloc", "corloc_multi", "multi_boxes"]
    rows = per_image.set_index("name")
    assert rows["corloc"].tolist() == [0, 1, 0, 0] and rows["corloc_multi"].tolist() == [1, 1, 0, 0]
    assert rows["multi_boxes"].tolist() == [2, 1, 0, 0]
    plain = evaluate_folders(box_folders["pred"], box_folders["gt"], progress=False)[1]
    assert "corloc_multi" not in plain.columns and plain["corloc"][0] == 0.25


def test_evaluate_folders_with_voc_boxes(box_folders, tmp_path):
    from workbench.eval.folders import evaluate_folders

    per_image, summary = evaluate_folders(box_folders["pred"], gt_boxes=box_folders["ann"], progress=False)
    assert list(summary.columns) == ["n", "corloc", "corloc_multi", "multi_boxes"]
    assert summary.iloc[0].tolist() == [4, 0.25, 0.5, 0.75]
    assert per_image["box_iou"][1] == 1.0 and not per_image["resized"].any()
    # annotation boxes replace the masks' boxes: the wrong blob of "a" becomes a right one
    (box_folders["ann"] / "a.xml").write_text(voc_xml([(0, 45, 40, 100)]))
    _, summary = evaluate_folders(box_folders["pred"], box_folders["gt"], gt_boxes=box_folders["ann"], progress=False)
    assert summary["corloc"][0] == 0.5 and summary["corloc_multi"][0] == 0.5 and "iou" in summary.columns
    # an annotation for another image size, or a missing one, is named
    (box_folders["ann"] / "a.xml").write_text(voc_xml([(0, 45, 40, 100)], h=50))
    with pytest.raises(ValueError, match="a.xml is for a 50x100 image"):
        evaluate_folders(box_folders["pred"], box_folders["gt"], gt_boxes=box_folders["ann"], progress=False)
    (box_folders["ann"] / "a.xml").unlink()
    with pytest.raises(ValueError, match="1 predictions have no annotation"):
        evaluate_folders(box_folders["pred"], gt_boxes=box_folders["ann"], progress=False)
    with pytest.raises(ValueError, match="--gt"):
        evaluate_folders(box_folders["pred"], progress=False)


def test_draw_boxes_outlines_inside_the_box_and_leaves_the_input_alone():
    image = np.zeros((20, 30, 3), np.float32)
    out = B.draw_boxes(image, np.array([[5, 4, 15, 10]]), colour=(1.0, 0.0, 0.0), thickness=1)
    assert image.max() == 0  # a copy
    outline = out[..., 0] > 0
    assert outline[4, 5:15].all() and outline[9, 5:15].all() and outline[4:10, 5].all() and outline[4:10, 14].all()
    assert not outline[5:9, 6:14].any() and outline.sum() == 2 * 10 + 2 * 4 and out[..., 1:].max() == 0
