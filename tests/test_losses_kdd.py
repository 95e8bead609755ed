"""The KDD loss (eqs. 6.5-6.9), the Joint loss (6.18), L_Jac (6.17) and the feature bank.

The reference below is the thesis' formula written the slow way: explicit loops over the
anchors, ``exp`` of every kernel value, the mean taken by hand, all in float64. The workbench's
log-space implementation must give the same losses *and* the same gradients.
"""

import math

import pytest
import torch

from workbench.losses import KDD, FeatureBank, Hinge, Joint, jacobian_penalty, kde_log_density

# helpers


def unit(v):
    """v / ‖v‖₂ of one row, written out."""
    return v / torch.sqrt((v * v).sum())


def kernel_value(x, a, *, kernel, tau, sigma, log_z=0.0):
    """K(a, x) of eq. (6.9) (vMF on unit vectors) or the Gaussian of figure 6.1, with -log Z optional."""
    if kernel == "vmf":
        return torch.exp((x * a).sum() / tau - log_z)
    return torch.exp(-((x - a) ** 2).sum() / (2 * sigma**2) - log_z)


def density(x, anchors, *, skip=(), **kw):
    """p̂(x) of eqs. (6.7)/(6.8): the mean kernel value over the anchors, the anchors in ``skip`` left out."""
    total, count = 0.0, 0
    for j in range(anchors.shape[0]):
        if j in skip:
            continue
        total = total + kernel_value(x, anchors[j], **kw)
        count += 1
    return total / count


def reference_log_ratios(real, fake, *, real_anchors=None, fake_anchors=None, kernel="vmf", tau=1.0, sigma=1.0,
                         leave_one_out=True, log_z=0.0, copies=0):
    """log p̂_r/p̂_g at every real and fake sample, the slow way (lists of 0-dim tensors).

    ``copies``: the extra anchors begin with that many blocks of augmented copies of the batch
    (row i of each block a copy of sample i), left out of sample i's own-side estimate with it.
    """
    embed = (lambda rows: torch.stack([unit(v) for v in rows])) if kernel == "vmf" else (lambda rows: rows)
    r, f = embed(real), embed(fake)
    real_set = r if real_anchors is None else torch.cat([r, embed(real_anchors)])
    fake_set = f if fake_anchors is None else torch.cat([f, embed(fake_anchors)])
    kw = dict(kernel=kernel, tau=tau, sigma=sigma, log_z=log_z)
    def own(i, n):  # the anchors left out of sample i's own-side estimate: itself and its copies
        return {i + k * n for k in range(1 + copies)} if leave_one_out else set()

    at_real = [torch.log(density(r[i], real_set, skip=own(i, len(r)), **kw) / density(r[i], fake_set, **kw))
               for i in range(r.shape[0])]
    at_fake = [torch.log(density(f[i], real_set, **kw) / density(f[i], fake_set, skip=own(i, len(f)), **kw))
               for i in range(f.shape[0])]
    return at_real, at_fake


def reference_discriminator(real, fake, *, real_offset=None, fake_offset=None, **kw):
    """L_D of eq. (6.5): hinge on the log-ratios, one sample at a time."""
    at_real, at_fake = reference_log_ratios(real, fake, **kw)
    loss_real = sum(torch.clamp(1 - (a + (0 if real_offset is None else real_offset[i])), min=0)
                    for i, a in enumerate(at_real)) / len(at_real)
    loss_fake = sum(torch.clamp(1 + (a + (0 if fake_offset is None else fake_offset[i])), min=0)
                    for i, a in enumerate(at_fake)) / len(at_fake)
    return loss_real + loss_fake


def reference_generator(fake, real, *, fake_offset=None, **kw):
    """L_G of eq. (6.6): minus the mean log-ratio at the fake samples; the real side is data only."""
    _, at_fake = reference_log_ratios(real.detach(), fake, **kw)
    return -sum(a + (0 if fake_offset is None else fake_offset[i]) for i, a in enumerate(at_fake)) / len(at_fake)


