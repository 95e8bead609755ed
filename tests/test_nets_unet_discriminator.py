"""Chapter 4's U-Net discriminators (section 4.1.2, table 4.1): the StyleGAN encoder's global logit D(x),
a per-pixel realism map D_dec (eq. 4.8) and a mask channel D_seg (eq. 4.7); matched parameter counts (4.2)."""

import pytest
import torch

from workbench.nets.stylegan import StyleDiscriminator
from workbench.nets.unet_discriminator import DiscriminatorOutputs, UNetDiscriminator, matched_width, parameter_count

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
R, WIDTH, MAX_WIDTH = 16, 8, 16
FLAGS = [(True, True), (False, True), (True, False)]  # (realism, segmenter): settings (a)/(b), (c), realism only

# helpers


def build(*, realism: bool = False, segmenter: bool = False, resolution: int = R, seed: int = 0) -> UNetDiscriminator:
    torch.manual_seed(seed)
    return UNetDiscriminator(resolution=resolution, width=WIDTH, max_width=MAX_WIDTH, realism=realism,
                             segmenter=segmenter)


def images(b: int = 4, h: int = R, w: int = R, seed: int = 1) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def standard_with_encoder_of(unet: UNetDiscriminator) -> StyleDiscriminator:
    """A standard discriminator loaded with the U-Net's encoder and head (everything but the decoder)."""
    d = StyleDiscriminator(resolution=unet.resolution, width=WIDTH, max_width=MAX_WIDTH)
    state = {k: v for k, v in unet.state_dict().items() if not k.startswith(("decoder.", "to_logits."))}
    d.load_state_dict(state)  # strict: the encoder's keys are exactly the standard discriminator's
    return d


# tests


def test_without_decoder_it_is_the_standard_discriminator():
    unet = build()
    assert unet.decoder is None and unet.to_logits is None
    standard = StyleDiscriminator(resolution=R, width=WIDTH, max_width=MAX_WIDTH)
    standard.load_state_dict(unet.state_dict())  # strict: same parameter names
    assert parameter_count(unet) == parameter_count(standard)
    x = images()
    out = unet(x)
    assert isinstance(out, DiscriminatorOutputs) and out.realism is None and out.mask is None
    torch.testing.assert_close(out.logits, standard(x), rtol=0, atol=0)


@pytest.mark.parametrize("realism, segmenter", FLAGS)
def test_outputs_and_shapes(realism, segmenter):
    unet = build(realism=realism, segmenter=segmenter)
    out = unet(images())
    assert out.logits.shape == (4,)
    assert (out.realism is not None) == realism and (out.mask is not None) == segmenter
    for map_ in (out.realism, out.mask):
        if map_ is not None:
            assert map_.shape == (4, 1, R, R) and torch.isfinite(map_).all()
    if realism and segmenter:  # two distinct decoder channels
        assert not torch.allclose(out.realism, out.mask)
    # the global logit is the standard discriminator's on the same encoder weights
    torch.testing.assert_close(out.logits, standard_with_encoder_of(unet)(images()), atol=1e-5, rtol=1e-4)


def test_mask_channel_is_the_last_decoder_channel_and_mask_logits_agrees():
    unet = build(realism=True, segmenter=True)
    x = images()
    out = unet(x)
    torch.testing.assert_close(unet.mask_logits(x), out.mask, atol=1e-5, rtol=1e-4)
    assert unet.to_logits.weight.shape[0] == 2


@pytest.mark.parametrize("h, w", [(16, 16), (20, 24), (8, 12), (12, 32), (4, 4)])
def test_mask_logits_on_non_square_sizes(h, w):
    """Fully convolutional for H, W multiples of R/4 (section 4.2's inference at the training scale)."""
    unet = build(segmenter=True)
    logits = unet.mask_logits(images(2, h, w))
    assert logits.shape == (2, 1, h, w) and torch.isfinite(logits).all()


def test_mask_logits_depend_on_the_input_locally():
    unet = build(segmenter=True)
    x = images(1, 16, 24)
    y = x.clone()
    y[..., :, 20:] = -1  # change only the right edge
    diff = (unet.mask_logits(x) - unet.mask_logits(y)).abs()[0, 0]  # (16, 24)
    assert diff[:, 20:].mean() > diff[:, :4].mean()


def test_mask_logits_without_segmenter_raises():
    for unet in (build(), build(realism=True)):
        with pytest.raises(ValueError, match="segmenter"):
            unet.mask_logits(images())


def test_gradients_reach_encoder_and_decoder():
    unet = build(realism=True, segmenter=True)
    out = unet(images())
    (out.logits.mean() + out.realism.mean() + out.mask.mean()).backward()
    assert unet.from_rgb.weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in unet.to_logits.parameters())
    assert all(p.grad is not None for p in unet.decoder.parameters())


@pytest.mark.parametrize("realism, segmenter", FLAGS)
@pytest.mark.parametrize("resolution, width, max_width", [(16, 8, 16), (32, 16, 128)])
def test_matched_width_matches_the_standard_parameter_count(resolution, width, max_width, realism, segmenter):
    """Section 4.2: the U-Net discriminator has "roughly the same" parameters as the single-output one."""
    target = parameter_count(StyleDiscriminator(resolution=resolution, width=width, max_width=max_width))
    unmatched = parameter_count(UNetDiscriminator(resolution=resolution, width=width, max_width=max_width,
                                                  realism=realism, segmenter=segmenter))
    assert unmatched > 1.2 * target  # a decoder costs parameters: matching has something to do
    w, m = matched_width(resolution=resolution, width=width, max_width=max_width, realism=realism, segmenter=segmenter)
    assert w < width and m < max_width
    matched = parameter_count(UNetDiscriminator(resolution=resolution, width=w, max_width=m, realism=realism,
                                                segmenter=segmenter))
    assert abs(matched / target - 1) < 0.1, (matched, target)


def test_parameter_count_counts_only_learnable_parameters():
    layer = torch.nn.Linear(3, 2)  # 6 weights + 2 biases
    assert parameter_count(layer) == 8
    layer.bias.requires_grad_(False)
    assert parameter_count(layer) == 6
    unet = build(segmenter=True)
    assert parameter_count(unet) == sum(p.numel() for p in unet.parameters())
