"""Chapter 4: a conditional layered GAN whose discriminator can also learn to segment (table 4.1).

One class-conditional StyleGAN paints the background (label 0) and the foreground with its mask
(label 1) from the same z (section 4.1.1; :class:`~workbench.nets.layered.ConditionalLayeredGenerator`).
As in chapter 3, the foreground and mask are shifted by Δ ~ U([-δ, δ]²) before compositing
(eq. 4.2, δ = 0.125·R), and both layers' contrasts are jittered in (0.7, 1.3) (section 4.2).
The generator minimises (eq. 4.5, non-saturating form)

    L_gen = E[softplus(-D(x̂))] + γ₁ L_size + γ₂ L_binary          (γ₁ = 5, γ₂ = 2)

and the discriminator the logistic loss with R1 (eq. 4.6, λ = 0.1). The four settings of
table 4.1 (``SETTINGS``) differ in the discriminator:

* **(a)** a U-Net discriminator: global logit D(x), per-pixel realism D_dec(x) (eq. 4.8) and a
  mask channel D_seg trained with L_seg, the BCE against the shifted generated mask (eq. 4.7,
  4.9); the generator is also scored per pixel, as in U-Net GAN; channels scaled so that the
  discriminator has about the standard one's parameter count (section 4.2);
* **(b)** as (a), plus CutMix consistency regularisation (U-Net GAN);
* **(c)** the standard discriminator, whose encoder carries a U-Net decoder for the mask only
  (eq. 4.10);
* **(d)** the standard discriminator alone; a segmenter is post-trained on the frozen generator
  (``workbench.methods.layered_post``), which applies to (a)-(c) too.

Details the thesis leaves open, decided here:

* L_seg is the full binary cross-entropy that the text names (eq. 4.7 as printed keeps only its
  −G_m log S half), against the *shifted* mask m_Δ that the composite x̂ shows (the equation writes
  the unshifted G_m(z));
* in settings (a) and (b) the generator is also scored per pixel, E[softplus(−D_dec(x̂))], as in
  U-Net GAN; eq. (4.5) has the global term only;
* like StyleGAN2 the R1 penalty is *lazy*: every ``r1_every`` steps, multiplied by ``r1_every``
  (no path-length regulariser, which the thesis does not name). For D_dec the penalty is taken on
  the gradient of its per-image mean (eq. 4.8 writes one gradient per pixel, which costs a backward
  pass per pixel);
* CutMix (setting b) mixes with a box or its complement (p = 1/2 each), without U-Net GAN's warm-up;
* real images are centre-cropped to a square, resized to 1.125·R and cropped to R at random (section
  4.2; chapter 3 squashes them, as section 3.3 says);
* at test time an image is brought to the scale of the training crops: its shorter side is resized
  to 1.125·R (the real images were resized to 1.125·R and cropped to R), see :meth:`LayeredGAN.segment`;
* the networks are StyleGAN2's (``network="stylegan2"``: modulated convolutions with
  demodulation, skip outputs, a residual discriminator; :mod:`workbench.nets.stylegan2`), the
  layer label read by the mapping network; ``network="stylegan"`` keeps chapter 3's StyleGAN;
* λ = 0.1 is read as eq. (4.6) prints it, λ·E‖∇D‖² (``r1_reading="thesis"``); StyleGAN2's code
  writes the penalty as (γ/2)·E‖∇D‖², and ``r1_reading="stylegan2"`` reads λ as that γ.

Presets: ``paper`` (section 4.2 at 128 px: batch 64, lr 1e-3, η = 0.15 of the ablation study,
150K iterations), ``small`` (32 px ``synthetic:movable`` scenes on a CPU, with the workbench's
``max_mask`` 0.4 and ``rgb_init`` 0.3: the scale of the initial to-RGB colour weights, a switch for
short runs, not StyleGAN2's), ``smoke``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F

from workbench.losses.adversarial import NonSaturatingR1, squared_norm
from workbench.methods.base import Phase, TrainConfig, evaluating
from workbench.methods.perturbgan import CROP_SCALE, PerturbGAN, check_background
from workbench.nets.layered import GENERATOR_NETWORKS, ConditionalLayeredGenerator, Layers
from workbench.nets.stylegan import RESOLUTIONS
from workbench.nets.stylegan2 import ARCHITECTURES
from workbench.nets.unet_discriminator import UNetDiscriminator, matched_width
from workbench.ops.augment import contrast_jitter, cutmix_masks
from workbench.ops.composite import layered_composite
from workbench.ops.mask_losses import SIZE_LOSS_ON, binarization_loss, mask_iou
from workbench.ops.rescale import segment_at_scale
from workbench.ops.shift import random_offsets, translate

__all__ = ["LayeredGAN", "LayeredConfig", "Setting", "SETTINGS", "PRESETS"]


class Setting(NamedTuple):
    """One row of table 4.1: which outputs the discriminator decodes, and how it is regularised."""

    title: str
    realism: bool  # per-pixel realism output D_dec (eq. 4.8)
    segmenter: bool  # mask output D_seg trained with L_seg (eq. 4.7)
    cutmix: bool  # CutMix consistency regularisation
    matched: bool  # channels scaled to the standard discriminator's parameter count (section 4.2)


SETTINGS: dict[str, Setting] = {
    "a": Setting("U-Net discriminator + mask", realism=True, segmenter=True, cutmix=False, matched=True),
    "b": Setting("U-Net discriminator + mask + cutmix", realism=True, segmenter=True, cutmix=True, matched=True),
    "c": Setting("standard discriminator + U-Net mask prediction", realism=False, segmenter=True, cutmix=False,
                 matched=False),
    "d": Setting("standard discriminator -> post-training only", realism=False, segmenter=False, cutmix=False,
                 matched=False),
}

R1_READINGS = {"thesis": 1.0, "stylegan2": 0.5}  # factor on λ: eq. (4.6) as printed, or λ as StyleGAN2's γ (γ/2)
DISC_TRUNKS = ("auto", "resnet", "plain")  # disc_trunk: the discriminator trunk, by the generator network or named

# config


@dataclass
class LayeredConfig(TrainConfig):
    """Chapter 4 options; the defaults are the ``paper`` preset (section 4.2, setting (b))."""

    setting: str = "b"  # a row of table 4.1: a, b, c or d (see SETTINGS)
    dataset: str = "duts-tr:data/DUTS"  # real images (cub:PATH and flowers102:PATH take centre crops)
    resolution: int = 128  # image side (64 for CUB and Flowers, 128 for DUTS and LSUN Car)
    z_dim: int = 512  # size of z ~ N(0, I)
    w_dim: int = 512  # size of the style vector w
    mapping_layers: int = 8
    network: str = "stylegan2"  # StyleGAN2 G (modulated convs, skip outputs) and residual D; "stylegan": chapter 3's
    disc_trunk: str = "auto"  # the D's trunk: auto follows network (resnet with stylegan2, plain with stylegan); a ladder switch
    g_architecture: str = "skip"  # StyleGAN2 G's outputs: "skip" (StyleGAN2) or "orig" (one to-RGB at the end, its ablation); a ladder switch
    width: int = 128  # channels at full resolution, doubling per halving
    max_width: int = 512  # channel cap
    rgb_init: float = 1.0  # scale of the initial to-RGB colour weights, not the mask logit's (StyleGAN2: 1; a workbench switch, issue 16)
    max_shift: float = 0.125  # δ as a fraction of the resolution
    min_mask: float = 0.15  # η of L_size, eq. (4.3) (the ablation study's value)
    max_mask: float = 1.0  # workbench addition, not in the thesis: an upper hinge on the mask area (1 = off), weight γ₁
    size_loss_on: str = "original"  # L_size and max_mask on G_m(z) (eq. 4.3), or "shifted": the m_Δ the composite shows
    size_weight: float = 5.0  # γ₁
    binary_weight: float = 2.0  # γ₂
    jitter: bool = True  # contrast jitter in (0.7, 1.3) of background and foreground (section 4.2)
    random_crop: bool = True  # resize reals to 1.125·R and crop R at random
    background: str = "generated"  # "true": issue-16 oracle rung, B = true empty backgrounds of the scenes, not G(z, 0)
    mixing: float = 0.9  # style-mixing probability
    r1_weight: float = 0.1  # λ of eq. (4.6)
    r1_dec_weight: float = 0.1  # λ_dec of eq. (4.8)
    r1_reading: str = "thesis"  # "thesis": λ·E‖∇D‖² as eq. (4.6) prints; "stylegan2": λ read as StyleGAN2's γ, (γ/2)·E‖∇D‖²
    r1_every: int = 16  # lazy R1 (StyleGAN2): every this many steps, weight × this
    seg_weight: float = 1.0  # weight of L_seg in eqs. (4.9), (4.10)
    cutmix_prob: float = 0.5  # share of discriminator steps with a CutMix batch (setting b)
    consistency_weight: float = 1.0  # weight of the CutMix consistency term (setting b)
    lr: float = 1e-3  # Adam learning rate of both networks
    betas: tuple[float, float] = (0.0, 0.99)  # Adam (β₁, β₂)
    ema_beta: float = 0.999  # decay of the generator's moving average (sampling, post-training)
    samples: int = 8  # columns of the sample grid
    steps: int = 150_000  # training iterations (paper: 1K epochs of DUTS-TR at batch 64)
    batch_size: int = 64
    sample_every: int = 2000
    checkpoint_every: int = 10_000
    # configs saved before chapter 4 moved to StyleGAN2 load with chapter 3's networks they were trained with
    LEGACY_DEFAULTS: ClassVar[dict] = {"network": "stylegan"}

    def __post_init__(self):
        super().__post_init__()
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {sorted(SETTINGS)} (table 4.1), got {self.setting!r}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution}")
        if not 0 <= self.max_shift < 0.5:
            raise ValueError(f"max_shift must be in [0, 0.5), got {self.max_shift}")
        for name in ("min_mask", "max_mask", "mixing", "cutmix_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_mask < 1 and self.min_mask >= self.max_mask:
            raise ValueError(f"min_mask ({self.min_mask}) must be below max_mask ({self.max_mask})")
        if self.r1_every < 1 or self.samples < 1:
            raise ValueError("r1_every and samples must be >= 1")
        if self.network not in GENERATOR_NETWORKS:
            raise ValueError(f"network must be one of {sorted(GENERATOR_NETWORKS)}, got {self.network!r}")
        if self.disc_trunk not in DISC_TRUNKS:
            raise ValueError(f"disc_trunk must be one of {DISC_TRUNKS}, got {self.disc_trunk!r}")
        if self.size_loss_on not in SIZE_LOSS_ON:
            raise ValueError(f"size_loss_on must be one of {SIZE_LOSS_ON}, got {self.size_loss_on!r}")
        if self.g_architecture not in ARCHITECTURES:
            raise ValueError(f"g_architecture must be one of {ARCHITECTURES}, got {self.g_architecture!r}")
        if self.network != "stylegan2" and self.g_architecture != "skip":
            raise ValueError("g_architecture is a switch of the StyleGAN2 generator; chapter 3's StyleGAN has no skips")
        check_background(self.background, self.dataset)
        if self.r1_reading not in R1_READINGS:
            raise ValueError(f"r1_reading must be one of {sorted(R1_READINGS)}, got {self.r1_reading!r}")


PRESETS: dict[str, LayeredConfig] = {
    "paper": LayeredConfig(),
    # max_mask: the workbench's upper mask-size hinge; without it the 3,000-step GAN paints the whole frame
    # as foreground (mean mask area 0.84-0.89 in settings c and d; see docs/layered.md); rgb_init 0.3 starts
    # the generator's images at the scenes' standard deviation (0.43 against 0.42; StyleGAN2's 1: 1.4); size_loss_on
    # "shifted": with eq. (4.3) on G_m(z) every StyleGAN2 run glued its mask to the frame's edge, where the shift
    # pushes part of it out of the image (docs/layered.md)
    "small": LayeredConfig(dataset="synthetic:movable", resolution=32, z_dim=64, w_dim=64, mapping_layers=4,
                           width=16, max_width=128, max_mask=0.4, rgb_init=0.3, size_loss_on="shifted", ema_beta=0.99, steps=3000, batch_size=16, log_every=25,
                           sample_every=500, checkpoint_every=1000),
    "smoke": LayeredConfig(dataset="synthetic:benchmark", resolution=16, z_dim=16, w_dim=16, mapping_layers=2,
                           width=8, max_width=16, r1_every=2, ema_beta=0.9, samples=4, steps=4, batch_size=4,
                           log_every=2, sample_every=2, checkpoint_every=2),
}

# method


def discriminator_widths(config: LayeredConfig) -> tuple[int, int]:
    """(width, max_width) of the U-Net discriminator: matched to the standard D's parameter count in
    settings (a)/(b) (section 4.2), the config's own otherwise."""
    setting = SETTINGS[config.setting]
    if not setting.matched:
        return config.width, config.max_width
    return matched_width(resolution=config.resolution, width=config.width, max_width=config.max_width,
                         realism=setting.realism, segmenter=setting.segmenter,
                         architecture=discriminator_architecture(config))


