"""The compact StyleGAN of chapter 3: widths, shapes, style mixing, truncation, noise, classes,
the equalised learning rate, the discriminator's features (eq. 3.7's D_feat) and minibatch std."""

import math

import pytest
import torch

from workbench.nets.stylegan import (EqualConv2d, EqualLinear, MappingNetwork, StyleDiscriminator, StyleGenerator,
                                     channel_widths, mix_styles, mixing_cutoffs)
from workbench.nets.stylegan import MinibatchStd

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
TINY = dict(z_dim=8, w_dim=8, mapping_layers=2, width=4, max_width=8)  # generator options that build in milliseconds

# helpers


def generator(resolution=16, **options):
    torch.manual_seed(0)
    return StyleGenerator(resolution=resolution, **{**TINY, **options})


def with_noise(G):
    """Noise strengths start at 0 (StyleGAN); make them 1 so that the noise shows in the image."""
    for layer in G.layers:
        torch.nn.init.ones_(layer.noise_weight)
    return G


# widths


def test_channel_widths_double_per_halving_up_to_the_cap():
    assert channel_widths(32, width=8, max_width=16) == {4: 16, 8: 16, 16: 16, 32: 8}
    assert channel_widths(8, width=3, max_width=100) == {4: 6, 8: 3}
    # the paper preset at 128 px: 512 channels down to 32 px, then 256, 128 (and 512 × 8 × 8 for D_feat)
    assert channel_widths(128, width=128, max_width=512) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128}
    for bad in (4, 12, 512):
        with pytest.raises(ValueError, match="resolution"):
            channel_widths(bad, width=8, max_width=16)


# the generator


@pytest.mark.parametrize("resolution", [8, 16, 32])
@pytest.mark.parametrize("out_channels", [3, 4, 7])
def test_generator_shapes_and_style_count(resolution, out_channels):
    G = generator(resolution, out_channels=out_channels)
    levels = int(math.log2(resolution)) - 1  # 4×4 … R×R
    assert G.num_ws == 2 * levels == len(G.layers) and len(G.to_rgb) == levels
    images = G(torch.randn(3, 8))
    assert images.shape == (3, out_channels, resolution, resolution)
    assert torch.isfinite(images).all() and images.std() > 0
    ws = G.style_stack(torch.randn(2, 8))
    assert ws.shape == (2, G.num_ws, 8)
    assert G.synthesis(ws, noise="none").shape == (2, out_channels, resolution, resolution)
    with pytest.raises(ValueError, match="ws must be"):
        G.synthesis(ws[:, 1:])
    with pytest.raises(ValueError, match="noise"):
        G.synthesis(ws, noise="loud")


def test_mix_styles_takes_w_before_the_cutoff_and_w2_from_it():
    w, w2 = torch.randn(3, 5), torch.randn(3, 5)
    mixed = mix_styles(w, w2, torch.tensor([1, 4, 6]), 6)
    assert mixed.shape == (3, 6, 5)
    for b, cut in enumerate([1, 4, 6]):
        for layer in range(6):
            assert torch.equal(mixed[b, layer], w[b] if layer < cut else w2[b]), (b, layer)


def test_mixing_cutoffs_follow_the_probability():
    g = torch.Generator().manual_seed(0)
    assert torch.equal(mixing_cutoffs(200, 8, probability=0.0, generator=g), torch.full((200,), 8))
    always = mixing_cutoffs(200, 8, probability=1.0, generator=g)
    assert always.shape == (200,) and always.min() >= 1 and always.max() < 8
    assert set(always.tolist()) == set(range(1, 8))  # every crossover point occurs
    sometimes = mixing_cutoffs(2000, 8, probability=0.9, generator=g)
    assert (sometimes < 8).float().mean().item() == pytest.approx(0.9, abs=0.03)  # section 3.3: p = 0.9


