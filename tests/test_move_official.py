"""MOVE against the official code (issue 13): reference-tensor parity, the official training choices, the released model."""

import argparse
import dataclasses
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workbench.bench.move_parity import DEFAULT_FIXTURES, composer_checks, find_fixtures, mask_loss_checks
from workbench.cli import main
from workbench.methods.move import MOVE, PRESETS, iterations_for_epochs
from workbench.methods.move_official import OfficialMOVE, head_from_official, head_key_map, load_official_move
from workbench.nets.segmenter import official_head, official_head_widths
from workbench.nets.weights import CheckpointError
from workbench.ops import random_offsets, translate

FIXTURES = DEFAULT_FIXTURES.resolve()
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "composer.json").is_file(),
                                    reason=f"the official MOVE fixtures are not in {FIXTURES}")
SMOKE = PRESETS["smoke"]


# parity with the reference tensors


@needs_fixtures
def test_bench_move_parity_passes_every_check(tmp_path, capsys):
    assert main(["bench", "move-parity", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    result = re.search(r"RESULT move-parity checks=(\d+) failed=(\d+) max_ratio=(\S+)", out)
    assert result, out
    assert int(result.group(1)) >= 27 and int(result.group(2)) == 0 and float(result.group(3)) <= 1
    rows = json.loads((tmp_path / "move-parity.json").read_text())["table"]
    assert {r["item"].split(":")[0] for r in rows} >= {"composer", "composer gan", "composer mse", "segmenter head"}


@needs_fixtures
def test_the_fixtures_tell_the_former_workbench_behaviour_apart():
    rows = {r["item"]: r for r in composer_checks(FIXTURES, overrides={"shift_fill": "black"})}
    shifted = rows["composer gan: real_ae_shifted"]
    assert shifted["max_abs_diff"] > 100 * shifted["tolerance"]  # the black strip changes the whole autoencoding
    grad = rows["composer gan: grad_mask_sum_composed"]
    assert grad["max_abs_diff"] > 100 * grad["tolerance"]


def test_missing_fixtures_are_a_clear_error(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="--fixtures"):
        find_fixtures(tmp_path)
    assert main(["bench", "move-parity", "--fixtures", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err


@needs_fixtures
def test_mask_losses_on_the_wrong_mask_fail_the_fixture(monkeypatch):
    import workbench.ops as ops

    monkeypatch.setattr(ops, "translate", lambda x, offset, **kw: x)  # "shifted" then means the unshifted mask
    rows = {r["item"]: r for r in mask_loss_checks(FIXTURES)}
    assert rows["mask losses default, on org: total and 9 terms, 6 steps"]["max_abs_diff"] == 0
    wrong = rows["mask losses default, on shifted: total and 9 terms, 6 steps"]
    assert wrong["max_abs_diff"] > 100 * wrong["tolerance"]


# the official choices in the paper preset, the former ones as switches


def test_shift_fill_is_the_mean_colour_or_black():
    x = torch.rand(2, 3, 8, 8)
    offset = torch.tensor([[0, 3], [-2, 0]])
    mean = (0.485, 0.456, 0.406)
    out = translate(x, offset, fill=mean)
    assert torch.equal(out[0, :, :, :3], torch.tensor(mean).view(3, 1, 1).expand(3, 8, 3))
    assert torch.equal(out[1, :, 6:], torch.tensor(mean).view(3, 1, 1).expand(3, 2, 8))
    assert torch.equal(out[0, :, :, 3:], x[0, :, :, :5])
    assert torch.equal(translate(x, offset, fill=0.0), translate(x, offset))
    with pytest.raises(ValueError, match="one per channel"):
        translate(x, offset, fill=(0.1, 0.2))


def test_rounded_shift_sampling_has_endpoints_at_half_probability():
    n, limit = 200_000, 4  # Δ·S = 0.125 · 32 = 4
    g = torch.Generator().manual_seed(0)
    offsets = random_offsets(n, max_shift=0.125, size=32, generator=g, sampling="rounded")
    assert offsets.min() == -limit and offsets.max() == limit
    counts = torch.bincount((offsets + limit).flatten(), minlength=2 * limit + 1).double() / (2 * n)
    expected = torch.full((2 * limit + 1,), 1 / (2 * limit), dtype=torch.float64)
    expected[0] = expected[-1] = 1 / (4 * limit)
    assert torch.allclose(counts, expected, atol=0.003), counts  # 3 standard errors ~ 0.002
    uniform = random_offsets(n, max_shift=0.125, size=32, generator=g, sampling="uniform")
    counts = torch.bincount((uniform + limit).flatten(), minlength=2 * limit + 1).double() / (2 * n)
    assert torch.allclose(counts, torch.full_like(counts, 1 / (2 * limit + 1)), atol=0.003)
    assert PRESETS["paper"].shift_sampling == "rounded" and PRESETS["small"].shift_sampling == "uniform"


def test_draw_offsets_follow_the_config():
    g = torch.Generator().manual_seed(1)
    m = MOVE(dataclasses.replace(SMOKE, shift_sampling="rounded"))
    offsets = m.draw_offsets(4000, generator=g)  # Δ·S = 0.125 · 32 = 4
    ends = (offsets.abs() == 4).double().mean()
    assert 0.08 < ends < 0.17  # 2/16 = 0.125 with rounding; the uniform draw would give 2/9 = 0.22


def test_training_length_is_counted_in_official_epochs():
    assert iterations_for_epochs(80) == 13_160  # 80 · (10,553 // 32) batches, one D and one S step per iteration
    assert PRESETS["paper"].steps == 13_160 and PRESETS["paper"].batch_size == 32
    assert iterations_for_epochs(1, images=100, batch_size=10) == 5


def test_prepare_flips_half_the_images_and_resamples_bicubic():
    m = MOVE(dataclasses.replace(SMOKE, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0)))
    x = torch.rand(64, 3, 32, 32)
    torch.manual_seed(0)
    out = m.prepare({"image": x})
    flipped = torch.tensor([torch.allclose(o, i.flip(-1), atol=1e-5) for o, i in zip(out, x)])
    kept = torch.tensor([torch.allclose(o, i, atol=1e-5) for o, i in zip(out, x)])
    assert (flipped | kept).all() and 16 < int(flipped.sum()) < 48
    m_off = MOVE(dataclasses.replace(SMOKE, hflip=False, crop_interpolation="bilinear"))
    assert m_off.config.hflip is False
    y = torch.rand(2, 3, 40, 40)
    torch.manual_seed(1)
    bicubic = m.prepare({"image": y})
    torch.manual_seed(1)
    bilinear = m_off.prepare({"image": y})
    assert bicubic.shape == bilinear.shape == (2, 3, 32, 32) and not torch.allclose(bicubic, bilinear, atol=1e-4)


def test_mask_losses_use_the_shifted_mask_by_default():
    assert PRESETS["paper"].mask_loss_on == "shifted" and PRESETS["small"].mask_loss_on == "original"
    for on in ("shifted", "original"):
        m = MOVE(dataclasses.replace(SMOKE, mask_loss_on=on))
        seen, composed = [], []
        compose, losses = m.compose, m.mask_losses
        m.compose = lambda x, mask, offset, **kw: composed.append(compose(x, mask, offset, **kw)) or composed[-1]
        m.mask_losses = lambda mask: seen.append(mask) or losses(mask)
        torch.manual_seed(0)
        m.segmenter_step({"image": torch.rand(4, 3, 32, 32)})
        (images,) = composed
        assert seen[0] is images["shifted_mask" if on == "shifted" else "mask"]
        assert not torch.equal(images["shifted_mask"], images["mask"])
    m = MOVE(dataclasses.replace(SMOKE, max_weight=10.0, max_area=0.01))
    losses = m.mask_losses(torch.full((2, 1, 32, 32), 0.5))
    assert losses["max"] > 0 and set(losses) == {"bin", "min", "max"}


def test_the_official_head_in_paper_and_the_workbench_head_in_small():
    head = official_head(in_dim=384, patch_size=8)
    convs = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [192, 128, 128, 128, 1] == official_head_widths(384, 8) + [1]
    assert all(c.bias is not None and c.padding_mode == "zeros" for c in convs)
    assert head.norm.eps == 1e-6
    assert all(m.negative_slope == 0.01 for m in head.modules() if isinstance(m, torch.nn.LeakyReLU))
    assert official_head_widths(1024, 16) == [512, 256, 128, 128, 128]  # the MAE-features head
    small = MOVE(dataclasses.replace(PRESETS["small"], mae_run=None, mae_weights=None))
    assert small.head.blocks[0][1].bias is None and small.head.blocks[0][1].padding_mode == "replicate"
    assert "head.norm.weight" in {f"head.{k}" for k in small.head.state_dict()}


def test_mae_features_read_the_final_normalised_latent():
    m = MOVE(SMOKE)  # features="mae", mae_features="latent"
    assert isinstance(m.head.norm, torch.nn.Identity)  # the official head has no LayerNorm on MAE features
    x = torch.rand(2, 3, 32, 32)
    features, latent = m.features_of(x)
    grid = latent[:, 1:].transpose(1, 2).reshape(2, -1, 4, 4)
    assert torch.allclose(features, grid) and torch.allclose(m.extractor(x), grid, atol=1e-5)
    block = MOVE(dataclasses.replace(SMOKE, mae_features="block"))
    assert not torch.allclose(block.extractor(x), grid, atol=1e-3)
    assert isinstance(block.head.norm, torch.nn.LayerNorm)


# the released model: a checkpoint made from the official key list, with random tensors


def official_state(flavour: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with every key and shape of an official ckpt["model"] (MAE ones as zero-stride zeros)."""
    keys = json.loads((FIXTURES / "model_state_dict_keys.json").read_text())[flavour]
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, spec in keys.items():
        shape, dtype = spec["shape"], getattr(torch, spec["dtype"])
        if key.startswith("mae_model."):  # not used by prediction; one stored zero per tensor keeps the file small
            state[key] = torch.zeros((), dtype=dtype).expand(shape)
        elif dtype == torch.int64:
            state[key] = torch.zeros(shape, dtype=dtype)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        elif key.endswith("norm.weight") or key.endswith((".2.weight", ".3.1.weight")):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            state[key] = 0.05 * torch.randn(shape, generator=g)
    return state


def reference_masks(state: dict[str, torch.Tensor], x01: torch.Tensor, dino: dict[str, torch.Tensor]) -> torch.Tensor:
    """The official segmenter written out with functional ops from the official key names (no workbench module;
    timm's ViT blocks only, which hold DINO's blocks under the same names)."""
    import timm

    vit = timm.create_model("vit_small_patch8_224", pretrained=False, num_classes=0, dynamic_img_size=True).eval()
    vit.load_state_dict(dino)
    h, w = x01.shape[-2:]
    x = F.pad(x01, (0, -w % 8, 0, -h % 8), mode="reflect")
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        tokens = F.conv2d((x - mean) / std, dino["patch_embed.proj.weight"], dino["patch_embed.proj.bias"], stride=8)
        gh, gw = tokens.shape[-2:]
        tokens = torch.cat([dino["cls_token"], tokens.flatten(2).transpose(1, 2)], dim=1)  # (1, 1 + gh·gw, 384)
        # DINO's interpolate_pos_encoding (the official extractor's prepare_tokens), not timm's resize
        table = dino["pos_embed"][:, 1:].reshape(1, 28, 28, 384).permute(0, 3, 1, 2)
        table = F.interpolate(table, scale_factor=((gh + 0.1) / 28, (gw + 0.1) / 28), mode="bicubic")
        tokens = tokens + torch.cat([dino["pos_embed"][:, :1], table.flatten(2).transpose(1, 2)], dim=1)
        for block in vit.blocks[:11]:
            tokens = block(tokens)
        s = lambda k: state[f"segmenter.{k}"]  # noqa: E731
        tokens = F.layer_norm(tokens, (384,), s("feature_extractor.norm.weight"), s("feature_extractor.norm.bias"), 1e-6)
        y = tokens[:, 1:].transpose(1, 2).reshape(1, 384, x.shape[-2] // 8, x.shape[-1] // 8)
        for i, conv in ((0, 1), (1, 1), (2, 1), (3, 0)):
            if conv:
                y = F.interpolate(y, scale_factor=2, mode="nearest")
            p = f"segmenter_head.model.{i}."
            y = F.conv2d(y, s(p + f"{conv}.weight"), s(p + f"{conv}.bias"), padding=1)
            bn = p + f"{conv + 1}."
            y = F.batch_norm(y, s(bn + "running_mean"), s(bn + "running_var"), s(bn + "weight"), s(bn + "bias"),
                             False, 0.0, 1e-5)
            y = F.leaky_relu(y, 0.01)
        y = torch.sigmoid(F.conv2d(y, s("segmenter_head.model.4.weight"), s("segmenter_head.model.4.bias")))
    return y[..., :h, :w]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    if not (FIXTURES / "model_state_dict_keys.json").is_file():
        pytest.skip(f"the official MOVE fixtures are not in {FIXTURES}")
    root = tmp_path_factory.mktemp("official")
    epoch0 = official_state("ckpt_model_epoch0")
    later = {k: v for k, v in epoch0.items() if not k.startswith(("mae_model.", "segmenter.feature_extractor.model."))}
    assert set(later) == set(json.loads((FIXTURES / "model_state_dict_keys.json").read_text())["ckpt_model_epoch_ge1"])
    args = argparse.Namespace(feature_extractor="dino_vits8", extractor_block_layer=-2, segmenter_head="conv_minc128")
    torch.save({"args": args, "epoch": 0, "model": epoch0, "optimizer": {"state": {}, "param_groups": []}},
               root / "checkpoint-0.pth")
    torch.save({"args": args, "epoch": 5, "model": later}, root / "checkpoint-5.pth")
    torch.save({"args": args}, root / "checkpoint-5.args")
    dino = {k.removeprefix("segmenter.feature_extractor.model."): v for k, v in epoch0.items()
            if k.startswith("segmenter.feature_extractor.model.")}
    torch.save(dino, root / "dino.pth")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(images / "a.png"), rng.integers(0, 256, (20, 27, 3), dtype=np.uint8))
    return {"root": root, "epoch0": epoch0, "dino": dino, "images": images}


def test_official_head_keys_map_both_ways(checkpoints):
    head = head_from_official(checkpoints["epoch0"])
    mapping = head_key_map(head)
    assert len(mapping) == 32 and mapping["segmenter.segmenter_head.model.4.weight"] == "out.weight"
    assert mapping["segmenter.segmenter_head.model.3.0.weight"] == "blocks.3.0.weight"
    assert mapping["segmenter.feature_extractor.norm.bias"] == "norm.bias"
    for official, ours in mapping.items():
        assert torch.equal(head.state_dict()[ours], checkpoints["epoch0"][official])


def test_load_official_move_from_both_checkpoint_flavours(checkpoints):
    root, image = checkpoints["root"], cv2.imread(str(checkpoints["images"] / "a.png"))[..., ::-1]
    x = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()  # (1, 3, 20, 27)
    first = load_official_move(root / "checkpoint-0.pth", size=None)  # DINO from the checkpoint
    later = load_official_move(root / "checkpoint-5.pth", root / "dino.pth", size=None)  # DINO from a file
    assert isinstance(first, OfficialMOVE) and first.extractor.block == 10 and first.args["segmenter_head"] == "conv_minc128"
    expected = reference_masks(checkpoints["epoch0"], x, checkpoints["dino"])
    for model in (first, later):
        mask = model.predict(x)
        assert mask.shape == (1, 1, 20, 27)
        assert torch.allclose(mask, expected, atol=1e-5), (mask - expected).abs().max()
    resized = first.predict(x, size=16)  # shorter side 16 px, then back to 20 x 27
    assert resized.shape == (1, 1, 20, 27) and not torch.allclose(resized, expected, atol=1e-3)


def test_official_args_are_read_from_the_args_file_and_overridable(checkpoints, tmp_path):
    root = checkpoints["root"]
    state = {k: v for k, v in checkpoints["epoch0"].items() if not k.startswith("mae_model.")}
    torch.save({"model": state}, tmp_path / "checkpoint-1.pth")
    torch.save({"args": argparse.Namespace(feature_extractor="dino_vits8", extractor_block_layer=-3)},
               tmp_path / "checkpoint-1.args")
    assert load_official_move(tmp_path / "checkpoint-1.pth").extractor.block == 9
    assert load_official_move(tmp_path / "checkpoint-1.pth", args={"extractor_block_layer": -2}).extractor.block == 10
    with pytest.raises(CheckpointError, match="'mae' features"):
        load_official_move(root / "checkpoint-0.pth", args={"feature_extractor": "mae"})


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_official_checkpoints_with_code_or_foreign_keys_are_refused(checkpoints, tmp_path, capsys):
    torch.save({"model": {"segmenter.feature_extractor.norm.weight": torch.ones(384)}, "args": Payload()},
               tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="Python objects"):
        load_official_move(tmp_path / "evil.pth")
    assert "this must never run" not in capsys.readouterr().out
    state = dict(checkpoints["epoch0"], **{"discriminator.x": torch.zeros(1)})
    torch.save({"model": state}, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match="discriminator.x"):
        load_official_move(tmp_path / "foreign.pth")


def test_cli_predict_with_an_official_checkpoint(checkpoints, tmp_path, capsys):
    root = checkpoints["root"]
    assert main(["predict", "move", "--official-checkpoint", str(root / "checkpoint-5.pth"), "--features-weights",
                 str(root / "dino.pth"), "--images", str(checkpoints["images"]), "--out", str(tmp_path / "pred"),
                 "--inference-size", "24", "--device", "cpu"]) == 0
    soft = cv2.imread(str(tmp_path / "pred" / "soft" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert soft.shape == (20, 27)  # at the input's size
    with pytest.raises(SystemExit):  # --checkpoint and --official-checkpoint are exclusive
        main(["predict", "move", "--checkpoint", str(root), "--official-checkpoint", str(root / "checkpoint-5.pth"),
              "--images", str(checkpoints["images"]), "--out", str(tmp_path / "x")])
    assert main(["predict", "move", "--official-checkpoint", str(tmp_path / "missing.pth"), "--images",
                 str(checkpoints["images"]), "--out", str(tmp_path / "y")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_configs_saved_before_the_switches_load_with_their_former_behaviour():
    from workbench.methods.move import MOVEConfig
    from workbench.train.config import config_from_dict, config_to_dict
    from workbench.methods.move_assets import SHIPPED_MOVE, load_move

    old = {k: v for k, v in config_to_dict(SMOKE).items() if k not in MOVEConfig.LEGACY_DEFAULTS}
    restored = config_from_dict(MOVEConfig, old)
    assert restored.head_arch == "workbench" and restored.mae_features == "block" and restored.hflip is False
    assert config_from_dict(MOVEConfig, config_to_dict(SMOKE)) == SMOKE  # saved fields win
    if SHIPPED_MOVE.is_dir():  # the shipped assets/move-small still loads and predicts
        move = load_move(SHIPPED_MOVE)
        assert move.config.head_arch == "workbench" and move.predict(torch.rand(1, 3, 64, 64)).shape == (1, 1, 64, 64)


def test_cli_predict_refuses_a_negative_inference_size(checkpoints, tmp_path, capsys):
    root = checkpoints["root"]
    assert main(["predict", "move", "--official-checkpoint", str(root / "checkpoint-5.pth"), "--features-weights",
                 str(root / "dino.pth"), "--images", str(checkpoints["images"]), "--out", str(tmp_path / "pred"),
                 "--inference-size", "-8", "--device", "cpu"]) == 2
    assert "--inference-size" in capsys.readouterr().err and not (tmp_path / "pred").exists()


def test_a_config_saved_before_the_shift_fill_switch_loads_with_the_black_fill_it_was_trained_with():
    from workbench.methods.move import MOVEConfig
    from workbench.train.config import config_from_dict, config_to_dict

    saved = Path(__file__).resolve().parents[1] / "assets" / "move-small" / "move" / "config.json"  # issue 19's
    assert config_from_dict(MOVEConfig, json.loads(saved.read_text())["config"]).shift_fill == "mean"  # as trained
    old = {k: v for k, v in config_to_dict(SMOKE).items() if k != "shift_fill"}
    assert config_from_dict(MOVEConfig, old).shift_fill == "black"
    assert SMOKE.shift_fill == PRESETS["small"].shift_fill == PRESETS["paper"].shift_fill == "mean"  # new runs


def test_official_dino_tokens_resize_the_position_table_as_dino_does(checkpoints):
    from workbench.methods.move_official import dino_position_table, official_dino_features
    from workbench.nets.features import DinoFeatures

    extractor = DinoFeatures("dino_vits8", pretrained=False)
    extractor.vit.load_state_dict(checkpoints["dino"])
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # at 224 x 224 both use the stored table
        torch.testing.assert_close(official_dino_features(extractor, x), extractor(x), rtol=1e-5, atol=1e-5)
        y = x[..., :216, :160]  # another grid: DINO's resize differs from timm's
        assert not torch.allclose(official_dino_features(extractor, y), extractor(y), atol=1e-3)
    table = extractor.vit.pos_embed.detach()
    assert dino_position_table(table, 28, 28) is table
    assert dino_position_table(table, 27, 20).shape == (1, 1 + 27 * 20, 384)
