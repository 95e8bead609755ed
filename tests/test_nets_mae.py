"""MAE: the public checkpoint format, strict loading, patch order, soft inpainting, shared encoding, pre-training."""

import numpy as np
import pytest
import torch

from workbench.nets.mae import MAE, build_mae, load_mae, mae_tiny, mae_vit_large_patch16
from workbench.nets.vit import sincos_2d
from workbench.train.checkpoint import StateDictMismatchError

# helpers


def small_mae(**kw) -> MAE:
    torch.manual_seed(0)
    return MAE(**{"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 3, "num_heads": 2,
                  "decoder_embed_dim": 16, "decoder_depth": 1, "decoder_num_heads": 2, **kw})


def official_keys(depth: int, decoder_depth: int) -> set[str]:
    """The key set of the official mae_visualize_vit_*.pth files, written out from their format."""
    block = ["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
             "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"]
    keys = {"cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias",
            "mask_token", "decoder_pos_embed", "decoder_embed.weight", "decoder_embed.bias", "decoder_norm.weight",
            "decoder_norm.bias", "decoder_pred.weight", "decoder_pred.bias"}
    keys |= {f"blocks.{i}.{k}" for i in range(depth) for k in block}
    keys |= {f"decoder_blocks.{i}.{k}" for i in range(decoder_depth) for k in block}
    return keys


