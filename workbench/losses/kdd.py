"""Kernel Density Discrimination (thesis chapter 6): the KDD loss, the Joint loss and their parts.

The discriminator's features φ(x) ∈ R^K of a batch define two kernel density estimates, one
anchored at the real samples and one at the generated ones (eqs. 6.7, 6.8):

    p̂_r(ξ) = 1/|S_r| Σ_{x_r} K(φ(x_r), ξ),     p̂_g(ξ) = 1/|S_g| Σ_{x_g} K(φ(x_g), ξ),

and the log-ratio log p̂_r(ξ)/p̂_g(ξ) plays the role of the discriminator's logit in a hinge loss
for D (eq. 6.5) and in the generator loss -E[log p̂_r/p̂_g (x_g)] (eq. 6.6). The kernel is a von
Mises-Fisher kernel on L2-normalised features, K_τ(φ, ξ) = exp(⟨φ, ξ⟩/τ)/Z (eq. 6.9), or, for the
2D illustration of figure 6.1, a Gaussian kernel exp(-|φ - ξ|²/2σ²)/Z on raw features. Z is the
same for both estimates and cancels in the ratio, so it is never computed.

Implementation choices (the thesis gives none; no public code exists):

- Everything is in log space: log p̂(ξ) = logsumexp_j(⟨φ_j, ξ⟩/τ) - log M, stable for τ = 0.05
  and batch 256 where exp(1/τ) overflows float32.
- Leave-one-out: a point is never its own anchor. A real sample's p̂_r averages over the *other*
  M_r - 1 real anchors (and likewise a generated sample's p̂_g), so the self-term exp(1/τ), the
  largest of all, cannot dominate the estimate.
- Extra anchors (augmented copies "DA ×N" of section 6.2.1, a memory bank for the † variant)
  only enter the estimates; the loss is averaged over the batch's own samples. With DA ×N a
  sample's own N augmented copies are near-self terms too, and by default they leave its
  estimate with it (``copies=N``; ``KDD(leave_copies_out=False)`` keeps them as anchors).
- An ``offset`` (B,) is added to each log-ratio: the class-projection term yᵀVφ(x) of eq. (6.16),
  with φ the kernel's features (L2-normalised for vMF), the thesis' D_KDE(x) = φ(x) (section 6.2.2);
  see :class:`Joint`.
- τ: section 6.3's default is τ = 1, used for the conditional runs of table 6.1; its
  unconditional rows ("KDD (Uncond)", "Joint (Uncond)") use τ = 0.05. :func:`thesis_tau` is that
  rule, and the methods default to it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol

import torch
import torch.nn.functional as F

from workbench.losses.adversarial import Hinge

Kernel = Literal["vmf", "gaussian"]

TAU_UNCONDITIONAL = 0.05  # table 6.1: "KDD (Uncond) 0.05", "Joint (Uncond) 0.05"
TAU_CONDITIONAL = 1.0  # section 6.3: "unless specified otherwise, we use τ = 1" (the conditional rows)

# helpers


def thesis_tau(*, conditional: bool) -> float:
    """τ by the thesis' rule: 1 for class-conditional runs (section 6.3), 0.05 for unconditional ones (table 6.1)."""
    return TAU_CONDITIONAL if conditional else TAU_UNCONDITIONAL


def kde_log_density(query: torch.Tensor, anchors: torch.Tensor, *, kernel: Kernel = "vmf", tau: float = 1.0,
                    sigma: float = 1.0, exclude_self: bool = False, copies: int = 0) -> torch.Tensor:
    """log p̂(ξ) of eqs. (6.7)/(6.8) up to the constant -log Z, for every query point.

    Args:
        query: (N, K) points ξ where the density is evaluated (already normalised for "vmf").
        anchors: (M, K) kernel centres φ(x) (already normalised for "vmf").
        kernel: "vmf": ⟨φ, ξ⟩/τ (eq. 6.9); "gaussian": -|φ - ξ|²/(2σ²).
        exclude_self: the first N anchors are the query points themselves; anchor i is left out
            of query i's estimate (leave-one-out), which then averages over M - 1 anchors.
        copies: with ``exclude_self``, anchors N..N(1+copies)-1 are ``copies`` blocks of N rows,
            row i of each block an augmented copy of query i ("DA ×N"); they leave query i's
            estimate too, which then averages over M - 1 - copies anchors.
    Returns:
        (N,) log-densities.
    """
    n, m = query.shape[0], anchors.shape[0]
    if kernel == "vmf":
        log_k = query @ anchors.T / tau  # (N, M)
    elif kernel == "gaussian":
        log_k = -torch.cdist(query, anchors).square() / (2 * sigma**2)  # (N, M)
    else:
        raise ValueError(f"unknown kernel {kernel!r}; choose 'vmf' or 'gaussian'")
    count = m
    if copies < 0:
        raise ValueError(f"copies must be >= 0, got {copies}")
    if exclude_self:
        left_out = 1 + copies  # the point itself and its augmented copies
        if m < n * left_out or m <= left_out:
            raise ValueError(f"leave-one-out needs the {n} query points (and {copies} blocks of their copies) first "
                             f"among more anchors than that, got {m}")
        self_pairs = torch.zeros(n, m, dtype=torch.bool, device=query.device)
        for k in range(left_out):
            self_pairs[:, k * n:(k + 1) * n] = torch.eye(n, dtype=torch.bool, device=query.device)
        log_k = log_k.masked_fill(self_pairs, float("-inf"))
        count = m - left_out
    return torch.logsumexp(log_k, dim=1) - math.log(count)  # (N,)