def leaves(*shapes, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return [(scale * torch.randn(*s, generator=g, dtype=torch.float64)).requires_grad_(True) for s in shapes]


def grads(loss, tensors):
    return torch.autograd.grad(loss, tensors, allow_unused=True)


class Out:
    """A discriminator pass as Joint expects it."""

    def __init__(self, features, logits, projection=None, class_vectors=None):
        self.features, self.logits, self.projection = features, logits, projection
        self.class_vectors = class_vectors


# KDD against the reference


@pytest.mark.parametrize("kernel,tau,sigma", [("vmf", 0.5, 1.0), ("vmf", 1.0, 1.0), ("gaussian", 1.0, 0.7)])
def test_discriminator_loss_and_gradients_match_reference(kernel, tau, sigma):
    real, fake, real_extra, fake_extra, real_off, fake_off = leaves((5, 3), (4, 3), (3, 3), (2, 3), (5,), (4,), seed=1)
    kdd = KDD(kernel=kernel, tau=tau, sigma=sigma)
    inputs = [real, fake, real_extra, fake_extra, real_off, fake_off]
    loss, stats = kdd.discriminator(real, fake, real_anchors=real_extra, fake_anchors=fake_extra,
                                    real_offset=real_off, fake_offset=fake_off)
    expected = reference_discriminator(real, fake, real_anchors=real_extra, fake_anchors=fake_extra,
                                       real_offset=real_off, fake_offset=fake_off, kernel=kernel, tau=tau, sigma=sigma)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    assert stats["loss"].item() == pytest.approx(loss.item())
    for got, want in zip(grads(loss, inputs), grads(expected, inputs)):
        assert torch.allclose(got, want, atol=1e-10), (got, want)


@pytest.mark.parametrize("kernel,tau,sigma", [("vmf", 0.5, 1.0), ("gaussian", 1.0, 0.7)])
def test_generator_loss_and_gradients_match_reference(kernel, tau, sigma):
    fake, real, real_extra, fake_extra, fake_off = leaves((6, 3), (5, 3), (4, 3), (3, 3), (6,), seed=2)
    kdd = KDD(kernel=kernel, tau=tau, sigma=sigma)
    loss = kdd.generator(fake, real, real_anchors=real_extra, fake_anchors=fake_extra, fake_offset=fake_off)
    expected = reference_generator(fake, real, real_anchors=real_extra, fake_anchors=fake_extra, fake_offset=fake_off,
                                   kernel=kernel, tau=tau, sigma=sigma)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    inputs = [fake, fake_extra, fake_off]
    for got, want in zip(grads(loss, inputs), grads(expected, inputs)):
        assert torch.allclose(got, want, atol=1e-10)
    # the real features and their extra anchors only anchor p̂_r: no gradient reaches them
    assert grads(loss, [real, real_extra]) == (None, None)


def test_leave_one_out_changes_the_estimate_and_can_be_switched_off():
    real, fake = leaves((4, 3), (4, 3), seed=3)
    with_loo = KDD(tau=0.5).discriminator(real, fake)[0]
    without = KDD(tau=0.5, leave_one_out=False).discriminator(real, fake)[0]
    assert without.item() == pytest.approx(reference_discriminator(real, fake, tau=0.5, leave_one_out=False).item())
    assert abs(with_loo.item() - without.item()) > 1e-3  # the self-term exp(1/τ) matters at batch 4
    # without leave-one-out a sample's own kernel exp(‖φ‖²/τ) = e^{1/τ} is part of its own estimate
    log_p = kde_log_density(torch.eye(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64), tau=0.5)
    assert torch.allclose(log_p, torch.full((3,), math.log((math.exp(2.0) + 2) / 3), dtype=torch.float64))
    log_p = kde_log_density(torch.eye(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64), tau=0.5,
                            exclude_self=True)
    assert torch.allclose(log_p, torch.zeros(3, dtype=torch.float64))  # the other two anchors are orthogonal: e⁰


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="tau and sigma must be positive"):
        KDD(tau=0.0)
    with pytest.raises(ValueError, match="unknown kernel"):
        KDD(kernel="iq")
    with pytest.raises(ValueError, match="leave-one-out"):
        kde_log_density(torch.randn(3, 2), torch.randn(2, 2), exclude_self=True)
    with pytest.raises(ValueError, match="unknown kernel"):
        kde_log_density(torch.randn(3, 2), torch.randn(2, 2), kernel="laplace")


