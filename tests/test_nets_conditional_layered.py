"""Chapter 4's conditional layered generator (section 4.1.1, 4.2): one StyleGAN G(z, y) with 4 outputs,
run with y = 0 (background) and y = 1 (foreground + mask) on the same z, style mixing shared by both."""

import pytest
import torch

from workbench.nets.layered import BACKGROUND, FOREGROUND, ConditionalLayeredGenerator, LayeredGenerator, Layers
from workbench.nets.unet_discriminator import parameter_count

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
OPTIONS = dict(resolution=16, z_dim=16, w_dim=16, mapping_layers=2, width=8, max_width=16)
R = OPTIONS["resolution"]

# helpers


def build(seed: int = 0) -> ConditionalLayeredGenerator:
    torch.manual_seed(seed)
    return ConditionalLayeredGenerator(**OPTIONS)


def codes(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, OPTIONS["z_dim"], generator=torch.Generator().manual_seed(seed))


def switch_rows(ws: torch.Tensor) -> torch.Tensor:
    """(B,) first row of each (B, L, w_dim) stack that differs from row 0 (L when none does)."""
    differs = (ws - ws[:, :1]).abs().amax(dim=2) > 0  # (B, L)
    first = differs.float().argmax(dim=1)
    return torch.where(differs.any(dim=1), first, torch.full_like(first, ws.shape[1]))


# tests


def test_shapes_and_mask_range():
    g = build()
    out = g(codes(3))
    assert isinstance(out, Layers)
    assert out.background.shape == (3, 3, R, R) and out.foreground.shape == (3, 3, R, R)
    assert out.mask.shape == (3, 1, R, R)
    assert 0 <= out.mask.min() and out.mask.max() <= 1
    assert g.num_classes == 2 and g.num_ws == 2 * g.generator.num_ws
    assert g.generator.out_channels == 4 and (BACKGROUND, FOREGROUND) == (0, 1)


def test_half_the_parameters_of_two_generators():
    """Section 4.2: one conditional generator "reduces the generator model size by half"."""
    torch.manual_seed(0)
    ratio = parameter_count(ConditionalLayeredGenerator(network="stylegan", **OPTIONS)) / parameter_count(LayeredGenerator(**OPTIONS))
    assert 0.45 < ratio < 0.55, ratio


def test_labels_matter_and_same_z_is_deterministic_in_eval():
    g = build().eval()
    z = codes(2)
    with torch.no_grad():
        first, second = g(z, noise="const"), g(z, noise="const")
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (first.background - first.foreground).abs().mean() > 1e-3  # y = 0 and y = 1 paint different layers
    ws = g.style_stack(z)  # (B, 2L, w_dim): background rows then foreground rows
    n = g.generator.num_ws
    assert not torch.allclose(ws[:, :n], ws[:, n:])


def test_background_is_the_label_zero_call_and_foreground_the_label_one_call():
    g = build().eval()
    z = codes(2)
    with torch.no_grad():
        out = g(z, noise="const")
        zero = g.generator(z, torch.zeros(2, dtype=torch.long), noise="const")  # (B, 4, R, R)
        one = g.generator(z, torch.ones(2, dtype=torch.long), noise="const")
    torch.testing.assert_close(out.background, zero[:, :3], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.foreground, one[:, :3], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out.mask, torch.sigmoid(one[:, 3:]), atol=1e-5, rtol=1e-4)


def test_synthesis_of_the_style_stack_is_forward():
    g = build().eval()
    z = codes(2)
    with torch.no_grad():
        direct = g(z, noise="const", truncation=0.7)
        staged = g.synthesis(g.style_stack(z, truncation=0.7), noise="const")
    for a, b in zip(direct, staged):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_mean_styles():
    g = build()
    g(codes(4))  # a training-mode call moves w_avg away from zero
    mean = g.mean_styles()
    assert mean.shape == (g.num_ws, OPTIONS["w_dim"])
    assert g.generator.w_avg.abs().sum() > 0
    torch.testing.assert_close(mean, g.generator.w_avg.expand(g.num_ws, -1))
    with torch.no_grad():
        images = g.synthesis(mean[None].expand(2, -1, -1), noise="const")
    torch.testing.assert_close(images.mask[0], images.mask[1])