def jacobian_penalty(phi_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                     delta: float = 1e-3) -> torch.Tensor:
    """L_Jac of eq. (6.17): mean |‖φ̃(x + δΔx) - φ̃(x)‖₂/δ - 1| over the batch, Δx uniform on the unit sphere.

    ``phi_fn`` maps images (B, ...) to the *unnormalised* features φ̃ (B, K), with no layer that
    mixes samples (no batch norm). A finite-difference estimate of the Jacobian's norm along a
    random direction, pushed towards 1 (volume preservation around the data). x and x + δΔx go
    through ``phi_fn`` in *one* pass: a spectral-norm network runs a power iteration per pass in
    training mode, and dividing the change of weights between two passes by δ would swamp the
    finite difference. Eq. (6.17) sums over S_r ∪ S_g and divides by |S_r|; this is the mean over
    the batch passed in (half of that for equal real and fake batches; λ∇ absorbs the factor). With
    fewer features K than input dimensions d, even a map with orthonormal rows scores about
    1 - √(K/d), not 0.
    """
    direction = torch.randn_like(x)  # (B, ...)
    direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
    phi = phi_fn(torch.cat([x, x + delta * direction]))  # (2B, K)
    stretch = (phi[x.shape[0]:] - phi[: x.shape[0]]).norm(dim=1) / delta  # (B,)
    return (stretch - 1).abs().mean()


# classes


class DiscriminatorOutput(Protocol):
    """What :class:`Joint` needs from a discriminator pass."""

    features: torch.Tensor  # (B, K) unnormalised φ̃
    logits: torch.Tensor  # (B,) the linear head's output (projection included), for the hinge part
    projection: torch.Tensor | None  # (B,) yᵀVφ̃ on the unnormalised features (in the logits), or None
    class_vectors: torch.Tensor | None  # (B, K) the label embeddings Vᵀy of eq. (6.16), or None (unconditional)


