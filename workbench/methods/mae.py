"""MAE pre-training: ``python -m workbench train mae``, so that MOVE runs with no download at all.

A masked autoencoder [44] (``workbench.nets.mae``) learns on any image folder or on the synthetic
scenes: each image loses a random 75% of its patches, the encoder sees the rest, and the decoder
regresses the pixels of the missing ones (MSE, optionally on per-patch normalised pixels). Its
encoder then serves as MOVE's feature extractor (the "MAE feature extractor" row of table 5.6)
and its decoder as MOVE's inpainter (section 5.2.2); :func:`load_mae_from_run` hands it over.

MOVE also *autoencodes* with the MAE (x̃, section 5.2) and encodes all patches before blending
in the mask token, which plain MAE training never shows it. ``visible_loss_weight`` adds the
MSE on the visible patches to the loss (0, the default, is the faithful MAE).

Optimisation follows MAE: AdamW with betas (0.9, 0.95) and weight decay 0.05 on the weight
matrices (none on biases and norms), a linear warmup and a cosine decay per step. The ``paper``
preset is MAE's ViT-L/16 recipe at a single GPU's batch (the thesis itself uses the official
GAN-loss checkpoint, which :func:`workbench.nets.mae.load_mae` reads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from workbench.methods.base import Method, Phase, TrainConfig, evaluating, tile_rows
from workbench.nets.mae import ARCHS, MAE, build_mae

# config


@dataclass
class MAEConfig(TrainConfig):
    """MAE pre-training options; the defaults are the ``paper`` preset (ViT-L/16 at 224 px, for a GPU)."""

    dataset: str = "synthetic:benchmark"  # dataset spec for workbench.data.build_dataset (e.g. folder:PATH)
    size: int = 224  # image side in pixels (a multiple of the patch size)
    arch: Literal["mae_vit_large_patch16", "mae_vit_base_patch16", "mae_tiny"] = "mae_vit_large_patch16"  # model
    norm_pix_loss: bool = False  # regress per-patch normalised pixels (better features, worse inpainting)
    mask_ratio: float = 0.75  # fraction of patches removed per image
    visible_loss_weight: float = 0.0  # weight of the MSE on visible patches (0: faithful MAE)
    lr: float = 3.75e-5  # peak AdamW learning rate (MAE: 1.5e-4 x batch / 256)
    min_lr: float = 0.0  # learning rate at the end of the cosine decay
    warmup_steps: int = 10_000  # linear warmup from 0 to lr
    weight_decay: float = 0.05  # AdamW weight decay of weight matrices and tokens
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW (β₁, β₂)
    flip: bool = True  # random horizontal flips
    samples: int = 8  # images in each sample grid (columns of input / masked / reconstruction rows)
    steps: int = 400_000
    batch_size: int = 64
    num_workers: int = 8
    sample_every: int = 5000
    checkpoint_every: int = 10_000

    def __post_init__(self):
        super().__post_init__()
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {self.arch!r}")
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.visible_loss_weight < 0 or self.warmup_steps < 0 or self.samples < 1 or self.lr <= 0:
            raise ValueError("visible_loss_weight and warmup_steps must be >= 0, samples >= 1, lr > 0")


PRESETS: dict[str, MAEConfig] = {
    "paper": MAEConfig(),
    # visible_loss_weight 1 measured better than 0 / 0.1 for both inpainting and autoencoding (README);
    # one loader process renders the synthetic scenes while the main one trains
    "small": MAEConfig(size=64, arch="mae_tiny", lr=1.5e-3, warmup_steps=100, visible_loss_weight=1.0,
                       steps=1200, batch_size=64, num_workers=1, samples=8, log_every=20, sample_every=300,
                       checkpoint_every=300),  # ~6-10 min on 2 CPU cores
    "smoke": MAEConfig(size=32, arch="mae_tiny", lr=1e-3, warmup_steps=2, steps=6, batch_size=4, num_workers=0,
                       samples=2, log_every=2, sample_every=3, checkpoint_every=3),  # seconds
}


# helpers


def lr_at(step: int, config: MAEConfig) -> float:
    """Learning rate of step ``step``: linear warmup, then a half cosine from ``lr`` to ``min_lr``."""
    c = config
    if step < c.warmup_steps:
        return c.lr * (step + 1) / c.warmup_steps
    progress = (step - c.warmup_steps) / max(c.steps - c.warmup_steps, 1)
    return c.min_lr + (c.lr - c.min_lr) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def param_groups(model: torch.nn.Module, *, weight_decay: float) -> list[dict]:
    """AdamW groups as in MAE: decay on matrices and tokens, none on biases and norm weights (1-D)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim <= 1 or name.endswith(".bias") else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# method


