"""Evaluate a folder of predicted masks against a folder of ground-truth masks.

``python -m workbench eval --pred DIR --gt DIR`` runs :func:`evaluate_folders` and
:func:`write_tables`. Files are matched by stem (``0001.png`` with ``0001.jpg``); every ground-truth
mask needs a prediction and every prediction a ground truth, or the error names the files.
Predictions may be soft (grey levels read as values in [0, 1]) or binary, 8- or 16-bit, grey, RGB
or RGBA (see :func:`read_soft_mask`); ground truths are read by
:func:`workbench.data.images.read_mask`. Predictions are resized to the ground truth's size with
bilinear interpolation. The metrics are those of :mod:`workbench.eval.metrics` plus CorLoc
(:mod:`workbench.eval.boxes`).

Boxes (``--boxes``, section 5.4.2): CorLoc of the largest connected component (``corloc``,
always reported) and the *Multi* figure (``corloc_multi``: an image counts when any component of
at least 1% of the image has IoU > 0.5 with a ground-truth box; ``multi_boxes``: their mean
number per image; see :mod:`workbench.eval.boxes` for why this is what Multi means without a
detector). Ground-truth boxes are the components of the ground-truth masks, or come from a
folder of Pascal VOC annotation files (``--gt-boxes DIR``, ``<stem>.xml``, e.g. VOC's
``Annotations``; it may hold more files than there are predictions). With ``--gt-boxes`` and no
``--gt`` only the box figures are computed (single-object discovery sets such as VOC07 have boxes
but no masks); each prediction is then resized to the size the annotation gives.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from workbench.data.images import IMAGE_EXTENSIONS, ImageReadError, read_mask, read_mask_plane
from workbench.eval import boxes as B
from workbench.eval.metrics import SegmentationMeter, official_aggregates, official_image_scores

SUMMARY_COLUMNS = [
    "n", "iou", "accuracy", "f_beta", "max_f_beta", "max_f_beta_threshold", "max_f_beta_per_image", "mae", "corloc",
]
BOX_SUMMARY_COLUMNS = ["corloc_multi", "multi_boxes"]  # added to the summary by boxes=True
BOXES_ONLY_SUMMARY_COLUMNS = ["n", "corloc", "corloc_multi", "multi_boxes"]  # the summary without ground-truth masks

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


def list_annotations(folder: str | Path) -> dict[str, Path]:
    """The Pascal VOC annotation files (``*.xml``) of ``folder`` by stem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"ground-truth boxes folder {folder} does not exist or is not a folder")
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() == ".xml"}
    if not files:
        raise ValueError(f"ground-truth boxes folder {folder} holds no .xml annotation files (Pascal VOC format)")
    return files


def _need_annotations(stems: list[str], annotations: dict[str, Path], folder: str | Path, *, of: str) -> None:
    missing = sorted(set(stems) - set(annotations))
    if missing:
        raise ValueError(f"{len(missing)} {of} have no annotation <stem>.xml in {folder}: {_names(missing)}")