def test_style_stack_mixes_two_codes_at_the_cutoff():
    G = generator().eval()
    z, z2 = torch.randn(2, 8), torch.randn(2, 8)
    ws = G.style_stack(z, mix_z=z2, cutoff=torch.tensor([2, 5]))
    w, w2 = G.styles(z), G.styles(z2)
    assert torch.allclose(ws[0, :2], w[0].expand(2, -1)) and torch.allclose(ws[0, 2:], w2[0].expand(4, -1))
    assert torch.allclose(ws[1, :5], w[1].expand(5, -1)) and torch.allclose(ws[1, 5:], w2[1].expand(1, -1))
    plain = G.style_stack(z)
    assert torch.allclose(plain, w[:, None].expand(-1, G.num_ws, -1))


def test_w_avg_moves_in_training_mode_only_and_truncation_zero_gives_it():
    G = generator()
    assert torch.equal(G.w_avg, torch.zeros(8))
    G.eval()
    G.styles(torch.randn(16, 8))
    assert torch.equal(G.w_avg, torch.zeros(8))  # evaluation: no update
    G.train()
    z = torch.randn(16, 8)
    w = G.mapping(z)
    G.styles(z)
    assert torch.allclose(G.w_avg, (1 - G.w_avg_beta) * w.mean(0))  # one lerp step from 0
    G.eval()
    avg = G.w_avg.clone()
    truncated = G.styles(torch.randn(5, 8), truncation=0.0)
    assert torch.allclose(truncated, avg.expand(5, -1))
    assert torch.equal(G.w_avg, avg)
    images = G(torch.randn(4, 8), truncation=0.0, noise="const")
    assert torch.allclose(images, images[:1].expand_as(images), atol=1e-6)  # one image for every z
    half = G.styles(z[:3], truncation=0.5)
    assert torch.allclose(half, avg + 0.5 * (G.mapping(z[:3]) - avg), atol=1e-6)


def test_const_noise_is_deterministic_and_random_noise_is_not():
    G = with_noise(generator()).eval()
    ws = G.style_stack(torch.randn(2, 8))
    assert torch.equal(G.synthesis(ws, noise="const"), G.synthesis(ws, noise="const"))
    assert not torch.allclose(G.synthesis(ws, noise="random"), G.synthesis(ws, noise="random"))
    assert not torch.allclose(G.synthesis(ws, noise="const"), G.synthesis(ws, noise="none"))
    assert torch.equal(G.synthesis(ws, noise="none"), G.synthesis(ws, noise="none"))


def test_conditional_generator_needs_labels_and_uses_them():
    G = generator(num_classes=3).eval()
    z = torch.randn(2, 8)
    with pytest.raises(ValueError, match="conditional"):
        G(z)
    a = G(z, torch.tensor([0, 0]), noise="const")
    b = G(z, torch.tensor([2, 2]), noise="const")
    assert a.shape == (2, 3, 16, 16) and not torch.allclose(a, b)
    assert torch.equal(a, G(z, torch.tensor([0, 0]), noise="const"))
    mapping = MappingNetwork(z_dim=8, w_dim=8, layers=2, num_classes=3)
    assert mapping.layers[0].weight.shape == (8, 16)  # z and the label embedding, concatenated


# equalised learning rate


@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_equal_linear_keeps_unit_variance_at_init(lr_mul):
    torch.manual_seed(0)
    layer = EqualLinear(512, 256, lr_mul=lr_mul)
    assert layer.weight.std().item() == pytest.approx(1 / lr_mul, rel=0.05)  # stored N(0, 1/lr_mul²)
    out = layer(torch.randn(512, 512))
    assert out.std().item() == pytest.approx(1.0, abs=0.15)
    biased = EqualLinear(4, 2, bias_init=1.0, lr_mul=lr_mul)
    assert torch.allclose(biased(torch.zeros(1, 4)), torch.ones(1, 2))  # the run-time bias is bias_init


