"""KDD GAN (thesis chapter 6): a BigGAN trained with the kernel density discrimination loss.

The discriminator's features φ(x) ∈ R^K (K = 128) of a batch define kernel density estimates of
the real and of the generated data (eqs. 6.7-6.9); their log-ratio replaces the discriminator's
logit in the hinge loss (eqs. 6.5, 6.6). ``loss`` picks the objective of eq. (6.18):

- ``hinge``: the BigGAN baseline (eqs. 6.2, 6.3; γ = 0, α = 1);
- ``kdd``: the KDD loss alone (γ = 1, α = 0);
- ``joint``: KDD with weight ``gamma`` plus the hinge loss (α = 1).

With classes (``num_classes > 0``) the generator is class-conditional and the class projection
yᵀVφ of eq. (6.16) is part of the hinge logit (on the unnormalised φ̃, BigGAN) and is added to
the KDD log-ratio (on the normalised φ, the thesis' D_KDE(x) = φ(x); ``kdd_projection`` =
"unnormalised" adds the hinge logit's term instead). Switches of tables 6.1-6.5: ``tau`` (τ; by
default the thesis' rule: 0.05 unconditional as in table 6.1's "(Uncond)" rows, 1 with classes
as section 6.3 says), ``jac_weight`` = 1e-5 ("+JacD", eq. 6.17, measured in D's input space
[−1, 1]), ``augment_anchors`` = N ("DA ×N": N DiffAugment copies of every real and every
generated batch serve *only* as extra KDE anchors, section 6.3; the loss is averaged over the
non-augmented samples, and a sample's own copies are left out of its estimate with it unless
``leave_copies_out`` is off), ``dagger`` (the †
variant: the generator step anchors p̂_r at the real features of the previous discriminator
step(s), kept in a FIFO bank of ``bank_size`` rows), ``projection=False`` with classes ("NoProj":
a conditional generator against a discriminator that never sees labels), ``num_classes=0``
("UnCond"), ``kernel`` and ``feature_dim`` (table 6.2).

**Order of the phases.** The generator loss of KDD needs the real features under the *current*
discriminator. Rather than a second discriminator pass over a real batch, an iteration runs the
generator step first: it passes a fresh real batch (and its augmented copies) through D and
keeps that forward pass, graph included, for the discriminator step that follows, whose weights
are the same. So KDD costs no discriminator pass more than the hinge loss, and the result is
exactly alternating training (G, D, D, ..., G, D, ...). Phases: ``generator``, ``discriminator``
(the step that reuses the real pass) and, for ``d_steps > 1``, ``discriminator_extra`` (the
other d_steps - 1 steps, each on a fresh real batch). The hinge loss and the † variant need no
real data in the generator step and run the usual ``discriminator`` × d_steps, ``generator``.
The generator step backpropagates into the generator's parameters only (D's weight gradients
are not computed there). Under DDP every process estimates its KDEs from its own batch (and its
own † bank), so ``batch_size`` per process is the KDE's anchor count, as on the thesis' one GPU.

The ``paper`` preset is BigGAN's CIFAR-10 setting: ch = 64, K = 128, batch 64, 100k iterations
(section 6.3), Adam lr 2e-4 for both networks with (β₁, β₂) = (0, 0.999), 4 discriminator steps
per generator step and an EMA of G with decay 0.9999 (BigGAN-PyTorch's CIFAR script; the thesis
does not list them). Its data default is the synthetic benchmark scenes, unconditional; for
CIFAR-10 export it as ``ROOT/<class>/<image>.png`` and pass
``--dataset classes:ROOT --num_classes 10``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from workbench.losses.kdd import KDD, FeatureBank, Joint, jacobian_penalty, thesis_tau
from workbench.methods.base import Method, Phase, TrainConfig, evaluating
from workbench.nets.gan32 import RESOLUTIONS, Discriminator, DiscriminatorOutput, Generator
from workbench.ops.augment import DiffAugment

__all__ = ["KDDGAN", "KDDGANConfig", "PRESETS", "LOSSES", "LabelledDataset"]

LOSSES = ("hinge", "kdd", "joint")

# config


@dataclass
class KDDGANConfig(TrainConfig):
    """KDD GAN options; the defaults are the ``paper`` preset (BigGAN on CIFAR-10, section 6.3)."""

    dataset: str = "synthetic:benchmark"  # dataset spec (workbench.data.build_dataset, or classes:PATH)
    resolution: int = 32  # image side in pixels: 16, 32 (BigGAN's CIFAR networks) or 64
    num_classes: int = 0  # 0: unconditional; C > 0: conditional G and projection D, the data must have C classes
    projection: bool = True  # with classes, the projection yᵀVφ in D (eq. 6.16); False is table 6.1's "NoProj"
    z_dim: int = 128  # size of the latent code z ~ N(0, I)
    width: int = 64  # BigGAN's ch: both networks have 4·width channels
    feature_dim: int = 128  # K: size of the discriminator features φ (section 6.4.1: 128)
    shared_dim: int = 128  # size of the class embedding shared by the generator's conditional BatchNorms
    loss: Literal["hinge", "kdd", "joint"] = "kdd"  # objective of eq. (6.18), see the module docstring
    tau: float | None = None  # τ of the vMF kernel (eq. 6.9); None: the thesis' rule, 0.05 unconditional (table 6.1 "Uncond"), 1 with classes (section 6.3)
    kernel: Literal["vmf", "gaussian"] = "vmf"  # KDE kernel: vMF on normalised φ (thesis) or Gaussian on raw φ
    gamma: float = 1.0  # γ: weight of the KDD loss for loss=joint (table 6.1: 0.1 to 10; best 1)
    jac_weight: float = 0.0  # λ∇ of the Jacobian regulariser (eq. 6.17) in the D loss; 1e-5 is "+JacD"
    jac_delta: float = 1e-3  # δ of the finite difference in eq. (6.17), in D's input units [−1, 1] (thesis: 1e-3)
    kdd_projection: Literal["normalised", "unnormalised"] = "normalised"  # φ in the KDD log-ratio's yᵀVφ (eq. 6.16): normalised (thesis' D_KDE(x) = φ(x)) or the hinge logit's φ̃
    augment_anchors: int = 0  # N of "DA ×N": DiffAugment copies per batch used only as extra KDE anchors
    leave_copies_out: bool = True  # DA ×N: a sample's own augmented copies leave its KDE with it (leave-one-out)
    dagger: bool = False  # † variant: G-step real anchors are the features of the last D step(s)
    bank_size: int = 0  # rows of the † feature bank; 0: one D step's real features, (1 + N) × batch_size
    d_steps: int = 4  # discriminator steps per generator step (BigGAN's CIFAR script: 4)
    lr_g: float = 2e-4  # generator Adam learning rate (BigGAN CIFAR)
    lr_d: float = 2e-4  # discriminator Adam learning rate (BigGAN CIFAR)
    betas: tuple[float, float] = (0.0, 0.999)  # Adam (β₁, β₂) for both networks (BigGAN)
    ema_beta: float = 0.9999  # decay of the generator's exponential moving average (BigGAN)
    samples: int = 64  # images in each sample grid
    steps: int = 100_000
    batch_size: int = 64
    sample_every: int = 2000
    checkpoint_every: int = 10_000

    def __post_init__(self):
        super().__post_init__()
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.kernel not in ("vmf", "gaussian"):
            raise ValueError(f"kernel must be 'vmf' or 'gaussian', got {self.kernel!r}")
        for name in ("num_classes", "augment_anchors", "bank_size", "jac_weight", "gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("z_dim", "width", "feature_dim", "shared_dim", "d_steps", "samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if (self.tau is not None and self.tau <= 0) or self.jac_delta <= 0:
            raise ValueError(f"tau and jac_delta must be positive, got {self.tau} and {self.jac_delta}")
        if self.kdd_projection not in ("normalised", "unnormalised"):
            raise ValueError(f"kdd_projection must be 'normalised' or 'unnormalised', got {self.kdd_projection!r}")
        if self.loss == "hinge" and (self.augment_anchors or self.dagger):
            raise ValueError("augment_anchors and dagger shape the KDE anchors: they need loss=kdd or loss=joint")
        if self.loss == "joint" and self.gamma == 0:
            raise ValueError("loss=joint with gamma=0 is the hinge loss: use loss=hinge")
        if not self.projection and not self.num_classes:
            raise ValueError("projection=False (table 6.1's NoProj) needs a conditional model: set num_classes")
        if self.batch_size < 2 and self.loss != "hinge":
            raise ValueError("the leave-one-out KDE needs batch_size >= 2")

    @property
    def kernel_tau(self) -> float:
        """τ in use: ``tau``, or by the thesis' rule 0.05 unconditional / 1 conditional (:func:`thesis_tau`)."""
        return self.tau if self.tau is not None else thesis_tau(conditional=self.num_classes > 0)


