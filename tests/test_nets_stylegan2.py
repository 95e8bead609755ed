"""Chapter 4's StyleGAN2 networks: modulated/demodulated convolutions, skip outputs, the residual
discriminator, the layer label, the equalised learning rate, and the R1 penalty (issue 16 section 2)."""

import math

import pytest
import torch

from workbench.nets.layered import ConditionalLayeredGenerator
from workbench.nets.stylegan import StyleDiscriminator
from workbench.nets.stylegan2 import ModulatedConv2d, StyleGAN2Generator
from workbench.nets.unet_discriminator import UNetDiscriminator


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_shapes_at_every_resolution(resolution):
    torch.manual_seed(0)
    g = StyleGAN2Generator(resolution=resolution, out_channels=4, z_dim=16, w_dim=16, mapping_layers=2, width=4,
                           max_width=16, num_classes=2)
    z, labels = torch.randn(2, 16), torch.tensor([0, 1])
    ws = g.style_stack(z, labels)
    levels = int(math.log2(resolution)) - 1  # 4 … R
    assert g.num_ws == 2 * levels  # 2 convs per level but one at 4x4, plus the last to-RGB's style
    assert ws.shape == (2, g.num_ws, 16)
    assert g.synthesis(ws).shape == (2, 4, resolution, resolution)
    for architecture in ("plain", "resnet"):
        d = UNetDiscriminator(resolution=resolution, width=4, max_width=16, realism=True, segmenter=True,
                              architecture=architecture)
        out = d(torch.randn(2, 3, resolution, resolution))
        assert out.logits.shape == (2,) and out.realism.shape == out.mask.shape == (2, 1, resolution, resolution)


def test_orig_architecture_has_one_to_rgb_at_the_last_resolution():
    """StyleGAN2's no-skip ablation: the same convolutions and styles, one to-RGB(A), a different image."""
    options = dict(resolution=32, out_channels=4, z_dim=16, w_dim=16, mapping_layers=2, width=4, max_width=16)
    torch.manual_seed(0)
    skip = StyleGAN2Generator(**options)
    torch.manual_seed(0)
    orig = StyleGAN2Generator(**options, architecture="orig")
    assert len(skip.to_rgb) == 4 and len(orig.to_rgb) == 1 and orig.num_ws == skip.num_ws
    assert orig.to_rgb[0].conv.weight.shape[1] == skip.widths[32]  # the last resolution's channels
    state = {k.replace("to_rgb.3.", "to_rgb.0."): v for k, v in skip.state_dict().items()
             if not k.startswith(("to_rgb.0.", "to_rgb.1.", "to_rgb.2."))}
    orig.load_state_dict(state)  # skip's weights, its last to-RGB(A) only
    ws = skip.style_stack(torch.randn(3, 16))
    image = orig.synthesis(ws, noise="none")  # (3, 4, 32, 32)
    assert image.shape == (3, 4, 32, 32) and not torch.allclose(image, skip.synthesis(ws, noise="none"))
    with torch.no_grad():
        for to_rgb in skip.to_rgb[:-1]:  # silence the lower resolutions' outputs: skip becomes orig
            to_rgb.conv.weight.zero_(), to_rgb.bias.zero_()
    torch.testing.assert_close(image, skip.synthesis(ws, noise="none"))
    with pytest.raises(ValueError, match="architecture"):
        StyleGAN2Generator(**options, architecture="resnet")


def test_demodulation_keeps_unit_output_variance_at_init():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 64, 3, w_dim=32)
    x = torch.randn(8, 64, 16, 16)
    w = torch.randn(8, 32)
    with torch.no_grad():
        y = conv(x, w)[:, :, 1:-1, 1:-1]  # away from the zero padding
        plain = ModulatedConv2d(64, 64, 3, w_dim=32, demodulate=False)
        plain.load_state_dict(conv.state_dict())
        scaled = plain(x, 3 * w)  # without demodulation the output follows the style's scale
    assert abs(float(y.var()) - 1.0) < 0.1
    assert float(scaled.var()) > 1.5
    # demodulated outputs do not change when a style scales every input channel alike
    with torch.no_grad():
        conv.affine.bias.zero_()
        torch.testing.assert_close(conv(x, w), conv(x, 2 * w), rtol=1e-4, atol=1e-5)


def test_modulated_conv_equals_a_per_sample_convolution():
    torch.manual_seed(1)
    conv = ModulatedConv2d(5, 7, 3, w_dim=6, up=True)
    x, w = torch.randn(3, 5, 4, 4), torch.randn(3, 6)
    weight = conv.modulated_weight(w)  # (3, 7, 5, 3, 3)
    up = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    expected = torch.stack([torch.nn.functional.conv2d(up[i:i + 1], weight[i], padding=1)[0] for i in range(3)])
    torch.testing.assert_close(conv(x, w), expected, rtol=1e-5, atol=1e-5)


