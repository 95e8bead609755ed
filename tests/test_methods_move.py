"""MOVE (chapter 5): the composer of figure 5.2, the exact encoder sharing, gradients, ablation switches, training."""

import dataclasses
import json

import pytest
import torch

from workbench.methods.move import MOVE, PRESETS, MOVEConfig
from workbench.ops import random_resized_crop
from workbench.ops import translate

SMOKE = PRESETS["smoke"]


def make(**overrides) -> MOVE:
    torch.manual_seed(0)
    return MOVE(dataclasses.replace(SMOKE, **overrides))


def images(n=2, size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)  # (B, 3, S, S)


def square_mask(n=2, size=32, box=(8, 16, 8, 16)):
    mask = torch.zeros(n, 1, size, size)
    t, b, l, r = box
    mask[:, :, t:b, l:r] = 1
    return mask


# the composer


def test_compose_shapes_and_the_inpainting_mask_by_hand():
    m = make()
    x, mask = images(), square_mask()  # object on patch (1, 1) of the 4 x 4 grid of 8 px patches
    offset = torch.tensor([[0, 8], [8, 0]])  # right by one patch; down by one patch
    out = m.compose(x, mask, offset)
    for key in ("background", "autoencoded", "shifted_source", "shifted", "composed", "copy_paste"):
        assert out[key].shape == (2, 3, 32, 32), key
    assert torch.equal(out["shifted_mask"], translate(mask, offset))
    expected = torch.zeros(2, 1, 4, 4)
    expected[0, 0, 1, 1:3] = 1  # the union of the object and its copy one patch to the right (eq. 5.4)
    expected[1, 0, 1:3, 1] = 1
    assert torch.equal(out["inpaint_mask"], expected)
    shifted_in, outside = (slice(None), slice(8, 16), slice(16, 24)), (slice(None), slice(24, 32), slice(0, 8))
    # x̂_δ (eq. 5.3): the autoencoded shifted object where m_δ = 1, the inpainted background elsewhere
    assert torch.allclose(out["shifted"][0][shifted_in], out["shifted_source"][0][shifted_in])
    assert torch.allclose(out["shifted"][0][outside], out["background"][0][outside])
    # copy-paste: the same shifted object, but over the autoencoded image (the original object stays)
    assert torch.allclose(out["copy_paste"][0][outside], out["autoencoded"][0][outside])
    assert torch.allclose(out["composed"][:, :, 8:16, 8:16], out["autoencoded"][:, :, 8:16, 8:16])


def test_compose_with_an_empty_mask_is_plain_autoencoding():
    m = make()
    x = images()
    out = m.compose(x, torch.zeros(2, 1, 32, 32), torch.tensor([[3, -2], [0, 4]]))
    assert torch.count_nonzero(out["inpaint_mask"]) == 0
    ae = m.autoencode(x)
    for key in ("background", "autoencoded", "shifted", "composed", "copy_paste"):
        assert torch.allclose(out[key], ae, atol=1e-5), key  # nothing is removed, nothing is pasted


def test_compose_with_a_full_mask_and_no_shift_shows_the_autoencoding():
    m = make()
    x = images()
    out = m.compose(x, torch.ones(2, 1, 32, 32), torch.zeros(2, 2, dtype=torch.long))
    assert torch.equal(out["inpaint_mask"], torch.ones(2, 1, 4, 4))
    ae = m.autoencode(x)
    for key in ("shifted", "composed", "copy_paste", "shifted_source"):
        assert torch.allclose(out[key], ae, atol=1e-5), key
    assert not torch.allclose(out["background"], ae, atol=1e-3)  # every patch inpainted from mask tokens


