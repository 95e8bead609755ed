"""The trained segmenters the workbench can load, by name, and one function that segments a photo.

:func:`segmenter_registry` lists them (the app's Segment tab and notebooks pick from it):

* ``move-small``: the shipped MOVE bundle ``assets/move-small`` (chapter 5);
* ``layered-post``: the shipped U-Net post-trained on the chapter-4 layered GAN
  (``assets/layered-small/post``, section 4.1.2);
* ``layered-joint``: the shipped layered GAN's joint segmenter, its discriminator's mask channel
  (``assets/layered-small/gan``, setting (c) of table 4.1);
* ``perturbgan-encoder``: chapter 3's encoder G_m(E(x)) on the shipped PerturbGAN, listed once
  it is trained (its resnet18 trunk is too large to ship): ``python -m workbench train
  perturbgan-encoder --preset small --gan assets/perturbgan-small --out runs/perturbgan-encoder-small``;
* ``move-official``: the released official MOVE model (adambielski/move-seg's ``checkpoint-N.pth``,
  DINO ViT-S/8 features; :func:`workbench.methods.move_official.load_official_move`), listed when
  the file named by ``$WORKBENCH_OFFICIAL_MOVE`` (default :data:`OFFICIAL_MOVE_FILE` in the weights
  folder, ``$WORKBENCH_WEIGHTS`` or ``~/.cache/workbench``) exists; DINO comes from the checkpoint
  or the weights folder;
* ``path``: any workbench run or checkpoint folder whose method segments: ``move``,
  ``layered``, ``layered-post``, ``perturbgan-encoder`` (chapter 3's encoder, G_m(E(x))),
  ``oracle``, ``selfmask``.

Each :class:`SegmenterEntry` says where its checkpoint is, how to load it and which part of its
``metrics.json`` holds its held-out scores (:mod:`workbench.eval.asset_scores`). Adding a model
is one entry (the official MOVE above is one).

:func:`segment_image` runs a loaded model on one (H, W, 3) image at any size and returns the soft
mask at the image's size: MOVE at its training size ``config.size`` (resized there and back, as
the Shift explorer does), every other model through its own ``predict`` (or ``segment``), which
handles the scale itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import os

import numpy as np
import torch

__all__ = ["ASSETS", "SegmenterEntry", "segmenter_registry", "load_segmenter_path", "segment_image", "metrics_part",
           "SEGMENTING_METHODS"]

ASSETS = Path(__file__).resolve().parents[2] / "assets"  # the repository's shipped checkpoints
RUNS = ASSETS.parent / "runs"  # where the documented training commands write
OFFICIAL_MOVE_ENV = "WORKBENCH_OFFICIAL_MOVE"  # the released official MOVE checkpoint, when not in the weights folder
OFFICIAL_MOVE_FILE = "move-official.pth"  # its file name in the weights folder (rename the released checkpoint-N.pth)
ENCODER_RUN = RUNS / "perturbgan-encoder-small"  # `train perturbgan-encoder --gan assets/perturbgan-small` (below)
SEGMENTING_METHODS = ("move", "layered", "layered-post", "perturbgan-encoder", "oracle", "selfmask")


@dataclass(frozen=True)
class SegmenterEntry:
    """One loadable segmenter: ``load(path)`` gives a model with ``predict`` or ``segment``."""

    key: str
    label: str  # what the app's dropdown shows
    path: Path | None  # its checkpoint; None: the user names one (``key == "path"``)
    load: Callable[[Path], Any]
    part: str | None = None  # the part of metrics.json with its scores (layered: "joint", "post")

    @property
    def available(self) -> bool:
        """Whether its checkpoint is here (always True for the path entry)."""
        return self.path is None or self.path.exists()


def _load_move(path: Path):
    from workbench.methods.move_assets import load_move

    return load_move(path)


def _load_joint(path: Path):
    from workbench.train.checkpoint import load_method

    model = load_method(path, method="layered")
    if not model.setting.segmenter:
        raise ValueError(f"{path}: setting ({model.config.setting}) has no joint segmenter; post-train one")
    return model


def _load_official(path: Path):
    from workbench.methods.move_official import load_official_move

    return load_official_move(path)


def official_move_path() -> Path:
    """Where the released official MOVE checkpoint is looked for (see the module docstring)."""
    from workbench.nets.weights import weights_dir

    return Path(os.environ.get(OFFICIAL_MOVE_ENV) or weights_dir() / OFFICIAL_MOVE_FILE).expanduser()


def load_segmenter_path(path: str | Path, *, device: str | torch.device = "cpu") -> Any:
    """The segmenter of any workbench run or checkpoint folder (a MOVE bundle too), in evaluation mode.

    Raises ValueError when the folder's method does not segment (a generator, an MAE, ...), with
    the methods that do; FileNotFoundError / CheckpointError when there is no checkpoint.
    """
    from workbench.train.checkpoint import load_method, read_checkpoint

    path = Path(path).expanduser()
    if (path / "move").is_dir() and (path / "mae").is_dir():  # a MOVE bundle
        return _load_move(path)
    method = read_checkpoint(path).method
    if method not in SEGMENTING_METHODS:
        raise ValueError(f"{path} is a checkpoint of {method!r}, which does not segment; choose a run of one of: "
                         f"{', '.join(SEGMENTING_METHODS)}")
    if method == "layered":
        return _load_joint(path)
    return load_method(path, device=device, method=method)


def segmenter_registry() -> dict[str, SegmenterEntry]:
    """The segmenters the workbench can load, by key, shipped ones first (see the module docstring)."""
    entries = [
        SegmenterEntry("move-small", "MOVE (ch. 5), shipped", ASSETS / "move-small",
                       _load_move),
        SegmenterEntry("layered-post", "Post-trained U-Net (ch. 4), shipped",
                       ASSETS / "layered-small" / "post", load_segmenter_path, part="post"),
        SegmenterEntry("layered-joint", "Joint segmenter of the layered GAN (ch. 4), shipped",
                       ASSETS / "layered-small" / "gan", _load_joint, part="joint"),
        SegmenterEntry("perturbgan-encoder", "PerturbGAN encoder (ch. 3), your run",
                       ENCODER_RUN, load_segmenter_path),
        SegmenterEntry("move-official", "MOVE, the released official model (DINO ViT-S/8)", official_move_path(),
                       _load_official),
        SegmenterEntry("path", "A run or checkpoint folder (below)",
                       None, load_segmenter_path),
    ]
    return {entry.key: entry for entry in entries}


def metrics_part(model: Any) -> str | None:
    """The part of a ``metrics.json`` that holds this model's scores: "post" for a post-trained U-Net,
    "joint" for a layered GAN's joint segmenter (their shipped folder scores both), else None (the top)."""
    return {"layered-post": "post", "layered": "joint"}.get(getattr(model, "name", None))


@torch.no_grad()
def segment_image(model: Any, image: np.ndarray) -> np.ndarray:
    """The soft mask, float32 (H, W) in [0, 1], of ``model`` on an (H, W, 3) float image in [0, 1]."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"segment_image takes an (H, W, 3) image, got shape {image.shape}")
    if getattr(model, "name", None) == "move" and hasattr(getattr(model, "config", None), "size"):
        from workbench.methods.move_explore import predict_mask

        return predict_mask(model, image)  # at MOVE's training size, resized back
    predict = getattr(model, "predict", None) or getattr(model, "segment", None)
    if predict is None:
        raise ValueError(f"{type(model).__name__} neither predicts nor segments masks")
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]  # (1, 3, H, W)
    device = getattr(model, "device", torch.device("cpu"))
    mask = predict(x.to(device))  # (1, 1, H, W)
    mask = mask[0, 0].float().cpu().numpy()
    if mask.shape != image.shape[:2]:
        raise RuntimeError(f"the predicted mask {mask.shape} does not match the image {image.shape[:2]}")
    return np.clip(mask, 0.0, 1.0).astype(np.float32)