# numerical stability and the normaliser


def naive_log_ratio_at_fake(fake, real, tau):
    """log p̂_r/p̂_g at the fakes with exp taken directly (no leave-one-out), in the inputs' dtype."""
    f, r = torch.nn.functional.normalize(fake, dim=1), torch.nn.functional.normalize(real, dim=1)
    return torch.log(torch.exp(f @ r.T / tau).mean(1)) - torch.log(torch.exp(f @ f.T / tau).mean(1))


@pytest.mark.parametrize("tau", [0.05, 0.01])
def test_small_temperature_batch_256_is_finite_and_matches_float64(tau):
    g = torch.Generator().manual_seed(4)
    real = torch.randn(256, 128, generator=g)
    fake = (torch.randn(256, 128, generator=g) + 0.5).requires_grad_(True)
    real_for_d = real.clone().requires_grad_(True)
    kdd = KDD(tau=tau)
    d_loss, _ = kdd.discriminator(real_for_d, fake)
    g_loss = kdd.generator(fake, real)
    d_grads = torch.autograd.grad(d_loss, [real_for_d, fake])
    (g_grad,) = torch.autograd.grad(g_loss, [fake])
    for value in (d_loss, g_loss, *d_grads, g_grad):
        assert torch.isfinite(value).all()
    # the same computation in float64 agrees (log space loses nothing in float32)
    fake64 = fake.detach().double().requires_grad_(True)
    g_loss64 = kdd.generator(fake64, real.double())
    (g_grad64,) = torch.autograd.grad(g_loss64, [fake64])
    assert g_loss.item() == pytest.approx(g_loss64.item(), rel=1e-4, abs=1e-3)
    assert torch.allclose(g_grad.double(), g_grad64, rtol=1e-3, atol=1e-5)
    d_loss64 = kdd.discriminator(real.double(), fake.detach().double())[0]
    assert d_loss.item() == pytest.approx(d_loss64.item(), rel=1e-4, abs=1e-3)
    # exp taken directly: e^{1/τ} = e^{20} still fits float32 at τ = 0.05 but e^{100} does not at τ = 0.01
    naive = naive_log_ratio_at_fake(fake.detach(), real, tau)
    if tau == 0.01:
        assert not torch.isfinite(naive).all()
    else:
        assert torch.isfinite(naive).all()


def test_vmf_normaliser_cancels_in_the_ratio():
    """The true vMF density for K = 3, C₃(κ) e^{κ⟨φ,ξ⟩} with C₃(κ) = κ/(4π sinh κ), κ = 1/τ, changes nothing."""
    real, fake, real_extra = leaves((5, 3), (4, 3), (2, 3), seed=5)
    for tau in (0.25, 1.0, 3.0):
        kappa = 1 / tau
        log_z = -math.log(kappa / (4 * math.pi * math.sinh(kappa)))  # Z = 1/C₃(κ), so K = e^{κ⟨φ,ξ⟩ - log Z}
        normalised = reference_discriminator(real, fake, real_anchors=real_extra, tau=tau, log_z=log_z)
        unnormalised = reference_discriminator(real, fake, real_anchors=real_extra, tau=tau)
        workbench = KDD(tau=tau).discriminator(real, fake, real_anchors=real_extra)[0]
        assert normalised.item() == pytest.approx(workbench.item(), rel=1e-12)
        assert unnormalised.item() == pytest.approx(workbench.item(), rel=1e-12)
        g_norm = reference_generator(fake, real, tau=tau, log_z=log_z)
        assert g_norm.item() == pytest.approx(KDD(tau=tau).generator(fake, real).item(), rel=1e-12)
    # and the normalised kernel does integrate to one over the sphere S² (a check on C₃ itself)
    kappa, n = 2.0, 400
    theta = (torch.arange(n, dtype=torch.float64) + 0.5) * math.pi / n  # polar angle from the mean direction
    integral = (2 * math.pi * torch.sin(theta) * torch.exp(kappa * torch.cos(theta))).sum() * (math.pi / n)
    assert (kappa / (4 * math.pi * math.sinh(kappa)) * integral).item() == pytest.approx(1.0, rel=1e-4)