def test_shared_encoder_is_exact_and_saves_one_encoder_pass(monkeypatch):
    m = make()
    x, offset = images(3), torch.tensor([[2, -3], [0, 5], [-4, 0]])
    mask = torch.rand(3, 1, 32, 32)
    calls = []
    encode = m.mae.encode
    monkeypatch.setattr(m.mae, "encode", lambda *a, **k: calls.append(1) or encode(*a, **k))
    shared = m.compose(x, mask, offset)
    assert len(calls) == 2  # x once (inpainting + autoencoding), the shifted x once
    m.config.share_encoder = False
    calls.clear()
    faithful = m.compose(x, mask, offset)
    assert len(calls) == 3  # the official three passes
    for key in shared:
        assert torch.allclose(shared[key], faithful[key], atol=1e-5), key
    # with MAE features the head's tokens come out of the same pass, equal to the extractor's
    m.config.share_encoder = True
    features, latent = m.features_of(x)
    assert torch.allclose(features, m.extractor(x), atol=1e-5)
    assert torch.allclose(latent, encode(m.mae.normalize(x)), atol=1e-5)


def test_approximate_shifted_autoencoding_shifts_the_autoencoding():
    m = make(shift_autoencoding="approx")
    x, offset = images(), torch.tensor([[4, 0], [0, -4]])
    out = m.compose(x, torch.rand(2, 1, 32, 32), offset)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    assert torch.allclose(out["shifted_source"], translate(out["autoencoded"], offset, fill=mean.flatten()))
    assert torch.equal(out["shifted_source"][0, :, :4], mean[0].expand(3, 4, 32))  # the strip: the mean colour
    exact = make().compose(x, out["mask"], offset)["shifted_source"]
    assert not torch.allclose(exact, out["shifted_source"], atol=1e-3)  # an approximation, not exact


def test_mse_and_nondiff_inpainters():
    x, offset = images(), torch.tensor([[0, 8], [0, 0]])
    mask = square_mask()
    out = make(inpainter="mse").compose(x, mask, offset)
    assert torch.equal(out["autoencoded"], x) and torch.equal(out["shifted_source"], translate(x, offset, fill=(
        0.485, 0.456, 0.406)))
    black = make(inpainter="mse", shift_fill="black").compose(x, mask, offset)
    assert torch.equal(black["shifted_source"], translate(x, offset))  # the workbench's former black strip
    assert torch.equal(out["background"][:, :, 24:, :], x[:, :, 24:, :])  # real pixels outside m̂
    assert not torch.allclose(out["background"][:, :, 8:16, 8:16], x[:, :, 8:16, 8:16])
    soft = 0.3 + 0.4 * torch.rand(2, 1, 32, 32)  # every tile's max in (0.3, 0.7)
    soft.requires_grad_(True)
    diff = make().compose(x, soft, offset)
    (grad,) = torch.autograd.grad(diff["background"].sum(), soft)
    assert grad.abs().sum() > 0  # the differentiable inpainter passes gradients to the mask
    hard = make(inpainter="nondiff").compose(x, soft, offset)
    assert set(hard["inpaint_mask"].unique().tolist()) <= {0.0, 1.0}
    assert not hard["background"].requires_grad  # no gradient through the inpainter


# losses and gradients


def batch_of(n=4, size=32):
    return {"image": images(n, size, seed=5)}


def test_discriminator_step_trains_only_the_discriminator():
    m = make()
    stats = m.discriminator_step(batch_of())
    assert {"loss", "real", "fake"} <= set(stats)
    assert all(p.grad is None for p in m.head.parameters())
    assert all(p.grad is not None for p in m.discriminator.parameters())
    assert all(p.grad is None for p in m.mae.parameters())