@dataclass
class KDD:
    """The KDD loss of eqs. (6.5)–(6.9) on discriminator features (small callable object).

    ``discriminator(real_phi, fake_phi)`` is eq. (6.5) and ``generator(fake_phi, real_phi)`` eq. (6.6).
    Features are unnormalised (B, K); with the vMF kernel they are L2-normalised here.
    """

    tau: float = 1.0  # τ of the vMF kernel (eq. 6.9); 1 is section 6.3's default (conditional runs), 0.05 table 6.1's unconditional one (see thesis_tau)
    kernel: Kernel = "vmf"  # "vmf" on the unit sphere (the thesis), "gaussian" on raw features (figure 6.1)
    sigma: float = 1.0  # σ of the Gaussian kernel (figure 6.1: 1)
    leave_one_out: bool = True  # a point is never its own anchor
    leave_copies_out: bool = True  # with leave_one_out, nor are its own augmented copies (DA ×N, ``copies``)
    margin: float = 1.0  # the hinge of eq. (6.5): log-ratios pushed beyond ±margin

    def __post_init__(self):
        if self.tau <= 0 or self.sigma <= 0:
            raise ValueError(f"tau and sigma must be positive, got tau={self.tau}, sigma={self.sigma}")
        if self.kernel not in ("vmf", "gaussian"):
            raise ValueError(f"unknown kernel {self.kernel!r}; choose 'vmf' or 'gaussian'")

    def embed(self, phi: torch.Tensor) -> torch.Tensor:
        """Features in kernel space: L2-normalised for vMF (φ = φ̃/‖φ̃‖₂), unchanged for the Gaussian."""
        return F.normalize(phi, dim=1) if self.kernel == "vmf" else phi

    def log_density(self, query: torch.Tensor, anchors: torch.Tensor, *, self_anchored: bool,
                    copies: int = 0) -> torch.Tensor:
        """log p̂ at ``query`` (N, K) from ``anchors`` (M, K), both embedded; leave-one-out if self-anchored.

        ``copies``: the anchors after the queries begin with that many blocks of their augmented
        copies (see :func:`kde_log_density`); left out with the query when ``leave_copies_out``.
        """
        loo = self.leave_one_out and self_anchored
        return kde_log_density(query, anchors, kernel=self.kernel, tau=self.tau, sigma=self.sigma, exclude_self=loo,
                               copies=copies if loo and self.leave_copies_out else 0)

    def log_ratios(self, real_phi: torch.Tensor, fake_phi: torch.Tensor, *, real_anchors: torch.Tensor | None = None,
                   fake_anchors: torch.Tensor | None = None, copies: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """log p̂_r/p̂_g at the real (B_r,) and at the fake samples (B_g,), without offsets.

        The real estimate is anchored at ``real_phi`` followed by ``real_anchors``, the fake one at
        ``fake_phi`` followed by ``fake_anchors`` (all unnormalised (·, K)). ``copies`` = N when the
        extra anchors are N augmented copies of their batch, in blocks ("DA ×N", section 6.2.1).
        """
        r, f = self.embed(real_phi), self.embed(fake_phi)  # (B_r, K), (B_g, K)
        real_set = r if real_anchors is None else torch.cat([r, self.embed(real_anchors)])  # (M_r, K)
        fake_set = f if fake_anchors is None else torch.cat([f, self.embed(fake_anchors)])  # (M_g, K)
        real_copies = copies if real_anchors is not None else 0
        fake_copies = copies if fake_anchors is not None else 0
        at_real = (self.log_density(r, real_set, self_anchored=True, copies=real_copies)
                   - self.log_density(r, fake_set, self_anchored=False))
        at_fake = (self.log_density(f, real_set, self_anchored=False)
                   - self.log_density(f, fake_set, self_anchored=True, copies=fake_copies))
        return at_real, at_fake

    def discriminator(self, real_phi: torch.Tensor, fake_phi: torch.Tensor, *, real_anchors: torch.Tensor | None = None,
                      fake_anchors: torch.Tensor | None = None, real_offset: torch.Tensor | None = None,
                      fake_offset: torch.Tensor | None = None, copies: int = 0):
        """L_D of eq. (6.5): E_g[max(0, 1 + log p̂_r/p̂_g)] + E_r[max(0, 1 - log p̂_r/p̂_g)]; (loss, stats).

        ``*_offset`` (B,) is added to the log-ratios (the projection term of eq. 6.16); ``copies``:
        see :meth:`log_ratios`.
        """
        at_real, at_fake = self.log_ratios(real_phi, fake_phi, real_anchors=real_anchors, fake_anchors=fake_anchors,
                                           copies=copies)
        if real_offset is not None:
            at_real = at_real + real_offset
        if fake_offset is not None:
            at_fake = at_fake + fake_offset
        loss = F.relu(self.margin - at_real).mean() + F.relu(self.margin + at_fake).mean()
        stats = {"loss": loss.detach(), "real": at_real.detach().mean(), "fake": at_fake.detach().mean()}
        return loss, stats

    def generator(self, fake_phi: torch.Tensor, real_phi: torch.Tensor, *, real_anchors: torch.Tensor | None = None,
                  fake_anchors: torch.Tensor | None = None, fake_offset: torch.Tensor | None = None,
                  copies: int = 0) -> torch.Tensor:
        """L_G of eq. (6.6): -E_g[log p̂_r/p̂_g (x_g)].

        The real features only anchor p̂_r and are detached. The fake ones are both the evaluation
        points and p̂_g's anchors, and the gradient flows through both (eq. 6.12). ``copies`` = N
        when ``fake_anchors`` are N augmented copies of the fake batch (see :meth:`log_ratios`).
        """
        r, f = self.embed(real_phi.detach()), self.embed(fake_phi)
        real_set = r if real_anchors is None else torch.cat([r, self.embed(real_anchors.detach())])
        fake_set = f if fake_anchors is None else torch.cat([f, self.embed(fake_anchors)])
        at_fake = (self.log_density(f, real_set, self_anchored=False)
                   - self.log_density(f, fake_set, self_anchored=True, copies=copies if fake_anchors is not None else 0))
        if fake_offset is not None:
            at_fake = at_fake + fake_offset
        return -at_fake.mean()


@dataclass
class Joint:
    """L = γ·KDD + α·Hinge + λ∇·L_Jac, eq. (6.18), on a discriminator's features and logits.

    ``gamma=0, alpha=1`` is the hinge baseline (eqs. 6.2, 6.3), ``gamma=1, alpha=0`` lone KDD,
    ``alpha=1, gamma>0`` the thesis' "Joint". L_Jac regularises the discriminator's feature map, so
    it enters the discriminator loss only ("+JacD"; the thesis uses λ∇ = 1e-5).

    The class projection of eq. (6.16), yᵀV D(x): the hinge logits carry BigGAN's yᵀVφ̃ on the
    unnormalised features (``projection``); the KDD log-ratios get yᵀVφ with φ the kernel's
    features (``kdd.embed``: φ̃/‖φ̃‖₂ for vMF), since for KDD the thesis takes D_KDE(x) = φ(x)
    (section 6.2.2). ``normalised_projection=False`` adds the hinge logits' yᵀVφ̃ instead.
    """

    gamma: float = 1.0  # γ: weight of the KDD loss
    alpha: float = 1.0  # α ∈ {0, 1}: weight of the hinge loss
    jac_weight: float = 0.0  # λ∇ ∈ {0, 1e-5}: weight of L_Jac (eq. 6.17) in the discriminator loss
    normalised_projection: bool = True  # KDD's yᵀVφ on the kernel's φ (thesis); False: on the unnormalised φ̃
    kdd: KDD = field(default_factory=KDD)
    hinge: Hinge = field(default_factory=Hinge)

    def kdd_offset(self, out: DiscriminatorOutput) -> torch.Tensor | None:
        """The class term yᵀV D_KDE(x) (B,) added to the KDD log-ratios (eq. 6.16), or None (unconditional)."""
        if out.projection is None:
            return None
        if not self.normalised_projection:
            return out.projection
        vectors = getattr(out, "class_vectors", None)
        if vectors is None:
            raise ValueError("normalised_projection needs the label embeddings Vᵀy (DiscriminatorOutput.class_vectors); "
                             "or use normalised_projection=False")
        return (vectors * self.kdd.embed(out.features)).sum(dim=1)  # (B,)

    def discriminator(self, real: DiscriminatorOutput, fake: DiscriminatorOutput, *,
                      real_anchors: torch.Tensor | None = None, fake_anchors: torch.Tensor | None = None,
                      jacobian: torch.Tensor | None = None, copies: int = 0):
        """L_D of eq. (6.18) with the parts in the stats; ``jacobian`` is L_Jac when jac_weight > 0.

        ``copies`` = N when the anchors are N augmented copies of each batch (see :meth:`KDD.log_ratios`).
        """
        loss = real.logits.new_zeros(())
        stats: dict[str, torch.Tensor] = {}
        if self.gamma > 0:
            kdd, kdd_stats = self.kdd.discriminator(real.features, fake.features, real_anchors=real_anchors,
                                                    fake_anchors=fake_anchors, real_offset=self.kdd_offset(real),
                                                    fake_offset=self.kdd_offset(fake), copies=copies)
            loss = loss + self.gamma * kdd
            stats.update({f"kdd_{k}": v for k, v in kdd_stats.items()})
        if self.alpha > 0:
            hinge = self.hinge.from_logits(real.logits, fake.logits)
            loss = loss + self.alpha * hinge
            stats.update({"hinge": hinge.detach(), "real": real.logits.detach().mean(),
                          "fake": fake.logits.detach().mean()})
        if self.jac_weight > 0:
            if jacobian is None:
                raise ValueError("jac_weight > 0 needs the Jacobian term (workbench.losses.kdd.jacobian_penalty)")
            loss = loss + self.jac_weight * jacobian
            stats["jac"] = jacobian.detach()
        stats["loss"] = loss.detach()
        return loss, stats

    def generator(self, fake: DiscriminatorOutput, real_features: torch.Tensor, *,
                  real_anchors: torch.Tensor | None = None, fake_anchors: torch.Tensor | None = None,
                  copies: int = 0) -> torch.Tensor:
        """L_G of eq. (6.18): γ·(6.6) + α·(6.3); ``real_features`` anchor p̂_r (detached)."""
        loss = fake.logits.new_zeros(())
        if self.gamma > 0:
            loss = loss + self.gamma * self.kdd.generator(fake.features, real_features, real_anchors=real_anchors,
                                                          fake_anchors=fake_anchors, fake_offset=self.kdd_offset(fake),
                                                          copies=copies)
        if self.alpha > 0:
            loss = loss + self.alpha * self.hinge.generator(fake.logits)
        return loss


class FeatureBank:
    """A FIFO memory bank of detached real features (the † variant of table 6.5 and its extension).

    ``push`` adds a batch (B, K); ``features()`` returns every stored row (M, K), newest last.
    With ``size`` equal to one batch it holds exactly the previous discriminator step's features.
    """

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"bank size must be >= 1, got {size}")
        self.size = size
        self._rows: deque[torch.Tensor] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._rows)

    def push(self, features: torch.Tensor) -> None:
        for row in features.detach().clone():  # copies: later in-place changes of the batch stay out
            self._rows.append(row)

    def features(self) -> torch.Tensor:
        if not self._rows:
            raise RuntimeError("the feature bank is empty: push a discriminator step's real features first")
        return torch.stack(list(self._rows))  # (M, K)