def test_equal_conv_keeps_unit_variance_at_init():
    torch.manual_seed(0)
    conv = EqualConv2d(64, 32, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, rel=0.05) and torch.equal(conv.bias, torch.zeros(32))
    out = conv(torch.randn(8, 64, 20, 20))
    assert out.shape == (8, 32, 20, 20)
    assert out[..., 1:-1, 1:-1].std().item() == pytest.approx(1.0, abs=0.15)  # away from the zero padding
    assert EqualConv2d(4, 2, 1, bias=False).bias is None


# the discriminator


def test_discriminator_logits_and_features():
    torch.manual_seed(0)
    D = StyleDiscriminator(resolution=32, width=4, max_width=8)
    x = torch.rand(3, 3, 32, 32)
    logits = D(x)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    widths = channel_widths(32, width=4, max_width=8)
    assert D.features(x).shape == (3, widths[8], 8, 8)  # default: 8 × 8, the thesis' D_feat
    assert D.features(x, resolution=16).shape == (3, widths[16], 16, 16)
    assert D.features(x, resolution=4).shape == (3, widths[4], 4, 4)
    assert D.features(x, resolution=32).shape == (3, widths[32], 32, 32)
    for bad in (2, 12, 64):
        with pytest.raises(ValueError, match="features exist"):
            D.features(x, resolution=bad)
    paper = channel_widths(64, width=128, max_width=512)
    assert paper[8] == 512  # section 3.4.2: 512 × 8 × 8 features at 64 px


def test_conditional_discriminator_projection_depends_on_the_label():
    torch.manual_seed(0)
    D = StyleDiscriminator(resolution=16, width=4, max_width=8, num_classes=3)
    x = torch.rand(2, 3, 16, 16)
    a, b = D(x, torch.tensor([0, 1])), D(x, torch.tensor([2, 1]))
    assert a.shape == (2,) and not torch.allclose(a[0], b[0])
    assert torch.allclose(a[1], b[1])  # the same label for image 1: the same logit
    with pytest.raises(ValueError, match="conditional"):
        D(x)


@pytest.mark.parametrize("batch", [4, 6, 5, 1])
def test_minibatch_std_adds_one_channel_for_any_batch(batch):
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 4, 4)
    out = MinibatchStd(4)(x)
    assert out.shape == (batch, 4, 4, 4) and torch.equal(out[:, :3], x)
    stat = out[:, 3]
    assert torch.isfinite(stat).all() and (stat == stat[:, :1, :1]).all()  # one constant map per image
    g = math.gcd(4, batch)  # group size: the largest divisor of the batch up to 4
    groups = batch // g
    for i in range(batch):
        members = x[i % groups:: groups]  # images i, i + B/g, ... share a group (as in StyleGAN's reshape)
        assert len(members) == g
        expected = (members.var(0, unbiased=False) + 1e-8).sqrt().mean()
        assert stat[i, 0, 0].item() == pytest.approx(expected.item(), rel=1e-5)


def test_discriminator_accepts_odd_batches():
    torch.manual_seed(0)
    D = StyleDiscriminator(resolution=8, width=4, max_width=8, mbstd_group=4)
    assert D(torch.rand(6, 3, 8, 8)).shape == (6,) and D(torch.rand(3, 3, 8, 8)).shape == (3,)


# progressive growing (section 3.3)


def test_growing_generator_synthesises_at_the_stage_and_repeats_pixels_to_r():
    G = generator(resolution=32)
    z = torch.randn(3, 8)
    G.grow(8)
    image = G(z, noise="const")  # (3, 3, 32, 32)
    assert image.shape == (3, 3, 32, 32)
    small = torch.nn.functional.avg_pool2d(image, 4)  # (3, 3, 8, 8)
    assert torch.allclose(torch.nn.functional.interpolate(small, scale_factor=4, mode="nearest"), image, atol=1e-6)
    G.grow(32)
    assert not torch.allclose(G(z, noise="const"), image)  # the 16- and 32-px layers add detail
    with pytest.raises(ValueError, match="stage"):
        G.grow(12)