def test_mixing_shares_z2_and_the_cutoff_between_both_halves():
    g = build().eval()
    z = codes(16)
    n = g.generator.num_ws
    torch.manual_seed(5)
    ws = g.style_stack(z, mixing=1.0)  # (B, 2n, w_dim)
    background, foreground = ws[:, :n], ws[:, n:]
    cut_b, cut_f = switch_rows(background), switch_rows(foreground)
    assert torch.equal(cut_b, cut_f)  # the same crossover layer for both labels
    assert ((cut_b >= 1) & (cut_b < n)).all()  # mixing = 1: every sample mixes
    assert len(set(cut_b.tolist())) > 1  # the crossover is drawn per sample
    torch.manual_seed(5)
    z2 = torch.randn_like(z)  # the second code the call drew first
    plain = g.style_stack(z2)
    for i, cut in enumerate(cut_b.tolist()):  # rows from the cutoff on come from the same z₂, with each label
        torch.testing.assert_close(background[i, cut:], plain[i, cut:n], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(foreground[i, cut:], plain[i, n + cut:], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(background[i, :cut], g.style_stack(z[i:i + 1])[0, :cut], atol=1e-6, rtol=1e-5)


def test_no_mixing_gives_one_style_per_label():
    g = build().eval()
    ws = g.style_stack(codes(3), mixing=0.0)
    n = g.generator.num_ws
    assert (switch_rows(ws[:, :n]) == n).all() and (switch_rows(ws[:, n:]) == n).all()


def test_labels_and_wrong_style_shapes_raise():
    g = build()
    with pytest.raises(ValueError, match="labels"):
        g(codes(2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="style rows"):
        g.synthesis(torch.zeros(2, g.generator.num_ws, OPTIONS["w_dim"]))  # one label's rows only
    with pytest.raises(ValueError):
        g.synthesis(torch.zeros(2, g.num_ws, OPTIONS["w_dim"] + 1))


def test_gradients_reach_the_shared_generator_from_both_layers():
    g = build()
    out = g(codes(2), mixing=0.9)
    out.background.mean().backward()
    from_background = g.generator.const.grad.clone()
    g.zero_grad()
    out = g(codes(2), mixing=0.9)
    (out.foreground.mean() + out.mask.mean()).backward()
    assert from_background.abs().sum() > 0 and g.generator.const.grad.abs().sum() > 0


@pytest.mark.parametrize("network", ["stylegan2", "stylegan"])
def test_rgb_init_scales_the_colours_of_both_layers_and_leaves_the_mask_logit(network):
    z = codes(8)
    torch.manual_seed(0)
    full = ConditionalLayeredGenerator(network=network, **OPTIONS).eval()
    torch.manual_seed(0)
    scaled = ConditionalLayeredGenerator(network=network, rgb_init=0.3, **OPTIONS).eval()
    for a, b in zip(full.generator.to_rgb, scaled.generator.to_rgb):
        a, b = getattr(a, "conv", a).weight, getattr(b, "conv", b).weight  # (4, C, 1, 1)
        torch.testing.assert_close(b[:3], 0.3 * a[:3])
        assert torch.equal(b[3], a[3])  # the mask logit keeps the network's initial scale
    with torch.no_grad():
        plain, small = full(z, noise="const"), scaled(z, noise="const")
    torch.testing.assert_close(small.background, 0.3 * plain.background)  # the to-RGB biases start at 0
    torch.testing.assert_close(small.foreground, 0.3 * plain.foreground)
    torch.testing.assert_close(small.mask, plain.mask)
