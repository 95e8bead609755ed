"""Segmentation metrics of the thesis (section 5.4.1): IoU, pixel accuracy, F_beta, max F_beta, MAE.

Definitions, for one image with soft prediction ``p`` (values in [0, 1]) and ground truth ``g``
(bool), and the binary prediction ``b = p >= threshold`` (``threshold = 0.5`` by default):

* ``IoU = |b AND g| / |b OR g|``; when both masks are empty the union is empty and we set
  IoU = 1 (the prediction is exactly right).
* pixel accuracy ``= mean(b == g)``.
* ``precision = |b & g| / |b|`` and ``recall = |b & g| / |g|``; a ratio 0/0 counts as 0.
* ``F_beta = (1 + beta2) * precision * recall / (beta2 * precision + recall)`` with
  ``beta2 = 0.3`` (beta squared, as in the thesis); 0 when precision and recall are both 0.
* ``MAE = mean(|p - g|)`` on the *soft* prediction, no threshold.

``max F_beta`` sweeps 256 thresholds. Each soft value is put on the 8-bit grey scale,
``level = floor(255 * p + 0.5)`` (so a map saved as an 8-bit PNG scores exactly as in memory), and
at level ``k`` (``k = 0 .. 255``) a pixel is foreground when ``level >= k``, that is
``p >= (k - 0.5) / 255`` (up to float rounding). Level 0 marks every pixel foreground; level
128 is ``p >= 0.5``.
Two variants, never mixed up:

* ``max_f_beta`` (the thesis' definition, section 5.4.1: "the score for the single optimal
  threshold on a whole dataset"; Tables 4.2-4.5 and 5.2): ONE threshold for the whole dataset.
  For each level ``k`` every image's ``F_beta(k)`` is computed, these are averaged over the
  images, and the maximum over ``k`` of that mean is reported. This is the convention of the work
  the thesis follows for the metric (Melas-Kyriazi et al., ICLR 2022, ref. [85]).
* ``max_f_beta_per_image`` (SelfMask's way, see the footnote of Table 5.2): every image takes its
  own best level, and these per-image maxima are averaged. A mean of maxima is never smaller than
  the maximum of means, so this variant is always ``>= max_f_beta``; it is reported separately.

Dataset summaries are means over images of the per-image values: IoU, accuracy, precision,
recall, ``f_beta`` (at the threshold) and MAE. At ``threshold = 0.5``, which is level 128,
``f_beta`` is the dataset curve at that level, so ``f_beta <= max_f_beta``.
:meth:`SegmentationMeter.curve` also gives the mean precision and mean recall per level (a PR curve).

All 256 thresholds are scored at once from histograms: per image, the number of ground-truth
foreground and background pixels in each of the 256 levels (split again by the binary prediction,
which gives the scores at ``threshold`` from the same pass); reversed cumulative sums over the
levels then give the true and false positives at every level. :class:`SegmentationMeter` streams
batches through this and keeps only per-image scalars and three 256-vectors, so 5,000 masks of
320x320 take seconds.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from workbench.eval import boxes as _boxes

BETA2 = 0.3  # beta squared of F_beta (thesis, section 5.4.1)
LEVELS = 256  # number of thresholds of max F_beta: the 8-bit grey levels

ArrayLike = np.ndarray | torch.Tensor

# helpers


def level_thresholds() -> np.ndarray:
    """The soft-value cut of each level: at level ``k`` a pixel is foreground iff ``p >= t[k]``."""
    return np.maximum((np.arange(LEVELS) - 0.5) / (LEVELS - 1), 0.0)  # (256,)


def f_beta_from(precision: ArrayLike, recall: ArrayLike, *, beta2: float = BETA2):
    """``F_beta`` from precision and recall (elementwise); 0 where both are 0."""
    p = np.asarray(precision, dtype=np.float64)
    r = np.asarray(recall, dtype=np.float64)
    den = beta2 * p + r
    out = np.divide((1 + beta2) * p * r, den, out=np.zeros_like(den), where=den > 0)
    return out if out.ndim else float(out)


def _ratio(num: np.ndarray, den: np.ndarray, *, empty: float) -> np.ndarray:
    """``num / den`` in float64, with ``empty`` where ``den == 0``."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full_like(num, empty), where=den > 0)


