"""Evaluate a folder of predicted masks against a folder of ground-truth masks.

``python -m workbench eval --pred DIR --gt DIR`` runs :func:`evaluate_folders` and
:func:`write_tables`. Files are matched by stem (``0001.png`` with ``0001.jpg``); every ground-truth
mask needs a prediction and every prediction a ground truth, or the error names the files.
Predictions may be soft (grey levels read as values in [0, 1]) or binary, 8- or 16-bit, grey, RGB
or RGBA (see :func:`read_soft_mask`); ground truths are read by
:func:`workbench.data.images.read_mask`. Predictions are resized to the ground truth's size with
bilinear interpolation. The metrics are those of :mod:`workbench.eval.metrics` plus CorLoc
(:mod:`workbench.eval.boxes`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.data.images import IMAGE_EXTENSIONS, ImageReadError, read_mask, read_mask_plane
from workbench.eval.metrics import SegmentationMeter

SUMMARY_COLUMNS = [
    "n", "iou", "accuracy", "f_beta", "max_f_beta", "max_f_beta_threshold", "max_f_beta_per_image", "mae", "corloc",
]

# helpers


def read_soft_mask(path: str | Path) -> np.ndarray:
    """Read a predicted mask as grey levels: (H, W) float32 in [0, 1].

    The file is decoded and reduced to one plane by :func:`workbench.data.images.read_mask_plane`
    (the same channel rules as ``read_mask``), then kept as grey levels: 8-bit values are divided
    by 255 and 16-bit ones by 65535; an integer mask holding only 0 and 1 is a label mask (1 =
    object); float TIFFs must already lie in [0, 1]. Raises :class:`ImageReadError` (a
    ``ValueError``) naming the file when it cannot be used.
    """
    path = Path(path)
    raw = read_mask_plane(path)  # (H, W), native dtype
    if raw.dtype in (np.uint8, np.uint16) and raw.max() == 1:
        return raw.astype(np.float32)  # label mask: 0 background, 1 object
    if raw.dtype == np.uint8:
        return raw.astype(np.float32) / 255.0
    if raw.dtype == np.uint16:
        return raw.astype(np.float32) / 65535.0
    if raw.dtype in (np.float32, np.float64):
        image = raw.astype(np.float32)
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise ImageReadError(f"{path}: holds floats outside [0, 1]; save soft masks in [0, 1] or as 8/16-bit")
        return image
    raise ImageReadError(f"{path}: pixel type {raw.dtype}; expected 8-bit, 16-bit or float in [0, 1]")


def list_masks(folder: str | Path, *, role: str) -> dict[str, Path]:
    """Image files of ``folder`` by stem; clear errors for a missing/empty folder or repeated stems."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{role} folder {folder} does not exist or is not a folder")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )
    if not files:
        raise ValueError(f"{role} folder {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
    by_stem: dict[str, Path] = {}
    for p in files:
        if p.stem in by_stem:
            first = by_stem[p.stem].name
            raise ValueError(f"{role} folder {folder} has two files with the stem {p.stem!r}: {first} and {p.name}")
        by_stem[p.stem] = p
    return by_stem


def _names(stems: list[str], *, limit: int = 10) -> str:
    shown = ", ".join(stems[:limit])
    return shown + (f", ... ({len(stems)} in all)" if len(stems) > limit else "")


def match_files(pred_dir: str | Path, gt_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """Pair predictions with ground truths by stem: sorted ``(stem, pred_path, gt_path)``."""
    preds = list_masks(pred_dir, role="prediction")
    gts = list_masks(gt_dir, role="ground-truth")
    missing = sorted(set(gts) - set(preds))
    extra = sorted(set(preds) - set(gts))
    if missing or extra:
        lines = []
        if missing:
            lines.append(f"{len(missing)} ground-truth masks have no prediction in {pred_dir}: {_names(missing)}")
        if extra:
            lines.append(f"{len(extra)} predictions have no ground truth in {gt_dir}: {_names(extra)}")
        lines.append("files are matched by name without extension (0001.png <-> 0001.jpg)")
        raise ValueError("\n".join(lines))
    return [(stem, preds[stem], gts[stem]) for stem in sorted(gts)]


# evaluation


def evaluate_folders(
    pred_dir: str | Path, gt_dir: str | Path, *, threshold: float = 0.5, progress: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every predicted mask of ``pred_dir`` against the same-named mask of ``gt_dir``.

    Returns ``(per_image, summary)``: one row per image (name, iou, accuracy, precision, recall,
    f_beta, mae, max_f_beta, best_threshold, gt_fraction, pred_fraction, box_iou, corloc,
    resized), and one row with n, iou, accuracy, f_beta, max_f_beta, max_f_beta_threshold,
    max_f_beta_per_image, mae and corloc. ``threshold`` binarises the predictions for IoU,
    accuracy, F_beta and the boxes.
    """
    pairs = match_files(pred_dir, gt_dir)
    meter = SegmentationMeter(threshold=threshold, corloc=True)
    resized = []
    for stem, pred_path, gt_path in tqdm(pairs, desc="evaluating", unit="mask", disable=not progress):
        gt = read_mask(gt_path)  # (H, W) bool
        pred = read_soft_mask(pred_path)  # (h, w) float32
        resized.append(pred.shape != gt.shape)
        if pred.shape != gt.shape:  # bilinear, to the ground truth's (H, W)
            pred = np.clip(cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        meter.update(pred, gt, names=[stem])
    per_image = meter.per_image()
    per_image["resized"] = resized
    summary = pd.DataFrame([meter.compute()])[SUMMARY_COLUMNS]
    return per_image, summary


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table: floats with 4 decimals, integers as integers, names left as written
    (tabulate's own number parsing would turn a file stem like ``0001`` into ``1``)."""
    cells, align = {}, []
    for name, column in table.items():
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if pd.api.types.is_float_dtype(column):
            cells[name] = [f"{v:.4f}" for v in column]
        else:
            cells[name] = [str(v) for v in column]
        align.append("right" if numeric else "left")
    return pd.DataFrame(cells).to_markdown(index=False, disable_numparse=True, colalign=align)


def write_tables(per_image: pd.DataFrame, summary: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Write ``per_image.csv``, ``summary.csv`` and ``summary.md`` (the summary, then the per-image
    table, in Markdown) under ``out_dir``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "per_image.csv", out / "summary.csv", out / "summary.md"]
    per_image.to_csv(paths[0], index=False)
    summary.to_csv(paths[1], index=False)
    text = "## Summary\n\n" + to_markdown(summary) + "\n\n## Per image\n\n" + to_markdown(per_image) + "\n"
    paths[2].write_text(text)
    return paths
