"""Score any segmenter on a dataset with masks: the IoU, accuracy and max-F_β of tables 4.1-4.5.

:func:`evaluate_segmenter` takes a ``predict`` callable, images (B, 3, H, W) in [0, 1] -> soft
masks (B, 1, H, W), and streams a dataset through it into a
:class:`~workbench.eval.metrics.SegmentationMeter`. Datasets come from
:func:`workbench.data.build_dataset`, so CUB-200-2011 and Flowers102 get their centre-crop protocol
and saliency folders (DUTS-TE, ECSSD, ...) are resized whole.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from workbench.data.build import require_masks
from workbench.eval.metrics import SegmentationMeter

__all__ = ["evaluate_segmenter"]


@torch.no_grad()
def evaluate_segmenter(predict: Callable[[torch.Tensor], torch.Tensor], dataset, *, n: int | None = None,
                       batch_size: int = 64, spec: str = "the dataset", progress: bool = False) -> dict[str, float]:
    """Segmentation metrics of ``predict`` on the first ``n`` items of ``dataset`` (all when None).

    Returns :meth:`~workbench.eval.metrics.SegmentationMeter.compute`'s dict: ``n``, ``iou`` (mean
    IoU at 0.5), ``accuracy``, ``f_beta``, ``max_f_beta`` (β² = 0.3), ``mae``, ...
    """
    require_masks(dataset, spec, purpose="scoring a segmenter needs ground-truth masks")
    if n is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(n, len(dataset))))
    meter = SegmentationMeter()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in tqdm(loader, desc="evaluate", unit="batch", disable=not progress):
        meter.update(predict(batch["image"]), batch["mask"] > 0.5, names=[str(name) for name in batch["name"]])
    return meter.compute()
