"""Frozen feature extractors: DINO weights from every local source (never downloaded), MAE features, shapes."""

import pytest
import torch
from safetensors.torch import save_file

from workbench.nets.features import DinoFeatures, MAEFeatures, build_feature_extractor
from workbench.nets.mae import MAE
from workbench.train.checkpoint import StateDictMismatchError

# helpers


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No downloads, an empty Hugging Face cache and an empty weights folder unless a test fills them."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(tmp_path / "weights"))


@pytest.fixture(scope="module")
def random_dino():
    """A DINO ViT-S/8 with random weights and its state dict (the format of timm and of DINO's own file)."""
    torch.manual_seed(0)
    model = DinoFeatures("dino_vits8", pretrained=False)
    return model, {k: v.clone() for k, v in model.vit.state_dict().items()}


def images(n=2, h=32, w=32):
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(0))


def same_features(a, b):
    x = images()
    return torch.equal(a(x), b(x))


# DINO


def test_dino_shapes_frozen_and_penultimate(random_dino):
    model, _ = random_dino
    assert (model.patch_size, model.embed_dim) == (8, 384)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training
    x = images(h=32, w=48)
    out = model(x)
    assert out.shape == (2, 384, 4, 6) and out.grad_fn is None
    # the penultimate block, before any norm, equals a manual run of timm's blocks
    vit = model.vit
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    tokens = vit._pos_embed(vit.patch_embed((x - mean) / std))  # (B, 1+N, D)
    for block in vit.blocks[:-1]:
        tokens = block(tokens)
    torch.testing.assert_close(out, tokens[:, 1:].transpose(1, 2).reshape(2, 384, 4, 6))
    with pytest.raises(ValueError, match="multiple of the patch size"):
        model(images(h=30))


def test_dino_loads_timm_files(tmp_path, random_dino):
    model, state = random_dino
    save_file(state, str(tmp_path / "model.safetensors"))
    torch.save(state, tmp_path / "timm.pth")
    for name in ("model.safetensors", "timm.pth"):
        loaded = build_feature_extractor("dino_vits8", weights=tmp_path / name)
        assert loaded.source == str(tmp_path / name)
        assert same_features(loaded, model)


def test_dino_loads_original_files_from_the_weights_folder(tmp_path, random_dino):
    model, state = random_dino
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save(state, folder / "dino_deitsmall8_pretrain.pth")  # the original file: same keys as timm's
    loaded = DinoFeatures("dino_vits8")
    assert loaded.source == str(folder / "dino_deitsmall8_pretrain.pth") and same_features(loaded, model)
    full = {"teacher": {**{f"backbone.{k}": v for k, v in state.items()}, "head.last_layer.weight": torch.zeros(4, 2)},
            "epoch": 100}
    torch.save(full, tmp_path / "checkpoint.pth")  # DINO's training checkpoint
    assert same_features(DinoFeatures("dino_vits8", weights=tmp_path / "checkpoint.pth"), model)


def test_dino_loads_from_the_hugging_face_cache(tmp_path, random_dino):
    model, state = random_dino
    repo = tmp_path / "hf" / "models--timm--vit_small_patch8_224.dino"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    save_file(state, str(repo / "snapshots" / ("0" * 40) / "model.safetensors"))
    loaded = DinoFeatures("dino_vits8")
    assert loaded.source.endswith("model.safetensors") and same_features(loaded, model)


def test_dino_offline_without_weights_says_what_to_fetch(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        DinoFeatures("dino_vits8")
    text = str(error.value)
    assert "dino_deitsmall8_pretrain.pth" in text and str(tmp_path / "weights") in text
    assert "timm/vit_small_patch8_224.dino" in text and "HF_HUB_OFFLINE" in text
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        DinoFeatures("dino_vits8", weights=tmp_path / "nowhere.pth")


def test_dino_mismatched_file_names_the_keys(tmp_path, random_dino):
    _, state = random_dino
    bad = {k: v for k, v in state.items() if k != "norm.weight"}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(StateDictMismatchError, match="missing keys: norm.weight"):
        DinoFeatures("dino_vits8", weights=tmp_path / "bad.pth")
    torch.save(state, tmp_path / "s8.pth")
    with pytest.raises(StateDictMismatchError, match="patch_embed.proj.weight"):
        DinoFeatures("dino_vits16", weights=tmp_path / "s8.pth")  # ViT-S/8 weights into ViT-S/16


# MAE


def test_mae_features_are_the_penultimate_tokens():
    torch.manual_seed(0)
    mae = MAE(img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=2, decoder_embed_dim=16, decoder_depth=1,
              decoder_num_heads=2)
    mae.train()
    extractor = build_feature_extractor("mae", mae=mae)
    assert isinstance(extractor, MAEFeatures) and extractor.mae is mae and not mae.training
    assert (extractor.patch_size, extractor.embed_dim) == (8, 32)
    assert not any(p.requires_grad for p in extractor.parameters())
    x = images(h=32, w=40)
    out = extractor(x)
    assert out.shape == (2, 32, 4, 5) and out.grad_fn is None
    _, middle = mae.encode(mae.normalize(x), return_block=1)  # block 1 of 3: the penultimate
    torch.testing.assert_close(out, middle[:, 1:].transpose(1, 2).reshape(2, 32, 4, 5))
    xg = images().requires_grad_(True)
    extractor(xg, grad=True).sum().backward()  # a graph when asked, w.r.t. the input
    assert xg.grad is not None and xg.grad.abs().sum() > 0


def test_mae_extractor_from_a_file_and_bad_names(tmp_path):
    torch.manual_seed(0)
    mae = MAE(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, decoder_embed_dim=16, decoder_depth=1,
              decoder_num_heads=2)
    with pytest.raises(ValueError, match="needs an MAE"):
        build_feature_extractor("mae")
    with pytest.raises(ValueError, match="dino_vits8"):
        build_feature_extractor("clip")
    with pytest.raises(FileNotFoundError, match="mae_visualize_vit_large_ganloss.pth"):
        build_feature_extractor("mae", weights=tmp_path / "missing.pth")
