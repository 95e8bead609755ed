"""Segmentation metrics: hand-computed values, and max F_beta against a brute-force loop."""

import numpy as np
import pytest
import torch

from workbench.eval import metrics as M
from workbench.eval.metrics import SegmentationMeter

# helpers


def brute_force_max_f(preds, gts, beta2=0.3):
    """max F_beta with both variants by looping over the 256 cuts t_k = (k - 0.5) / 255."""
    curves_p, curves_r = [], []
    for p, g in zip(preds, gts):
        ps, rs = [], []
        for k in range(256):
            b = p >= (k - 0.5) / 255
            tp, pp, gp = (b & g).sum(), b.sum(), g.sum()
            ps.append(tp / pp if pp else 0.0)
            rs.append(tp / gp if gp else 0.0)
        curves_p.append(ps)
        curves_r.append(rs)
    P, R = np.array(curves_p), np.array(curves_r)  # (N, 256)

    def f(p, r):
        den = beta2 * p + r
        return np.where(den > 0, (1 + beta2) * p * r / np.where(den > 0, den, 1), 0.0)

    dataset = f(P, R).mean(0).max()  # one threshold: the best mean over images of F_beta
    per_image = f(P, R).max(1).mean()  # every image at its own best threshold
    return dataset, per_image


# tests


def test_hand_computed_binary_scores():
    pred = np.array([[0.9, 0.6, 0.2], [0.4, 0.7, 0.0]], np.float32)
    gt = np.array([[1, 0, 0], [1, 1, 0]], bool)
    # binary: [[1, 1, 0], [0, 1, 0]] -> TP 2, FP 1, FN 1, TN 2
    assert M.iou(pred, gt) == pytest.approx(2 / 4)
    assert M.pixel_accuracy(pred, gt) == pytest.approx(4 / 6)
    assert M.precision_recall(pred, gt) == pytest.approx((2 / 3, 2 / 3))
    assert M.f_beta(pred, gt) == pytest.approx(2 / 3)  # P = R gives F = P
    assert M.mae(pred, gt) == pytest.approx((0.1 + 0.6 + 0.2 + 0.6 + 0.3 + 0.0) / 6)


def test_f_beta_weights_precision():
    pred = np.array([[1.0, 0.0, 0.0, 0.0]], np.float32)
    gt = np.array([[1, 1, 0, 0]], bool)
    # precision 1, recall 1/2: F = 1.3 * 0.5 / (0.3 + 0.5)
    assert M.f_beta(pred, gt) == pytest.approx(0.65 / 0.8)
    assert M.f_beta_from(1.0, 0.5, beta2=1.0) == pytest.approx(2 / 3)  # the F1 score
    assert M.f_beta_from(0.0, 0.0) == 0.0


def test_empty_masks_and_threshold_edge():
    empty = np.zeros((4, 4), bool)
    assert M.iou(np.zeros((4, 4), np.float32), empty) == 1.0  # both empty: perfect
    assert M.pixel_accuracy(np.zeros((4, 4), np.float32), empty) == 1.0
    gt = empty.copy()
    gt[0, 0] = True
    assert M.iou(np.zeros((4, 4), np.float32), gt) == 0.0
    assert M.f_beta(np.zeros((4, 4), np.float32), gt) == 0.0
    half = np.full((4, 4), 0.5, np.float32)
    assert M.precision_recall(half, gt) == pytest.approx((1 / 16, 1.0))  # p = 0.5 is foreground
    assert M.iou(half, gt, threshold=0.6) == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_histogram_max_f_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    meter = SegmentationMeter()
    preds, gts = [], []
    for shape in [(3, 17, 23), (2, 9, 9)]:  # two batches of different sizes
        g = rng.random(shape) < rng.random((shape[0], 1, 1))  # various object sizes
        p = np.clip(0.4 * g + 0.6 * rng.random(shape) ** rng.uniform(0.5, 2, (shape[0], 1, 1)), 0, 1)
        meter.update(p, g)  # float64 in: exact cuts
        preds += list(p)
        gts += list(g)
    dataset, per_image = brute_force_max_f(preds, gts)
    scores = meter.compute()
    assert scores["max_f_beta"] == pytest.approx(dataset, abs=1e-12)
    assert scores["max_f_beta_per_image"] == pytest.approx(per_image, abs=1e-12)
    assert scores["max_f_beta_per_image"] >= scores["max_f_beta"]
    assert M.max_f_beta(preds, gts) == pytest.approx(dataset, abs=1e-12)
    assert M.max_f_beta(preds, gts, per_image=True) == pytest.approx(per_image, abs=1e-12)


def test_eight_bit_predictions_are_scored_at_their_own_levels():
    rng = np.random.default_rng(3)
    levels = rng.integers(0, 256, (4, 12, 12))
    gts = rng.random((4, 12, 12)) < 0.3
    preds = (levels / 255).astype(np.float32)  # what an 8-bit PNG reads back as
    dataset, per_image = brute_force_max_f(list(levels.astype(np.float64) / 255), list(gts))
    meter = SegmentationMeter()
    meter.update(preds, gts)
    s = meter.compute()
    assert s["max_f_beta"] == pytest.approx(dataset, abs=1e-12)
    assert s["max_f_beta_per_image"] == pytest.approx(per_image, abs=1e-12)


