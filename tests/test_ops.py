"""Movability operators against hand-computed values."""

import pytest
import torch

from workbench.ops import (
    DiffAugment,
    binarization_loss,
    contrast_jitter,
    copy_paste,
    inpainting_mask,
    layered_composite,
    mask_union,
    move_composite,
    pool_mask,
    random_offsets,
    resize_random_crop,
    size_loss,
    translate,
)


def grid(h=3, w=3):
    return torch.arange(h * w, dtype=torch.float32).view(1, 1, h, w)  # (1, 1, H, W)


# translate


def test_translate_hand_values():
    x = grid()  # [[0,1,2],[3,4,5],[6,7,8]]
    down_left = translate(x, (1, -1))
    assert down_left[0, 0].tolist() == [[0, 0, 0], [1, 2, 0], [4, 5, 0]]
    up_right = translate(x, (-1, 2))
    assert up_right[0, 0].tolist() == [[0, 0, 3], [0, 0, 6], [0, 0, 0]]
    assert torch.equal(translate(x, (0, 0)), x)
    assert translate(x, (3, 0)).abs().sum() == 0  # shifted out entirely


def test_translate_per_image_offsets_match_single_shifts():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 5, 6)
    offsets = torch.tensor([[0, 0], [1, 2], [-2, 1], [3, -4]])
    batched = translate(x, offsets)
    for b in range(4):
        assert torch.equal(batched[b : b + 1], translate(x[b : b + 1], tuple(offsets[b].tolist())))


def test_translate_is_differentiable_in_content():
    x = torch.rand(2, 1, 4, 4, requires_grad=True)
    translate(x, torch.tensor([[1, 0], [0, -1]])).sum().backward()
    # pixels that move out of the frame get no gradient: last row for image 0, first column for image 1
    assert x.grad[0, 0, 3].abs().sum() == 0 and x.grad[0, 0, :3].eq(1).all()
    assert x.grad[1, 0, :, 0].abs().sum() == 0 and x.grad[1, 0, :, 1:].eq(1).all()


def test_translate_rejects_bad_offsets():
    with pytest.raises(ValueError, match="offset must have shape"):
        translate(torch.zeros(2, 1, 3, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        translate(torch.zeros(1, 3, 3), (0, 1))  # a single image without its batch axis


def test_random_offsets_range_and_reproducibility():
    g = torch.Generator().manual_seed(1)
    offsets = random_offsets(20000, max_shift=0.125, size=64, generator=g)
    assert offsets.shape == (20000, 2) and offsets.dtype == torch.int64
    assert offsets.min() == -8 and offsets.max() == 8  # both bounds inclusive
    assert offsets.float().mean().abs() < 0.2  # centred
    g2 = torch.Generator().manual_seed(1)
    assert torch.equal(offsets, random_offsets(20000, max_shift=0.125, size=64, generator=g2))
    assert random_offsets(5, max_shift=0.0, size=64).abs().sum() == 0
    rect = random_offsets(5000, max_shift=0.25, size=(8, 40))
    assert rect[:, 0].abs().max() == 2 and rect[:, 1].abs().max() == 10
    # uniform: each of the 17 values of [-8, 8] takes about 1/17 of the draws, on both axes
    counts = torch.stack([torch.bincount(offsets[:, a] + 8, minlength=17) for a in range(2)]).float() / 20000
    assert counts.shape == (2, 17) and (counts - 1 / 17).abs().max() < 0.01


# composites


def test_layered_composite_eq_3_2():
    background = torch.full((1, 1, 1, 4), 9.0)
    foreground = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]])
    mask = torch.tensor([[[[0.0, 1.0, 0.5, 0.0]]]])
    # unshifted, eq. (3.1): (1 - m) B + m F
    assert layered_composite(background=background, foreground=foreground, mask=mask)[0, 0, 0].tolist() == [9, 2, 6, 9]
    # shifted right by one: m -> [0, 0, 1, .5], F -> [0, 1, 2, 3]
    shifted = layered_composite(background=background, foreground=foreground, mask=mask, offset=(0, 1))
    assert shifted[0, 0, 0].tolist() == [9, 9, 2, 6]


def test_move_composite_and_copy_paste_eq_5_3():
    image = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]])
    background = torch.zeros_like(image)
    mask = torch.tensor([[[[0.0, 1.0, 0.0, 0.0]]]])
    x_hat = move_composite(image=image, background=background, mask=mask, offset=(0, 2))
    assert x_hat[0, 0, 0].tolist() == [0, 0, 0, 2]  # the object (value 2) moved 2 px onto b̂
    x_tilde = copy_paste(image=image, mask=mask, offset=(0, 2))
    assert x_tilde[0, 0, 0].tolist() == [1, 2, 3, 2]  # the original object stays: a duplicate
    assert torch.equal(move_composite(image=image, background=background, mask=mask, offset=(0, 0)), image * mask)


def test_mask_union_and_inpainting_mask_eq_5_4():
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, 0, 0] = 1.0
    union = mask_union(mask, (1, 1))
    assert union[0, 0].nonzero().tolist() == [[0, 0], [1, 1]]
    soft = torch.full((1, 1, 4, 4), 0.5)
    assert torch.allclose(mask_union(soft, (0, 0)), torch.full_like(soft, 0.75))  # 1 - 0.5 * 0.5
    pooled = inpainting_mask(mask, (2, 0), patch=2)
    assert pooled[0, 0].tolist() == [[1, 0], [1, 0]]