def reference_sincos(dim: int, grid: int) -> np.ndarray:
    """The official MAE position table, from its published formula (numpy, float64)."""

    def one_d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    g = np.meshgrid(np.arange(grid, dtype=np.float32), np.arange(grid, dtype=np.float32))  # w first
    emb = np.concatenate([one_d(dim // 2, g[0]), one_d(dim // 2, g[1])], axis=1)
    return np.concatenate([np.zeros([1, dim]), emb], axis=0)


def images(n=2, size=32, seed=1):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# format


def test_vit_large_has_the_official_keys_and_shapes():
    with torch.device("meta"):
        model = mae_vit_large_patch16()
    state = model.state_dict()
    assert set(state) == official_keys(24, 8)
    assert state["pos_embed"].shape == (1, 197, 1024) and state["decoder_pos_embed"].shape == (1, 197, 512)
    assert state["mask_token"].shape == (1, 1, 512) and state["cls_token"].shape == (1, 1, 1024)
    assert state["patch_embed.proj.weight"].shape == (1024, 3, 16, 16)
    assert state["decoder_pred.weight"].shape == (16 * 16 * 3, 512)
    assert state["blocks.0.attn.qkv.weight"].shape == (3072, 1024)
    assert sum(v.numel() for v in state.values()) == 329_541_888
    assert not model.pos_embed.requires_grad and not model.decoder_pos_embed.requires_grad
    assert (model.grid_size, model.num_patches, model.embed_dim, model.patch_size) == (14, 196, 1024, 16)


def test_position_table_is_the_official_sincos():
    table = sincos_2d(64, 4, 4).numpy()
    np.testing.assert_allclose(table, reference_sincos(64, 4), atol=1e-6)
    model = small_mae()
    np.testing.assert_allclose(model.pos_embed[0].numpy(), reference_sincos(32, 4), atol=1e-6)
    np.testing.assert_allclose(model.decoder_pos_embed[0].numpy(), reference_sincos(16, 4), atol=1e-6)


def test_patch_order_is_row_column_channel():
    model = small_mae()
    x = images()
    patches = model.patchify(x)  # (B, 16, 192)
    assert patches.shape == (2, 16, 8 * 8 * 3)
    assert torch.equal(patches[1, 0, :3], x[1, :, 0, 0])  # first pixel, its three channels
    assert torch.equal(patches[1, 0, 3:6], x[1, :, 0, 1])  # then the next column
    assert torch.equal(patches[1, 0, 24:27], x[1, :, 1, 0])  # then the next row
    assert torch.equal(patches[1, 1, :3], x[1, :, 0, 8])  # second patch: to the right
    assert torch.equal(model.unpatchify(patches), x)
    wide = torch.rand(1, 3, 16, 40)
    assert torch.equal(model.unpatchify(model.patchify(wide), grid=(2, 5)), wide)


def test_normalize_round_trip():
    model = small_mae()
    x = images()
    assert torch.allclose(model.denormalize(model.normalize(x)), x, atol=1e-6)
    assert torch.allclose(model.normalize(torch.full((1, 3, 1, 1), 0.485)).flatten()[0], torch.tensor(0.0), atol=1e-6)


# loading


def test_official_pth_loads_strictly(tmp_path, monkeypatch):
    model = small_mae()
    path = tmp_path / "mae_random.pth"
    torch.save({"model": model.state_dict()}, path)
    other = small_mae()
    torch.nn.init.normal_(other.decoder_pred.weight)
    loaded = load_mae(path, model=other)
    assert not loaded.training
    x = model.normalize(images())
    model.eval()
    assert torch.equal(loaded.inpaint(x, None), model.inpaint(x, None))
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(tmp_path))  # a bare file name is looked up there
    assert torch.equal(load_mae("mae_random.pth", model=small_mae()).cls_token, model.cls_token)


@pytest.mark.parametrize("change, named", [
    (lambda sd: sd.pop("blocks.1.mlp.fc2.bias"), "missing keys: blocks.1.mlp.fc2.bias"),
    (lambda sd: sd.update({"blocks.0.ls1.gamma": torch.zeros(32)}), "unexpected keys: blocks.0.ls1.gamma"),
    (lambda sd: sd.update({"mask_token": torch.zeros(1, 1, 8)}), "mask_token (1, 1, 8) vs (1, 1, 16)"),
])
def test_mismatched_pth_names_the_keys(tmp_path, change, named):
    state = small_mae().state_dict()
    change(state)
    path = tmp_path / "bad.pth"
    torch.save({"model": state}, path)
    with pytest.raises(StateDictMismatchError) as error:
        load_mae(path, model=small_mae())
    assert named in str(error.value)


def test_encoder_only_pth_gets_a_hint(tmp_path):
    state = {k: v for k, v in small_mae().state_dict().items() if not k.startswith(("decoder", "mask_token"))}
    torch.save({"model": state}, tmp_path / "enc.pth")
    with pytest.raises(StateDictMismatchError, match="encoder only"):
        load_mae(tmp_path / "enc.pth", model=small_mae())


def test_missing_file_says_what_to_fetch_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(tmp_path / "weights"))
    with pytest.raises(FileNotFoundError) as error:
        load_mae("mae_visualize_vit_large_ganloss.pth")
    text = str(error.value)
    assert "https://dl.fbaipublicfiles.com/mae/visualize/mae_visualize_vit_large_ganloss.pth" in text
    assert str(tmp_path / "weights") in text and "--mae-weights" in text


def test_build_mae_rejects_unknown_arch():
    with pytest.raises(ValueError, match="mae_tiny"):
        build_mae("mae_huge")
    assert mae_tiny().grid_size == 8


# soft inpainting


def test_patch_mask_changes_the_output_and_has_a_gradient():
    model = small_mae().eval()
    x = model.normalize(images())
    latent = model.encode(x)  # (B, 17, 32)
    assert latent.shape == (2, 17, 32)
    keep = model.decode(latent)
    assert torch.equal(keep, model.decode(latent, patch_mask=torch.zeros(2, 16)))
    full = model.decode(latent, patch_mask=torch.ones(2, 16))
    assert (keep - full).abs().mean() > 1e-3
    soft = torch.full((2, 1, 4, 4), 0.5, requires_grad=True)  # grid-shaped masks work too
    out = model.decode(latent, patch_mask=soft)
    out.square().sum().backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0
    # a fully masked decoder input no longer depends on the image
    other = model.encode(model.normalize(images(seed=7)))
    ones = torch.ones(2, 16)
    a, b = model.decode(latent, patch_mask=ones), model.decode(other, patch_mask=ones)
    assert (a - b).abs().max() < (keep - model.decode(other)).abs().max()


def test_one_encoding_serves_inpainting_and_autoencoding():
    model = small_mae().eval()
    x = model.normalize(images())
    mask = torch.rand(2, 16, generator=torch.Generator().manual_seed(3))
    latent = model.encode(x)
    shared = model.inpaint(x, mask, latent=latent), model.inpaint(x, None, latent=latent)
    separate = model.inpaint(x, mask), model.inpaint(x, None)
    for a, b in zip(shared, separate):
        assert a.shape == (2, 3, 32, 32)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_intermediate_tokens_and_other_sizes():
    model = small_mae().eval()
    x = model.normalize(images())
    latent, middle = model.encode(x, return_block=-2)
    torch.testing.assert_close(latent, model.encode(x))
    torch.testing.assert_close(middle, model.encode_until(x, 1))
    assert not torch.allclose(middle, model.encode_until(x, 2))
    wide = model.normalize(torch.rand(1, 3, 16, 48))
    assert model.encode(wide).shape == (1, 1 + 2 * 6, 32)
    assert model.inpaint(wide, torch.zeros(1, 12)).shape == (1, 3, 16, 48)
    with pytest.raises(IndexError):
        model.encode(x, return_block=3)


# pre-training


def test_random_masking_keeps_a_quarter():
    model = small_mae()
    g = torch.Generator().manual_seed(0)
    ids_keep, mask, ids_restore = model.random_masking(16, 3, mask_ratio=0.75, device=torch.device("cpu"), generator=g)
    assert ids_keep.shape == (3, 4) and mask.shape == (3, 16)
    assert torch.equal(mask.sum(1), torch.full((3,), 12.0))
    assert torch.equal(mask.gather(1, ids_keep), torch.zeros(3, 4))
    assert torch.equal(ids_restore.sort(1).values, torch.arange(16).expand(3, -1))


def test_forward_is_seeded_and_overfits():
    model = small_mae(norm_pix_loss=True)
    x = model.normalize(images(n=4))
    l1, pred, mask = model(x, generator=torch.Generator().manual_seed(5))
    l2, _, mask2 = model(x, generator=torch.Generator().manual_seed(5))
    assert pred.shape == (4, 16, 192) and torch.equal(mask, mask2) and torch.equal(l1, l2)
    model = small_mae()
    smooth = torch.nn.functional.interpolate(images(n=4, size=4), size=32, mode="bilinear")  # (4, 3, 32, 32)
    x = model.normalize(smooth)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):  # the same masks every step: a pure overfit
        loss, _, _ = model(x, generator=torch.Generator().manual_seed(0), visible_weight=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert model.pos_embed.grad is None  # the position table stays fixed
