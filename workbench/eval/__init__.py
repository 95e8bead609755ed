"""Evaluation: segmentation metrics, boxes and CorLoc, folder evaluation, classical baselines.

* :mod:`~workbench.eval.metrics`: IoU, pixel accuracy, F_beta, MAE and max F_beta (dataset-level
  and per-image variants) of the thesis, section 5.4.1, with the streaming
  :class:`SegmentationMeter` used everywhere.
* :mod:`~workbench.eval.boxes`: connected components to boxes, box IoU, CorLoc and the "Multi" boxes
  (section 5.4.2).
* :mod:`~workbench.eval.folders`: ``python -m workbench eval --pred DIR --gt DIR``.
* :mod:`~workbench.eval.gan_metrics`: FID, KID, IS (torchmetrics, pluggable features), density and coverage.
* :mod:`~workbench.eval.baselines`: full mask, centre prior, GrabCut, spectral-residual saliency.
"""

from workbench.eval.baselines import BASELINES, run_baselines
from workbench.eval.boxes import (box_iou, corloc, corloc_multi, gt_boxes_from_mask, largest_box, mask_to_boxes, multi_boxes,
                                  read_voc_boxes)
from workbench.eval.gan_metrics import FeatureNetwork, build_feature_network, density_coverage, image_quality
from workbench.eval.folders import evaluate_folders, read_soft_mask, write_tables
from workbench.eval.metrics import (
    BETA2,
    SegmentationMeter,
    f_beta,
    iou,
    mae,
    max_f_beta,
    pixel_accuracy,
    precision_recall,
)

__all__ = [
    "BASELINES",
    "BETA2",
    "FeatureNetwork",
    "SegmentationMeter",
    "box_iou",
    "build_feature_network",
    "corloc",
    "corloc_multi",
    "density_coverage",
    "evaluate_folders",
    "f_beta",
    "gt_boxes_from_mask",
    "image_quality",
    "iou",
    "largest_box",
    "mae",
    "mask_to_boxes",
    "multi_boxes",
    "max_f_beta",
    "pixel_accuracy",
    "precision_recall",
    "read_soft_mask",
    "read_voc_boxes",
    "run_baselines",
    "write_tables",
]