# the loss analysis of section 6.2.2


def test_linear_discriminator_hinge_gradient_is_one_constant_vector_but_kdd_is_not():
    """Eq. (6.11): with D = φᵀθ frozen, ∂L_G^hinge/∂φ(x_g) is one vector for every sample (θ, over |S_g|).

    Eq. (6.12): the KDD gradient depends on where each sample sits relative to both densities.
    """
    g = torch.Generator().manual_seed(6)
    theta = torch.randn(4, generator=g, dtype=torch.float64)
    fake_phi = torch.randn(16, 4, generator=g, dtype=torch.float64).requires_grad_(True)
    real_phi = torch.randn(16, 4, generator=g, dtype=torch.float64) + 1.0
    hinge_only = Joint(gamma=0.0, alpha=1.0)
    (g_hinge,) = torch.autograd.grad(hinge_only.generator(Out(fake_phi, fake_phi @ theta), real_phi), [fake_phi])
    assert torch.allclose(g_hinge, (-theta / 16).expand(16, 4))  # minus, since L_G = -E[D]: the step is +θ
    for kernel in ("vmf", "gaussian"):
        (g_kdd,) = torch.autograd.grad(KDD(kernel=kernel).generator(fake_phi, real_phi), [fake_phi])
        spread = (g_kdd - g_kdd.mean(0)).norm(dim=1)  # how far each sample's gradient is from the average one
        assert spread.min() > 1e-3 * g_kdd.norm(dim=1).max()


def test_kdd_attraction_is_a_softmax_weighted_mean_of_the_anchors():
    """Eq. (6.13): ∂ log p̂(ξ)/∂ξ for the vMF kernel is Σ_y softmax_y(⟨ξ, φ(y)⟩/τ) φ(y) / τ."""
    xi, anchors = leaves((3, 4), (7, 4), seed=7)
    tau = 0.3
    (grad,) = torch.autograd.grad(kde_log_density(xi, anchors, tau=tau).sum(), [xi])
    weights = torch.softmax(xi.detach() @ anchors.detach().T / tau, dim=1)  # (3, 7), a global weighting per ξ
    assert torch.allclose(grad, weights @ anchors.detach() / tau)


# L_Jac and Joint


def test_jacobian_penalty_is_zero_for_an_isometry_and_one_for_twice_it():
    """Eq. (6.17) on φ̃(x) = W x with W square orthogonal (orthonormal rows *and* columns) on 3×4×4 images."""
    torch.manual_seed(8)
    d = 48
    w, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64))
    x = torch.randn(32, 3, 4, 4, dtype=torch.float64)
    phi = lambda images: images.flatten(1) @ w.T  # (B, 48)
    assert jacobian_penalty(phi, x).item() == pytest.approx(0.0, abs=1e-9)
    assert jacobian_penalty(lambda images: 2 * phi(images), x).item() == pytest.approx(1.0, abs=1e-9)
    # orthonormal rows alone (K = 12 < d = 48) are not enough: a random direction loses the part
    # outside the row space, ‖W Δx‖ < 1, so the penalty is 1 - E‖W Δx‖ ≈ 1 - √(K/d) = 0.5
    wide = w[:12]
    penalty = jacobian_penalty(lambda images: images.flatten(1) @ wide.T, x.repeat(8, 1, 1, 1)).item()
    assert 0.4 < penalty < 0.6


