"""Adversarial losses against values computed by hand on tiny inputs.

A linear discriminator D(x) = w·x + b has ∇ₓD = w everywhere, so its gradient penalties are
known in closed form: R1 = ‖w‖², WGAN-GP = (‖w‖ - 1)² for any interpolate.
"""

import math

import pytest
import torch

from workbench.losses import ADVERSARIAL_LOSSES, WGANGP, Hinge, NonSaturatingR1


class Linear(torch.nn.Module):
    """D(x) = w·x + b per sample, for x of shape (B, 1, 1, 2)."""

    def __init__(self, w=(3.0, 4.0), b=0.0):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(w))
        self.b = torch.nn.Parameter(torch.tensor(b))

    def forward(self, x):
        return (x.flatten(1) * self.w).sum(1) + self.b  # (B,)


def images(*rows):
    return torch.tensor(rows, dtype=torch.float32).view(len(rows), 1, 1, 2)  # (B, 1, 1, 2)


def test_hinge_values():
    D = lambda x: x.flatten(1).sum(1)  # the logit is the sum of the two pixels
    real, fake = images((2.0, 0.0), (0.25, 0.25)), images((-2.0, 0.0), (0.5, 0.0))
    loss, stats = Hinge().discriminator(D, real, fake)
    # real logits (2, 0.5): mean(relu(1 - l)) = (0 + 0.5) / 2; fake (-2, 0.5): mean(relu(1 + l)) = (0 + 1.5) / 2
    assert loss.item() == pytest.approx(0.25 + 0.75)
    assert stats["real"].item() == pytest.approx(1.25) and stats["fake"].item() == pytest.approx(-0.75)
    assert Hinge().generator(torch.tensor([-2.0, 0.5])).item() == pytest.approx(0.75)
    assert Hinge(margin=0.0).from_logits(torch.tensor([1.0]), torch.tensor([-1.0])).item() == 0.0


def test_nonsaturating_r1_values_and_gradients():
    D = Linear()
    real = images((4.0, -3.0), (-4.0, 3.0))  # logits 0 and 0
    fake = images((0.0, 0.0), (0.0, 0.0)).requires_grad_(True)  # logits 0
    loss_fn = NonSaturatingR1(r1_weight=0.1)
    loss, stats = loss_fn.discriminator(D, real, fake)
    # softplus(0) + softplus(0) + λ‖w‖² = 2 ln 2 + 0.1 · 25
    assert loss.item() == pytest.approx(2 * math.log(2) + 2.5, rel=1e-6)
    assert stats["r1"].item() == pytest.approx(25.0)
    loss.backward()
    # dL/dw = σ(0)·mean(x_fake) - σ(0)·mean(x_real) + 2λw = 0 - 0 + 0.2·w (the R1 term needs double backward)
    assert torch.allclose(D.w.grad, 0.2 * torch.tensor([3.0, 4.0]), atol=1e-6)
    assert fake.grad is None  # the discriminator loss never reaches the generator
    logits = torch.tensor([0.0, 2.0])
    expected = (math.log(2) + math.log1p(math.exp(-2.0))) / 2  # softplus(-l)
    assert loss_fn.generator(logits).item() == pytest.approx(expected, rel=1e-6)
    no_r1, stats = NonSaturatingR1(r1_weight=0.0).discriminator(D, real, fake)
    assert no_r1.item() == pytest.approx(2 * math.log(2)) and "r1" not in stats


def test_wgan_gp_values_for_a_linear_critic():
    D = Linear(b=1.0)
    real = images((0.0, 0.0), (0.0, 0.5))  # logits 1 and 3
    fake = images((-2.0 / 3, 0.0), (-1.0 / 3, 0.0))  # logits -1 and 0
    loss, stats = WGANGP(gp_weight=10.0, drift=0.001).discriminator(D, real, fake)
    # E[D(fake)] - E[D(real)] = -0.5 - 2; drift E[D(real)²] = 5; GP = (‖w‖ - 1)² = 16 for every interpolate
    assert stats["gp"].item() == pytest.approx(16.0, rel=1e-6)
    assert stats["drift"].item() == pytest.approx(5.0)
    assert loss.item() == pytest.approx(-2.5 + 0.001 * 5 + 10 * 16, rel=1e-6)
    loss.backward()
    # d/dw: mean(x_fake) - mean(x_real) + ε·2·mean(D(x_real)·x_real) + λ·2(‖w‖ - 1)·w/‖w‖
    w = torch.tensor([3.0, 4.0])
    expected = (torch.tensor([-0.5, 0.0]) - torch.tensor([0.0, 0.25]) + 0.001 * 2 * torch.tensor([0.0, 0.75])
                + 10 * 2 * (5 - 1) * w / 5)
    assert torch.allclose(D.w.grad, expected, atol=1e-5)
    assert WGANGP().generator(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_wgan_gp_interpolates_real_and_fake():
    D = lambda x: 0.5 * x.flatten(1).square().sum(1)  # ∇D(x) = x, so the penalty sees the interpolate itself
    real, fake = images((1.0, 2.0), (0.0, 3.0)), images((-1.0, 0.0), (2.0, 2.0))
    torch.manual_seed(3)
    alpha = torch.rand(2, 1, 1, 1)
    mixed = alpha * real + (1 - alpha) * fake
    expected = (mixed.flatten(1).norm(dim=1) - 1).square().mean()
    torch.manual_seed(3)
    assert WGANGP().gradient_penalty(D, real, fake).item() == pytest.approx(expected.item(), rel=1e-6)


def test_registry_names_every_loss():
    assert ADVERSARIAL_LOSSES == {"hinge": Hinge, "nonsaturating-r1": NonSaturatingR1, "wgan-gp": WGANGP}