def discriminator_architecture(config: LayeredConfig) -> str:
    """StyleGAN2's residual discriminator with the StyleGAN2 generator, chapter 3's plain one otherwise,
    unless ``disc_trunk`` names one (issue 16's ladder pairs either generator with either trunk)."""
    if config.disc_trunk != "auto":
        return config.disc_trunk
    return "resnet" if config.network == "stylegan2" else "plain"


class LayeredGAN(PerturbGAN):
    """The conditional layered GAN of chapter 4 in one of table 4.1's settings; see the module docstring.

    Shares chapter 3's data handling (1.125·R resize and random crop), sampling (``generate``,
    figure 3.3's grid) and composites; differs in the generator, the loss and the discriminator.
    """

    name = "layered"
    Config = LayeredConfig
    presets = PRESETS

    growing = False  # chapter 4 trains its StyleGAN2 at R from the start (no grow_from)

    def __init__(self, config: LayeredConfig, *, device: str | torch.device = "cpu"):
        # matched before any network is drawn (counting draws random weights): the RNG stream of the measured runs
        self.discriminator_widths = discriminator_widths(config)
        super().__init__(config, device=device)

    @property
    def setting(self) -> Setting:
        return SETTINGS[self.config.setting]

    def build_generator(self) -> torch.nn.Module:
        c = self.config
        options = {"architecture": c.g_architecture} if c.network == "stylegan2" else {}
        return ConditionalLayeredGenerator(network=c.network, resolution=c.resolution, width=c.width,
                                           max_width=c.max_width, z_dim=c.z_dim, w_dim=c.w_dim,
                                           mapping_layers=c.mapping_layers, rgb_init=c.rgb_init, **options)

    def build_disc_features(self) -> None:
        """None: the U-Net discriminator reads pixels (chapter 3's ``discriminator`` switch is not in this config)."""
        return None

    def build_discriminator(self) -> torch.nn.Module:
        """The U-Net discriminator of the setting (widths from :func:`discriminator_widths`)."""
        width, max_width = self.discriminator_widths
        return UNetDiscriminator(resolution=self.config.resolution, width=width, max_width=max_width,
                                 realism=self.setting.realism, segmenter=self.setting.segmenter,
                                 architecture=discriminator_architecture(self.config))

    def build_loss(self):
        """Eqs. (4.5), (4.6); its logistic terms serve D_dec too."""
        return NonSaturatingR1(r1_weight=self.config.r1_weight)

    # the model

    def composite(self, layers: Layers, offset: torch.Tensor | None = None, *, jitter: bool = False) -> torch.Tensor:
        """x̂ of eq. (4.2) (eq. 4.1 with ``offset=None``), optionally with both layers' contrasts jittered."""
        background, foreground = layers.background, layers.foreground  # (B, 3, R, R) each
        if jitter:
            background, foreground = contrast_jitter(background), contrast_jitter(foreground)
        return layered_composite(background=background, foreground=foreground, mask=layers.mask, offset=offset)

    def critic(self, images: torch.Tensor) -> torch.Tensor:
        """D's global logits (B,) for images (B, 3, R, R) in [-1, 1]; the decoder and mask outputs are not read."""
        return self.discriminator(images).logits

    def fakes(self, n: int) -> tuple[torch.Tensor, Layers, torch.Tensor]:
        """Shifted composites x̂ (n, 3, R, R), their layers, and the shifted masks m_Δ (n, 1, R, R) that
        S must predict on x̂ (eq. 4.7); fresh codes, global RNG."""
        c = self.config
        z = torch.randn(n, c.z_dim, device=self.device)  # (n, z_dim)
        layers = self.with_true_background(self.generator(z, mixing=c.mixing))
        offset = random_offsets(n, max_shift=c.max_shift, size=c.resolution, device=self.device)  # (n, 2)
        return self.composite(layers, offset, jitter=c.jitter), layers, translate(layers.mask, offset)

    # phases

    def phases(self) -> list[Phase]:
        return [Phase("discriminator", self.discriminator_step),
                Phase("generator", self.generator_step, real_data=False)]

    def discriminator_step(self, batch: dict) -> dict:
        """Minimise eq. (4.6) (+ eq. 4.8 and L_seg for U-Net settings, + CutMix for (b))."""
        c, setting = self.config, self.setting
        real = self.real_images(batch)  # (B, 3, R, R)
        with torch.no_grad():
            fake, _, target = self.fakes(real.shape[0])
        weights = c.r1_weight + (c.r1_dec_weight if setting.realism else 0)
        regularise = weights > 0 and self.step % c.r1_every == 0
        real.requires_grad_(regularise)
        out_real, out_fake = self.discriminator(real), self.discriminator(fake)
        loss = self.loss.from_logits(out_real.logits, out_fake.logits)  # eq. (4.6) without R1
        stats = {"real": out_real.logits.detach().mean(), "fake": out_fake.logits.detach().mean()}
        if setting.realism:  # eq. (4.8) without its R1 term
            dec = self.loss.from_logits(out_real.realism, out_fake.realism)
            loss = loss + dec
            stats["decoder"] = dec.detach()
        if setting.segmenter:  # eq. (4.7)
            seg = F.binary_cross_entropy_with_logits(out_fake.mask, target)
            loss = loss + c.seg_weight * seg
            stats["seg"] = seg.detach()
            stats["seg_iou"] = mask_iou(out_fake.mask.detach() > 0, target > 0.5).mean()
        if setting.cutmix and torch.rand(()) < c.cutmix_prob:
            loss = loss + self.cutmix_loss(real.detach(), fake, out_real, out_fake, stats)
        if regularise:
            penalty = self.r1_penalty(real, out_real, stats)
            loss = loss + c.r1_every * penalty
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {"loss": loss.detach(), **stats}

    def cutmix_loss(self, real, fake, out_real, out_fake, stats: dict) -> torch.Tensor:
        """U-Net GAN's CutMix terms: the mixed image is fake globally, real inside its box per pixel, and
        D_dec of the mix should equal the mix of D_dec (consistency)."""
        c = self.config
        box = cutmix_masks(real.shape[0], c.resolution, device=self.device)  # (B, 1, R, R) 1 = real
        out_mix = self.discriminator(box * real + (1 - box) * fake)
        mixed_target = box * out_real.realism + (1 - box) * out_fake.realism  # (B, 1, R, R)
        consistency = F.mse_loss(out_mix.realism, mixed_target)
        adversarial = F.softplus(out_mix.logits).mean() + F.binary_cross_entropy_with_logits(out_mix.realism, box)
        stats["cutmix"], stats["consistency"] = adversarial.detach(), consistency.detach()
        return adversarial + c.consistency_weight * consistency

    def r1_penalty(self, real: torch.Tensor, out_real, stats: dict) -> torch.Tensor:
        """λ E‖∇ₓD(x)‖² (eq. 4.6) + λ_dec E‖∇ₓ mean D_dec(x)‖² (eq. 4.8, see the module docstring);
        both weights halved under ``r1_reading="stylegan2"``."""
        c = self.config
        factor = R1_READINGS[c.r1_reading]
        outputs = [(factor * c.r1_weight, out_real.logits.sum(), "r1")]
        if out_real.realism is not None:
            outputs.append((factor * c.r1_dec_weight, out_real.realism.mean(dim=(1, 2, 3)).sum(), "r1_dec"))
        penalty = real.new_zeros(())
        for weight, scalar, name in outputs:
            if weight > 0:
                (grad,) = torch.autograd.grad(scalar, real, create_graph=True)  # (B, 3, R, R)
                value = squared_norm(grad).mean()
                penalty = penalty + weight * value
                stats[name] = value.detach()
        return penalty

    def generator_step(self, batch: None) -> dict:
        """Minimise eq. (4.5): E[softplus(-D(x̂))] (+ the per-pixel term for U-Net settings) + γ₁ L_size + γ₂ L_binary."""
        c = self.config
        fake, layers, shifted = self.fakes(c.batch_size)
        out = self.discriminator(fake)
        adversarial = self.loss.generator(out.logits)
        if out.realism is not None:  # U-Net GAN's per-pixel term
            adversarial = adversarial + self.loss.generator(out.realism)
        size = self.size_hinges(layers.mask, shifted)  # eq. (4.3), on G_m(z) or m_Δ (size_loss_on)
        binary = binarization_loss(layers.mask)
        loss = adversarial + c.size_weight * size + c.binary_weight * binary
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.generator.parameters()))
        self.opt_g.step()
        return {"loss": loss.detach(), "adversarial": adversarial.detach(), "size": size.detach(),
                "binary": binary.detach(), "mask_area": layers.mask.detach().mean()}

    # segmentation

    @torch.no_grad()
    def training_pairs(self, n: int, *, generator: torch.nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(composites (n, 3, R, R) in [0, 1], masks (n, 1, R, R)): shifted, jittered composites and their
        shifted masks, the pairs a segmenter is post-trained on (section 4.1.2); from ``generator``, by
        default the EMA generator; global RNG."""
        c = self.config
        z = torch.randn(n, c.z_dim, device=self.device)
        with evaluating(generator if generator is not None else self.averaged("generator")) as generator:
            layers = generator(z, mixing=c.mixing)
        offset = random_offsets(n, max_shift=c.max_shift, size=c.resolution, device=self.device)
        composite = self.composite(layers, offset, jitter=c.jitter)
        return ((composite + 1) / 2).clamp(0, 1), translate(layers.mask, offset)

    def build_dataset(self):
        """The training split as section 4.2 prepares real images: the centre square, resized to 1.125·R
        (random R crops happen per batch, :meth:`real_images`); without ``random_crop``, to R."""
        from workbench.data import build_dataset

        c = self.config
        return build_dataset(c.dataset, size=self.test_side, split="train", seed=c.seed, crop="center")

    @property
    def test_side(self) -> int:
        """The shorter side test images are resized to: the 1.125·R of the training crops' source images
        (R when the reals were not cropped), so that objects keep their training scale (section 4.2)."""
        c = self.config
        return round(CROP_SCALE * c.resolution) if c.random_crop else c.resolution

    @torch.no_grad()
    def segment(self, images: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
        """The joint segmenter S = σ(D_seg) on images (B, 3, H, W) in [0, 1]: masks (B, 1, H, W) in [0, 1].

        Fully convolutional at the training scale (section 4.2, :attr:`test_side`,
        :func:`workbench.ops.rescale.segment_at_scale`).
        Setting (d) has no joint segmenter: post-train one with ``layered-post``.
        """
        if not self.setting.segmenter:
            raise ValueError(f"setting ({self.config.setting}) has no joint segmenter; post-train one "
                             "(python -m workbench train layered-post --generator RUN)")
        with evaluating(self.module("discriminator")) as d:
            net = lambda x: torch.sigmoid(d.mask_logits(x * 2 - 1))  # noqa: E731
            masks = segment_at_scale(net, images.to(self.device, torch.float32), resolution=self.test_side,
                                     multiple=self.config.resolution // 4, batch_size=batch_size)
        return masks.clamp(0, 1).to(images.device)

    def predict(self, images: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
        """:meth:`segment` under the name that ``python -m workbench predict`` calls."""
        return self.segment(images, batch_size=batch_size)