def test_the_layer_label_changes_the_output():
    torch.manual_seed(0)
    g = ConditionalLayeredGenerator(resolution=32, z_dim=16, w_dim=16, mapping_layers=2, width=4, max_width=16).eval()
    assert isinstance(g.generator, StyleGAN2Generator)
    with torch.no_grad():
        out = g(torch.randn(2, 16), noise="const")
    assert (out.background - out.foreground).abs().mean() > 1e-3


def test_equalised_learning_rate():
    """Weights are stored N(0, 1) and scaled by 1/sqrt(fan_in) at run time; the mapping network at lr_mul 0.01."""
    torch.manual_seed(0)
    g = StyleGAN2Generator(resolution=32, z_dim=64, w_dim=64, mapping_layers=2, width=32, max_width=64)
    conv = g.layers[1].conv
    assert abs(float(conv.weight.detach().std()) - 1.0) < 0.05
    assert conv.scale == pytest.approx(1 / math.sqrt(conv.weight.shape[1] * 9))
    mapping = g.mapping.layers[0]
    assert mapping.lr_mul == 0.01 and abs(float(mapping.weight.std()) - 100.0) < 5.0  # N(0, 1/lr_mul²)
    assert conv.affine.bias.detach().eq(1.0).all()  # styles start at 1


def test_residual_discriminator_adds_a_projection_and_keeps_the_plain_keys():
    plain = StyleDiscriminator(resolution=32, width=8, max_width=32)
    resnet = StyleDiscriminator(resolution=32, width=8, max_width=32, architecture="resnet")
    extra = set(resnet.state_dict()) - set(plain.state_dict())
    assert extra and all(key.endswith(".2.weight") for key in extra)  # one 1x1 projection per block
    assert set(plain.state_dict()) <= set(resnet.state_dict())
    with pytest.raises(ValueError):
        StyleDiscriminator(resolution=32, architecture="skip")


def test_r1_penalty_matches_a_float64_reference():
    """E‖∇ₓD(x)‖² as the layered GAN computes it, against the same in float64."""
    from workbench.methods.layered import PRESETS, LayeredGAN

    torch.manual_seed(0)
    gan = LayeredGAN(PRESETS["smoke"], device="cpu")
    d = gan.discriminator
    real = torch.rand(3, 3, 16, 16) * 2 - 1
    penalties = []
    for dtype in (torch.float32, torch.float64):
        x = real.to(dtype).requires_grad_(True)
        model = d.to(dtype)
        out = model(x)
        stats: dict = {}
        penalties.append(gan.r1_penalty(x, out, stats))
    d.float()
    torch.testing.assert_close(penalties[0].double(), penalties[1], rtol=1e-4, atol=1e-7)
    assert penalties[1] > 0


def test_r1_penalty_is_the_weighted_mean_squared_gradient_norm():
    """r1_penalty against the formula of eq. (4.6)/(4.8) written out in float64: λ·mean_b ‖∇ₓΣD(x)‖²_b
    + λ_dec·mean_b ‖∇ₓΣ mean D_dec(x)‖²_b, the gradient checked by central differences; the StyleGAN2
    reading halves both weights."""
    from dataclasses import replace

    from workbench.methods.layered import PRESETS, LayeredGAN

    torch.manual_seed(0)
    config = replace(PRESETS["smoke"], setting="a", r1_weight=0.1, r1_dec_weight=0.3)
    gan = LayeredGAN(config, device="cpu")
    d = gan.discriminator.double()
    x = torch.rand(4, 3, 16, 16, dtype=torch.float64) * 2 - 1
    scalars = {"r1": lambda inp: d(inp).logits.sum(), "r1_dec": lambda inp: d(inp).realism.mean(dim=(1, 2, 3)).sum()}
    g = torch.Generator().manual_seed(1)
    expected = {}
    for name, scalar in scalars.items():
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(scalar(xg), xg)  # (4, 3, 16, 16)
        with torch.no_grad():
            for _ in range(2):  # the gradient along random directions, by central differences
                v = torch.randn(x.shape, generator=g, dtype=torch.float64)
                numeric = (scalar(x + 1e-6 * v) - scalar(x - 1e-6 * v)) / 2e-6
                assert abs(float(numeric - (grad * v).sum())) < 1e-5 * max(1.0, abs(float(numeric)))
        expected[name] = grad.flatten(1).square().sum(1).mean()  # mean over images of the squared norm
    reference = 0.1 * expected["r1"] + 0.3 * expected["r1_dec"]
    assert expected["r1"] > 0 and expected["r1_dec"] > 0
    for reading, factor in (("thesis", 1.0), ("stylegan2", 0.5)):
        gan.config = replace(config, r1_reading=reading)
        xg = x.clone().requires_grad_(True)
        stats: dict = {}
        penalty = gan.r1_penalty(xg, d(xg), stats)
        torch.testing.assert_close(penalty, factor * reference, rtol=1e-10, atol=0)
        torch.testing.assert_close(stats["r1"], expected["r1"], rtol=1e-10, atol=0)
