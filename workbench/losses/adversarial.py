"""Adversarial losses of the thesis as small callable classes, every hyper-parameter a field.

Each loss gives a discriminator loss and a generator loss:

- ``loss.discriminator(D, real, fake) -> (loss, stats)``: ``D`` is the discriminator callable
  (logits out, any shape: (B,), (B, 1) or per pixel), ``real`` and ``fake`` are image batches. The
  fake batch is detached, so the discriminator loss never reaches the generator. ``stats`` holds
  detached 0-dim tensors for the logs.
- ``loss.generator(fake_logits) -> loss``: the generator loss from ``D(fake)``.

Methods that compute the logits elsewhere (MOVE's composites, a U-Net discriminator) use the
pieces: ``from_logits``, ``gradient_penalty``, ``r1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

# helpers

Discriminator = Callable[[torch.Tensor], torch.Tensor]


def logits_and_input_gradient(D: Discriminator, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``D(x)`` and its gradient with respect to ``x``, kept in the graph for a penalty.

    The gradient is that of ``D(x).sum()``, i.e. every sample's own output for a per-sample ``D``.
    """
    x = x.detach().requires_grad_(True)  # (B, C, H, W)
    logits = D(x)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)  # (B, C, H, W)
    return logits, grad


def squared_norm(grad: torch.Tensor) -> torch.Tensor:
    """Per-sample squared L2 norm of a batch of gradients: (B, ...) -> (B,)."""
    return grad.flatten(1).square().sum(1)


# classes


@dataclass
class WGANGP:
    """Wasserstein loss with gradient penalty and drift term, eqs. (3.5) and (3.6) (PerturbGAN).

    L_D = E[D(fake)] - E[D(real)] + λ E[(‖∇D(x̃)‖₂ - 1)²] + ε E[D(real)²], with x̃ = α real + (1 - α) fake,
    α ~ U[0, 1] per sample; L_G = -E[D(fake)]. The mask terms of (3.5) belong to the method.
    """

    gp_weight: float = 10.0  # λ: weight of the gradient penalty on interpolates (thesis: 10)
    drift: float = 0.001  # ε: weight of E[D(real)²], keeps the critic's output near zero (thesis: 0.001)

    def gradient_penalty(self, D: Discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """E[(‖∇D(x̃)‖₂ - 1)²] on random interpolates x̃ of real and fake (unweighted)."""
        alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)  # (B, 1, 1, 1)
        mixed = alpha * real.detach() + (1 - alpha) * fake.detach()  # (B, C, H, W)
        _, grad = logits_and_input_gradient(D, mixed)
        return (squared_norm(grad).sqrt() - 1).square().mean()

    def discriminator(self, D: Discriminator, real: torch.Tensor, fake: torch.Tensor):
        """L_D of eq. (3.6) and its parts (real, fake, drift, gp) for the logs."""
        real_logits, fake_logits = D(real), D(fake.detach())
        wasserstein = fake_logits.mean() - real_logits.mean()
        drift = real_logits.square().mean()
        loss = wasserstein + self.drift * drift
        stats = {"real": real_logits.mean(), "fake": fake_logits.mean(), "drift": drift}
        if self.gp_weight > 0:
            gp = self.gradient_penalty(D, real, fake)
            loss = loss + self.gp_weight * gp
            stats["gp"] = gp
        return loss, {"loss": loss.detach(), **{k: v.detach() for k, v in stats.items()}}

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """The adversarial term of eq. (3.5): -E[D(fake)]."""
        return -fake_logits.mean()


@dataclass
class NonSaturatingR1:
    """Non-saturating logistic loss with R1 regularisation, eqs. (4.5) and (4.6) (StyleGAN2).

    With ``D`` returning logits l and σ the sigmoid, the thesis' log-likelihood form becomes the
    softplus form L_D = E[softplus(l(fake))] + E[softplus(-l(real))] + λ E[‖∇ₓ l(real)‖²]. For the
    generator, (4.5)'s E[log(1 - σ(l(fake)))] = -E[softplus(l(fake))] saturates; like StyleGAN2 we
    minimise its non-saturating counterpart L_G = E[softplus(-l(fake))] = -E[log σ(l(fake))].
    λ multiplies E[‖∇ₓ l(real)‖²] as in eq. (4.6); StyleGAN2's code writes the same penalty as
    (γ/2)·E[‖∇ₓ l(real)‖²], so its γ is 2λ.
    """

    r1_weight: float = 0.1  # λ: weight of the R1 penalty E[‖∇ₓD(x)‖²] on real images (thesis ch. 4: 0.1)

    def r1(self, D: Discriminator, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits on real, unweighted R1 penalty E[‖∇ₓD(x)‖²])."""
        logits, grad = logits_and_input_gradient(D, real)
        return logits, squared_norm(grad).mean()

    def from_logits(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The logistic part of L_D, without R1."""
        return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()

    def discriminator(self, D: Discriminator, real: torch.Tensor, fake: torch.Tensor):
        """L_D of eq. (4.6) in softplus form, with R1 on the real batch; stats real, fake, r1."""
        if self.r1_weight > 0:
            real_logits, penalty = self.r1(D, real)
        else:
            real_logits, penalty = D(real), None
        fake_logits = D(fake.detach())
        loss = self.from_logits(real_logits, fake_logits)
        stats = {"real": real_logits.detach().mean(), "fake": fake_logits.detach().mean()}
        if penalty is not None:
            loss = loss + self.r1_weight * penalty
            stats["r1"] = penalty.detach()
        return loss, {"loss": loss.detach(), **stats}

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """The non-saturating adversarial term for eq. (4.5): E[softplus(-D(fake))]."""
        return F.softplus(-fake_logits).mean()


@dataclass
class Hinge:
    """Hinge loss, eqs. (5.5)/(5.6) (MOVE) and (6.2)/(6.3) (the KDD GAN baseline).

    L_D = E[max(0, 1 - D(real))] + E[max(0, 1 + D(fake))] (eq. (5.5) writes the same with min{0, ·});
    L_G = -E[D(fake)].
    """

    margin: float = 1.0  # the hinge: D is pushed to >= margin on real and <= -margin on fake (thesis: 1)

    def from_logits(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """L_D of eq. (5.5) from logits computed elsewhere (MOVE's real and fake sets)."""
        return F.relu(self.margin - real_logits).mean() + F.relu(self.margin + fake_logits).mean()

    def from_sets(self, real_sets: list[torch.Tensor], fake_sets: list[torch.Tensor]) -> torch.Tensor:
        """L_D of eq. (5.5) over several real and fake sets, as MOVE's official loop: the hinge mean of
        each set (over every element: every patch logit when D gives patch logits), averaged over the
        real sets plus the same over the fake sets."""
        real = sum(F.relu(self.margin - r).mean() for r in real_sets) / len(real_sets)
        fake = sum(F.relu(self.margin + f).mean() for f in fake_sets) / len(fake_sets)
        return real + fake

    def discriminator(self, D: Discriminator, real: torch.Tensor, fake: torch.Tensor):
        """L_D of eq. (5.5); stats real, fake."""
        real_logits, fake_logits = D(real), D(fake.detach())
        loss = self.from_logits(real_logits, fake_logits)
        return loss, {"loss": loss.detach(), "real": real_logits.detach().mean(), "fake": fake_logits.detach().mean()}

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """L_S of eq. (5.6) (and the generator loss of eq. (6.3)): -E[D(fake)]."""
        return -fake_logits.mean()