def box_scores(binary: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Box figures of one binary prediction (H, W) against ground-truth boxes (M, 4): box_iou and corloc
    of the largest component, multi_boxes (how many), multi_box_iou (the best of them) and corloc_multi."""
    box_iou = B.best_box_iou(B.largest_box(binary), targets)
    multi = B.multi_boxes(binary)
    multi_iou = B.best_set_iou(multi, targets)
    return {"box_iou": box_iou, "corloc": float(box_iou > 0.5), "multi_boxes": len(multi),
            "multi_box_iou": multi_iou, "corloc_multi": float(multi_iou > 0.5)}


def _fit(pred: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``pred`` resized (bilinear) to ``shape`` when it differs."""
    if pred.shape == shape:
        return pred
    return np.clip(cv2.resize(pred, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
        return image
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise ImageReadError(f"{path}: cannot be read as an image ({error})") from error


def read_official_prediction(path: str | Path, *, size: tuple[int, int]) -> np.ndarray:
    """A prediction as the official ``segmentation_eval.py`` reads it: PIL grey ("L", 8-bit), resized to
    ``size`` = (width, height) with PIL's bilinear filter (antialiased when shrinking): (H, W) uint8."""
    from PIL import Image

    return np.asarray(_open(Path(path)).convert("L").resize(size, Image.BILINEAR))


def read_official_gt(path: str | Path) -> np.ndarray:
    """A ground truth as the official script reads it: the stored values (first channel of a
    multi-channel image) divided by 255 and thresholded ``> 0.5``: (H, W) bool. A 0/1 label mask
    therefore reads as empty, as in the official script."""
    values = np.asarray(_open(Path(path))).astype(np.float32) / 255
    if values.ndim > 2:
        values = values[:, :, 0]
    return values > 0.5


def evaluate_folders_official(pred_dir: str | Path, gt_dir: str | Path, *, threshold: float = 0.5,
                              progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, np.ndarray]]:
    """Score the folders as MOVE's official ``segmentation_eval.py`` (see :mod:`workbench.eval.metrics`,
    "the official MOVE convention"): per-image table, one-row summary, and the per-image curves
    ``precision``, ``recall``, ``f_beta`` (N, 256) float32 over the thresholds k/256.

    Files are paired by stem as in :func:`evaluate_folders` and scored in sorted order (the official
    script takes the folder's listing order, which moves its float32 means at the 1e-7 level). The
    summary holds the official figures (iou and accuracy: float64 means of the float32 per-image
    values; f_beta: the float32 mean F_beta at ``threshold``; max_f_beta, its threshold k/256 and
    max_f_beta_per_image) plus two the script lacks, computed on the same masks: mae and corloc.
    """
    rows, curves = [], {"precision": [], "recall": [], "f_beta": []}
    for stem, pred_path, gt_path in tqdm(match_files(pred_dir, gt_dir), desc="evaluating", unit="mask",
                                         disable=not progress):
        gt = read_official_gt(gt_path)  # (H, W) bool
        raw_size = _open(pred_path).size
        grey = read_official_prediction(pred_path, size=(gt.shape[1], gt.shape[0]))  # (H, W) uint8
        pred = grey.astype(np.float32) / np.float32(255)
        scores = official_image_scores(pred, gt, threshold=threshold)
        for key in curves:
            curves[key].append(scores.pop(f"{key}_curve"))
        best = int(np.argmax(curves["f_beta"][-1]))
        binary = pred > np.float32(threshold)
        box_iou = B.best_box_iou(B.largest_box(binary), B.gt_boxes_from_mask(gt))
        rows.append({"name": stem, **scores, "mae": float(np.abs(pred - gt).mean(dtype=np.float64)),
                     "max_f_beta": float(curves["f_beta"][-1][best]), "best_threshold": best / 256, "best_level": best,
                     "gt_fraction": float(gt.mean()), "pred_fraction": float(binary.mean()), "box_iou": box_iou,
                     "corloc": float(box_iou > 0.5), "resized": raw_size != (gt.shape[1], gt.shape[0])})
    per_image = pd.DataFrame(rows)
    stacked = {k: np.stack(v).astype(np.float32) for k, v in curves.items()}  # (N, 256) each
    aggregates = official_aggregates(stacked["f_beta"])
    f_at_threshold = torch_mean32(per_image["f_beta"].to_numpy(np.float32))
    summary = pd.DataFrame([{
        "n": len(per_image), "iou": float(np.array(per_image["iou"]).mean()),
        "accuracy": float(np.array(per_image["accuracy"]).mean()), "f_beta": f_at_threshold,
        "max_f_beta": aggregates["max_f_beta"], "max_f_beta_threshold": aggregates["max_f_beta_level"] / 256,
        "max_f_beta_per_image": aggregates["max_f_beta_per_image"], "mae": float(per_image["mae"].mean()),
        "corloc": float(per_image["corloc"].mean())}])[SUMMARY_COLUMNS]
    return per_image, summary, stacked


def torch_mean32(values: np.ndarray) -> float:
    """The float32 mean of ``values`` as torch computes it (the official script's reductions)."""
    import torch

    return float(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).mean())


# evaluation


def evaluate_folders(
    pred_dir: str | Path,
    gt_dir: str | Path | None = None,
    *,
    threshold: float = 0.5,
    boxes: bool = False,
    gt_boxes: str | Path | None = None,
    progress: bool = True,
    convention: str = "ours",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every predicted mask of ``pred_dir`` against the same-named mask of ``gt_dir``.

    Returns ``(per_image, summary)``: one row per image (name, iou, accuracy, precision, recall,
    f_beta, mae, max_f_beta, best_threshold, gt_fraction, pred_fraction, box_iou, corloc,
    resized), and one row with n, iou, accuracy, f_beta, max_f_beta, max_f_beta_threshold,
    max_f_beta_per_image, mae and corloc. ``threshold`` binarises the predictions for IoU,
    accuracy, F_beta and the boxes.

    ``boxes=True`` adds the Multi figures (per image multi_boxes, multi_box_iou, corloc_multi; in
    the summary corloc_multi and multi_boxes, the mean count). ``gt_boxes``, a folder of Pascal
    VOC annotations, replaces the boxes of the ground-truth masks and implies ``boxes``; without
    ``gt_dir`` only boxes are scored (per image: name, box_iou, corloc, multi_boxes,
    multi_box_iou, corloc_multi, resized; summary: n, corloc, corloc_multi, multi_boxes).

    ``convention="official"`` scores as MOVE's official ``segmentation_eval.py`` instead
    (:func:`evaluate_folders_official`; masks only, no boxes); the default ``"ours"`` follows the
    definitions of :mod:`workbench.eval.metrics`.
    """
    if convention not in ("ours", "official"):
        raise ValueError(f"unknown metrics convention {convention!r}; choose ours or official")
    if convention == "official":
        if gt_dir is None or boxes or gt_boxes is not None:
            raise ValueError("--convention official scores masks against --gt masks only (the official script has no boxes)")
        per_image, summary, _ = evaluate_folders_official(pred_dir, gt_dir, threshold=threshold, progress=progress)
        return per_image, summary
    if gt_dir is None and gt_boxes is None:
        raise ValueError("give ground-truth masks (--gt), ground-truth boxes (--gt-boxes), or both")
    boxes = boxes or gt_boxes is not None
    annotations = list_annotations(gt_boxes) if gt_boxes is not None else None
    if gt_dir is not None:
        pairs: list[tuple[str, Path, Path | None]] = list(match_files(pred_dir, gt_dir))
        if annotations is not None:
            _need_annotations([stem for stem, _, _ in pairs], annotations, gt_boxes, of="ground-truth masks")
    else:
        preds = list_masks(pred_dir, role="prediction")
        _need_annotations(list(preds), annotations, gt_boxes, of="predictions")
        pairs = [(stem, preds[stem], None) for stem in sorted(preds)]
    meter = SegmentationMeter(threshold=threshold, corloc=True) if gt_dir is not None else None
    resized, rows = [], []
    for stem, pred_path, gt_path in tqdm(pairs, desc="evaluating", unit="mask", disable=not progress):
        pred = read_soft_mask(pred_path)  # (h, w) float32
        gt = read_mask(gt_path) if gt_path is not None else None  # (H, W) bool
        if annotations is not None:
            targets, size = B.read_voc_boxes(annotations[stem])
            if gt is not None and gt.shape != size:
                raise ValueError(f"{stem}: the annotation {annotations[stem].name} is for a {size[0]}x{size[1]} image, "
                                 f"the ground-truth mask is {gt.shape[0]}x{gt.shape[1]}")
        else:
            targets, size = B.gt_boxes_from_mask(gt), gt.shape
        resized.append(pred.shape != size)
        pred = _fit(pred, size)  # bilinear, to the ground truth's (H, W)
        if meter is not None:
            meter.update(pred, gt, names=[stem], gt_boxes=None if annotations is None else [targets])
        if boxes:
            rows.append({"name": stem, **box_scores(pred >= threshold, targets)})
    extra = pd.DataFrame(rows)
    if meter is None:
        per_image = extra[["name", "box_iou", "corloc", "multi_boxes", "multi_box_iou", "corloc_multi"]].copy()
        per_image["resized"] = resized
        means = {c: per_image[c].mean() for c in BOXES_ONLY_SUMMARY_COLUMNS[1:]}
        summary = pd.DataFrame([{"n": len(per_image), **means}])
        return per_image, summary
    per_image = meter.per_image()
    summary = pd.DataFrame([meter.compute()])[SUMMARY_COLUMNS]
    if boxes:
        for column in ("multi_boxes", "multi_box_iou", "corloc_multi"):
            per_image[column] = extra[column].to_numpy()
        for column in BOX_SUMMARY_COLUMNS:
            summary[column] = per_image[column].mean()
    per_image["resized"] = resized
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
