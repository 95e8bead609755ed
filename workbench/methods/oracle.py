"""The supervised U-Net "oracle": proxy ground truth for generated composites (thesis section 3.4.1).

The thesis scores PerturbGAN's generated masks against Mask R-CNN run on the generated
composites ("To obtain an approximated mask ground truth on generated composite images we run
Mask R-CNN", section 3.4.1, table 3.1), with ``IoU = |m_gen ∩ m_pred| / |m_gen ∪ m_pred|`` at a
0.5 threshold. The workbench has no pretrained detector, so a U-Net trained with full supervision
on the synthetic scenes' *true* masks plays that part: it segments composites that look like the
scenes, and the generator's own mask is scored against its prediction.

Training (one phase per iteration):

- **data**: the training split of ``dataset`` (a dataset with masks; synthetic scenes by default)
  at ``resolution`` pixels, with random horizontal flips (p = 0.5) of image and mask together;
- **network**: :class:`~workbench.nets.unet.UNet` on images in [0, 1], one output channel of logits;
- **loss**: ``bce_weight · BCE(logits, g) + dice_weight · Dice(σ(logits), g)`` where BCE is the
  mean binary cross-entropy with logits and the soft Dice loss is, per image, averaged over the batch,
  ``1 − (2 Σ p·g + 1) / (Σ p + Σ g + 1)`` (the +1 keeps empty masks finite). BCE gives every pixel a
  gradient; Dice balances small objects against the large background;
- **optimiser**: Adam, ``lr`` until ``lr_late_from · steps`` iterations, then ``lr_late`` (the
  thesis' chapter 4 schedule for its U-Net segmenter, section 4.3: 150K iterations at batch 64,
  learning rate 0.001 lowered to 0.0002 after 75K; the ``paper`` preset);
- **EMA**: the trainer keeps an average of the net (``ema_beta``); :meth:`OracleUNet.predict` uses it.

The config's defaults are the ``small`` preset (32 px, synthetic:easy); ``paper`` trains at 128 px
with a wider, deeper U-Net; ``smoke`` runs in seconds for tests.

Scoring it (:func:`~workbench.eval.oracle.evaluate_oracle`) and loading or training one for a
benchmark (:func:`~workbench.eval.oracle.load_or_train_oracle`) are in :mod:`workbench.eval.oracle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from workbench.methods.base import Method, Phase, TrainConfig, evaluating, tile_rows
from workbench.nets.unet import NORMS, UPSAMPLINGS, UNet
from workbench.ops.mask_losses import dice_loss, mask_iou

__all__ = ["OracleConfig", "OracleUNet", "PRESETS"]

PURPOSE = "the oracle U-Net is trained and evaluated on ground-truth masks"

# config


@dataclass
class OracleConfig(TrainConfig):
    """Oracle U-Net options; the defaults are the ``small`` preset."""

    dataset: str = "synthetic:easy"  # dataset spec for workbench.data.build_dataset (it must have masks)
    resolution: int = 32  # image side in pixels (a multiple of 2**depth)
    width: int = 16  # U-Net channels at full resolution; they double at each down-sampling
    depth: int = 3  # U-Net down-samplings
    max_width: int = 128  # cap on the U-Net channels
    norm: Literal["batch", "instance", "group", "none"] = "batch"  # normalisation after every 3x3 conv
    up: Literal["bilinear", "transposed"] = "bilinear"  # decoder up-sampling
    flip: bool = True  # random horizontal flips (p = 0.5) of image and mask
    bce_weight: float = 1.0  # weight of the binary cross-entropy with logits
    dice_weight: float = 1.0  # weight of the soft Dice loss
    lr: float = 3e-3  # Adam learning rate of the first part of training
    lr_late: float = 1e-3  # Adam learning rate from lr_late_from * steps on
    lr_late_from: float = 0.6  # fraction of the steps after which lr_late replaces lr
    betas: tuple[float, float] = (0.9, 0.999)  # Adam (β₁, β₂)
    ema_beta: float = 0.98  # decay of the net's exponential moving average (0: no EMA)
    samples: int = 8  # images (columns) in the sample grid
    steps: int = 500
    batch_size: int = 32
    log_every: int = 10
    sample_every: int = 250
    checkpoint_every: int = 500

    def __post_init__(self):
        super().__post_init__()
        if self.depth < 1 or self.width < 1 or self.max_width < 1 or self.samples < 1:
            raise ValueError("depth, width, max_width and samples must be >= 1")
        if self.resolution < 1 or self.resolution % 2**self.depth:
            raise ValueError(f"resolution must be a positive multiple of 2**depth = {2**self.depth}, "
                             f"got {self.resolution}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.up not in UPSAMPLINGS:
            raise ValueError(f"up must be one of {UPSAMPLINGS}, got {self.up!r}")
        if self.bce_weight < 0 or self.dice_weight < 0 or self.bce_weight + self.dice_weight == 0:
            raise ValueError("bce_weight and dice_weight must be >= 0, and not both 0")
        if self.lr <= 0 or self.lr_late <= 0:
            raise ValueError(f"lr and lr_late must be > 0, got {self.lr} and {self.lr_late}")
        if not 0 <= self.lr_late_from <= 1:
            raise ValueError(f"lr_late_from must be in [0, 1], got {self.lr_late_from}")
        if not 0 <= self.ema_beta < 1:
            raise ValueError(f"ema_beta must be in [0, 1), got {self.ema_beta}")


PRESETS: dict[str, OracleConfig] = {
    # the thesis' U-Net segmenter schedule (section 4.3) at 128 px; for a GPU
    "paper": OracleConfig(resolution=128, width=32, depth=4, max_width=256, lr=1e-3, lr_late=2e-4, lr_late_from=0.5,
                          ema_beta=0.999, steps=150_000, batch_size=64, log_every=50, sample_every=5000,
                          checkpoint_every=10_000),
    # IoU >= 0.9 on the synthetic:easy test split in under 3 minutes on one CPU thread
    "small": OracleConfig(),
    # seconds, for tests
    "smoke": OracleConfig(resolution=16, width=8, depth=2, max_width=16, ema_beta=0.5, samples=3, steps=4,
                          batch_size=4, log_every=2, sample_every=2, checkpoint_every=2),
}


# helpers


# method


class OracleUNet(Method):
    """Supervised U-Net on true masks: the proxy ground truth of PerturbGAN's evaluation (section 3.4.1)."""

    name = "oracle-unet"
    Config = OracleConfig
    presets = PRESETS

    def __init__(self, config: OracleConfig, *, device: str | torch.device = "cpu"):
        super().__init__(config, device=device)
        c = config
        self.net = UNet(3, 1, width=c.width, depth=c.depth, max_width=c.max_width, norm=c.norm,
                        up=c.up).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=c.lr, betas=c.betas)
        self.ema_betas = {"net": c.ema_beta} if c.ema_beta > 0 else {}

    # data

    def build_dataset(self):
        """The training split of ``dataset`` at ``resolution``; ValueError when it has no masks."""
        from workbench.data import build_dataset, require_masks

        c = self.config
        dataset = build_dataset(c.dataset, size=c.resolution, split="train", seed=c.seed)
        require_masks(dataset, c.dataset, purpose=PURPOSE)
        return dataset

    def augment(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Random horizontal flips of images (B, 3, R, R) and masks (B, 1, R, R) together."""
        if not self.config.flip:
            return x, mask
        flip = (torch.rand(x.shape[0], device=x.device) < 0.5)[:, None, None, None]  # (B, 1, 1, 1)
        return torch.where(flip, x.flip(-1), x), torch.where(flip, mask.flip(-1), mask)

    # phases

    def phases(self) -> list[Phase]:
        return [Phase("segmenter", self.segmenter_step)]

    def learning_rate(self) -> float:
        """``lr`` before ``lr_late_from · steps`` finished iterations, ``lr_late`` from then on."""
        c = self.config
        return c.lr if self.step < c.lr_late_from * c.steps else c.lr_late

    def losses(self, logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """BCE with logits, soft Dice and their weighted sum; logits and targets (B, 1, R, R)."""
        c = self.config
        bce = F.binary_cross_entropy_with_logits(logits, target)
        dice = dice_loss(torch.sigmoid(logits), target)
        return {"loss": c.bce_weight * bce + c.dice_weight * dice, "bce": bce, "dice": dice}

    def segmenter_step(self, batch: dict) -> dict:
        """One supervised Adam step on a batch of images and true masks; returns losses, IoU, lr."""
        if "mask" not in batch:
            raise ValueError(f"the oracle U-Net needs ground-truth masks, but the batches of {self.config.dataset!r} "
                             "have none")
        x, target = self.augment(batch["image"], batch["mask"])  # (B, 3, R, R), (B, 1, R, R)
        lr = self.learning_rate()
        for group in self.opt.param_groups:
            group["lr"] = lr
        logits = self.net(x)  # (B, 1, R, R)
        losses = self.losses(logits, target)
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.opt.step()
        with torch.no_grad():
            iou = mask_iou(torch.sigmoid(logits) >= 0.5, target > 0.5).mean()
        return {**{k: v.detach() for k, v in losses.items()}, "iou": iou, "lr": lr}

    # inference

    @torch.no_grad()
    def predict(self, images: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
        """Soft masks (B, 1, H, W) in [0, 1] of images (B, 3, H, W) in [0, 1], on the images' device.

        Uses the net's EMA (when there is one) in evaluation mode, ``batch_size`` images at a time.
        Images of another size than ``resolution`` are resized (bilinear, antialiased) to
        ``resolution`` x ``resolution`` and their masks resized back to (H, W).
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"predict expects images (B, 3, H, W) in [0, 1], got shape {tuple(images.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        r = self.config.resolution
        h, w = images.shape[-2:]
        masks = []
        with evaluating(self.averaged("net")) as net:
            for chunk in images.split(batch_size):
                x = chunk.to(self.device, torch.float32)  # (b, 3, H, W)
                if (h, w) != (r, r):
                    x = F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
                probs = torch.sigmoid(net(x))  # (b, 1, R, R)
                if (h, w) != (r, r):
                    probs = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
                masks.append(probs.to(images.device))  # (b, 1, H, W)
        return torch.cat(masks) if masks else images.new_zeros(0, 1, h, w)  # (B, 1, H, W)

    def first_masks(self, n: int) -> torch.Tensor:
        """The true masks (N, 1, R, R) of :meth:`first_images`, on the device."""
        return torch.stack([item["mask"] for item in self.first_items(n)]).to(self.device)

    @torch.no_grad()
    def sample(self) -> torch.Tensor:
        """One image (1, 3, H', W'): a column per fixed training image, rows image, true mask, predicted mask."""
        n = self.config.samples
        x = self.first_images(n)  # (N, 3, R, R)
        rows = [x, self.first_masks(n).expand(-1, 3, -1, -1), self.predict(x).expand(-1, 3, -1, -1)]
        return tile_rows(rows)
