"""The BigGAN-style 32 px networks of KDD GAN: shapes, spectral norm, the class projection (eq. 6.16)."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from workbench.nets.gan32 import Discriminator, DiscriminatorOutput, Generator


@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_shapes_and_range(resolution):
    torch.manual_seed(0)
    G = Generator(resolution=resolution, z_dim=8, width=2)
    D = Discriminator(resolution=resolution, width=2, feature_dim=16)
    images = G(torch.randn(3, 8))
    assert images.shape == (3, 3, resolution, resolution)
    assert images.min() >= 0 and images.max() <= 1 and images.std() > 0
    out = D(images)
    assert isinstance(out, DiscriminatorOutput) and out.projection is None
    assert out.features.shape == (3, 16) and out.logits.shape == (3,)


def test_paper_width_layout():
    G, D = Generator(), Discriminator()
    assert len(G.blocks) == 3 and G.linear.out_features == 256 * 16  # 4×4×256, three up-blocks (BigGAN ch=64)
    assert len(D.blocks) == 4 and [b.downsample for b in D.blocks] == [True, True, False, False]
    assert D.feature_dim == 128 and D.to_features.in_features == 256
    assert Discriminator(width=2, feature_dim=None).feature_dim == 8  # φ = the pooled features themselves


def test_spectral_norm_everywhere_in_d_and_on_g_weights():
    D = Discriminator(width=2, num_classes=3)
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert len(layers) == 4 * 2 + 2 + 3  # 2 convs per block, 2 shortcuts (the down-blocks), φ, head, V
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    G = Generator(width=2, num_classes=3, shared_dim=4)
    convs = [m for m in G.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert convs and all(parametrize.is_parametrized(m, "weight") for m in convs)
    assert not parametrize.is_parametrized(G.shared, "weight")  # BigGAN's shared embedding is plain
    # the normalised weight has spectral norm 1 (after a few power iterations)
    head = D.to_features
    for _ in range(30):
        head(torch.randn(1, 8))
    assert torch.linalg.matrix_norm(head.weight.detach(), ord=2) == pytest.approx(1.0, abs=0.02)


def test_projection_is_y_v_phi():
    torch.manual_seed(0)
    D = Discriminator(width=2, feature_dim=8, num_classes=5).eval()  # eval: no power iteration between calls
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 3, 3, 4])
    out = D(x, y)
    V = D.embed.weight  # (C, K), spectrally normalised
    assert torch.allclose(out.projection, (V[y] * out.features).sum(1), atol=1e-6)
    assert torch.allclose(out.class_vectors, V[y], atol=1e-6)  # Vᵀy, for the KDD's yᵀVφ on normalised φ
    assert torch.allclose(D.features_of_input(D.to_input(x)), out.features)  # φ on D's input space [−1, 1]
    assert torch.allclose(out.logits, D.head(out.features).squeeze(1) + out.projection, atol=1e-6)
    other = D(x, torch.tensor([1, 1, 2, 0]))
    assert torch.equal(other.features, out.features)  # labels enter only through the projection
    assert torch.allclose(out.logits - other.logits, out.projection - other.projection, atol=1e-6)
    assert not torch.allclose(out.logits, other.logits)


def test_conditional_generator_and_label_checks():
    torch.manual_seed(0)
    G = Generator(resolution=16, z_dim=8, width=2, num_classes=3, shared_dim=4)
    for block in G.blocks:
        nn.init.normal_(block.bn1.gain.parametrizations.weight.original, 0, 1)  # make classes visibly different
    z = torch.randn(2, 8)
    a, b = G(z, torch.tensor([0, 0])), G(z, torch.tensor([2, 2]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="conditional"):
        G(z)
    with pytest.raises(ValueError, match="shape"):
        G(z, torch.tensor([0]))
    with pytest.raises(ValueError, match="unconditional"):
        Generator(resolution=16, z_dim=8, width=2)(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="unconditional"):
        Discriminator(resolution=16, width=2)(torch.rand(2, 3, 16, 16), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="resolution"):
        Discriminator(resolution=48)


def test_features_have_input_gradients():
    D = Discriminator(resolution=16, width=2, feature_dim=4)
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    D.features(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