def as_batch(pred: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert a prediction and a ground truth to ``(N, H, W)`` float and bool arrays.

    Accepts numpy arrays or tensors (on any device) of shape (H, W), (N, H, W) or (N, 1, H, W).
    ``pred`` must be bool or float in [0, 1] (float64 stays float64, other floats become float32);
    ``gt`` bool, or numbers where ``> 0.5`` is foreground.
    """
    pred, gt = _squeeze(_to_numpy(pred), "pred"), _squeeze(_to_numpy(gt), "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt shapes differ: {pred.shape} vs {gt.shape}")
    if pred.shape[1] == 0 or pred.shape[2] == 0:
        raise ValueError(f"images without pixels: shape {pred.shape}")
    if pred.dtype == np.bool_:
        pred = pred.astype(np.float32)
    elif not np.issubdtype(pred.dtype, np.floating):
        raise ValueError(f"pred must be float in [0, 1] or bool, got dtype {pred.dtype}")
    elif pred.dtype != np.float64:
        pred = pred.astype(np.float32, copy=False)
    if pred.size:
        lo, hi = float(pred.min()), float(pred.max())  # NaN propagates into both
        if not (lo >= -1e-6 and hi <= 1 + 1e-6):
            raise ValueError(f"pred must lie in [0, 1] without NaN, got values in [{lo:.4g}, {hi:.4g}]")
    if gt.dtype != np.bool_:
        gt = gt > 0.5
    return pred, gt


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.is_floating_point() and x.dtype not in (torch.float32, torch.float64):
            x = x.float()  # half and bfloat16
        return x.cpu().numpy()
    return np.asarray(x)


def _squeeze(x: np.ndarray, what: str) -> np.ndarray:
    if x.ndim == 2:
        return x[None]  # (1, H, W)
    if x.ndim == 3:
        return x
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]  # (N, H, W)
    raise ValueError(f"{what} must have shape (H, W), (N, H, W) or (N, 1, H, W), got {x.shape}")


def pixel_statistics(pred: np.ndarray, gt: np.ndarray, *, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Everything the metrics need from the pixels, in one pass over them.

    ``pred`` (N, H, W) float in [0, 1], ``gt`` (N, H, W) bool (see :func:`as_batch`). Returns

    * ``hist`` (N, 2, 2, 256) int64: ``hist[i, b, g, k]`` counts the pixels of image ``i`` whose
      binary prediction (``pred >= threshold``) is ``b``, ground truth ``g``, and grey level ``k``;
    * ``mae`` (N,) float64: ``mean(|pred - gt|)`` per image.

    The batch is processed in slices of about 256k pixels (and at most 256 images, so that the
    ``1024 * images`` bins of one ``bincount`` stay few for tiny masks), which keeps the
    temporaries in cache.
    This is plain single-threaded numpy on purpose: it is as fast as torch on two cores, and it
    does not collapse, as torch's OpenMP threads do, when other processes share the CPU.
    """
    n, h, w = pred.shape
    step = max(1, min((1 << 18) // (h * w), 256))  # images per slice
    scale = pred.dtype.type(LEVELS - 1)
    hist = np.empty((n, 2, 2, LEVELS), np.int64)
    mae_values = np.empty(n)
    for s in range(0, n, step):
        p, g = pred[s : s + step], gt[s : s + step]  # (m, H, W)
        m = p.shape[0]
        code = (p * scale + 0.5).astype(np.int32)  # level = floor(255 p + 0.5), as p >= 0
        np.clip(code, 0, LEVELS - 1, out=code)
        code += g * np.int32(LEVELS)  # + 256 g
        code += (p >= threshold) * np.int32(2 * LEVELS)  # + 512 b
        code += (np.arange(m, dtype=np.int32) * np.int32(4 * LEVELS))[:, None, None]  # + 1024 i
        hist[s : s + m] = np.bincount(code.ravel(), minlength=m * 4 * LEVELS).reshape(m, 2, 2, LEVELS)
        error = p - g  # (m, H, W) float
        np.abs(error, out=error)
        mae_values[s : s + m] = error.reshape(m, -1).sum(1, dtype=np.float64) / (h * w)
    return hist, mae_values


def threshold_scores(hist: np.ndarray, *, beta2: float = BETA2) -> dict[str, np.ndarray]:
    """Per-image scores of the binary prediction from :func:`pixel_statistics`' ``hist``: dict of
    (N,) float64 arrays iou, accuracy, precision, recall, f_beta, gt_fraction, pred_fraction."""
    c = hist.sum(-1)  # (N, 2, 2): [binary, gt]
    tp, fp, fn, tn = c[:, 1, 1], c[:, 1, 0], c[:, 0, 1], c[:, 0, 0]
    npx = tp + fp + fn + tn
    precision = _ratio(tp, tp + fp, empty=0.0)
    recall = _ratio(tp, tp + fn, empty=0.0)
    return {
        "iou": _ratio(tp, tp + fp + fn, empty=1.0),  # both masks empty: IoU = 1
        "accuracy": _ratio(tp + tn, npx, empty=1.0),
        "precision": precision,
        "recall": recall,
        "f_beta": f_beta_from(precision, recall, beta2=beta2),
        "gt_fraction": _ratio(tp + fn, npx, empty=0.0),
        "pred_fraction": _ratio(tp + fp, npx, empty=0.0),
    }


def pr_curves(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of every image at every level (``level >= k`` is foreground):
    two (N, 256) float64 arrays, from :func:`pixel_statistics`' ``hist``."""
    per_level = hist.sum(1)  # (N, 2, 256): [gt, level]
    at_or_above = per_level[..., ::-1].cumsum(-1)[..., ::-1]  # (N, 2, 256): pixels with level >= k
    tp, fp = at_or_above[:, 1], at_or_above[:, 0]  # (N, 256)
    n_fg = at_or_above[:, 1, :1]  # (N, 1): all ground-truth foreground pixels
    return _ratio(tp, tp + fp, empty=0.0), _ratio(tp, np.broadcast_to(n_fg, tp.shape), empty=0.0)


# classes


class SegmentationMeter:
    """Streaming accumulator of the segmentation metrics (and optionally CorLoc) over a dataset.

    ``update(pred, gt)`` takes a batch: ``pred`` (N, H, W) or (N, 1, H, W) float in [0, 1], soft or
    binary; ``gt`` of the same shape, bool. Numpy arrays and tensors on any device both work (the
    counting runs in numpy on the CPU, see :func:`pixel_statistics`); the images of one batch
    share a size, different batches may differ. ``compute()`` returns the dataset figures,
    ``per_image()`` one row per image, ``curve()`` the dataset-level mean precision, mean recall
    and mean F_beta at each of the 256 levels. Definitions: see the module docstring.

    With ``corloc=True`` every image also gets the box of the largest connected component of its
    binary prediction and a CorLoc hit (see :mod:`workbench.eval.boxes`).
    """

    def __init__(self, *, threshold: float = 0.5, beta2: float = BETA2, corloc: bool = False):
        self.threshold = threshold  # binarisation threshold of IoU, accuracy, F_beta and boxes
        self.beta2 = beta2  # beta squared of F_beta
        self.corloc = corloc  # also compute boxes and CorLoc (OpenCV, on the CPU)
        self.reset()

    def reset(self) -> None:
        self._rows: list[dict[str, np.ndarray]] = []  # per-batch columns of per-image values
        self._names: list[str] = []
        self._precision_sum = np.zeros(LEVELS)  # (256,): sum over images of precision at level k
        self._recall_sum = np.zeros(LEVELS)  # (256,)
        self._f_beta_sum = np.zeros(LEVELS)  # (256,): sum over images of F_beta at level k
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def update(
        self,
        pred: ArrayLike,
        gt: ArrayLike,
        *,
        names: Sequence[str] | None = None,
        gt_boxes: Sequence[np.ndarray] | None = None,
    ) -> None:
        """Add a batch. ``names`` label the rows of :meth:`per_image`; ``gt_boxes`` (one ``(M, 4)``
        array of ``(x0, y0, x1, y1)`` per image) replace the boxes derived from ``gt`` for CorLoc."""
        pred, gt = as_batch(pred, gt)
        n = pred.shape[0]
        if names is not None and len(names) != n:
            raise ValueError(f"{len(names)} names for a batch of {n} images")
        if gt_boxes is not None and not self.corloc:
            raise ValueError("gt_boxes are only used for CorLoc; make the meter with corloc=True")
        if gt_boxes is not None and len(gt_boxes) != n:
            raise ValueError(f"{len(gt_boxes)} ground-truth box sets for a batch of {n} images")
        if n == 0:
            return
        hist, mae_values = pixel_statistics(pred, gt, threshold=self.threshold)  # (N, 2, 2, 256), (N,)
        row = threshold_scores(hist, beta2=self.beta2)  # dict of (N,)
        row["mae"] = mae_values
        precision, recall = pr_curves(hist)  # (N, 256) each
        f_curve = f_beta_from(precision, recall, beta2=self.beta2)  # (N, 256)
        best = f_curve.argmax(1)  # (N,): the first best level of each image
        row["max_f_beta"] = f_curve[np.arange(n), best]
        row["best_threshold"] = level_thresholds()[best]
        if self.corloc:
            binary = pred >= self.threshold  # (N, H, W)
            hits, ious = [], []
            for i in range(n):
                box = _boxes.largest_box(binary[i])
                targets = _boxes.gt_boxes_from_mask(gt[i]) if gt_boxes is None else np.asarray(gt_boxes[i])
                iou = _boxes.best_box_iou(box, targets)
                ious.append(iou)
                hits.append(float(iou > 0.5))
            row["box_iou"], row["corloc"] = np.array(ious), np.array(hits)
        self._rows.append(row)
        self._precision_sum += precision.sum(0)
        self._recall_sum += recall.sum(0)
        self._f_beta_sum += f_curve.sum(0)
        self._names.extend(names if names is not None else [str(self._n + i) for i in range(n)])
        self._n += n

    def per_image(self) -> pd.DataFrame:
        """One row per image: name, iou, accuracy, precision, recall, f_beta, mae, max_f_beta
        (the image's own best level), best_threshold, gt_fraction, pred_fraction[, box_iou, corloc]."""
        columns = ["iou", "accuracy", "precision", "recall", "f_beta", "mae", "max_f_beta", "best_threshold"]
        columns += ["gt_fraction", "pred_fraction"]
        if self.corloc:
            columns += ["box_iou", "corloc"]
        data = {c: np.concatenate([r[c] for r in self._rows]) if self._rows else np.zeros(0) for c in columns}
        return pd.DataFrame({"name": list(self._names), **data})

    def curve(self) -> pd.DataFrame:
        """Dataset-level curve: per level, its threshold and the means over images of precision,
        recall and F_beta (``max_f_beta`` is the maximum of this ``f_beta`` column)."""
        n = max(self._n, 1)
        return pd.DataFrame({
            "level": np.arange(LEVELS),
            "threshold": level_thresholds(),
            "precision": self._precision_sum / n,
            "recall": self._recall_sum / n,
            "f_beta": self._f_beta_sum / n,
        })

    def compute(self) -> dict[str, float]:
        """Dataset figures: n; iou, accuracy, precision, recall, f_beta, mae (means over images, at
        ``threshold``); max_f_beta and max_f_beta_threshold (the best level's mean F_beta: one
        threshold for the dataset); max_f_beta_per_image (mean of each image's best); corloc
        (fraction of hits) if enabled."""
        if self._n == 0:
            raise ValueError("SegmentationMeter.compute(): no images were added")
        table = self.per_image()
        curve = self.curve()
        best = int(curve["f_beta"].to_numpy().argmax())
        out: dict[str, float] = {"n": self._n}
        for c in ["iou", "accuracy", "precision", "recall", "f_beta", "mae"]:
            out[c] = float(table[c].mean())
        out["max_f_beta"] = float(curve["f_beta"][best])
        out["max_f_beta_threshold"] = float(curve["threshold"][best])
        out["max_f_beta_per_image"] = float(table["max_f_beta"].mean())
        if self.corloc:
            out["corloc"] = float(table["corloc"].mean())
        return out


# plain functions for one image (or a small set)


def _one(pred: ArrayLike, gt: ArrayLike, *, threshold: float, beta2: float = BETA2) -> dict[str, float]:
    pred, gt = as_batch(pred, gt)
    if pred.shape[0] != 1:
        raise ValueError(f"expected one image (H, W), got a batch of {pred.shape[0]}")
    hist, mae_values = pixel_statistics(pred, gt, threshold=threshold)
    scores = threshold_scores(hist, beta2=beta2)
    scores["mae"] = mae_values
    return {k: float(v[0]) for k, v in scores.items()}


def iou(pred: ArrayLike, gt: ArrayLike, *, threshold: float = 0.5) -> float:
    """IoU of ``pred >= threshold`` with ``gt`` for one (H, W) image; 1 when both are empty."""
    return _one(pred, gt, threshold=threshold)["iou"]


def pixel_accuracy(pred: ArrayLike, gt: ArrayLike, *, threshold: float = 0.5) -> float:
    """Fraction of pixels where ``pred >= threshold`` equals ``gt``, for one (H, W) image."""
    return _one(pred, gt, threshold=threshold)["accuracy"]


def precision_recall(pred: ArrayLike, gt: ArrayLike, *, threshold: float = 0.5) -> tuple[float, float]:
    """Precision and recall of ``pred >= threshold`` for one (H, W) image (0/0 counts as 0)."""
    s = _one(pred, gt, threshold=threshold)
    return s["precision"], s["recall"]


def f_beta(pred: ArrayLike, gt: ArrayLike, *, threshold: float = 0.5, beta2: float = BETA2) -> float:
    """F_beta (beta^2 = 0.3 by default) of ``pred >= threshold`` for one (H, W) image."""
    return _one(pred, gt, threshold=threshold, beta2=beta2)["f_beta"]


def mae(pred: ArrayLike, gt: ArrayLike) -> float:
    """Mean absolute error ``mean(|pred - gt|)`` of a soft prediction, for one (H, W) image."""
    return _one(pred, gt, threshold=0.5)["mae"]


def max_f_beta(
    preds: Sequence[ArrayLike] | ArrayLike,
    gts: Sequence[ArrayLike] | ArrayLike,
    *,
    per_image: bool = False,
    beta2: float = BETA2,
) -> float:
    """max F_beta over the 256 levels of a set of images (lists of (H, W) maps, or (N, H, W)).

    ``per_image=False``: one threshold for the whole set (the thesis); ``True``: each image at its
    own best threshold, then averaged (SelfMask's variant).
    """
    meter = SegmentationMeter(beta2=beta2)
    if isinstance(preds, (np.ndarray, torch.Tensor)):
        meter.update(preds, gts)
    else:
        if len(preds) != len(gts):
            raise ValueError(f"{len(preds)} predictions for {len(gts)} ground truths")
        for p, g in zip(preds, gts):
            meter.update(p, g)
    return meter.compute()["max_f_beta_per_image" if per_image else "max_f_beta"]


# the official MOVE convention (``segmentation_eval.py`` of the official code; ``eval --convention official``)
#
# It differs from the definitions above in four ways, each reproduced here on purpose:
# * a pixel is foreground when ``p > threshold`` (strictly), and IoU is ``|b ∩ g| / (|b ∪ g| + 1e-8)`` in
#   float32, so IoU = 0 when both masks are empty (ours: 1);
# * precision is 1 when the prediction is empty and recall is 1 when the ground truth is empty (ours: 0);
# * the 256 thresholds of max F_beta are ``k/256`` for k = 0..255 with ``p > k/256``: on 8-bit maps grey levels
#   >= 1, >= 1, >= 2, ..., >= 255, so no level marks every pixel foreground (ours: level 0 does);
# * every per-image value is computed in float32, F_beta curves are averaged over the images in float32.
# The prediction is read as 8-bit grey and resized with PIL's bilinear filter (:mod:`workbench.eval.folders`).

OFFICIAL_SPLITS = np.arange(LEVELS, dtype=np.float32) / np.float32(LEVELS)  # (256,): k/256, exact in float32


def official_f_beta(precision: np.ndarray, recall: np.ndarray, *, beta2: float = BETA2) -> np.ndarray:
    """``(1 + β²)·P·R / (β²·P + R)`` in float32, evaluated left to right as the official script; NaN (0/0) -> 0."""
    p, r = np.asarray(precision, np.float32), np.asarray(recall, np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.float32(1 + beta2) * p * r / (np.float32(beta2) * p + r)
    return np.nan_to_num(f, nan=0.0).astype(np.float32)


def _official_precision_recall(tp: np.ndarray, pred_area: np.ndarray, gt_area: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 precision and recall from integer counts; 1 where the prediction (resp. ground truth) is empty."""
    tp32, area32 = tp.astype(np.float32), pred_area.astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pred_area == 0, np.float32(1), tp32 / area32).astype(np.float32)
        recall = np.where(gt_area == 0, np.float32(1), tp32 / np.float32(gt_area)).astype(np.float32)
    return precision, recall


def official_image_scores(pred: np.ndarray, gt: np.ndarray, *, threshold: float = 0.5,
                          beta2: float = BETA2) -> dict[str, np.ndarray | float]:
    """One image scored as the official script: ``pred`` (H, W) float32 in [0, 1], ``gt`` (H, W) bool.

    Returns float32 scalars iou, accuracy, precision, recall, f_beta at ``pred > threshold``, and the
    (256,) float32 curves precision_curve, recall_curve, f_beta_curve at ``pred > k/256``.
    """
    pred = np.asarray(pred, np.float32)
    gt = np.asarray(gt, bool)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"pred and gt must be (H, W) of the same size, got {pred.shape} and {gt.shape}")
    binary = pred > np.float32(threshold)
    tp, area, gt_area = int(np.sum(binary & gt)), int(binary.sum()), int(gt.sum())
    union = int(np.sum(binary | gt))
    iou = np.float32(tp) / (np.float32(union) + np.float32(1e-8))
    accuracy = np.float32(np.sum(binary == gt)) / np.float32(gt.size)
    precision, recall = _official_precision_recall(np.array([tp]), np.array([area]), gt_area)
    # every threshold at once: pixels counted by grey value, cumulated from the top
    values, inverse = np.unique(pred, return_inverse=True)  # sorted distinct values
    counts = np.bincount(inverse.ravel(), minlength=len(values))
    fg_counts = np.bincount(inverse.ravel(), weights=gt.ravel(), minlength=len(values)).astype(np.int64)
    above = np.searchsorted(values, OFFICIAL_SPLITS, side="right")  # first value index with value > split
    total_above = np.concatenate([np.cumsum(counts[::-1])[::-1], [0]])[above]  # (256,) |pred > split|
    tp_above = np.concatenate([np.cumsum(fg_counts[::-1])[::-1], [0]])[above]  # (256,) |pred > split ∧ gt|
    p_curve, r_curve = _official_precision_recall(tp_above, total_above, gt_area)
    return {"iou": float(iou), "accuracy": float(accuracy), "precision": float(precision[0]), "recall": float(recall[0]),
            "f_beta": float(official_f_beta(precision, recall, beta2=beta2)[0]),
            "precision_curve": p_curve, "recall_curve": r_curve,
            "f_beta_curve": official_f_beta(p_curve, r_curve, beta2=beta2)}


def official_aggregates(f_beta_curves: np.ndarray) -> dict[str, float]:
    """The official dataset figures from per-image F_beta curves (N, 256) float32: max_f_beta (the best k of the
    float32 mean over images), max_f_beta_level (that k; the threshold is k/256) and max_f_beta_per_image (the
    float32 mean of each image's best). The float32 means run in the order of the rows."""
    curves = torch.from_numpy(np.ascontiguousarray(f_beta_curves, dtype=np.float32))  # (N, 256)
    mean = curves.mean(dim=0)  # (256,) float32, as the official F_max
    level = int(mean.argmax())
    per_image = curves.max(dim=1).values.mean()  # float32
    return {"max_f_beta": float(mean[level]), "max_f_beta_level": level, "max_f_beta_per_image": float(per_image)}