def test_pool_mask_max_and_avg():
    mask = torch.tensor([[[[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5], [1, 1, 1, 1], [1, 1, 0, 0]]]])
    assert pool_mask(mask, patch=2, mode="max")[0, 0].tolist() == [[1, 0.5], [1, 1]]
    assert pool_mask(mask, patch=2, mode="avg")[0, 0].tolist() == [[0.25, 0.125], [1, 0.5]]
    with pytest.raises(ValueError, match="not divisible"):
        pool_mask(torch.zeros(1, 1, 5, 4), patch=2)
    with pytest.raises(ValueError, match="mode"):
        pool_mask(mask, patch=2, mode="median")
    with pytest.raises(ValueError, match="patch"):
        pool_mask(mask, patch=0)


# mask losses


def test_size_loss_eq_3_3():
    masks = torch.zeros(2, 1, 2, 2)
    masks[0, 0, 0, 0] = 1.0  # area 0.25
    masks[1] = 1.0  # area 1
    # eta = 0.5: hinge = [0.25, 0] -> mean 0.125
    assert size_loss(masks, min_area=0.5).item() == pytest.approx(0.125)
    assert size_loss(masks, min_area=0.2).item() == 0.0


def test_bracket_size_loss_adds_the_upper_hinge_below_1():
    from workbench.ops.mask_losses import bracket_size_loss

    masks = torch.zeros(2, 1, 4, 4)
    masks[0, :, :2] = 1.0  # area 0.5
    masks[1, :, :1] = 1.0  # area 0.25
    assert bracket_size_loss(masks, min_area=0.3).item() == pytest.approx(0.025)  # (0 + 0.05) / 2: eq. (3.3) alone
    assert bracket_size_loss(masks, min_area=0.3, max_area=0.4).item() == pytest.approx(0.075)  # + (0.1 + 0) / 2


def test_binarization_loss_eq_3_4():
    mask = torch.tensor([[[[0.0, 1.0, 0.5, 0.2]]]])
    assert binarization_loss(mask).item() == pytest.approx((0 + 0 + 0.5 + 0.2) / 4)
    m = torch.tensor([0.3], requires_grad=True)
    binarization_loss(m.view(1, 1, 1, 1)).backward()
    assert m.grad.item() == pytest.approx(1.0)  # below 0.5 the loss pushes towards 0


# augmentations


def test_contrast_jitter_keeps_mean_and_scales_deviation():
    x = torch.rand(8, 3, 6, 6)
    g = torch.Generator().manual_seed(0)
    y = contrast_jitter(x, low=0.7, high=1.3, generator=g)
    assert torch.allclose(y.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-6)
    ratio = (y - y.mean(dim=(1, 2, 3), keepdim=True)).std(dim=(1, 2, 3)) / (x - x.mean(dim=(1, 2, 3), keepdim=True)).std(dim=(1, 2, 3))
    assert ratio.min() >= 0.7 - 1e-5 and ratio.max() <= 1.3 + 1e-5
    assert torch.allclose(contrast_jitter(x, low=1.0, high=1.0), x, atol=1e-6)


def test_resize_random_crop_windows_come_from_the_resized_image():
    x = torch.arange(36.0).view(1, 1, 6, 6).repeat(16, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    crops = resize_random_crop(x, size=4, scale=1.5, generator=g)  # 6 px -> crop 4: no resize needed
    assert crops.shape == (16, 1, 4, 4)
    corners = {(int(c[0, 0, 0]) // 6, int(c[0, 0, 0]) % 6) for c in crops}
    assert corners <= {(i, j) for i in range(3) for j in range(3)} and len(corners) > 3
    for c in crops:  # every crop is a contiguous window of the input
        top, left = int(c[0, 0, 0]) // 6, int(c[0, 0, 0]) % 6
        assert torch.equal(c[0], x[0, 0, top : top + 4, left : left + 4])
    wide = torch.rand(2, 3, 20, 30)
    assert resize_random_crop(wide, size=16).shape == (2, 3, 16, 16)
    same = torch.rand(2, 3, 16, 16)
    assert torch.equal(resize_random_crop(same, size=16, scale=1.0), same)  # ablation: no random crop


def test_diff_augment_parts():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    cut = DiffAugment(policy=("cutout",), cutout=0.5)(x, generator=torch.Generator().manual_seed(0))
    zeros = (cut == 0).all(dim=1).flatten(1).sum(dim=1)
    assert zeros.max() <= 64 and zeros.min() >= 16  # an 8x8 hole, possibly clipped by the border
    moved = DiffAugment(policy=("translation",), translation=0.125)(x, generator=torch.Generator().manual_seed(0))
    # the same draws as random_offsets with the same seed: whole-pixel shifts of at most 2 px (0.125 * 16)
    offsets = random_offsets(4, max_shift=0.125, size=16, generator=torch.Generator().manual_seed(0))
    assert offsets.abs().max() <= 2 and torch.equal(moved, translate(x, offsets))
    # brightness alone adds one constant per image, within ±0.25 (the paper's ±0.5 on [-1, 1] data)
    bright = DiffAugment(policy=("color",), saturation=(1.0, 1.0), contrast=(1.0, 1.0))
    delta = (bright(x, generator=torch.Generator().manual_seed(1)) - x).flatten(1)  # (B, N)
    assert torch.allclose(delta, delta[:, :1].expand_as(delta), atol=1e-6)
    assert delta.abs().max() <= 0.25 and delta[:, 0].std() > 0.01
    colour = DiffAugment(policy=("color",))
    y = colour(x, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(y, x)
    assert torch.equal(y, colour(x, generator=torch.Generator().manual_seed(3)))
    xr = x.clone().requires_grad_(True)
    DiffAugment()(xr).sum().backward()
    assert xr.grad is not None and xr.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown DiffAugment"):
        DiffAugment(policy=("colour",))