def test_jacobian_penalty_gradient_reaches_the_feature_map():
    layer = torch.nn.Linear(6, 4)
    loss = jacobian_penalty(layer, torch.randn(8, 6))
    loss.backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_joint_reduces_to_hinge_and_to_kdd():
    real_phi, fake_phi, real_logits, fake_logits, real_proj, fake_proj = leaves((6, 5), (6, 5), (6,), (6,), (6,), (6,),
                                                                              seed=9)
    real, fake = Out(real_phi, real_logits, real_proj), Out(fake_phi, fake_logits, fake_proj)
    hinge = Hinge()
    loss, stats = Joint(gamma=0.0, alpha=1.0).discriminator(real, fake)
    assert loss.item() == pytest.approx(hinge.from_logits(real_logits, fake_logits).item())
    assert not any(k.startswith("kdd") for k in stats)
    g_loss = Joint(gamma=0.0, alpha=1.0).generator(fake, real_phi)
    assert g_loss.item() == pytest.approx(hinge.generator(fake_logits).item())
    kdd = KDD(tau=0.5)  # the unnormalised switch: the KDD log-ratios get the hinge logits' projection
    loss, stats = Joint(gamma=1.0, alpha=0.0, kdd=kdd, normalised_projection=False).discriminator(real, fake)
    expected = kdd.discriminator(real_phi, fake_phi, real_offset=real_proj, fake_offset=fake_proj)[0]
    assert loss.item() == pytest.approx(expected.item()) and "hinge" not in stats
    assert expected.item() == pytest.approx(reference_discriminator(real_phi, fake_phi, real_offset=real_proj,
                                                                    fake_offset=fake_proj, tau=0.5).item())
    g_loss = Joint(gamma=1.0, alpha=0.0, kdd=kdd, normalised_projection=False).generator(fake, real_phi)
    assert g_loss.item() == pytest.approx(kdd.generator(fake_phi, real_phi, fake_offset=fake_proj).item())
    both = Joint(gamma=0.5, alpha=1.0, kdd=kdd, normalised_projection=False).discriminator(real, fake)[0]
    assert both.item() == pytest.approx(0.5 * expected.item() + hinge.from_logits(real_logits, fake_logits).item())
    with pytest.raises(ValueError, match="jac_weight"):
        Joint(jac_weight=1e-5, normalised_projection=False).discriminator(real, fake)
    with_jac = Joint(gamma=0.0, jac_weight=0.5).discriminator(real, fake, jacobian=torch.tensor(2.0))[0]
    assert with_jac.item() == pytest.approx(hinge.from_logits(real_logits, fake_logits).item() + 1.0)


def test_class_projection_uses_the_normalised_features_by_default():
    """Eq. (6.16) with the thesis' D_KDE(x) = φ(x): yᵀVφ on the unit-norm φ; the hinge logits keep yᵀVφ̃."""
    real_phi, fake_phi, real_v, fake_v, real_logits, fake_logits = leaves((6, 5), (6, 5), (6, 5), (6, 5), (6,), (6,),
                                                                          seed=11)
    raw = lambda phi, v: (phi * v).sum(1)  # yᵀVφ̃ (B,)
    real = Out(3 * real_phi, real_logits, raw(3 * real_phi, real_v), real_v)  # φ̃ with norms far from 1
    fake = Out(3 * fake_phi, fake_logits, raw(3 * fake_phi, fake_v), fake_v)
    unit_rows = lambda phi: torch.stack([unit(v) for v in phi])
    kdd = KDD(tau=0.5)
    loss = Joint(gamma=1.0, alpha=0.0, kdd=kdd).discriminator(real, fake)[0]
    expected = reference_discriminator(3 * real_phi, 3 * fake_phi, real_offset=raw(unit_rows(real_phi), real_v),
                                       fake_offset=raw(unit_rows(fake_phi), fake_v), tau=0.5)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    unnormalised = Joint(gamma=1.0, alpha=0.0, kdd=kdd, normalised_projection=False).discriminator(real, fake)[0]
    assert abs(unnormalised.item() - loss.item()) > 1e-3  # the switch is a different loss
    g_loss = Joint(gamma=1.0, alpha=0.0, kdd=kdd).generator(fake, real.features)
    g_expected = reference_generator(3 * fake_phi, 3 * real_phi, fake_offset=raw(unit_rows(fake_phi), fake_v), tau=0.5)
    assert g_loss.item() == pytest.approx(g_expected.item(), rel=1e-10)
    with pytest.raises(ValueError, match="class_vectors"):  # a conditional pass without Vᵀy cannot be normalised
        Joint(gamma=1.0, alpha=0.0).discriminator(Out(real_phi, real_logits, real.projection), fake)


