"""The U-Net of workbench.nets.unet: shapes, gradients, input checks, and that it can learn masks."""

import pytest
import torch
import torch.nn.functional as F

from workbench.data import build_dataset
from workbench.nets.unet import UNet, stage_widths

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("depth", [1, 2, 4])
@pytest.mark.parametrize("up", ["bilinear", "transposed"])
def test_output_shape_is_input_size(depth, up):
    torch.manual_seed(0)
    net = UNet(3, 2, width=4, depth=depth, max_width=16, up=up)
    x = torch.rand(2, 3, 32, 48)  # (B, 3, H, W), not square
    y = net(x)
    assert y.shape == (2, 2, 32, 48)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("norm", ["batch", "instance", "group", "none"])
def test_norms_and_encode_decode(norm):
    torch.manual_seed(0)
    net = UNet(1, 1, width=6, depth=3, max_width=12, norm=norm).eval()
    x = torch.rand(3, 1, 16, 16)  # (B, 1, H, W)
    features = net.encode(x)
    assert [tuple(f.shape) for f in features] == [(3, 6, 16, 16), (3, 12, 8, 8), (3, 12, 4, 4), (3, 12, 2, 2)]
    assert torch.equal(net.decode(features), net(x))


def test_widths_double_and_are_capped():
    assert stage_widths(width=32, depth=4, max_width=256) == [32, 64, 128, 256, 256]
    assert stage_widths(width=32, depth=4, max_width=64) == [32, 64, 64, 64, 64]
    assert UNet(width=8, depth=2, max_width=1000).widths == [8, 16, 32]


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    net = UNet(3, 1, width=4, depth=3, max_width=16)
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    net(x).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bad_sizes_and_options_raise():
    net = UNet(3, 1, width=4, depth=3)
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.rand(1, 3, 20, 16))
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.rand(1, 3, 16, 12))
    with pytest.raises(ValueError, match=r"expects \(B, 3, H, W\)"):
        net(torch.rand(1, 4, 16, 16))
    with pytest.raises(ValueError, match=r"expects \(B, 3, H, W\)"):
        net(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="unknown norm"):
        UNet(norm="layer")
    with pytest.raises(ValueError, match="unknown up-sampling"):
        UNet(up="nearest")
    with pytest.raises(ValueError, match="depth"):
        UNet(depth=0)


def test_overfits_four_masks():
    """100 Adam steps on 4 synthetic scenes at 16 px: the masks are learnt (IoU > 0.9 in eval mode)."""
    torch.manual_seed(0)
    dataset = build_dataset("synthetic:easy", size=16, split="train", n=4)
    x = torch.stack([dataset[i]["image"] for i in range(4)])  # (4, 3, 16, 16)
    mask = torch.stack([dataset[i]["mask"] for i in range(4)])  # (4, 1, 16, 16)
    net = UNet(3, 1, width=8, depth=2, max_width=32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(100):
        loss = F.binary_cross_entropy_with_logits(net(x), mask)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        pred = net(x) > 0  # (4, 1, 16, 16)
    gt = mask > 0.5
    iou = ((pred & gt).sum((1, 2, 3)) / (pred | gt).sum((1, 2, 3))).min()
    assert float(loss.detach()) < 0.1 * first
    assert iou > 0.9, float(iou)
