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

__all__ = ["REFINERS", "predict_folder", "write_mask_png"]

REFINERS = {"bilateral": refine_mask}  # name -> fn(image (H, W, 3), soft mask (H, W)) -> refined (H, W) in [0, 1]


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    """Write a float mask in [0, 1] as an 8-bit PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.clip(np.rint(mask * 255), 0, 255).astype(np.uint8)):
        raise OSError(f"could not write {path}")


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
) -> list[Path]:
    """Write soft and binary masks of every image in ``images`` under ``out``; return the soft paths.

    ``method`` is any trained method with ``predict(x: (1, 3, H, W) in [0, 1]) -> (1, 1, H, W)``
    and a ``device`` attribute (e.g. from ``workbench.train.load_method``). ``refine`` names a
    refinement of :data:`REFINERS` (``"bilateral"``) or is ``None``.
    """
    if not hasattr(method, "predict"):
        raise ValueError(f"method {getattr(method, 'name', type(method).__name__)!r} does not predict masks")
    if refine is not None and refine not in REFINERS:
        raise ValueError(f"unknown refinement {refine!r}; choose one of: {', '.join(REFINERS)}")
    files = list_images(images, recursive=recursive)
    if not files:
        raise ValueError(f"no images in {images}")
    out = Path(out)
    written = []
    for file in tqdm(files, desc="predicting", unit="image", disable=not progress):
        image = read_image(file)  # (H, W, 3) float32 in [0, 1]
        x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).to(method.device)  # (1, 3, H, W)
        mask = method.predict(x)[0, 0].float().cpu().numpy()  # (H, W)
        if mask.shape != image.shape[:2]:
            raise RuntimeError(f"{file}: predicted mask {mask.shape} does not match the image {image.shape[:2]}")
        if refine is not None:
            write_mask_png(out / "unrefined" / "soft" / f"{file.stem}.png", mask)
            write_mask_png(out / "unrefined" / "binary" / f"{file.stem}.png", (mask >= threshold).astype(np.float32))
            mask = REFINERS[refine](image, mask)  # (H, W) in [0, 1]
        soft = out / "soft" / f"{file.stem}.png"
        write_mask_png(soft, mask)
        write_mask_png(out / "binary" / f"{file.stem}.png", (mask >= threshold).astype(np.float32))
        written.append(soft)
    return written