PRESETS: dict[str, KDDGANConfig] = {
    "paper": KDDGANConfig(),
    "small": KDDGANConfig(width=8, feature_dim=32, shared_dim=32, z_dim=64, d_steps=1, ema_beta=0.99, samples=36,
                          steps=1500, batch_size=32, log_every=10, sample_every=250,
                          checkpoint_every=500),  # ~10 min on 2 CPU cores (4x the DCGAN small step)
    "smoke": KDDGANConfig(resolution=16, width=2, feature_dim=8, shared_dim=8, z_dim=16, d_steps=1, ema_beta=0.9,
                          samples=16, steps=4, batch_size=8, log_every=2, sample_every=4,
                          checkpoint_every=2),  # seconds
}


# helpers


class LabelledDataset(torch.utils.data.Dataset):
    """A dataset whose items gain ``"label"``: the class of the item as an index 0..C-1.

    ``labels`` are the dataset's own class ids (any ints, e.g. Flowers102's 1..102); they are
    mapped to 0..C-1 in sorted order.
    """

    def __init__(self, dataset: torch.utils.data.Dataset, labels: list[int]):
        if len(labels) != len(dataset):
            raise ValueError(f"{len(labels)} labels for {len(dataset)} items")
        self.dataset = dataset
        self.classes = sorted(set(labels))
        index = {c: i for i, c in enumerate(self.classes)}
        self.labels = [index[c] for c in labels]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        return {**self.dataset[i], "label": torch.tensor(self.labels[i], dtype=torch.long)}


