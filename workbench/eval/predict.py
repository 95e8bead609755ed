"""Predict masks for a folder of images with any trained segmenter, and write them as PNGs.

``python -m workbench predict METHOD --checkpoint C --images DIR --out DIR`` calls
:func:`predict_folder`. Each image is read at its own size (``workbench.data.images.read_image``
converts grayscale, RGBA and 16-bit files), passed through ``method.predict`` (which pads to its
patch size and crops back), and written twice: ``OUT/soft/<stem>.png`` (8-bit, the mask value ×
255) and ``OUT/binary/<stem>.png`` (0 or 255 at ``threshold``). ``python -m workbench eval --pred
OUT/soft --gt GT`` scores them.

``--refine bilateral`` refines every soft mask with the fast bilateral solver along its image
(:func:`workbench.ops.bilateral.refine_mask`, MOVE's settings; the "+ Bilateral" rows of table
5.2) before thresholding: ``OUT/soft`` and ``OUT/binary`` then hold the refined masks, and the
unrefined ones go to ``OUT/unrefined/soft`` and ``OUT/unrefined/binary``, so that one run gives
both rows of the table.

Large images: a file above the pixel limit of :mod:`workbench.data.images` is refused before it
is decoded. An image whose longer side exceeds ``max_side`` (default :data:`MAX_SIDE`) is shrunk
to it for the network (and the refinement), and its mask is scaled back up, so every mask has
its image's size and the time per image stays bounded (a ViT's attention grows with the square
of the number of patches). Inputs that would write the same mask file (``a.jpg`` and ``a.png``,
or ``x.png`` in two sub-folders with ``--recursive``) are refused before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from workbench.data.folders import list_images
from workbench.data.images import read_image
from workbench.ops.bilateral import refine_mask

__all__ = ["MAX_SIDE", "REFINERS", "check_threshold", "predict_folder", "write_mask_png"]

MAX_SIDE = 1024  # images with a longer side are predicted at this size and their masks scaled back up
REFINERS = {"bilateral": refine_mask}  # name -> fn(image (H, W, 3), soft mask (H, W)) -> refined (H, W) in [0, 1]


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    """Write a float mask in [0, 1] as an 8-bit PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8)):
        raise OSError(f"could not write {path}")


def check_threshold(threshold: float, *, option: str = "threshold") -> float:
    """``threshold`` when it is a number in [0, 1]; a ValueError naming ``option`` otherwise (NaN, inf, < 0, > 1)."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"{option} must be a number in [0, 1], got {threshold!r}") from None
    if not 0.0 <= value <= 1.0:  # also False for NaN
        raise ValueError(f"{option} must be a number in [0, 1], got {threshold!r}")
    return value


def _same_names(files: list[Path], root: Path) -> None:
    """A ValueError when two inputs would write the same mask file (same stem)."""
    seen: dict[str, Path] = {}
    for file in files:
        if file.stem in seen:
            first, second = (str(f.relative_to(root)) if f.is_relative_to(root) else str(f) for f in (seen[file.stem], file))
            raise ValueError(f"{first} and {second} in {root} would both write {file.stem}.png: masks are named by the "
                             "image's stem (so that `eval` matches them with ground truths); rename one of them")
        seen[file.stem] = file


def _working_size(shape: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(h, w) with the longer side at most ``max_side``, the aspect kept."""
    h, w = shape
    scale = min(1.0, max_side / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


@torch.no_grad()
def predict_folder(
    method,
    images: str | Path,
    out: str | Path,
    *,
    threshold: float = 0.5,
    recursive: bool = False,
    refine: str | None = None,
    progress: bool = True,
    max_side: int = MAX_SIDE,
) -> list[Path]:
    """Write soft and binary masks of every image in ``images`` under ``out``; return the soft paths.

    ``method`` is any trained method with ``predict(x: (1, 3, H, W) in [0, 1]) -> (1, 1, H, W)``
    and a ``device`` attribute (e.g. from ``workbench.train.load_method``). ``refine`` names a
    refinement of :data:`REFINERS` (``"bilateral"``) or is ``None``. Images whose longer side
    exceeds ``max_side`` are predicted (and refined) at that size; their masks are scaled back up.
    """
    if not hasattr(method, "predict"):
        raise ValueError(f"method {getattr(method, 'name', type(method).__name__)!r} does not predict masks")
    if refine is not None and refine not in REFINERS:
        raise ValueError(f"unknown refinement {refine!r}; choose one of: {', '.join(REFINERS)}")
    threshold = check_threshold(threshold)
    if int(max_side) != max_side or max_side < 1:
        raise ValueError(f"max_side must be a whole number >= 1, got {max_side!r}")
    files = list_images(images, recursive=recursive)
    if not files:
        raise ValueError(f"no images in {images}")
    _same_names(files, Path(images))
    out = Path(out)
    written = []
    bar = tqdm(files, desc="predicting", unit="image", disable=not progress)
    for file in bar:
        bar.set_postfix_str(file.name, refresh=True)
        image = read_image(file)  # (H, W, 3) float32 in [0, 1]; refused above the pixel limit
        full = image.shape[:2]
        size = _working_size(full, max_side)
        if size != full:
            image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)  # (h, w, 3)
        x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).to(method.device)  # (1, 3, h, w)
        mask = method.predict(x)[0, 0].float().cpu().numpy()  # (h, w)
        if mask.shape != image.shape[:2]:
            raise RuntimeError(f"{file}: predicted mask {mask.shape} does not match the image {image.shape[:2]}")

        def full_size(m: np.ndarray) -> np.ndarray:  # (h, w) -> (H, W), the input's size
            return m if m.shape == full else np.clip(cv2.resize(m, (full[1], full[0]), interpolation=cv2.INTER_LINEAR), 0, 1)

        if refine is not None:
            unrefined = full_size(mask)
            write_mask_png(out / "unrefined" / "soft" / f"{file.stem}.png", unrefined)
            write_mask_png(out / "unrefined" / "binary" / f"{file.stem}.png", (unrefined >= threshold).astype(np.float32))
            mask = REFINERS[refine](image, mask)  # (h, w) in [0, 1]
        mask = full_size(mask)  # (H, W)
        soft = out / "soft" / f"{file.stem}.png"
        write_mask_png(soft, mask)
        write_mask_png(out / "binary" / f"{file.stem}.png", (mask >= threshold).astype(np.float32))
        written.append(soft)
    return written
