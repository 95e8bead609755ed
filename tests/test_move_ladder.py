"""Issue 19's ladder parts: scenes with their true background, MOVE's oracle inpainter, EfficientNet head features."""

import dataclasses

import pytest
import torch

from workbench.data.synthetic import SyntheticScenes, render_layers
from workbench.methods.move import PRESETS, MOVE

SMOKE = dataclasses.replace(PRESETS["smoke"], dataset="synthetic:movable")


def make(**overrides) -> MOVE:
    torch.manual_seed(0)
    return MOVE(dataclasses.replace(SMOKE, **overrides))


def test_scenes_carry_their_background_only_when_asked():
    plain = SyntheticScenes(preset="movable", size=32, split="test", n=2)
    assert set(plain[0]) == {"image", "mask", "name"}  # other users see the same items as before
    scenes = SyntheticScenes(preset="movable", size=32, split="test", n=2, with_background=True)
    item = scenes[1]
    assert torch.equal(item["image"], plain[1]["image"]) and item["background"].shape == (3, 32, 32)
    outside = item["mask"][0] < 0.5  # (S, S)
    assert torch.equal(item["background"][:, outside], item["image"][:, outside])  # the scene without objects
    assert not torch.equal(item["background"][:, ~outside], item["image"][:, ~outside])
    layers = render_layers(1, preset="movable", size=32, split="test")
    assert torch.equal(item["background"], torch.from_numpy(layers.background).permute(2, 0, 1))


def test_oracle_inpainter_pastes_the_true_background_inside_the_inpainting_mask():
    model = make(inpainter="oracle")
    g = torch.Generator().manual_seed(1)
    x, truth = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:16, 8:16] = 1
    mask.requires_grad_(True)
    offset = torch.tensor([[0, 8], [0, 0]])
    out = model.compose(x, mask, offset, true_background=truth)
    m_hat = out["inpaint_mask"]  # (B, 1, h, w) on the 16-px MAE patch grid of the smoke MAE
    up = torch.nn.functional.interpolate(m_hat, scale_factor=model.mae.patch_size) > 0.5  # (B, 1, S, S)
    assert up[0].sum() > up[1].sum()  # the shifted copy widens m̂ of the first image
    inside = up.expand(-1, 3, -1, -1)
    assert torch.equal(out["background"][inside], truth[inside]) and torch.equal(out["background"][~inside], x[~inside])
    assert torch.equal(out["autoencoded"], x) and torch.equal(out["shifted_source"], model.shift(x, offset))
    (grad,) = torch.autograd.grad(out["shifted"].sum(), mask)
    assert grad.abs().sum() > 0
    with pytest.raises(ValueError, match="true background"):
        model.compose(x, mask, offset)


def test_oracle_training_steps_and_sample_grid():
    model = make(inpainter="oracle")
    data = model.build_dataset()
    batch = torch.utils.data.default_collate([data[i] for i in range(4)])
    assert "background" in batch
    stats = model.discriminator_step(batch) | model.segmenter_step(batch)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in stats.values())
    assert model.sample().shape[1] == 3


def test_oracle_needs_synthetic_scenes():
    with pytest.raises(ValueError, match="synthetic scenes"):
        make(inpainter="oracle", dataset="photos").build_dataset()


def test_efficientnet_head_features():
    model = make(features="efficientnet")
    assert model.extractor.patch_size == 8 and model.extractor.embed_dim == 152
    features = model.extractor(torch.rand(2, 3, 32, 48))  # (B, D, H/8, W/8)
    assert features.shape == (2, 152, 4, 6) and not features.requires_grad
    assert model.predict(torch.rand(1, 3, 30, 30)).shape == (1, 1, 30, 30)
    assert not any(p.requires_grad for p in model.extractor.parameters())


def test_efficientnet_features_upsample_sets_the_token_grid():
    model = make(features="efficientnet", features_upsample=4)
    assert model.extractor.patch_size == 4  # stride 16 of the 4x upsampled image
    assert model.extractor(torch.rand(1, 3, 32, 32)).shape == (1, 152, 8, 8)
    assert model.predict(torch.rand(1, 3, 30, 30)).shape == (1, 1, 30, 30)
    with pytest.raises(ValueError, match="features_upsample"):
        make(features="efficientnet", features_upsample=3)
