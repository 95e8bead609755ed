"""Kernel Density Discrimination in two dimensions (thesis chapter 6): figure 6.1, gradient fields, toy GANs.

Three things, all small enough for a laptop CPU:

- :func:`figure_6_1` re-runs the "Empirical Analysis of the KDD Loss" of section 6.2.2: a real
  cloud of two Gaussian modes, a fake cloud of one uniform square, the linear classifier that
  separates them, then SGD on the fake points themselves under the hinge generator loss (eq. 6.3
  with the frozen linear D) and under the KDD generator loss (eq. 6.6, Gaussian kernel σ = 1 on
  the raw 2D points). Eq. (6.11) says the hinge moves every point by the same vector; eq. (6.12)
  says KDD moves each point towards the real density and away from the fake one.
- :func:`gradient_field`: the per-point update direction -∂L_G/∂φ of both losses, for drawing.
- :func:`train_gan_2d`: a full GAN with MLP generator and discriminator on the mode-collapse
  benchmarks of Unrolled GAN / VEEGAN / PacGAN (8 Gaussians on a ring, 25 on a grid), trained with
  hinge, KDD or Joint (eq. 6.18) through :class:`workbench.losses.Joint`, scored by modes covered
  and high-quality samples.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Literal

import torch
from torch import nn

from workbench.losses import KDD, Joint, jacobian_penalty
from workbench.losses.kdd import thesis_tau

# mixtures


@dataclass(frozen=True)
class Mixture:
    """An equal-weight mixture of isotropic 2D Gaussians."""

    name: str
    centers: torch.Tensor  # (M, 2) mode means
    std: float  # σ of every mode

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n points (n, 2), each from a uniformly chosen mode."""
        which = torch.randint(len(self.centers), (n,), generator=generator)  # (n,)
        return self.centers[which] + self.std * torch.randn(n, 2, generator=generator)  # (n, 2)


def ring_mixture(*, modes: int = 8, radius: float = 2.0, std: float = 0.02) -> Mixture:
    """8 Gaussians evenly spaced on a circle of radius 2, σ = 0.02 (the ring of Unrolled GAN and VEEGAN)."""
    angles = torch.arange(modes) * (2 * math.pi / modes)  # (M,)
    centers = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # (M, 2)
    return Mixture(name=f"ring{modes}", centers=centers, std=std)


