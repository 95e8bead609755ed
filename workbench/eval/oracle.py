"""The oracle U-Net as proxy ground truth (thesis section 3.4.1): score it, or get one for a benchmark.

:class:`~workbench.methods.oracle.OracleUNet` is the method (a U-Net trained with supervision on the
synthetic scenes' true masks). :func:`evaluate_oracle` gives its mean IoU and the other segmentation
metrics on a test split; :func:`load_or_train_oracle` loads a trained one, or trains a fresh one
through the shared training loop.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import torch

from workbench.checkpoint import load_method_as
from workbench.data import build_dataset
from workbench.device import pick_device, seed_everything
from workbench.eval.segmenter import evaluate_segmenter
from workbench.methods.oracle import OracleUNet

__all__ = ["evaluate_oracle", "load_or_train_oracle"]


@torch.no_grad()
def evaluate_oracle(method: OracleUNet, dataset_spec: str | None = None, *, n: int = 200,
                    batch_size: int = 64) -> dict[str, float]:
    """Segmentation metrics of ``method.predict`` on the first ``n`` images of a test split.

    ``dataset_spec`` defaults to the method's training dataset; images are loaded at the method's
    resolution (and the method's seed, for synthetic scenes). Returns
    :meth:`workbench.eval.metrics.SegmentationMeter.compute`'s dict: ``n``, ``iou`` (mean IoU at
    threshold 0.5, the thesis' section 3.4.1 figure), ``accuracy``, ``f_beta``, ``max_f_beta``, ``mae``, ...
    """
    spec = dataset_spec or method.config.dataset
    dataset = build_dataset(spec, size=method.config.resolution, split="test", n=n, seed=method.config.seed)
    return evaluate_segmenter(lambda images: method.predict(images, batch_size=batch_size), dataset,
                              batch_size=batch_size)


def load_or_train_oracle(path: str | Path | None, *, preset: str = "small", dataset: str | None = None,
                         resolution: int | None = None, steps: int | None = None, device: str | torch.device = "cpu",
                         out_dir: str | Path | None = None, progress: bool = True) -> OracleUNet:
    """An oracle U-Net in evaluation mode: loaded from ``path`` (a checkpoint or run folder), or trained.

    Without ``path``, trains preset ``preset`` (with ``dataset``, ``resolution`` and ``steps``
    overriding the preset's when given) through the shared Trainer, writing logs and checkpoints to ``out_dir``
    when given (nothing is written otherwise). With ``path``, a ``dataset`` or ``resolution`` that
    differs from the checkpoint's only warns: ``predict`` resizes any image, but an oracle trained
    on other data may score poorly.
    """
    from workbench.train.trainer import Trainer

    if path is not None:
        method = load_method_as(OracleUNet, Path(path).expanduser(), device=device)
        for field, wanted in (("dataset", dataset), ("resolution", resolution)):
            have = getattr(method.config, field)
            if wanted is not None and wanted != have:
                warnings.warn(f"the oracle at {path} was trained with {field}={have!r}, not {wanted!r}", stacklevel=2)
        return method
    if preset not in OracleUNet.presets:
        raise ValueError(f"unknown oracle preset {preset!r}; choose one of {sorted(OracleUNet.presets)}")
    overrides = {k: v for k, v in (("dataset", dataset), ("resolution", resolution), ("steps", steps)) if v is not None}
    config = replace(OracleUNet.presets[preset], **overrides)
    seed_everything(config.seed)
    method = OracleUNet(config, device=pick_device(device))
    trainer = Trainer(method, out_dir=out_dir, progress=progress)
    trainer.fit()
    return method.eval()