def test_segmenter_gets_gradients_only_through_the_shifted_composite(monkeypatch):
    m = make(min_mask_loss=False, binarization_loss=False)
    seen = {}
    compose, critic = m.compose, m.critic
    monkeypatch.setattr(m, "compose", lambda *a, **k: seen.setdefault("images", compose(*a, **k)))
    monkeypatch.setattr(m, "critic", lambda x, **k: seen.setdefault("inputs", []).append(x) or critic(x, **k))
    stats = m.segmenter_step(batch_of())
    assert len(seen["inputs"]) == 1 and seen["inputs"][0] is seen["images"]["shifted"]  # only x̂_δ is judged
    assert float(stats["loss"]) == pytest.approx(float(stats["adv"]))  # eq. (5.6) alone
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.head.parameters() if p.requires_grad)
    assert all(p.grad is None for p in m.discriminator.parameters())  # D is not trained by the segmenter
    assert all(p.requires_grad for p in m.discriminator.parameters())  # and is trainable again afterwards


def test_binarisation_weight_ramps_linearly():
    m = make(bin_ramp_steps=4, bin_weight=12.5)
    weights = []
    for step in (0, 1, 2, 4, 10):
        m.step = step
        weights.append(m.bin_weight())
    assert weights == [0.0, 3.125, 6.25, 12.5, 12.5]
    off = make(binarization_loss=False)
    off.step = 10
    assert off.bin_weight() == 0.0


def test_mask_losses_on_pooled_masks_and_their_switches():
    m = make(mask_loss_pool=None)  # pooled by the smoke MAE's patch, 8 px: a 4 x 4 grid
    assert m.mask_loss_window == m.mae.patch_size == 8
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 0, 0] = 0.4  # one faint pixel: its tile's max-pool is 0.4
    full = m.mask_losses(mask)
    plain = make(pooled_losses=False).mask_losses(mask)
    assert float(plain["bin"]) == pytest.approx(0.4 / 1024)
    assert float(full["bin"]) == pytest.approx(0.4 / 1024 + 0.4 / 16 + 0.4 / 64 / 16)  # + max-pooled + avg-pooled
    official = make().mask_losses(mask)  # smoke follows the official fixed window of 16 px: a 2 x 2 grid
    assert float(official["bin"]) == pytest.approx(0.4 / 1024 + 0.4 / 4 + 0.4 / 256 / 4)
    assert float(plain["min"]) == pytest.approx(0.05 - 0.4 / 1024)
    m_on, m_off = make(binarization_loss=False), make(min_mask_loss=False, binarization_loss=False)
    m_on.step = m_off.step = 10_000  # λ_bin would be at its full value
    s_on = {k: float(v) for k, v in m_on.segmenter_step(batch_of()).items()}
    s_off = {k: float(v) for k, v in m_off.segmenter_step(batch_of()).items()}
    assert s_on["min"] > 0 or s_on["area"] >= 0.05
    assert s_on["loss"] == pytest.approx(s_on["adv"] + 100 * s_on["min"], rel=1e-5)  # no L_bin
    assert s_off["loss"] == pytest.approx(s_off["adv"], rel=1e-5)  # neither


def test_shift_and_discriminator_input_switches():
    assert torch.count_nonzero(make(max_shift=0.0).draw_offsets(16)) == 0  # the "no shift" row
    torch.manual_seed(0)
    offsets = make(max_shift=0.25).draw_offsets(500)
    assert offsets.abs().max() == 8 and offsets.min() == -8  # Δ·size = 8 px
    out = {k: torch.full((1,), float(i)) for i, k in enumerate(["image", "autoencoded", "composed", "shifted", "copy_paste"])}
    expected = {
        ("both", "both"): (["autoencoded", "composed"], ["shifted", "copy_paste"]),
        ("x+composed", "both"): (["image", "composed"], ["shifted", "copy_paste"]),
        ("composed", "composed"): (["composed"], ["shifted"]),
        ("ae", "both"): (["autoencoded"], ["shifted", "copy_paste"]),
    }
    for (real, fake), (want_real, want_fake) in expected.items():
        m = make(disc_real=real, disc_fake=fake)
        got_real, got_fake = m.discriminator_sets(out)
        assert [t.item() for t in got_real] == [out[k].item() for k in want_real]
        assert [t.item() for t in got_fake] == [out[k].item() for k in want_fake]
    # no shift: x̂_δ = x̂₀ and copy-paste = x̃, so the thesis keeps x̂₀ as fake and x̃ as real only
    assert make(max_shift=0.0).discriminator_set_names() == (["autoencoded"], ["shifted"])
    with pytest.raises(ValueError, match="no real images"):
        make(max_shift=0.0, disc_real="composed").discriminator_set_names()