def split_output(out: DiscriminatorOutput, n: int) -> tuple[DiscriminatorOutput, torch.Tensor | None]:
    """The first ``n`` rows of a discriminator pass, and the features of the rest (the anchors) or None."""
    first = DiscriminatorOutput(*(t[:n] if t is not None else None for t in out))
    return first, (out.features[n:] if out.features.shape[0] > n else None)


# method


class KDDGAN(Method):
    """BigGAN with the hinge, KDD or Joint loss (eq. 6.18); see the module docstring for the phases."""

    name = "kdd-gan"
    Config = KDDGANConfig
    presets = PRESETS

    def __init__(self, config: KDDGANConfig, *, device: str | torch.device = "cpu"):
        super().__init__(config, device=device)
        c = config
        self.generator = Generator(resolution=c.resolution, z_dim=c.z_dim, width=c.width, num_classes=c.num_classes,
                                   shared_dim=c.shared_dim).to(self.device)
        self.discriminator = Discriminator(resolution=c.resolution, width=c.width, feature_dim=c.feature_dim,
                                           num_classes=c.num_classes if c.projection else 0).to(self.device)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=c.lr_g, betas=c.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr_d, betas=c.betas)
        gamma, alpha = {"hinge": (0.0, 1.0), "kdd": (1.0, 0.0), "joint": (c.gamma, 1.0)}[c.loss]
        kdd = KDD(tau=c.kernel_tau, kernel=c.kernel, leave_copies_out=c.leave_copies_out)
        self.objective = Joint(gamma=gamma, alpha=alpha, jac_weight=c.jac_weight,
                               normalised_projection=c.kdd_projection == "normalised", kdd=kdd)
        self.augment = DiffAugment(policy=("color", "translation", "cutout")) if c.augment_anchors else None
        bank_size = c.bank_size or (1 + c.augment_anchors) * c.batch_size
        self.bank = FeatureBank(bank_size) if c.dagger else None
        self.carry: tuple[torch.Tensor, torch.Tensor | None, DiscriminatorOutput] | None = None  # see generator_step
        self.ema_betas = {"generator": c.ema_beta}
        self.find_unused_parameters = alpha == 0  # lone KDD never uses the logit head (DDP must know)

    @property
    def uses_kdd(self) -> bool:
        return self.objective.gamma > 0

    @property
    def carries_real(self) -> bool:
        """Whether the generator step passes real data through D and hands it to the next D step."""
        return self.uses_kdd and not self.config.dagger

    # data

    def build_dataset(self):
        """The training split at the model's resolution; with ``num_classes``, items carry ``"label"``."""
        from workbench.data import build_dataset

        c = self.config
        dataset = build_dataset(c.dataset, size=c.resolution, split="train", seed=c.seed)
        if not c.num_classes:
            return dataset
        labels = getattr(dataset, "labels", None)
        if labels is None:
            raise ValueError(f"num_classes={c.num_classes} needs a dataset with classes, but {c.dataset!r} has none; "
                             "use classes:PATH (one sub-folder per class) or num_classes=0")
        labelled = LabelledDataset(dataset, list(labels))
        if len(labelled.classes) != c.num_classes:
            raise ValueError(f"{c.dataset!r} has {len(labelled.classes)} classes but num_classes={c.num_classes}")
        return labelled

    def real_inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Real images (B, 3, R, R) in [0, 1] and their labels (B,) (None when unconditional)."""
        if self.config.num_classes and "label" not in batch:
            raise ValueError("a conditional KDD GAN needs batches with 'label' (see KDDGAN.build_dataset)")
        return batch["image"], (batch["label"].long() if self.config.num_classes else None)

    def fake_inputs(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latent codes z ~ N(0, I) (n, z_dim) and uniform random labels (n,) from the global generator."""
        z = torch.randn(n, self.config.z_dim, device=self.device)
        y = torch.randint(0, self.config.num_classes, (n,), device=self.device) if self.config.num_classes else None
        return z, y

    def with_anchors(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The discriminator's inputs: the batch followed by its ``augment_anchors`` DiffAugment copies
        ("DA ×N"), ((1+N)·B, 3, R, R), and their labels for the projection (None without one)."""
        n = self.config.augment_anchors
        y = y if self.config.projection else None
        if not n:
            return x, y
        x = torch.cat([x, *(self.augment(x) for _ in range(n))])  # ((1+N)·B, 3, R, R)
        return x, (y.repeat(n + 1) if y is not None else None)

    # phases

    def phases(self) -> list[Phase]:
        """See the module docstring: G first when it carries a real pass to D, else D × d_steps then G."""
        d = self.config.d_steps
        if self.carries_real:
            phases = [Phase("generator", self.generator_step),
                      Phase("discriminator", self.discriminator_step, real_data=False)]
            if d > 1:
                phases.append(Phase("discriminator_extra", self.discriminator_step, repeat=d - 1))
            return phases
        return [Phase("discriminator", self.discriminator_step, repeat=d),
                Phase("generator", self.generator_step, real_data=False)]

    def discriminator_step(self, batch: dict | None) -> dict:
        """One D update against fresh fakes, on a real batch or (``batch=None``) on the generator step's real pass."""
        z, y_fake = self.fake_inputs(self.config.batch_size)
        with torch.no_grad():
            x_fake = self.generator(z, y_fake)  # (B, 3, R, R)
        xf, yf = self.with_anchors(x_fake, y_fake)
        if batch is None:
            if self.carry is None:
                raise RuntimeError("discriminator_step(None) reuses the real pass of generator_step, which has not run")
            x_real, y_real, real_all = self.carry
            self.carry = None
            fake_all = self.discriminator(xf, yf)
        else:
            x_real, y_real = self.real_inputs(batch)
            xr, yr = self.with_anchors(x_real, y_real)
            both = self.discriminator(torch.cat([xr, xf]), torch.cat([yr, yf]) if yr is not None else None)
            real_all = DiscriminatorOutput(*(t[: len(xr)] if t is not None else None for t in both))
            fake_all = DiscriminatorOutput(*(t[len(xr):] if t is not None else None for t in both))
        real_out, real_anchors = split_output(real_all, x_real.shape[0])
        fake_out, fake_anchors = split_output(fake_all, x_fake.shape[0])
        jacobian = None
        if self.config.jac_weight > 0:
            jacobian = self.jacobian(torch.cat([x_real, x_fake]))
        loss, stats = self.objective.discriminator(real_out, fake_out, real_anchors=real_anchors,
                                                   fake_anchors=fake_anchors, jacobian=jacobian,
                                                   copies=self.config.augment_anchors)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        if self.bank is not None:
            self.bank.push(real_all.features)
        return stats

    def generator_step(self, batch: dict | None) -> dict:
        """One G update through the current D (see the module docstring for the real batch of KDD)."""
        z, y_fake = self.fake_inputs(self.config.batch_size)
        x_fake = self.generator(z, y_fake)  # (B, 3, R, R)
        real_features = real_anchors = None
        if self.carries_real:  # KDD: p̂_r under the current D; the pass keeps its graph for discriminator_step
            if batch is None:
                raise RuntimeError("the KDD generator step passes a real batch through D: give it one")
            x_real, y_real = self.real_inputs(batch)
            real_all = self.discriminator(*self.with_anchors(x_real, y_real))
            self.carry = (x_real, y_real, real_all)
            real_features = real_all.features[: x_real.shape[0]].detach()
            real_anchors = real_all.features[x_real.shape[0]:].detach() if self.config.augment_anchors else None
        elif self.bank is not None:  # †: the real features of the previous discriminator step(s)
            real_features = self.bank.features()
        fake_out, fake_anchors = split_output(self.module("discriminator")(*self.with_anchors(x_fake, y_fake)),
                                              x_fake.shape[0])
        loss = self.objective.generator(fake_out, real_features, real_anchors=real_anchors, fake_anchors=fake_anchors,
                                        copies=self.config.augment_anchors)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward(inputs=list(self.generator.parameters()))  # G only: D's weight gradients are not needed
        self.opt_g.step()
        return {"loss": loss.detach()}

    def jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """L_Jac of eq. (6.17) on images x (B, 3, R, R) in [0, 1], measured in D's input space [−1, 1].

        The random unit direction, the step δ = ``jac_delta`` and the unit target all live where D
        sees the images (BigGAN's [−1, 1]), not in the workbench's [0, 1], where each is off by 2×.
        """
        discriminator = self.module("discriminator")
        return jacobian_penalty(discriminator.features_of_input, discriminator.to_input(x), delta=self.config.jac_delta)

    # state

    def extra_state(self) -> dict:
        """The † bank's rows (JSON floats are exact for float32), so that a resumed run is exact."""
        if self.bank is None or not len(self.bank):
            return {}
        return {"bank": self.bank.features().float().cpu().tolist()}

    def load_extra_state(self, state: dict) -> None:
        if self.bank is not None and state.get("bank"):
            self.bank = FeatureBank(self.bank.size)
            self.bank.push(torch.tensor(state["bank"], dtype=torch.float32, device=self.device))

    # samples

    @torch.no_grad()
    def generate(self, n: int, *, labels: torch.Tensor | None = None, seed: int | None = None) -> torch.Tensor:
        """``n`` images (n, 3, R, R) in [0, 1] from the EMA generator in evaluation mode.

        ``labels`` (n,) for a conditional model (default: classes in equal blocks); ``seed`` fixes z.
        """
        c = self.config
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, c.z_dim, generator=g).to(self.device)
        if c.num_classes and labels is None:
            labels = torch.arange(n) * c.num_classes // n  # (n,) class blocks
        with evaluating(self.averaged("generator")) as generator:
            return generator(z, labels.to(self.device) if labels is not None else None)  # (n, 3, R, R)

    @torch.no_grad()
    def sample(self) -> torch.Tensor:
        """``samples`` images from the EMA generator, always from the same codes (and class blocks)."""
        return self.generate(self.config.samples, seed=self.config.seed)
