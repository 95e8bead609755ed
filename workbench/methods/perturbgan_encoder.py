"""Segmenting real images with a trained PerturbGAN (section 3.2.3): an encoder that inverts it.

The generator G of a trained ``perturbgan`` run is frozen. An encoder E (a randomly initialised
ResNet-18, :class:`~workbench.nets.latent_encoder.LatentEncoder`) maps a real image x to the
style codes of both generators; G turns them into a background, a foreground and a mask, whose
unshifted composite x_E (eq. 3.1) should rebuild x. E minimises eq. (3.7):

    L_auto = E‖x_E - x‖₁ + E‖D_feat(x_E) - D_feat(x)‖²₂,

the second term a perceptual loss on the frozen discriminator's features at 8 × 8 (the thesis:
512 × 8 × 8). Both terms are means over their elements (``perceptual_weight`` scales the
second). The mask of a real image is then G_m(E(x)). With a GAN trained against the projected
discriminator (``discriminator="projected"``, issue 16; not the thesis'), D_feat is that
discriminator's mixed feature map of side 8 (the fixed CCM/CSM over the frozen EfficientNet pyramid).

The thesis trains a separate encoder per chunk of 100 images, 1,000 iterations each, because it
found that more stable: :meth:`PerturbEncoder.segment_in_chunks` does that at test time (a fresh
encoder per chunk, trained on that chunk only). Training one encoder on the whole training split
(the Trainer, ``python -m workbench train perturbgan-encoder --gan RUN``) is the default.

Optimiser: Adam, lr 1e-4, (β₁, β₂) = (0.9, 0.999) (section 3.4.2).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from workbench.checkpoint import load_method_as
from workbench.methods.base import Method, Phase, TrainConfig, evaluating, tile_rows
from workbench.nets.latent_encoder import LatentEncoder
from workbench.ops.composite import layered_composite

__all__ = ["PerturbEncoder", "PerturbEncoderConfig", "PRESETS"]

# config


@dataclass
class PerturbEncoderConfig(TrainConfig):
    """Encoder options; the defaults are section 3.4.2 (1,000 iterations, Adam lr 1e-4)."""

    gan: str = ""  # the trained PerturbGAN: a run or checkpoint folder (its EMA generator and its D are frozen)
    dataset: str = ""  # real images to encode (default: the GAN's dataset)
    perceptual_weight: float = 1.0  # weight of the discriminator-feature term of eq. (3.7)
    feature_resolution: int = 8  # side of the discriminator features D_feat (thesis: 8 × 8)
    backbone: str = "resnet18"  # timm trunk of the encoder, randomly initialised
    lr: float = 1e-4  # Adam learning rate
    betas: tuple[float, float] = (0.9, 0.999)  # Adam (β₁, β₂)
    chunk_size: int = 100  # images per encoder in segment_in_chunks (section 3.4.2)
    samples: int = 8  # columns of the sample grid
    steps: int = 1000
    batch_size: int = 32
    sample_every: int = 250
    checkpoint_every: int = 1000

    def __post_init__(self):
        super().__post_init__()
        if self.perceptual_weight < 0 or self.chunk_size < 1 or self.samples < 1:
            raise ValueError("perceptual_weight must be >= 0, chunk_size and samples >= 1")


PRESETS: dict[str, PerturbEncoderConfig] = {
    "paper": PerturbEncoderConfig(),
    "small": PerturbEncoderConfig(lr=3e-4, steps=600, batch_size=32, log_every=20, sample_every=200,
                                  checkpoint_every=600),
    "smoke": PerturbEncoderConfig(steps=3, batch_size=4, samples=4, log_every=1, sample_every=3, checkpoint_every=3),
}


# method


class PerturbEncoder(Method):
    """E of figure 3.1 (green path) trained with eq. (3.7) against a frozen PerturbGAN."""

    name = "perturbgan-encoder"
    Config = PerturbEncoderConfig
    linked_runs = ("gan",)
    presets = PRESETS
    frozen = ("gan_generator", "gan_discriminator", "gan_disc_features")

    def __init__(self, config: PerturbEncoderConfig, *, device: str | torch.device = "cpu", gan: Method | None = None):
        super().__init__(config, device=device)
        self.gan = gan if gan is not None else self.load_gan(config.gan)
        # frozen copies: the GAN passed in stays trainable
        self.gan_generator = copy.deepcopy(self.gan.averaged("generator")).eval().requires_grad_(False)
        self.gan_discriminator = copy.deepcopy(self.gan.module("discriminator")).eval().requires_grad_(False)
        self.gan_disc_features = getattr(self.gan, "disc_features", None)  # the projected D's frozen pyramid, or None
        self.resolution = self.gan.config.resolution
        self.encoder = self.new_encoder()
        self.opt = torch.optim.Adam(self.encoder.parameters(), lr=config.lr, betas=config.betas)

    def load_gan(self, path: str) -> Method:
        """The trained PerturbGAN of ``gan`` (run or checkpoint folder)."""
        if not path:
            raise ValueError("the encoder needs a trained PerturbGAN: pass --gan RUN_OR_CHECKPOINT")
        from workbench.methods.perturbgan import PerturbGAN

        return load_method_as(PerturbGAN, Path(path).expanduser(), device=self.device)

    def new_encoder(self) -> LatentEncoder:
        """A randomly initialised encoder whose zero output is the generator's mean styles."""
        g = self.gan_generator
        encoder = LatentEncoder(resolution=self.resolution, num_ws=g.num_ws, w_dim=g.w_dim, backbone=self.config.backbone)
        encoder.mean_styles.copy_(g.mean_styles())
        return encoder.to(self.device)

    def build_dataset(self):
        """The training split of ``dataset`` (default: the GAN's) at the GAN's resolution."""
        from workbench.data import build_dataset

        spec = self.config.dataset or self.gan.config.dataset
        return build_dataset(spec, size=self.resolution, split="train", seed=self.config.seed)

    # the model

    def decode(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes (B, num_ws, w_dim) -> (x_E (B, 3, R, R) in [-1, 1], mask (B, 1, R, R)), with the generator's const noise."""
        layers = self.gan_generator.synthesis(codes, noise="const")
        composite = layered_composite(background=layers.background, foreground=layers.foreground, mask=layers.mask)
        return composite, layers.mask

    def discriminator_features(self, x: torch.Tensor, *, resolution: int) -> torch.Tensor:
        """D_feat of eq. (3.7) for images (B, 3, R, R) in [-1, 1]: (B, C, r, r) at side ``resolution``.

        The style discriminator's trunk at r; for the projected one, its mixed map of side r."""
        if self.gan_disc_features is None:
            return self.gan_discriminator.features(x, resolution=resolution)
        maps = self.gan_discriminator.mix(self.gan_disc_features((x + 1) / 2))  # [(B, c_i, r_i, r_i)], finest first
        for features in maps:
            if features.shape[-1] == resolution:
                return features
        raise ValueError(f"the projected discriminator's maps have sides {[m.shape[-1] for m in maps]}, "
                         f"not feature_resolution {resolution}")

    def autoencoding_loss(self, encoder: torch.nn.Module, x01: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Eq. (3.7) for images (B, 3, R, R) in [0, 1]; returns the loss and its parts."""
        x = x01 * 2 - 1  # (B, 3, R, R)
        x_e, mask = self.decode(encoder(x01))
        l1 = (x_e - x).abs().mean()
        loss, stats = l1, {"l1": l1.detach(), "mask_area": mask.detach().mean()}
        if self.config.perceptual_weight > 0:
            r = self.config.feature_resolution
            with torch.no_grad():
                target = self.discriminator_features(x, resolution=r)  # (B, C, r, r)
            perceptual = (self.discriminator_features(x_e, resolution=r) - target).square().mean()
            loss = loss + self.config.perceptual_weight * perceptual
            stats["perceptual"] = perceptual.detach()
        return loss, {"loss": loss.detach(), **stats}

    # phases

    def phases(self) -> list[Phase]:
        return [Phase("encoder", self.encoder_step)]

    def encoder_step(self, batch: dict) -> dict:
        loss, stats = self.autoencoding_loss(self.encoder, batch["image"])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return stats

    # segmentation

    def _fit_size(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] == (self.resolution, self.resolution):
            return images
        return F.interpolate(images, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False,
                             antialias=True)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, *, encoder: torch.nn.Module | None = None,
               batch_size: int = 64) -> dict[str, torch.Tensor]:
        """Reconstruct images (B, 3, H, W) in [0, 1]: ``mask`` (B, 1, H, W) and ``reconstruction`` (B, 3, H, W) in [0, 1]."""
        masks, recons = [], []
        with evaluating(self.module("encoder") if encoder is None else encoder) as encoder:
            for chunk in images.split(batch_size):
                x = self._fit_size(chunk.to(self.device))  # (b, 3, R, R)
                x_e, mask = self.decode(encoder(x))
                masks.append(mask)
                recons.append(((x_e + 1) / 2).clamp(0, 1))
        mask, recon = torch.cat(masks), torch.cat(recons)
        size = images.shape[-2:]
        if size != mask.shape[-2:]:
            mask = F.interpolate(mask, size=size, mode="bilinear", align_corners=False)
            recon = F.interpolate(recon, size=size, mode="bilinear", align_corners=False)
        return {"mask": mask, "reconstruction": recon}

    def segment(self, images: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
        """Soft masks (B, 1, H, W) of images (B, 3, H, W) in [0, 1]: G_m(E(x)) with the trained encoder."""
        return self.encode(images, batch_size=batch_size)["mask"]

    def segment_in_chunks(self, images: torch.Tensor, *, chunk_size: int | None = None, steps: int | None = None,
                          seed: int | None = None, progress: bool = True) -> torch.Tensor:
        """The thesis' protocol: a fresh encoder per chunk of ``chunk_size`` images, trained ``steps``
        iterations on that chunk alone (batches of ``batch_size`` drawn from it); masks (B, 1, H, W)."""
        c = self.config
        chunk_size, steps = chunk_size or c.chunk_size, steps or c.steps
        generator = torch.Generator().manual_seed(c.seed if seed is None else seed)
        masks = []
        chunks = list(images.split(chunk_size))
        if len(chunks) > 1 and len(chunks[-1]) < 2:  # batch norm trains on two images or more
            chunks[-2:] = [torch.cat(chunks[-2:])]
        for chunk in tqdm(chunks, desc="encoder chunks", unit="chunk", disable=not progress):
            x = self._fit_size(chunk.to(self.device))  # (n, 3, R, R)
            with torch.random.fork_rng(devices=[]):  # the caller's global RNG is left as it was
                torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
                encoder = self.new_encoder().train()
            opt = torch.optim.Adam(encoder.parameters(), lr=c.lr, betas=c.betas)
            for _ in range(steps):
                pick = torch.randint(len(x), (max(2, min(c.batch_size, len(x))),), generator=generator)
                loss, _ = self.autoencoding_loss(encoder, x[pick.to(self.device)])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            masks.append(self.encode(chunk, encoder=encoder)["mask"])
        return torch.cat(masks)

    # samples

    @torch.no_grad()
    def sample(self) -> torch.Tensor:
        """Rows: real images, reconstructions x_E, masks G_m(E(x)), masked images."""
        x = self.first_images(self.config.samples)  # (N, 3, R, R)
        out = self.encode(x)
        mask = out["mask"].expand(-1, 3, -1, -1)
        return tile_rows([x, out["reconstruction"], mask, x * mask])


def encoder_config(preset: str = "small", **overrides) -> PerturbEncoderConfig:
    """A preset's config with overrides (a convenience for notebooks and the bench)."""
    return replace(PRESETS[preset], **overrides)