def test_growing_generator_fades_the_newest_resolution_in():
    G = generator(resolution=16)
    for rgb in G.to_rgb:
        torch.nn.init.normal_(rgb.weight)  # to-RGB outputs at every resolution, so that each one shows
    z = torch.randn(2, 8)
    G.grow(16, 0.0)
    faded_out = G(z, noise="const")
    G.grow(8)
    stage8 = torch.nn.functional.interpolate(G(z, noise="const")[..., ::2, ::2], scale_factor=2, mode="bilinear",
                                             align_corners=False)  # the 8-px image, bilinearly up as the skip sum does
    assert torch.allclose(faded_out, stage8, atol=1e-5)
    G.grow(16, 0.5)
    half = G(z, noise="const")
    G.grow(16, 1.0)
    assert torch.allclose(half, (faded_out + G(z, noise="const")) / 2, atol=1e-5)  # linear in α


def test_growing_discriminator_reads_each_stage_and_fades_from_the_one_below():
    torch.manual_seed(0)
    D = StyleDiscriminator(resolution=32, width=4, max_width=8, grow_from=8)
    assert set(D.grow_from_rgb) == {"8", "16"}
    x16 = torch.randn(4, 3, 16, 16)
    D.grow(0.0)
    at_fade0 = D(x16)  # the 16-px block faded out: D reads the pooled 8-px image
    D.grow(1.0)
    assert torch.allclose(at_fade0, D(torch.nn.functional.avg_pool2d(x16, 2)), atol=1e-5)
    assert not torch.allclose(at_fade0, D(x16))
    x32 = torch.randn(4, 3, 32, 32)
    D.grow(0.0)  # the last scale, R itself, fades in the same way
    at_r_fade0 = D(x32)
    D.grow(1.0)
    assert torch.allclose(at_r_fade0, D(torch.nn.functional.avg_pool2d(x32, 2)), atol=1e-5)
    plain = StyleDiscriminator(resolution=32, width=4, max_width=8)
    assert not any("grow_from_rgb" in key for key in plain.state_dict())  # checkpoints without growing keep their keys
    plain.load_state_dict({k: v for k, v in D.state_dict().items() if not k.startswith("grow_from_rgb.")})
    x20 = torch.randn(2, 3, 20, 20)  # not a stage (a U-Net segmenter's size): every block, as without growing
    assert all(torch.equal(a, b) for a, b in zip(D.encode(x20), plain.encode(x20)))
    with pytest.raises(ValueError, match="grow_from"):
        StyleDiscriminator(resolution=32, width=4, max_width=8, grow_from=32)


def test_rgb_init_scales_the_first_images_and_nothing_else():
    z = torch.randn(16, 8)
    full, scaled = generator(resolution=16), generator(resolution=16, rgb_init=0.1)  # the same seed
    for a, b in zip(full.to_rgb, scaled.to_rgb):
        torch.testing.assert_close(b.weight, 0.1 * a.weight)
    assert all(torch.equal(p, q) for (n, p), (_, q) in zip(full.named_parameters(), scaled.named_parameters())
               if not n.startswith("to_rgb.") or n.endswith("bias"))
    torch.testing.assert_close(scaled(z, noise="const"), 0.1 * full(z, noise="const"))  # biases start at 0


def test_rgb_init_leaves_the_layered_mask_logit_alone():
    from workbench.nets.layered import LayeredGenerator

    torch.manual_seed(0)
    full = LayeredGenerator(resolution=16, **TINY)
    torch.manual_seed(0)
    scaled = LayeredGenerator(resolution=16, rgb_init=0.1, **TINY)
    front, front_scaled = full.generators[1].to_rgb[0].weight, scaled.generators[1].to_rgb[0].weight  # (4, C, 1, 1)
    torch.testing.assert_close(front_scaled[:3], 0.1 * front[:3])
    assert torch.equal(front_scaled[3], front[3])  # the mask logit keeps StyleGAN's initial scale
