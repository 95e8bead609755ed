"""MOVE's discriminators: the projected one (frozen pyramid + fixed random mixing + SN mini Ds) and the conv one."""

import pytest
import torch

from workbench.nets.discriminators import ConvDiscriminator, EfficientNetPyramid, ProjectedDiscriminator, ViTPyramid
from workbench.nets.mae import mae_tiny


@pytest.mark.parametrize("resolution", [24, 32, 64])
def test_conv_discriminator_any_resolution(resolution):
    torch.manual_seed(0)
    D = ConvDiscriminator(resolution=resolution, width=8)
    x = torch.rand(3, 3, resolution, resolution, requires_grad=True)
    logits = D(x)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert x.grad.abs().sum() > 0
    assert any("parametrizations.weight.original" in k for k in D.state_dict())  # spectral norm


def tiny_mae_pyramid(size=32):
    torch.manual_seed(0)
    mae = mae_tiny(img_size=size, embed_dim=32, depth=4, num_heads=2, decoder_embed_dim=16, decoder_depth=1,
                   decoder_num_heads=2).eval().requires_grad_(False)
    taps = ViTPyramid.even_taps(len(mae.blocks) - 1)
    pyramid = ViTPyramid(blocks=mae.blocks, run=lambda x: mae.encode_until(mae.normalize(x), taps[-1]),
                         patch_size=mae.patch_size, embed_dim=mae.embed_dim, taps=taps)
    return mae, pyramid


def test_vit_pyramid_taps_blocks_at_four_scales():
    mae, pyramid = tiny_mae_pyramid(32)
    assert pyramid.taps == [0, 1, 2, 3]
    x = torch.rand(2, 3, 32, 32)
    maps = pyramid(x)
    assert [tuple(m.shape) for m in maps] == [(2, 32, 8, 8), (2, 32, 4, 4), (2, 32, 2, 2), (2, 32, 1, 1)]
    assert pyramid.sizes(32) == [8, 4, 2, 1]
    # the 1x map is the normalised tokens of block 1 laid out row-major as a grid
    _, tokens = mae.encode(mae.normalize(x), return_block=1)  # (B, 1+N, D)
    tokens = torch.nn.functional.layer_norm(tokens[:, 1:], (32,))
    assert torch.allclose(maps[1], tokens.transpose(1, 2).reshape(2, 32, 4, 4), atol=1e-5)
    assert not mae.blocks[0]._forward_hooks  # hooks are removed after each call
    assert list(pyramid.state_dict()) == []  # the ViT is not part of the pyramid's state


def test_projected_discriminator_mixing_is_fixed_and_gradients_reach_the_image():
    mae, pyramid = tiny_mae_pyramid(32)
    D = ProjectedDiscriminator(channels=pyramid.channels, sizes=pyramid.sizes(32), mix_channels=(8, 8, 16, 16), width=8,
                               seed=3)
    trainable = {n for n, p in D.named_parameters()}
    assert not any(n.startswith(("ccm", "csm")) for n in trainable)  # random mixing is not trained
    assert {"ccm0", "ccm3", "csm0", "csm2"} <= set(D.state_dict())  # but saved, so a reload judges alike
    again = ProjectedDiscriminator(channels=pyramid.channels, sizes=pyramid.sizes(32), mix_channels=(8, 8, 16, 16),
                                   width=8, seed=3)
    assert torch.equal(D.ccm2, again.ccm2)
    assert not any(k.startswith("blocks") for k in D.state_dict())  # the frozen ViT stays outside
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    logits = D(pyramid(x))
    assert logits.shape == (4,)
    logits.sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in D.parameters())
    assert all(p.grad is None for p in mae.parameters())
    # cross-scale mixing: the finest mixed map depends on the coarsest features
    feats = [f.detach() for f in pyramid(torch.rand(1, 3, 32, 32))]
    base = D.mix(feats)[0]
    feats[3] = feats[3] + 1
    assert not torch.allclose(D.mix(feats)[0], base)


def test_efficientnet_pyramid_loads_a_local_file_strictly(tmp_path):
    import timm

    with pytest.raises(FileNotFoundError, match="tf_efficientnet_lite0"):
        EfficientNetPyramid(tmp_path / "missing.pth")
    torch.manual_seed(0)
    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    torch.save(net.state_dict(), tmp_path / "lite0.pth")
    pyramid = EfficientNetPyramid(tmp_path / "lite0.pth")
    assert torch.equal(pyramid.net.conv_stem.weight, net.conv_stem.weight)
    maps = pyramid(torch.rand(1, 3, 64, 64))
    assert [m.shape[1] for m in maps] == pyramid.channels == [24, 40, 112, 320]
    assert [m.shape[-1] for m in maps] == pyramid.sizes(64) == [16, 8, 4, 2]
    assert not pyramid.train().training and not any(p.requires_grad for p in pyramid.parameters())
    D = ProjectedDiscriminator(channels=pyramid.channels, sizes=pyramid.sizes(64), width=8)
    assert D(maps).shape == (1,)
    state = net.state_dict()
    state.pop("conv_stem.weight")
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="missing keys: conv_stem.weight"):
        EfficientNetPyramid(tmp_path / "broken.pth")
