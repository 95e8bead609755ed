"""MOVE bundles (export and load from anywhere) and MOVE on numpy images (mask, views, D's score)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from workbench.methods.mae import PRESETS as MAE_PRESETS
from workbench.methods.mae import MAEPretraining
from workbench.methods.move import PRESETS, MOVE
from workbench.methods import move_explore as mx
from workbench.methods.move_assets import export_move_bundle, load_move, resolve_mae_run

# helpers


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-step smoke MAE run and a 2-step smoke MOVE run trained through it."""
    from workbench.train import Trainer

    root = tmp_path_factory.mktemp("move-runs")
    torch.manual_seed(0)
    mae = MAEPretraining(dataclasses.replace(MAE_PRESETS["smoke"], steps=2, checkpoint_every=2))
    Trainer(mae, out_dir=root / "mae", progress=False, tensorboard=False).fit()
    config = dataclasses.replace(PRESETS["smoke"], mae_run=str(root / "mae"), steps=2, checkpoint_every=2,
                                 sample_every=0, ema_beta=0.9)
    move = MOVE(config)
    Trainer(move, out_dir=root / "move", progress=False, tensorboard=False).fit()
    return root, move.eval()


@pytest.fixture(scope="module")
def smoke_move():
    torch.manual_seed(0)
    return MOVE(PRESETS["smoke"]).eval()  # random MAE, head and D; MOVE's size 32


def _scene(size=48, seed=3):
    rng = np.random.default_rng(seed)
    image = rng.random((size, size, 3), dtype=np.float32) * 0.3
    mask = np.zeros((size, size), bool)
    mask[12:30, 16:34] = True
    image[mask] = (0.9, 0.3, 0.1)
    return image, mask


# bundles


def test_bundle_loads_from_any_working_directory(runs, tmp_path, monkeypatch):
    root, trained = runs
    monkeypatch.chdir(tmp_path)
    bundle = export_move_bundle(move_run=root / "move", out="bundle")
    config = json.loads((bundle / "move" / "config.json").read_text())["config"]
    assert config["mae_run"] == "bundle/mae"  # relative to the working directory it was made in
    assert sorted(p.name for p in (bundle / "move").iterdir()) == ["config.json", "ema.safetensors",
                                                                  "modules.safetensors", "state.json"]
    from safetensors.torch import load_file

    assert all(t.dtype == torch.float16 for t in load_file(str(bundle / "mae" / "modules.safetensors")).values())
    elsewhere = tmp_path / "deep" / "elsewhere"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # "bundle/mae" does not exist here: found above the checkpoint instead
    loaded = load_move(tmp_path / "bundle")
    assert isinstance(loaded, MOVE) and loaded.step == 2 and "head" in loaded.ema
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(loaded.predict(x), trained.predict(x), atol=2e-3)  # float16 MAE: tiny differences
    for a, b in zip(loaded.discriminator.state_dict().values(), trained.discriminator.state_dict().values()):
        assert torch.equal(a, b)


def test_bundle_errors(runs, tmp_path):
    root, _ = runs
    with pytest.raises(FileNotFoundError, match="no MOVE checkpoint at"):
        load_move(tmp_path / "nothing")
    from workbench.train.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="method 'mae', not 'move'"):
        load_move(root / "mae")
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError):
        export_move_bundle(move_run=root / "move", out=tmp_path / "taken")
    with pytest.raises(FileNotFoundError, match="was not found; looked in: gone/mae"):
        resolve_mae_run("gone/mae", checkpoint=tmp_path)


# MOVE on numpy images


def test_model_shift_and_predicted_mask(smoke_move):
    assert mx.model_shift(4, 10, shape=(128, 128), size=64) == (2, 5)
    assert mx.model_shift(-48, 48, shape=(96, 256), size=64) == (-32, 12)
    image, _ = _scene()
    soft = mx.predict_mask(smoke_move, image)
    assert soft.shape == (48, 48) and soft.dtype == np.float32 and 0 <= soft.min() <= soft.max() <= 1
    with pytest.raises(ValueError, match="RGB"):
        mx.predict_mask(smoke_move, image[..., 0])


def test_views_follow_the_shift_and_keep_the_image_size(smoke_move):
    image, mask = _scene()
    still = mx.compose_views(smoke_move, image, mask, dy=0, dx=0)
    moved = mx.compose_views(smoke_move, image, mask, dy=6, dx=12)
    assert moved.offset == (4, 8) and moved.size == 32  # image px -> MOVE's 32 px
    for view in (moved.background, moved.shifted, moved.copy_paste):
        assert view.shape == (48, 48, 3) and view.dtype == np.float32
    assert np.abs(moved.shifted - still.shifted).max() > 0.1
    with pytest.raises(ValueError, match="the mask is 10×10 px"):
        mx.compose_views(smoke_move, image, np.ones((10, 10), bool), dy=0, dx=0)


def test_scores_are_deterministic_and_change_with_the_shift(smoke_move):
    image, mask = _scene()
    first = mx.shift_scores(smoke_move, image, mask, [(0, 0), (0, 8), (4, -8)])
    again = mx.shift_scores(smoke_move, image, mask, [(0, 0), (0, 8), (4, -8)])
    assert first.shape == (3,) and np.array_equal(first, again)  # no DiffAugment at inference
    assert np.ptp(first) > 1e-4
    # a batch of shifts scores each as alone
    alone = mx.shift_scores(smoke_move, image, mask, [(0, 8)])
    assert np.allclose(alone[0], first[1], atol=1e-5)
    verdicts = mx.verdicts(smoke_move, image, mask, dy=0, dx=12)
    assert set(verdicts) == {"shifted", "composed", "copy_paste", "real"}
    assert np.isclose(verdicts["shifted"], first[1], atol=1e-5)
    assert np.isclose(verdicts["composed"], first[0], atol=1e-5)


def test_score_curve_spans_the_axis_symmetrically(smoke_move):
    image, mask = _scene()
    curve = mx.score_curve(smoke_move, image, mask, axis="dy", held=6, max_shift=24)
    assert list(curve["shift"]) == [s * 1.5 for s in range(-16, 17)] and set(curve["axis"]) == {"dy"}
    thin = mx.score_curve(smoke_move, image, mask, axis="dx", held=0, max_shift=24, points=9)
    assert len(thin) <= 9 and 0.0 in list(thin["shift"]) and thin["score"].nunique() > 1
    alone = mx.shift_scores(smoke_move, image, mask, [(0, 4)])[0]
    assert np.isclose(thin.loc[thin["shift"] == 6.0, "score"].item(), alone, atol=1e-5)
    with pytest.raises(ValueError, match="axis"):
        mx.score_curve(smoke_move, image, mask, axis="dz", held=0, max_shift=8)