def test_augmented_copies_leave_the_estimate_with_their_sample():
    """DA ×N: anchors B..B(1+N)-1 are copies of the batch; sample i's own copies are near-self terms and leave its estimate."""
    n_copies = 2
    real, fake, real_extra, fake_extra = leaves((4, 3), (4, 3), (4 * n_copies, 3), (4 * n_copies, 3), seed=12)
    kdd = KDD(tau=0.5)
    loss = kdd.discriminator(real, fake, real_anchors=real_extra, fake_anchors=fake_extra, copies=n_copies)[0]
    expected = reference_discriminator(real, fake, real_anchors=real_extra, fake_anchors=fake_extra, tau=0.5,
                                       copies=n_copies)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-10)
    kept = KDD(tau=0.5, leave_copies_out=False).discriminator(real, fake, real_anchors=real_extra,
                                                              fake_anchors=fake_extra, copies=n_copies)[0]
    plain = reference_discriminator(real, fake, real_anchors=real_extra, fake_anchors=fake_extra, tau=0.5)
    assert kept.item() == pytest.approx(plain.item(), rel=1e-10) and abs(kept.item() - loss.item()) > 1e-3
    g_loss = kdd.generator(fake, real, fake_anchors=fake_extra, copies=n_copies)
    g_expected = reference_generator(fake, real, fake_anchors=fake_extra, tau=0.5, copies=n_copies)
    assert g_loss.item() == pytest.approx(g_expected.item(), rel=1e-10)
    # one query, its exact copy and one orthogonal anchor: only the orthogonal one is left, log e⁰ = 0
    q = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    anchors = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert kde_log_density(q, anchors, tau=0.5, exclude_self=True, copies=1).item() == pytest.approx(0.0)
    assert kde_log_density(q, anchors, tau=0.5, exclude_self=True).item() == pytest.approx(math.log((math.e**2 + 1) / 2))
    with pytest.raises(ValueError, match="copies"):
        kde_log_density(q, anchors[:2], tau=0.5, exclude_self=True, copies=1)  # nothing left to average


def test_thesis_tau_rule():
    from workbench.losses.kdd import thesis_tau

    assert thesis_tau(conditional=False) == 0.05 and thesis_tau(conditional=True) == 1.0  # table 6.1 / section 6.3


# the memory bank


def test_feature_bank_is_first_in_first_out():
    bank = FeatureBank(5)
    assert len(bank) == 0
    with pytest.raises(RuntimeError, match="empty"):
        bank.features()
    first = torch.arange(6.0).view(3, 2).requires_grad_(True)  # rows 0, 1, 2
    bank.push(first)
    assert len(bank) == 3 and torch.equal(bank.features(), first.detach())
    assert not bank.features().requires_grad
    bank.push(torch.arange(6.0, 12.0).view(3, 2))  # rows 3, 4, 5: row 0 falls out
    assert len(bank) == 5
    assert torch.equal(bank.features()[:, 0], torch.tensor([2.0, 4.0, 6.0, 8.0, 10.0]))  # oldest first, newest last
    bank.push(torch.full((7, 2), -1.0))  # a batch larger than the bank keeps its last 5 rows
    assert torch.equal(bank.features(), torch.full((5, 2), -1.0))
    with pytest.raises(ValueError, match="bank size"):
        FeatureBank(0)


def test_jacobian_penalty_is_one_pass_under_spectral_norm():
    """In training mode every pass of a spectral-norm layer runs a power iteration; x and x + δΔx must share one."""
    from torch.nn.utils.parametrizations import spectral_norm

    torch.manual_seed(0)
    layer = spectral_norm(torch.nn.Linear(48, 12)).train()
    x = torch.randn(16, 48)
    with torch.random.fork_rng():
        reference = jacobian_penalty(layer.eval(), x).item()  # eval: the weights are fixed
    layer.train()
    for _ in range(3):
        with torch.random.fork_rng():
            assert jacobian_penalty(layer, x).item() == pytest.approx(reference, rel=0.05)
