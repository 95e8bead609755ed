"""The evaluations of chapter 3: generated masks (table 3.1), image quality (3.2), real images (3.3).

- **Generated masks.** The thesis ran Mask R-CNN on 10,000 generated composites and scored the
  generated masks (binarised at 0.5) against its masks where it *detected* a car. Here a
  supervised U-Net trained on the synthetic scenes' true masks (``oracle-unet``) is that proxy
  ground truth: an image counts as detected when the oracle's binary mask covers at least
  ``min_area`` of it. Reported: mean IoU on detected composites, the reference IoU of a mask
  covering the whole image (= the oracle mask's area share), and the detected count.
- **Image quality.** FID / KID of unshifted composites against real images through
  :mod:`workbench.eval.gan_metrics` (Inception from a local file, else MAE features, labelled).
- **Real images.** Encoder masks G_m(E(x)) on a test split against its ground truth, beside
  GrabCut and the full mask (:mod:`workbench.eval.baselines`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from workbench.eval.baselines import run_baselines
from workbench.eval.metrics import SegmentationMeter
from workbench.ops.mask_losses import mask_iou

__all__ = ["generated_mask_scores", "generated_composites", "real_image_scores", "DETECTION_MIN_AREA"]

DETECTION_MIN_AREA = 0.01  # the oracle "detects" an object when its mask covers at least 1% of the image


@torch.no_grad()
def generated_mask_scores(gan, oracle, *, n: int = 1000, batch_size: int = 100, seed: int = 0,
                          truncation: float = 1.0, min_area: float = DETECTION_MIN_AREA,
                          progress: bool = True) -> dict[str, float | int]:
    """Table 3.1's columns for a trained PerturbGAN ``gan`` against an ``oracle`` (``OracleUNet``).

    ``n`` unshifted composites (eq. 3.1) from the EMA generator, codes seeded by ``seed``. Returns
    ``gen_mask_iou`` (mean over detected images), ``full_mask_ref_iou`` (idem), ``detected``,
    ``n``, ``gen_mask_iou_all`` (over every image, an empty oracle mask scoring 0 unless the
    generated one is empty too) and ``gen_mask_area`` (mean area of the binarised generated masks).
    """
    ious, refs, found, areas = [], [], [], []
    for start in tqdm(range(0, n, batch_size), desc="generated masks", unit="batch", disable=not progress):
        b = min(batch_size, n - start)
        out = gan.generate(b, seed=seed * 1_000_003 + start, truncation=truncation)
        truth = oracle.predict(out["composite"]) >= 0.5  # (b, 1, R, R) proxy ground truth
        mask = out["mask"] >= 0.5  # (b, 1, R, R)
        area = truth.flatten(1).float().mean(1)  # (b,)
        ious.append(mask_iou(mask, truth).cpu().numpy())
        refs.append(area.cpu().numpy())  # IoU of the full mask with the oracle's
        found.append((area >= min_area).cpu().numpy())
        areas.append(mask.flatten(1).float().mean(1).cpu().numpy())
    iou, ref, detected = np.concatenate(ious), np.concatenate(refs), np.concatenate(found)
    return {
        "gen_mask_iou": float(iou[detected].mean()) if detected.any() else float("nan"),
        "full_mask_ref_iou": float(ref[detected].mean()) if detected.any() else float("nan"),
        "detected": int(detected.sum()),
        "n": int(n),
        "gen_mask_iou_all": float(iou.mean()),
        "gen_mask_area": float(np.concatenate(areas).mean()),
    }


@torch.no_grad()
def generated_composites(gan, n: int, *, seed: int = 0, batch_size: int = 250) -> torch.Tensor:
    """``n`` unshifted composites (n, 3, R, R) in [0, 1] from the EMA generator (for FID/KID)."""
    return torch.cat([gan.generate(min(batch_size, n - s), seed=seed * 1_000_003 + s)["composite"].cpu()
                      for s in range(0, n, batch_size)])


def real_image_scores(encoder, dataset, *, n: int = 200, chunks: bool = False, baselines: tuple[str, ...] = ("grabcut", "full"),
                      progress: bool = True) -> pd.DataFrame:
    """Table 3.3: mean IoU of encoder masks and baselines on the first ``n`` items of ``dataset``.

    ``encoder`` is a trained ``PerturbEncoder``; ``chunks=True`` uses the thesis' protocol
    (:meth:`~workbench.methods.perturbgan_encoder.PerturbEncoder.segment_in_chunks`). Items need
    ``"mask"``. Rows: method, iou, n.
    """
    n = min(n, len(dataset))
    items = [dataset[i] for i in range(n)]
    if any("mask" not in item for item in items):
        raise ValueError("real_image_scores needs a dataset with ground-truth masks")
    images = torch.stack([item["image"] for item in items])  # (n, 3, H, W)
    truth = torch.stack([item["mask"] for item in items])  # (n, 1, H, W)
    masks = encoder.segment_in_chunks(images, progress=progress) if chunks else encoder.segment(images)
    meter = SegmentationMeter()
    meter.update(masks[:, 0].cpu(), truth[:, 0] > 0.5)
    label = "encoder (chunks)" if chunks else "encoder"
    rows = [{"method": label, "iou": meter.compute()["iou"], "n": n}]
    if baselines:
        table = run_baselines(dataset, n=n, names=list(baselines), progress=progress)
        rows += [{"method": row.baseline, "iou": row.iou, "n": n} for row in table.itertuples()]
    return pd.DataFrame(rows)