class MAEPretraining(Method):
    """Masked-autoencoder pre-training (random masking, pixel MSE on the masked patches), one phase."""

    name = "mae"
    Config = MAEConfig
    presets = PRESETS

    def __init__(self, config: MAEConfig, *, device: str | torch.device = "cpu"):
        super().__init__(config, device=device)
        c = config
        self.mae = build_mae(c.arch, img_size=c.size, norm_pix_loss=c.norm_pix_loss).to(self.device)
        self.opt = torch.optim.AdamW(param_groups(self.mae, weight_decay=c.weight_decay), lr=lr_at(0, c),
                                     betas=c.betas)
        self._sample_images: torch.Tensor | None = None

    def build_dataset(self):
        from workbench.data import build_dataset

        return build_dataset(self.config.dataset, size=self.config.size, split="train")

    def phases(self) -> list[Phase]:
        return [Phase("mae", self.pretrain_step)]

    # phase

    def pretrain_step(self, batch: dict) -> dict:
        c = self.config
        x01 = batch["image"]  # (B, 3, S, S) in [0, 1]
        if c.flip:
            flip = torch.rand(x01.shape[0], device=x01.device) < 0.5  # global RNG: resumable
            x01 = torch.where(flip[:, None, None, None], x01.flip(-1), x01)
        model = self.module("mae")
        x = model.normalize(x01)
        lr = lr_at(self.step, c)
        for group in self.opt.param_groups:
            group["lr"] = lr
        loss, pred, mask = self.mae(x, mask_ratio=c.mask_ratio, visible_weight=c.visible_loss_weight)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            per_patch = (pred - model.target(x)).square().mean(dim=-1)  # (B, N)
            masked = (per_patch * mask).sum() / mask.sum()
            visible = (per_patch * (1 - mask)).sum() / (1 - mask).sum()
        return {"loss": loss.detach(), "masked_mse": masked, "visible_mse": visible, "lr": lr}

    # samples

    def sample_images(self) -> torch.Tensor:
        """``samples`` fixed images of the dataset's validation split (its only split for plain folders)."""
        if self._sample_images is None:
            from workbench.data import build_dataset

            try:
                dataset = build_dataset(self.config.dataset, size=self.config.size, split="val", n=self.config.samples)
            except ValueError:
                dataset = build_dataset(self.config.dataset, size=self.config.size, n=self.config.samples)
            n = min(self.config.samples, len(dataset))
            self._sample_images = torch.stack([dataset[i]["image"] for i in range(n)])  # (N, 3, S, S)
        return self._sample_images.to(self.device)

    @torch.no_grad()
    def sample(self) -> torch.Tensor:
        """One image of four rows: inputs; masked inputs (grey patches); MAE's reconstruction with the
        visible patches pasted back; MOVE's inpainting of the same patches (all patches encoded, the
        mask token blended in before the decoder, section 5.2.2). Fixed images and masks."""
        with evaluating(self.averaged("mae")) as model:
            x01 = self.sample_images()  # (N, 3, S, S)
            x = model.normalize(x01)
            g = torch.Generator().manual_seed(self.config.seed)
            _, pred, mask = model(x, mask_ratio=self.config.mask_ratio, generator=g)  # (N, L, P*P*3), (N, L)
            grid = (x.shape[-2] // model.patch_size, x.shape[-1] // model.patch_size)
            pixel_mask = model.unpatchify(mask[..., None].expand(-1, -1, pred.shape[-1]), grid=grid)  # (N, 3, S, S)
            if model.norm_pix_loss:  # undo the per-patch normalisation with the true patch statistics
                target = model.patchify(x)
                pred = pred * (target.var(dim=-1, keepdim=True) + 1e-6).sqrt() + target.mean(dim=-1, keepdim=True)
            recon = model.denormalize(model.unpatchify(pred, grid=grid))  # (N, 3, S, S)
            pasted = pixel_mask * recon + (1 - pixel_mask) * x01
            masked = pixel_mask * 0.5 + (1 - pixel_mask) * x01
            rows = [x01, masked, pasted]
            if not model.norm_pix_loss:  # soft inpainting predicts pixels only when they were the target
                rows.append(model.denormalize(model.inpaint(x, mask)))
        return tile_rows(rows)


# loading


def load_mae_from_run(path: str | Path, *, device: str | torch.device = "cpu") -> MAE:
    """The MAE of a ``train mae`` checkpoint or run folder (its newest checkpoint), in eval mode."""
    from workbench.checkpoint import CONFIG_FILE, load_state_dict_strict, read_checkpoint
    from workbench.config import config_from_dict

    checkpoint = read_checkpoint(path, method=MAEPretraining.name)
    config = config_from_dict(MAEConfig, checkpoint.config, source=f"{checkpoint.path}/{CONFIG_FILE}")
    model = build_mae(config.arch, img_size=config.size, norm_pix_loss=config.norm_pix_loss)
    load_state_dict_strict(model, checkpoint.module_state("mae"), source=f"{checkpoint.path} module 'mae'")
    return model.to(device).eval()
