"""MAE pre-training method: a smoke run with the shared trainer, reloading, schedule and config checks."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.methods import METHODS
from workbench.methods.mae import PRESETS, MAEConfig, MAEPretraining, load_mae_from_run, lr_at, param_groups
from workbench.methods.move import MOVE
from workbench.nets.features import build_feature_extractor
from workbench.nets.mae import load_mae
from workbench.train import CheckpointError, Trainer
from workbench.train.checkpoint import write_checkpoint


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke preset trained by the shared trainer (6 steps, checkpoints at 3 and 6)."""
    out = tmp_path_factory.mktemp("mae") / "run"
    torch.manual_seed(0)
    method = MAEPretraining(PRESETS["smoke"])
    history = Trainer(method, out_dir=out, progress=False, tensorboard=False).fit()
    return out, method, history


def test_smoke_run_end_to_end(smoke_run):
    out, method, history = smoke_run
    assert [h["step"] for h in history] == [2, 4, 6]
    assert {"mae/loss", "mae/masked_mse", "mae/visible_mse", "mae/lr"} <= set(history[-1])
    assert all(np.isfinite(v) for h in history for v in h.values())
    assert history[-1]["mae/loss"] == pytest.approx(history[-1]["mae/masked_mse"])  # visible weight 0 in smoke
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000003", "step-0000006"]
    grid = np.asarray(Image.open(out / "samples" / "step-0000006.png"))
    # 4 rows (input, masked, MAE reconstruction, soft inpainting) x 2 images of 32 px, 2 px gaps, 2 px border
    assert grid.shape == (2 + 4 * 32 + 3 * 2 + 2, 2 + 2 * 32 + 2 + 2, 3) and grid.std() > 0
    assert json.loads((out / "config.json").read_text())["method"] == "mae"


def test_reload_as_mae_and_as_feature_extractor(smoke_run):
    out, method, _ = smoke_run
    trained = method.module("mae")
    for loaded in (load_mae_from_run(out), MOVE(replace(MOVE.presets["smoke"], mae_run=None, mae_weights=str(out))).mae):
        assert not loaded.training and loaded.img_size == 32 and loaded.patch_size == 8
        for key, value in trained.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    features = build_feature_extractor("mae", mae=load_mae_from_run(out))
    assert features(x).shape == (2, 192, 4, 4)
    with pytest.raises(IsADirectoryError, match="load_mae_from_run"):
        load_mae(out)
    older = load_mae_from_run(out / "checkpoints" / "step-0000003")
    assert not torch.equal(older.decoder_pred.weight, trained.decoder_pred.weight)


def test_reload_refuses_other_methods(tmp_path):
    from workbench.methods.dcgan import DCGAN

    dcgan = DCGAN(DCGAN.presets["smoke"])
    write_checkpoint(tmp_path / "ck", method=dcgan, state={"step": 0})
    with pytest.raises(CheckpointError, match="method 'dcgan', not 'mae'"):
        load_mae_from_run(tmp_path / "ck")


def test_train_command(tmp_path, capsys):
    from workbench.train.launch import main

    assert METHODS["mae"] is MAEPretraining
    out = tmp_path / "run"
    assert main("mae", ["--preset", "smoke", "--out", str(out), "--device", "cpu", "--no-progress",
                        "--no-tensorboard", "--steps", "3", "--visible-loss-weight", "0.5"]) == 0
    assert "done:" in capsys.readouterr().err
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["step"] == 3 and stats[-1]["mae/loss"] > stats[-1]["mae/masked_mse"]
    assert load_mae_from_run(out).img_size == 32


def test_schedule_and_weight_decay_groups():
    config = MAEConfig(lr=1e-3, min_lr=1e-5, warmup_steps=10, steps=110)
    assert lr_at(0, config) == pytest.approx(1e-4) and lr_at(9, config) == pytest.approx(1e-3)
    assert lr_at(60, config) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)
    assert lr_at(110, config) == pytest.approx(1e-5) and lr_at(500, config) == pytest.approx(1e-5)
    assert all(lr_at(s, config) >= lr_at(s + 1, config) for s in range(10, 120))
    method = MAEPretraining(PRESETS["smoke"])
    decay, no_decay = param_groups(method.mae, weight_decay=0.05)
    names = {id(p): n for n, p in method.mae.named_parameters()}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {names[id(p)] for p in no_decay["params"]} >= {"norm.weight", "blocks.0.attn.qkv.bias", "decoder_pred.bias"}
    assert {"cls_token", "mask_token", "blocks.0.attn.qkv.weight"} <= {names[id(p)] for p in decay["params"]}
    assert "pos_embed" not in {names[id(p)] for group in (decay, no_decay) for p in group["params"]}  # fixed
    assert method.opt.defaults["betas"] == (0.9, 0.95)
    assert math.isclose(PRESETS["paper"].lr, 1.5e-4 * PRESETS["paper"].batch_size / 256)


def test_config_is_checked():
    with pytest.raises(ValueError, match="arch"):
        MAEConfig(arch="mae_huge")
    with pytest.raises(ValueError, match="mask_ratio"):
        MAEConfig(mask_ratio=1.0)
    with pytest.raises(ValueError, match="visible_loss_weight"):
        MAEConfig(visible_loss_weight=-1)
    assert PRESETS["paper"].arch == "mae_vit_large_patch16" and PRESETS["paper"].size == 224