def test_dataset_and_per_image_variants_differ():
    gt = np.array([[[1, 1, 0, 0]], [[1, 1, 0, 0]]], bool)  # (2, 1, 4): two 1x4 images
    pred = np.array([[[0.9, 0.9, 0.4, 0.4]], [[0.3, 0.3, 0.2, 0.2]]])
    meter = SegmentationMeter()
    meter.update(pred, gt)
    s = meter.compute()
    # each image alone is perfect at its own threshold
    assert s["max_f_beta_per_image"] == pytest.approx(1.0)
    # one shared threshold: the best is t in (0.2, 0.3], where image 1 has P = 1/2, R = 1, so
    # F = 1.3 * 0.5 / (0.15 + 1) = 13/23, and image 2 F = 1: the mean is 18/23. (At t in (0.4, 0.9]
    # the mean is (1 + 0) / 2; at t <= 0.2 both images have P = 1/2: 13/23.)
    assert s["max_f_beta"] == pytest.approx(18 / 23)
    assert 0.2 < s["max_f_beta_threshold"] <= 0.3
    # at 0.5 image 1 is perfect and image 2 empty: F = 1 and 0, mean 1/2
    assert meter.per_image()["f_beta"].tolist() == pytest.approx([1.0, 0.0])
    assert s["f_beta"] == pytest.approx(0.5)
    curve = meter.curve()
    assert len(curve) == 256 and curve["f_beta"].max() == pytest.approx(18 / 23)
    assert curve["precision"][128] == pytest.approx(0.5) and curve["recall"][128] == pytest.approx(0.5)


def test_meter_streaming_equals_one_batch_and_plain_functions():
    rng = np.random.default_rng(5)
    g = rng.random((20, 200, 200)) < 0.4  # 800k pixels: more than one slice inside the meter
    p = rng.random((20, 200, 200)).astype(np.float32)
    one = SegmentationMeter()
    one.update(torch.from_numpy(p)[:, None], torch.from_numpy(g)[:, None].float())  # (N, 1, H, W)
    streamed = SegmentationMeter()
    for i in range(20):
        streamed.update(p[i], g[i], names=[f"img{i}"])
    a, b = one.compute(), streamed.compute()
    assert a == pytest.approx(b)
    table = streamed.per_image()
    assert list(table["name"][:2]) == ["img0", "img1"] and len(table) == 20
    assert table["iou"][3] == pytest.approx(M.iou(p[3], g[3]))
    assert table["mae"][3] == pytest.approx(np.abs(p[3] - g[3]).mean(), rel=1e-6)
    assert a["iou"] == pytest.approx(np.mean([M.iou(p[i], g[i]) for i in range(20)]))


def test_meter_rejects_bad_input():
    meter = SegmentationMeter()
    with pytest.raises(ValueError, match="shapes differ"):
        meter.update(np.zeros((2, 4, 4)), np.zeros((2, 4, 5), bool))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        meter.update(np.full((4, 4), 2.0), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="NaN"):
        meter.update(np.full((4, 4), np.nan), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="dtype"):
        meter.update(np.zeros((4, 4), np.uint8), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="shape"):
        meter.update(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4), bool))
    with pytest.raises(ValueError, match="no images"):
        meter.compute()


def test_summary_f_beta_is_the_curve_at_one_half():
    rng = np.random.default_rng(7)
    g = rng.random((6, 16, 16)) < rng.random((6, 1, 1))
    p = rng.random((6, 16, 16))
    meter = SegmentationMeter()
    meter.update(p, g)
    s = meter.compute()
    assert s["f_beta"] == pytest.approx(meter.curve()["f_beta"][128])  # level 128 is p >= 0.5
    assert s["f_beta"] <= s["max_f_beta"]
    full = SegmentationMeter()
    full.update(np.ones_like(p), g)
    assert full.compute()["f_beta"] == pytest.approx(full.compute()["max_f_beta"])


def test_meter_accepts_tensors_that_numpy_cannot_hold():
    pred = torch.full((2, 1, 4, 4), 0.75, requires_grad=True)
    gt = torch.ones(2, 1, 4, 4)
    meter = SegmentationMeter()
    meter.update(pred, gt)
    meter.update(pred.detach().bfloat16(), gt)
    s = meter.compute()
    assert s["n"] == 4 and s["iou"] == 1.0 and s["mae"] == pytest.approx(0.25)


def test_per_image_variant_is_never_below_the_dataset_variant():
    # full masks on objects of different sizes: F of each image is concave in its object fraction,
    # so F of the mean precision would exceed the mean F; the thesis' mean-of-F convention cannot
    rng = np.random.default_rng(11)
    g = np.zeros((8, 20, 20), bool)
    for i, side in enumerate(rng.integers(2, 20, 8)):
        g[i, :side, :side] = True
    meter = SegmentationMeter()
    meter.update(np.ones((8, 20, 20), np.float32), g)
    s = meter.compute()
    fractions = g.mean((1, 2))
    expected = np.mean(1.3 * fractions / (0.3 * fractions + 1))  # P = fraction, R = 1 on every image
    assert s["max_f_beta"] == pytest.approx(expected) and s["f_beta"] == pytest.approx(expected)
    assert s["max_f_beta_per_image"] == pytest.approx(expected)


def test_many_tiny_masks_in_one_batch():
    rng = np.random.default_rng(2)
    p = rng.random((3000, 2, 3))
    g = rng.random((3000, 2, 3)) < 0.5
    meter = SegmentationMeter()
    meter.update(p, g)  # 3000 images of 6 px: counted in slices of 256 images
    assert meter.per_image()["iou"].tolist() == pytest.approx([M.iou(p[i], g[i]) for i in range(3000)])
