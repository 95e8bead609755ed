"""CutMix boxes for the U-Net discriminator (setting (b) of table 4.1) and section 4.2's inference at the
training scale: resize the shorter side to the training resolution, reflect-pad for the skips, map back."""

import pytest
import torch
import torch.nn.functional as F

from workbench.ops.augment import cutmix_masks
from workbench.ops.rescale import segment_at_scale

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

# helpers


def ramp(b: int, h: int, w: int) -> torch.Tensor:
    """Smooth images (B, 3, H, W) in [0, 1]: a diagonal ramp per image, which resampling keeps close to itself."""
    y = torch.linspace(0, 1, h).view(1, h, 1)
    x = torch.linspace(0, 1, w).view(1, 1, w)
    scale = torch.linspace(0.5, 1, b).view(b, 1, 1, 1)
    return (scale * (0.6 * y + 0.4 * x)[None].expand(b, 3, h, w)).contiguous()


class Recorder:
    """An identity-like segment function: returns the first channel; remembers what it was given."""

    def __init__(self, multiple: int):
        self.multiple, self.inputs = multiple, []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % self.multiple == 0 and x.shape[-1] % self.multiple == 0, tuple(x.shape)
        self.inputs.append(x.clone())
        return x[:, :1]


# cutmix


def test_cutmix_masks_are_binary_rectangles():
    masks = cutmix_masks(64, 20, flip=False, generator=torch.Generator().manual_seed(0))
    assert masks.shape == (64, 1, 20, 20) and masks.dtype == torch.float32
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    nonempty = 0
    for m in masks[:, 0].bool():
        if not m.any():
            continue
        nonempty += 1
        rows, cols = m.any(dim=1).nonzero()[:, 0], m.any(dim=0).nonzero()[:, 0]
        box = torch.zeros_like(m)
        box[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1] = True
        assert torch.equal(m, box)  # one filled axis-aligned box, no holes
    assert nonempty > 50
    assert len({int(m.sum()) for m in masks}) > 20  # box sizes vary


def test_flipped_cutmix_masks_are_a_box_or_its_complement():
    """U-Net GAN inverts half of the masks: the same draws give the box or its complement."""
    plain = cutmix_masks(64, 20, flip=False, generator=torch.Generator().manual_seed(0))
    flipped = cutmix_masks(64, 20, generator=torch.Generator().manual_seed(0))
    same = (flipped == plain).flatten(1).all(1)
    inverted = (flipped == 1 - plain).flatten(1).all(1)
    assert bool((same | inverted).all()) and 10 < int(inverted.sum()) < 54


def test_cutmix_masks_reproducible_with_a_generator():
    a = cutmix_masks(8, 16, generator=torch.Generator().manual_seed(3))
    b = cutmix_masks(8, 16, generator=torch.Generator().manual_seed(3))
    c = cutmix_masks(8, 16, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_cutmix_area_share():
    """λ ~ U(0, 1) with the box clipped at the border: E[area] = E[(√λ - λ/4)²] = 1/2 - 1/5 + 1/48 ≈ 0.32."""
    masks = cutmix_masks(4000, 32, flip=False, generator=torch.Generator().manual_seed(0))
    area = masks.mean(dim=(1, 2, 3))
    assert 0.29 < area.mean() < 0.35, area.mean()
    assert area.min() < 0.05 and area.max() > 0.9
    flipped = cutmix_masks(4000, 32, generator=torch.Generator().manual_seed(0)).mean(dim=(1, 2, 3))
    assert 0.47 < flipped.mean() < 0.53, flipped.mean()  # real and fake halves on average


def test_cutmix_device_argument():
    masks = cutmix_masks(2, 8, device="cpu", generator=torch.Generator().manual_seed(0))
    assert masks.device.type == "cpu"


# segment at scale


def test_identity_at_training_size_is_exact():
    x = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    seg = Recorder(4)
    out = segment_at_scale(seg, x, resolution=16, multiple=4, batch_size=2)
    torch.testing.assert_close(out, x[:, :1], rtol=0, atol=0)
    assert [t.shape[0] for t in seg.inputs] == [2, 2, 1]  # batch_size images per call
    assert all(t.shape[-2:] == (16, 16) for t in seg.inputs)  # nothing resized or padded


@pytest.mark.parametrize("h, w", [(20, 36), (36, 20), (40, 40), (8, 12), (6, 10), (33, 17)])
def test_identity_like_segment_returns_the_resized_input(h, w):
    x = ramp(3, h, w)
    seg = Recorder(8)
    out = segment_at_scale(seg, x, resolution=16, multiple=8)
    assert out.shape == (3, 1, h, w)
    seen = seg.inputs[0]
    short = min(seen.shape[-2:])  # the shorter side is the training resolution (before padding to a multiple)
    assert 16 <= short < 16 + 8
    assert abs((error := (out - x[:, :1]).abs()).mean()) < 0.02 and error.max() < 0.12, error.max()


def test_padding_is_a_reflection():
    x = ramp(1, 16, 21)  # resized size (16, 21); padded on the right to 24 by reflection
    x = x + 0.1 * torch.rand(x.shape, generator=torch.Generator().manual_seed(0))  # break the ramp's symmetry
    seg = Recorder(8)
    out = segment_at_scale(seg, x, resolution=16, multiple=8)
    seen = seg.inputs[0]
    assert seen.shape[-2:] == (16, 24)
    torch.testing.assert_close(seen[..., :21], x)
    torch.testing.assert_close(seen[..., 21:], x[..., [19, 18, 17]])  # columns 21, 22, 23 mirror 19, 18, 17
    torch.testing.assert_close(out, x[:, :1])  # the padding is cropped away


def test_small_images_are_upsampled_and_padded():
    x = ramp(2, 5, 7)
    seg = Recorder(16)
    out = segment_at_scale(seg, x, resolution=16, multiple=16)
    assert out.shape == (2, 1, 5, 7)
    assert seg.inputs[0].shape[-2:] == (16, 32)  # (16, 22) padded to multiples of 16
    assert (out - x[:, :1]).abs().max() < 0.1


def test_a_pad_larger_than_the_side_still_works():
    x = ramp(1, 4, 5)
    seg = Recorder(8)  # resized to (4, 5), padded to (8, 8): more than reflection allows
    out = segment_at_scale(seg, x, resolution=4, multiple=8)
    assert seg.inputs[0].shape[-2:] == (8, 8)
    torch.testing.assert_close(out, x[:, :1])


def test_a_larger_image_is_seen_at_the_training_scale():
    """Section 4.2: a 2× larger image is resized back, so the network sees (about) the original picture."""
    x = torch.rand(1, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    x = F.interpolate(x, size=(16, 24), mode="bilinear", align_corners=False)  # smooth content at the training scale
    big = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)  # (1, 3, 32, 48)
    seg = Recorder(4)
    out = segment_at_scale(seg, big, resolution=16, multiple=4)
    seen = seg.inputs[0]
    assert seen.shape[-2:] == (16, 24) and out.shape == (1, 1, 32, 48)
    assert (seen - x).abs().mean() < 0.25 * (x - x.mean()).abs().mean()  # a blur of x, not another crop