def grid_mixture(*, side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Mixture:
    """25 Gaussians at {-4, -2, 0, 2, 4}², σ = 0.05 (the grid of VEEGAN and PacGAN)."""
    ticks = (torch.arange(side) - (side - 1) / 2) * spacing  # (side,)
    return Mixture(name=f"grid{side * side}", centers=torch.cartesian_prod(ticks, ticks), std=std)


MIXTURES: dict[str, Callable[[], Mixture]] = {"ring8": ring_mixture, "grid25": grid_mixture}


# metrics


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Energy distance 2E‖X - Y‖ - E‖X - X'‖ - E‖Y - Y'‖ of clouds (N, 2), (M, 2); 0 iff the laws are equal."""
    x, y = x.double(), y.double()
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


@dataclass
class ModeReport:
    """Mode coverage of a set of samples against a mixture."""

    modes: int  # modes covered
    total: int  # modes in the mixture
    hq: float  # % of samples within ``radius_stds``·σ of their nearest mode ("high quality")
    counts: list[int]  # high-quality samples per mode


def mode_coverage(samples: torch.Tensor, mixture: Mixture, *, min_share: float = 0.1,
                  radius_stds: float = 3.0) -> ModeReport:
    """Modes covered and % high-quality samples, the protocol of VEEGAN/PacGAN with an explicit threshold.

    A sample is *high quality* when it lies within 3σ of its nearest mode. A mode is *covered* when
    it holds at least ``min_share`` of its fair share N/M of high-quality samples (0.1: 10 of 2,500
    samples on the 25-grid, 31 on the 8-ring), so that one stray sample does not count as a mode.
    """
    dist = torch.cdist(samples.double(), mixture.centers.double())  # (N, M)
    nearest, which = dist.min(dim=1)  # (N,), (N,)
    good = nearest <= radius_stds * mixture.std  # (N,)
    counts = torch.bincount(which[good], minlength=len(mixture.centers))  # (M,)
    need = max(1.0, min_share * len(samples) / len(mixture.centers))
    return ModeReport(modes=int((counts >= need).sum()), total=len(mixture.centers),
                      hq=100.0 * float(good.double().mean()), counts=counts.tolist())


# figure 6.1


@dataclass
class LinearClassifier:
    """D(φ) = wᵀφ + b: the "optimal linear classifier" of figure 6.1 (its green line is D = 0)."""

    w: torch.Tensor  # (2,)
    b: float

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        return points @ self.w + self.b  # (N,)

    def boundary(self, xs: torch.Tensor) -> torch.Tensor:
        """y on the line D = 0 at each x (for drawing; the line is never vertical in figure 6.1's layout)."""
        return -(self.w[0] * xs + self.b) / self.w[1]


def fit_linear_classifier(real: torch.Tensor, fake: torch.Tensor, *, loss: Literal["hinge", "logistic"] = "hinge",
                          steps: int = 2000, lr: float = 0.1) -> LinearClassifier:
    """Full-batch gradient descent from zero on the hinge loss of eq. (6.2) (or the logistic loss) of wᵀφ + b.

    On separable clouds the hinge loss reaches 0 and gradient descent stops at a classifier with
    every point beyond the margin; the logistic loss never stops growing ‖w‖, so ``steps`` sets its scale.
    """
    w = torch.zeros(2, dtype=real.dtype, requires_grad=True)
    b = torch.zeros((), dtype=real.dtype, requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=lr)
    for _ in range(steps):
        real_logits, fake_logits = real @ w + b, fake @ w + b  # (N,), (N,)
        if loss == "hinge":
            value = torch.relu(1 - real_logits).mean() + torch.relu(1 + fake_logits).mean()
        elif loss == "logistic":
            value = nn.functional.softplus(-real_logits).mean() + nn.functional.softplus(fake_logits).mean()
        else:
            raise ValueError(f"unknown classifier loss {loss!r}; choose 'hinge' or 'logistic'")
        if value.item() == 0.0:
            break
        opt.zero_grad()
        value.backward()
        opt.step()
    return LinearClassifier(w=w.detach(), b=float(b.detach()))


def hinge_generator_loss(fake: torch.Tensor, classifier: LinearClassifier) -> torch.Tensor:
    """L_G of eq. (6.3) with the frozen linear discriminator: -mean wᵀφ + b."""
    return -classifier(fake).mean()


def figure_6_1_clouds(*, n: int = 1000, seed: int = 0,
                      modes: tuple[tuple[float, float], ...] = ((2.0, 2.0), (2.0, -2.0)), mode_std: float = 0.5, square_center: tuple[float, float] = (-3.0, 0.0),
                      square_side: float = 2.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The point clouds of figure 6.1a: real (n, 2) = two Gaussian modes, fake (n, 2) = one uniform square.

    Returns (real, fake, mode centres (2, 2)). Real points alternate between the modes (n/2 each).
    """
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor(modes)  # (2, 2)
    real = centers[torch.arange(n) % len(centers)] + mode_std * torch.randn(n, 2, generator=g)  # (n, 2)
    fake = (torch.rand(n, 2, generator=g) - 0.5) * square_side + torch.tensor(square_center)  # (n, 2)
    return real, fake, centers


def gradient_field(real: torch.Tensor, fake: torch.Tensor, *, classifier: LinearClassifier | None = None,
                   kernel: Literal["gaussian", "vmf"] = "gaussian", sigma: float = 1.0,
                   tau: float = 1.0) -> dict[str, torch.Tensor]:
    """-∂L_G/∂φ at every fake point (N, 2) under the hinge loss (eq. 6.11) and the KDD loss (eq. 6.12).

    The losses are means over the N fake points, so their gradients carry a factor 1/N; it is
    multiplied back, and each arrow is the *per-sample* direction (the hinge one is exactly w
    everywhere). ``classifier`` defaults to :func:`fit_linear_classifier` on the two clouds. The
    KDD anchors are the real points and the fake points themselves (leave-one-out); ``kernel``
    "gaussian" (σ, raw 2D features, figure 6.1) or "vmf" (τ, points projected on the unit circle).
    """
    classifier = fit_linear_classifier(real, fake) if classifier is None else classifier
    n = fake.shape[0]
    points = fake.detach().clone().requires_grad_(True)  # (N, 2)
    (hinge,) = torch.autograd.grad(hinge_generator_loss(points, classifier), [points])
    kdd = KDD(kernel=kernel, sigma=sigma, tau=tau)
    (kdd_grad,) = torch.autograd.grad(kdd.generator(points, real), [points])
    return {"hinge": -n * hinge, "kdd": -n * kdd_grad}  # (N, 2) each


def cloud_summary(points: torch.Tensor, real: torch.Tensor, centers: torch.Tensor, *,
                  mode_std: float) -> dict[str, float]:
    """Mean, covariance, share nearest each mode, share within 3σ of a mode, energy distance to the real cloud.

    A run that diverged has non-finite points: ``finite`` is their complement's share, and such
    points count as near no mode (mean, covariance and energy distance are then nan).
    """
    finite = torch.isfinite(points).all(dim=1)  # (N,)
    cov = torch.cov(points.double().T)  # (2, 2)
    dist = torch.cdist(points.double(), centers.double())  # (N, 2)
    nearest = dist.argmin(dim=1)
    summary = {"mean_x": float(points[:, 0].mean()), "mean_y": float(points[:, 1].mean()),
               "cov_xx": float(cov[0, 0]), "cov_xy": float(cov[0, 1]), "cov_yy": float(cov[1, 1])}
    for i in range(len(centers)):
        summary[f"nearest_mode{i}"] = float(((nearest == i) & finite).double().mean())
    summary["on_a_mode"] = float(((dist.min(dim=1).values <= 3 * mode_std) & finite).double().mean())
    summary["energy_distance"] = energy_distance(points, real)
    summary["finite"] = float(finite.double().mean())
    return summary


@dataclass
class Figure61Result:
    """What figure 6.1 shows, as numbers and trajectories."""

    real: torch.Tensor  # (N, 2) the real cloud (blue)
    fake: torch.Tensor  # (N, 2) the initial fake cloud (orange, figure 6.1a)
    centers: torch.Tensor  # (2, 2) the real modes
    classifier: LinearClassifier  # the green line
    trajectories: dict[str, torch.Tensor]  # "hinge", "kdd": (T + 1, N, 2), recorded every ``record_every`` steps
    summary: dict[str, dict[str, float]]  # "initial", "hinge", "kdd": see :func:`cloud_summary`
    settings: dict[str, float | int | str] = field(default_factory=dict)

    def final(self, loss: str) -> torch.Tensor:
        """The fake cloud after the last step (N, 2) (figure 6.1b for "hinge", 6.1c for "kdd")."""
        return self.trajectories[loss][-1]


def move_points(fake: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor], *, steps: int, lr: float,
                record_every: int = 1) -> torch.Tensor:
    """SGD on the points themselves; returns the recorded positions (T + 1, N, 2), the start first."""
    points = fake.detach().clone().requires_grad_(True)  # (N, 2)
    opt = torch.optim.SGD([points], lr=lr)
    frames = [points.detach().clone()]
    for step in range(1, steps + 1):
        opt.zero_grad()
        loss_fn(points).backward()
        opt.step()
        if step % record_every == 0 or step == steps:
            frames.append(points.detach().clone())
    return torch.stack(frames)  # (T + 1, N, 2)


def figure_6_1(seed: int = 0, steps: int = 200, lr: float = 10.0, *, n: int = 1000, sigma: float = 1.0,
               reduction: Literal["mean", "sum"] = "mean", classifier_loss: Literal["hinge", "logistic"] = "hinge",
               mode_std: float = 0.5, record_every: int = 1) -> Figure61Result:
    """Figure 6.1: hinge vs. KDD generator updates on fixed 2D "features", 200 SGD steps at lr 10.

    ``reduction="mean"`` (our reading of "lr 10"): the losses are means over the N = 1000 fake
    points, as PyTorch's losses are, so each point moves by lr/N = 0.01 times its per-sample
    gradient per step. ``"sum"`` moves each point by lr times its per-sample gradient; the KDD
    step then overshoots the modes by far and the hinge step flies off (the bench shows both).
    """
    real, fake, centers = figure_6_1_clouds(n=n, seed=seed, mode_std=mode_std)
    classifier = fit_linear_classifier(real, fake, loss=classifier_loss)
    kdd = KDD(kernel="gaussian", sigma=sigma)
    scale = 1.0 if reduction == "mean" else float(n)
    losses = {"hinge": lambda p: scale * hinge_generator_loss(p, classifier),
              "kdd": lambda p: scale * kdd.generator(p, real)}
    trajectories = {name: move_points(fake, fn, steps=steps, lr=lr, record_every=record_every)
                    for name, fn in losses.items()}
    summary = {"initial": cloud_summary(fake, real, centers, mode_std=mode_std)}
    for name, frames in trajectories.items():
        summary[name] = cloud_summary(frames[-1], real, centers, mode_std=mode_std)
    settings = {"seed": seed, "steps": steps, "lr": lr, "n": n, "sigma": sigma, "reduction": reduction,
                "classifier_loss": classifier_loss, "w_x": float(classifier.w[0]), "w_y": float(classifier.w[1]),
                "b": classifier.b}
    return Figure61Result(real=real, fake=fake, centers=centers, classifier=classifier, trajectories=trajectories,
                          summary=summary, settings=settings)


# the 2D GAN


@dataclass
class GAN2DConfig:
    """A toy GAN on a 2D Gaussian mixture; the same settings serve every loss."""

    mixture: str = "grid25"  # "ring8" or "grid25" (see MIXTURES)
    loss: str = "hinge"  # "hinge" (γ=0, α=1), "kdd" (γ=1, α=0) or "joint" (γ, α=1): eq. (6.18)
    steps: int = 4000  # training iterations (one discriminator step + one generator step each)
    batch_size: int = 256  # real and fake samples per step (the KDE anchors of each side)
    lr: float = 2e-3  # Adam learning rate of both networks
    beta1: float = 0.5  # Adam β₁
    beta2: float = 0.9  # Adam β₂
    z_dim: int = 16  # latent size
    hidden: int = 64  # width of every hidden layer; also K, the discriminator's feature size
    tau: float = thesis_tau(conditional=False)  # τ of the vMF kernel: 0.05, the thesis' τ for unconditional runs (table 6.1 "KDD/Joint (Uncond)"); 1 is for conditional ones
    gamma: float = 1.0  # γ: weight of the KDD loss for "joint" (thesis' best: 1)
    jac_weight: float = 0.0  # λ∇ of L_Jac (eq. 6.17) on the discriminator's features, 0 or 1e-5
    n_eval: int = 2500  # samples drawn for the metrics
    min_share: float = 0.1  # a mode is covered when it holds this share of its fair N/M high-quality samples


PRESETS: dict[str, dict[str, GAN2DConfig]] = {  # preset -> mixture -> config; the thesis has no 2D GAN
    "paper": {"ring8": GAN2DConfig(mixture="ring8", steps=10000), "grid25": GAN2DConfig(steps=20000)},
    "small": {"ring8": GAN2DConfig(mixture="ring8", steps=2000), "grid25": GAN2DConfig(steps=4000)},
    "smoke": {name: GAN2DConfig(mixture=name, steps=20, batch_size=64, hidden=32, n_eval=500)
              for name in ("ring8", "grid25")},
}

LOSSES = ("hinge", "kdd", "joint")


@dataclass
class DiscriminatorOutput2D:
    """One discriminator pass, in the form :class:`workbench.losses.Joint` reads."""

    features: torch.Tensor  # (B, K) unnormalised φ̃, a linear layer on the last hidden layer
    logits: torch.Tensor  # (B,) the linear head on φ̃ (used by the hinge part)
    projection: torch.Tensor | None = None  # unconditional: no class projection (eq. 6.16)


class Generator2D(nn.Module):
    """z (B, z_dim) -> x (B, 2): a three-layer ReLU MLP."""

    def __init__(self, *, z_dim: int = 16, hidden: int = 64):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, 2)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return self(torch.randn(n, self.z_dim, generator=generator))  # (n, 2)


class Discriminator2D(nn.Module):
    """x (B, 2) -> features φ̃ (B, K) -> logit (B,): the image discriminator's layout.

    Two LeakyReLU layers, then φ̃ from a *linear* layer (as ``gan32.Discriminator.to_features``), then
    one linear unit. Taken after a LeakyReLU instead, φ̃ lies mostly in the positive orthant and the
    normalised features of different points start out similar (mean cosine ≈ 0.4), a narrow cap of
    the sphere for the vMF kernel.
    """

    def __init__(self, *, hidden: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2))
        self.to_features = nn.Linear(hidden, hidden)  # φ̃, K = hidden
        self.head = nn.Linear(hidden, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_features(self.body(x))  # (B, K)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput2D:
        phi = self.features(x)  # (B, K)
        return DiscriminatorOutput2D(features=phi, logits=self.head(phi).squeeze(1))


def make_loss(config: GAN2DConfig) -> Joint:
    """The loss of eq. (6.18) for ``config.loss``: hinge (γ=0, α=1), kdd (γ=1, α=0) or joint (γ, α=1)."""
    kdd = KDD(tau=config.tau)
    if config.loss == "hinge":
        return Joint(gamma=0.0, alpha=1.0, jac_weight=config.jac_weight, kdd=kdd)
    if config.loss == "kdd":
        return Joint(gamma=1.0, alpha=0.0, jac_weight=config.jac_weight, kdd=kdd)
    if config.loss == "joint":
        return Joint(gamma=config.gamma, alpha=1.0, jac_weight=config.jac_weight, kdd=kdd)
    raise ValueError(f"unknown loss {config.loss!r}; choose one of {', '.join(LOSSES)}")


@dataclass
class GAN2DResult:
    """A trained toy GAN and its scores."""

    config: GAN2DConfig
    seed: int
    generator: Generator2D
    discriminator: Discriminator2D
    samples: torch.Tensor  # (n_eval, 2) drawn after training
    report: ModeReport
    history: list[dict[str, float]]  # the evaluations made every ``eval_every`` steps
    seconds: float = 0.0


def train_gan_2d(config: GAN2DConfig, *, seed: int = 0, eval_every: int | None = None,
                 callback: Callable[[int, dict[str, float]], None] | None = None) -> GAN2DResult:
    """Train a 2D GAN with ``config.loss``; every random draw comes from ``seed`` (global RNG untouched).

    ``eval_every``: score modes / high-quality samples every so many steps into ``history`` and call
    ``callback(step, row)`` (a notebook's live plot, a progress bar).
    """
    start = time.perf_counter()
    if config.mixture not in MIXTURES:
        raise ValueError(f"unknown mixture {config.mixture!r}; choose one of {', '.join(MIXTURES)}")
    mixture = MIXTURES[config.mixture]()
    loss = make_loss(config)
    streams = [4 * seed + k for k in range(4)]  # init, training draws, evaluations, final samples: never shared
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(streams[0])
        G, D = Generator2D(z_dim=config.z_dim, hidden=config.hidden), Discriminator2D(hidden=config.hidden)
    g = torch.Generator().manual_seed(streams[1])
    g_eval = torch.Generator().manual_seed(streams[2])
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=config.lr, betas=betas)
    history: list[dict[str, float]] = []
    for step in range(1, config.steps + 1):
        # discriminator: eq. (6.18) on a fresh real batch and a detached fake batch
        real = mixture.sample(config.batch_size, generator=g)  # (B, 2)
        fake = G(torch.randn(config.batch_size, config.z_dim, generator=g)).detach()  # (B, 2)
        real_out, fake_out = D(real), D(fake)
        jac = None
        if config.jac_weight > 0:
            both = torch.cat([real, fake])  # (2B, 2): L_Jac over S_r ∪ S_g
            jac = _jacobian(D, both, g)
        d_loss, _ = loss.discriminator(real_out, fake_out, jacobian=jac)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # generator: the real features only anchor p̂_r
        fake = G(torch.randn(config.batch_size, config.z_dim, generator=g))  # (B, 2)
        with torch.no_grad():
            real_phi = D.features(real) if loss.gamma > 0 else real_out.features.detach()  # (B, K)
        g_loss = loss.generator(D(fake), real_phi)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if eval_every and (step % eval_every == 0 or step == config.steps):
            report = mode_coverage(G.sample(config.n_eval, generator=g_eval), mixture, min_share=config.min_share)
            row = {"step": step, "modes": report.modes, "hq": report.hq, "d_loss": float(d_loss.detach()),
                   "g_loss": float(g_loss.detach())}
            history.append(row)
            if callback is not None:
                callback(step, row)
    samples = G.sample(config.n_eval, generator=torch.Generator().manual_seed(streams[3]))
    report = mode_coverage(samples, mixture, min_share=config.min_share)
    return GAN2DResult(config=config, seed=seed, generator=G, discriminator=D, samples=samples, report=report,
                       history=history, seconds=time.perf_counter() - start)


def _jacobian(D: Discriminator2D, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """L_Jac of eq. (6.17) on D's unnormalised features, with the direction drawn from ``g``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**31, (1,), generator=g)))
        return jacobian_penalty(D.features, x)


def config_for(preset: str, mixture: str = "grid25", **overrides) -> GAN2DConfig:
    """A preset's config for one mixture with fields replaced (``config_for("small", "ring8", loss="kdd")``)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if mixture not in PRESETS[preset]:
        raise ValueError(f"unknown mixture {mixture!r}; choose one of {', '.join(PRESETS[preset])}")
    return replace(PRESETS[preset][mixture], **overrides)