def test_conv_discriminator_and_bf16_switch_on_cpu():
    m = make(discriminator="conv")
    assert m.disc_features is None
    stats = m.discriminator_step(batch_of())
    assert torch.isfinite(torch.as_tensor(stats["loss"]))
    with pytest.warns(UserWarning, match="autocast_bf16 needs a CUDA device"):
        make(autocast_bf16=True)


def test_compile_and_channels_last_switches_train_and_match_the_eager_decoder():
    eager, compiled = make(), make(compile=True, channels_last=True)
    x = images()
    latent = eager.encode_mae(x)
    grid = (x.shape[-2] // eager.mae.patch_size,) * 2
    patch_mask = torch.rand(2, grid[0] * grid[1])
    torch.testing.assert_close(compiled.decode_mae(latent, patch_mask, grid), eager.decode_mae(latent, patch_mask, grid),
                               atol=1e-4, rtol=1e-4)
    for step in (compiled.discriminator_step, compiled.segmenter_step):  # the compiled decoder has a backward
        assert torch.isfinite(torch.as_tensor(step(batch_of())["loss"]))


# data and inference


def test_random_resized_crop():
    x = images(3, 40)
    assert torch.allclose(random_resized_crop(x, size=40, scale=(1, 1), ratio=(1, 1)), x, atol=1e-5)
    out = random_resized_crop(x, size=32, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 3, 32, 32)
    other = random_resized_crop(x, size=32, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(out, other)


def test_predict_any_size_and_sample_grid():
    m = make()
    masks = m.predict(torch.rand(2, 3, 37, 45))
    assert masks.shape == (2, 1, 37, 45) and 0 <= masks.min() and masks.max() <= 1
    grid = m.sample()
    assert grid.shape == (1, 3, 5 * 34 - 2, 3 * 34 - 2)  # rows x, mask, b̂, x̂_δ, copy-paste; 3 columns


def test_missing_mae_run_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="train mae --preset small"):
        make(mae_run=str(tmp_path / "nothing"))


def test_smoke_training_writes_a_checkpoint_that_reloads(tmp_path, monkeypatch):
    from workbench import methods
    from workbench.train import Trainer, load_method

    monkeypatch.setitem(methods.METHODS, MOVE.name, MOVE)
    method = make()
    trainer = Trainer(method, out_dir=tmp_path / "run", progress=False, tensorboard=False)
    history = trainer.fit()
    assert history[-1]["step"] == SMOKE.steps
    assert {"discriminator/loss", "segmenter/adv", "segmenter/area", "segmenter/lambda_bin"} <= set(history[-1])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["method"] == "move"
    from safetensors.torch import load_file

    ckpt = sorted((tmp_path / "run" / "checkpoints").iterdir())[-1]
    saved = {k.split(".", 1)[0] for k in load_file(str(ckpt / "modules.safetensors"))}
    assert saved == {"head", "discriminator"}  # the frozen MAE and extractor are rebuilt from the config
    assert (tmp_path / "run" / "samples").is_dir()
    reloaded = load_method(tmp_path / "run")
    assert isinstance(reloaded, MOVE) and reloaded.step == SMOKE.steps
    for (k, a), b in zip(method.head.state_dict().items(), reloaded.head.state_dict().values()):
        assert torch.equal(a, b), k
    x = images(2)
    assert torch.allclose(reloaded.predict(x), method.predict(x), atol=1e-6)


def test_config_checks():
    with pytest.raises(ValueError, match="max_shift"):
        MOVEConfig(max_shift=0.6)
    with pytest.raises(ValueError, match="multiple of"):
        make(size=36)
