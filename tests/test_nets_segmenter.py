"""MOVE's segmenter head (section 5.3): shapes, block structure for P = 8 and 16, range, gradients."""

import pytest
import torch
from torch import nn

from workbench.nets.segmenter import SegmenterHead, head_widths


@pytest.mark.parametrize("patch,ups", [(8, 3), (16, 4)])
def test_head_upsamples_by_the_patch_size(patch, ups):
    torch.manual_seed(0)
    head = SegmenterHead(in_dim=24, patch_size=patch, width=32)
    features = torch.randn(2, 24, 4, 3)  # (B, D, h, w), a non-square grid
    mask = head(features)
    assert mask.shape == (2, 1, 4 * patch, 3 * patch)
    assert 0 < mask.min() and mask.max() < 1
    # log2(P) upsampling blocks, then one block without upsampling, then a 1x1 conv to one channel
    assert len(head.blocks) == ups + 1
    assert [isinstance(b[0], nn.Upsample) for b in head.blocks] == [True] * ups + [False]
    assert head.out.kernel_size == (1, 1) and head.out.out_channels == 1
    assert isinstance(head.norm, nn.LayerNorm) and head.norm.normalized_shape == (24,)


def test_widths_halve_and_extra_convs():
    assert head_widths(8, width=128) == [128, 64, 32, 32]
    assert head_widths(16, width=64, min_width=16) == [64, 32, 16, 16, 16]
    with pytest.raises(ValueError, match="power of two"):
        head_widths(12, width=32)
    deep = SegmenterHead(in_dim=8, patch_size=8, width=16, conv_per_block=2)
    assert sum(isinstance(m, nn.Conv2d) for m in deep.blocks.modules()) == 8  # 4 blocks x 2 convs


def test_layernorm_makes_the_head_blind_to_feature_scale():
    torch.manual_seed(0)
    head = SegmenterHead(in_dim=16, patch_size=8, width=16).eval()
    f = torch.randn(1, 16, 2, 2)
    assert torch.allclose(head(f), head(5 * f + 3), atol=1e-5)


def test_channels_last_gives_the_same_mask_and_gradients_reach_every_layer():
    torch.manual_seed(0)
    head = SegmenterHead(in_dim=16, patch_size=8, width=16).eval()
    f = torch.randn(2, 16, 3, 3)
    ref = head(f)
    fast = head.to(memory_format=torch.channels_last)(f)
    assert torch.allclose(ref, fast, atol=1e-5)
    head.train()
    head(f).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    with pytest.raises(ValueError, match="expected features"):
        head(torch.randn(1, 8, 2, 2))
