"""SelfMask on MOVE (thesis section 5.4.1, table 5.2): a second segmenter trained on MOVE's masks.

After MOVE is trained, the thesis "extract[s] the predicted unsupervised masks from the DUTS-TR
dataset and use[s] them as pseudo ground-truth to train a class-agnostic segmenter", with the
architecture and training scheme of SelfMask (Shin et al., 2022). This module is that second
stage, simplified to the workbench's pieces:

- **teacher**: a trained, frozen MOVE loaded from ``move_checkpoint``. For every training batch
  it predicts soft masks of the full images (on the fly: the teacher is frozen, so these are the
  masks a cache would hold), binarised at ``pseudo_threshold``: the pseudo ground truth.
- **student**: a fresh :class:`~workbench.nets.segmenter.SegmenterHead` on the *same frozen
  features* as the teacher (MOVE's feature extractor), where SelfMask has a MaskFormer on a
  fine-tuned DINO ViT-S/8. ``predict`` therefore costs what MOVE's costs.
- **augmentation** (SelfMask's): a random resized crop (area share in ``crop_scale``, SelfMask's
  random scale in [0.1, 1]) and a horizontal flip (p = 0.5), applied to the image and its
  pseudo-mask together (the mask is re-binarised after resampling); then, on the image only, a
  colour jitter (brightness, saturation, contrast; SelfMask also jitters its inputs).
- **loss**: binary cross-entropy plus the Dice loss
  ``1 − (2 Σ p·g + 1) / (Σ p + Σ g + 1)`` per image (SelfMask trains with Dice), weighted by
  ``bce_weight`` and ``dice_weight``.
- **optimiser**: AdamW with weight decay 0.01 (SelfMask's); the ``paper`` preset runs SelfMask's
  12 epochs of DUTS-TR at batch 8.

Loading a SelfMask checkpoint loads its teacher again (from the path in its config) for the
frozen features, so the MOVE run must stay where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from workbench.checkpoint import load_method_as
from workbench.methods.base import Method, Phase, TrainConfig, tile_rows
from workbench.nets.segmenter import SegmenterHead
from workbench.ops import DiffAugment, random_resized_crop
from workbench.ops.mask_losses import dice_loss

# config

DUTS_TR_IMAGES = 10_553  # images of DUTS-TR, where the thesis extracts the pseudo-masks


@dataclass
class SelfMaskConfig(TrainConfig):
    """SelfMask-on-MOVE options; the defaults are the ``paper`` preset."""

    move_checkpoint: str | None = None  # the trained MOVE (checkpoint or run folder): teacher and frozen features
    dataset: str = "duts-tr:data/DUTS"  # dataset spec for workbench.data.build_dataset (only images are used)
    size: int = 224  # side of the training images and crops (a multiple of the features' patch size)
    pseudo_threshold: float = 0.5  # the teacher's soft masks are binarised at this value
    crop_scale: tuple[float, float] = (0.1, 1.0)  # random resized crop: range of the crop's share of the area
    crop_ratio: tuple[float, float] = (0.75, 4 / 3)  # random resized crop: range of the crop's aspect ratio
    flip: bool = True  # random horizontal flips (p = 0.5) of image and pseudo-mask
    color_jitter: bool = True  # random brightness, saturation and contrast of the student's input
    head_width: int = 128  # channels of the head's first upsampling block (halved at each further one)
    head_convs: int = 1  # 3x3 conv layers per head block
    bce_weight: float = 1.0  # weight of the binary cross-entropy
    dice_weight: float = 1.0  # weight of the Dice loss
    lr: float = 2e-4  # AdamW learning rate of the head
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW (β₁, β₂)
    weight_decay: float = 0.01  # AdamW weight decay (SelfMask's)
    ema_beta: float = 0.0  # decay of an EMA of the head used by predict/sample (0: no EMA)
    samples: int = 8  # images (columns) in the sample grid
    steps: int = 12 * DUTS_TR_IMAGES // 8  # training iterations (paper: SelfMask's 12 epochs of DUTS-TR at batch 8)
    batch_size: int = 8
    sample_every: int = 1000
    checkpoint_every: int = 2000

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.pseudo_threshold < 1:
            raise ValueError(f"pseudo_threshold must be in (0, 1), got {self.pseudo_threshold}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"crop_ratio must satisfy 0 < low <= high, got {self.crop_ratio}")
        if self.bce_weight < 0 or self.dice_weight < 0 or self.bce_weight + self.dice_weight == 0:
            raise ValueError("bce_weight and dice_weight must be >= 0, and not both 0")
        if self.samples < 1 or self.head_width < 1 or self.head_convs < 1:
            raise ValueError("samples, head_width and head_convs must be >= 1")
        if not 0 <= self.ema_beta < 1:
            raise ValueError(f"ema_beta must be in [0, 1), got {self.ema_beta}")


PRESETS: dict[str, SelfMaskConfig] = {
    "paper": SelfMaskConfig(),
    "small": SelfMaskConfig(dataset="synthetic:benchmark", size=64, crop_scale=(0.5, 1.0), head_width=64, lr=1e-3,
                            steps=400, batch_size=16, log_every=10, sample_every=200, checkpoint_every=200,
                            ema_beta=0.99),
    "smoke": SelfMaskConfig(dataset="synthetic:easy", size=32, crop_scale=(0.5, 1.0), head_width=16, lr=1e-3,
                            steps=4, batch_size=4, log_every=2, sample_every=2, checkpoint_every=2, samples=3),
}


# helpers


# method


class SelfMask(Method):
    """SelfMask on MOVE: a fresh head on MOVE's frozen features, trained on MOVE's binarised masks."""

    name = "selfmask"
    Config = SelfMaskConfig
    linked_runs = ("move_checkpoint",)
    presets = PRESETS
    frozen = ("extractor",)

    def __init__(self, config: SelfMaskConfig, *, device: str | torch.device = "cpu"):
        super().__init__(config, device=device)
        c = config
        self.teacher = self.load_teacher()  # a MOVE method (not a module): neither trained nor saved
        self.extractor = self.teacher.extractor  # the frozen features, shared with the teacher
        if c.size % self.extractor.patch_size:
            raise ValueError(f"size {c.size} is not a multiple of the features' patch size {self.extractor.patch_size}")
        self.head = SegmenterHead(in_dim=self.extractor.embed_dim, patch_size=self.extractor.patch_size,
                                  width=c.head_width, conv_per_block=c.head_convs).to(self.device)
        self.opt = torch.optim.AdamW(self.head.parameters(), lr=c.lr, betas=c.betas, weight_decay=c.weight_decay)
        self.jitter = DiffAugment(policy=("color",))
        self.ema_betas = {"head": c.ema_beta} if c.ema_beta > 0 else {}

    def load_teacher(self):
        """The trained MOVE of ``move_checkpoint``, in evaluation mode, on this method's device."""
        from workbench.methods.move import MOVE

        path = self.config.move_checkpoint
        if path is None:
            raise ValueError("selfmask trains on the masks of a trained MOVE: give --move-checkpoint RUN "
                             "(a `python -m workbench train move` run folder or one of its checkpoints)")
        if not Path(path).expanduser().exists():
            raise FileNotFoundError(f"MOVE checkpoint {path} not found; "
                                    "train one with `python -m workbench train move`")
        return load_method_as(MOVE, Path(path).expanduser(), device=self.device)

    # data

    def build_dataset(self):
        from workbench.data import build_dataset

        return build_dataset(self.config.dataset, size=self.config.size, split="train", seed=self.config.seed)

    @torch.no_grad()
    def pseudo_masks(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's binarised masks (B, 1, H, W) in {0, 1} of images (B, 3, H, W) in [0, 1]."""
        return (self.teacher.predict(x) >= self.config.pseudo_threshold).float()

    @torch.no_grad()
    def prepare(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented images (B, 3, S, S) and their pseudo-masks (B, 1, S, S) in {0, 1}."""
        c = self.config
        x = batch["image"].to(self.device)  # (B, 3, S, S)
        both = torch.cat([x, self.pseudo_masks(x)], dim=1)  # (B, 4, S, S): one crop for image and mask
        both = random_resized_crop(both, size=c.size, scale=c.crop_scale, ratio=c.crop_ratio)
        if c.flip:
            flip = torch.rand(both.shape[0], device=both.device) < 0.5  # (B,)
            both = torch.where(flip[:, None, None, None], both.flip(-1), both)
        x, target = both[:, :3], (both[:, 3:] >= 0.5).float()
        if c.color_jitter:
            x = self.jitter(x).clamp(0, 1)
        return x, target

    # phases

    def phases(self) -> list[Phase]:
        return [Phase("segmenter", self.segmenter_step)]

    def losses(self, mask: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """BCE and Dice of the head's soft masks (B, 1, S, S) against pseudo-masks, and their weighted sum."""
        c = self.config
        bce = F.binary_cross_entropy(mask, target)  # torch clamps the logs at -100
        dice = dice_loss(mask, target)
        return {"loss": c.bce_weight * bce + c.dice_weight * dice, "bce": bce, "dice": dice}

    def segmenter_step(self, batch: dict) -> dict:
        x, target = self.prepare(batch)  # (B, 3, S, S), (B, 1, S, S)
        features = self.extractor(x).float()  # (B, D, h, w), frozen, no grad
        mask = self.head(features)  # (B, 1, S, S), the only trained path
        losses = self.losses(mask, target)
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.opt.step()
        with torch.no_grad():  # IoU with the pseudo-masks, 1 when both are empty
            pred, gt = (mask >= 0.5).flatten(1), (target > 0.5).flatten(1)
            inter, union = (pred & gt).sum(1).float(), (pred | gt).sum(1).float()
            iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        return {**{k: v.detach() for k, v in losses.items()}, "iou_to_teacher": iou.float().mean(),
                "pseudo_area": target.mean()}

    # inference

    @torch.no_grad()
    def predict(self, x01: torch.Tensor, *, head=None) -> torch.Tensor:
        """Soft masks (B, 1, H, W) for images (B, 3, H, W) in [0, 1] of any size (MOVE's padding and cropping).

        Uses the head's EMA when there is one, in evaluation mode.
        """
        return self.teacher.predict(x01, head=self.averaged("head") if head is None else head)

    @torch.no_grad()
    def sample(self) -> torch.Tensor:
        """One image (1, 3, H', W'): a column per sample image, rows x, MOVE's pseudo-mask, this head's mask."""
        x = self.first_images(self.config.samples)  # (N, 3, S, S)
        rows = [x, self.pseudo_masks(x).expand(-1, 3, -1, -1), self.predict(x).expand(-1, 3, -1, -1)]
        return tile_rows(rows)
