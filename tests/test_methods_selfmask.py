"""SelfMask on MOVE: a head on MOVE's frozen features, trained on MOVE's binarised masks."""

import dataclasses

import pytest
import torch

from workbench.methods.selfmask import PRESETS, SelfMask
from workbench.ops.mask_losses import dice_loss
from workbench.train.checkpoint import CheckpointError, load_method_weights, read_checkpoint
from workbench.train.config import config_from_dict
from workbench.train.launch import main as train_main
from workbench.train.trainer import Trainer

# helpers


@pytest.fixture(scope="module")
def move_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("move")
    assert train_main("move", ["--preset", "smoke", "--out", str(out), "--no-progress", "--no-tensorboard"]) == 0
    return out


def make(move_run, **overrides) -> SelfMask:
    torch.manual_seed(0)
    return SelfMask(dataclasses.replace(PRESETS["smoke"], move_checkpoint=str(move_run), **overrides), device="cpu")


def images(n=4, size=32, seed=0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))  # (N, 3, S, S)


# tests


def test_dice_loss_by_hand():
    target = torch.zeros(1, 1, 2, 2)
    target[..., 0, :] = 1  # 2 of 4 pixels
    assert dice_loss(target, target).item() == pytest.approx(1 - 5 / 5)
    assert dice_loss(1 - target, target).item() == pytest.approx(1 - 1 / 5)
    assert dice_loss(torch.full_like(target, 0.5), target).item() == pytest.approx(1 - 3 / 5)


def test_pseudo_masks_are_moves_binarised_masks(move_run):
    method = make(move_run)
    x = images()
    soft = method.teacher.predict(x)
    assert torch.equal(method.pseudo_masks(x), (soft >= 0.5).float())
    assert method.extractor is method.teacher.extractor  # the same frozen features
    assert list(method.modules()) == ["head"] and list(method.optimizers()) == ["opt"]  # only the head is trained


def test_prepare_moves_image_and_mask_together(move_run, monkeypatch):
    method = make(move_run, color_jitter=False, crop_scale=(0.3, 0.6))
    # a pseudo-mask that can be read off the image, so that the crop and flip can be checked
    monkeypatch.setattr(method, "pseudo_masks", lambda x: (x[:, :1] > 0.5).float())
    x0 = torch.nn.functional.interpolate(images(8, size=8), size=32, mode="nearest")  # (8, 3, 32, 32) in blocks
    x0[:, 0] = (x0[:, 0] > 0.5).float()  # a binary red channel: resampled exactly like the mask
    torch.manual_seed(1)
    x, target = method.prepare({"image": x0})
    assert x.shape == (8, 3, 32, 32) and target.shape == (8, 1, 32, 32)
    assert set(target.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(target, (x[:, :1] >= 0.5).float())  # the mask follows the cropped, flipped image
    assert not torch.equal(target, method.pseudo_masks(x0))  # ... which did move
    # without crop and jitter, only flips remain: each sample is the image or its mirror
    method = make(move_run, color_jitter=False, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))
    torch.manual_seed(2)
    x, target = method.prepare({"image": x0})
    pm = method.pseudo_masks(x0)
    flipped = [bool(torch.allclose(x[i], x0[i].flip(-1), atol=1e-5)) for i in range(8)]
    for i in range(8):
        expected_x, expected_m = (x0[i].flip(-1), pm[i].flip(-1)) if flipped[i] else (x0[i], pm[i])
        assert torch.allclose(x[i], expected_x, atol=1e-5) and torch.equal(target[i], expected_m)
    assert 0 < sum(flipped) < 8


def test_training_fits_the_teacher(move_run, monkeypatch):
    torch.set_num_threads(1)
    method = make(move_run, color_jitter=False, flip=False, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), lr=1e-2)
    # a teacher with half of each image in its masks, in blocks the size of a feature patch (the 6-step smoke
    # MOVE itself marks almost nothing, which any head fits without learning)
    monkeypatch.setattr(method, "pseudo_masks", lambda x: (x[:, :1] > 0.5).float())
    batch = {"image": torch.nn.functional.interpolate(images(8, size=4, seed=3), size=32, mode="nearest")}
    assert 0.3 < float(method.pseudo_masks(batch["image"]).mean()) < 0.7
    first = method.segmenter_step(batch)
    for _ in range(40):
        last = method.segmenter_step(batch)
    assert last["loss"] < 0.5 * first["loss"]
    assert last["iou_to_teacher"] > max(0.9, first["iou_to_teacher"])
    agree = ((method.predict(batch["image"]) >= 0.5) == (method.pseudo_masks(batch["image"]) > 0.5)).float().mean()
    assert agree > 0.9  # in evaluation mode (BatchNorm running statistics)


def test_trains_saves_and_reloads(move_run, tmp_path):
    method = make(move_run)
    history = Trainer(method, out_dir=tmp_path, progress=False, tensorboard=False).fit()
    assert history[-1]["step"] == 4 and "segmenter/dice" in history[-1] and "segmenter/iou_to_teacher" in history[-1]
    assert (tmp_path / "samples").is_dir()
    checkpoint = read_checkpoint(tmp_path, method="selfmask")
    assert checkpoint.config["move_checkpoint"] == str(move_run)
    again = SelfMask(config_from_dict(SelfMask.Config, checkpoint.config), device="cpu")
    load_method_weights(again, checkpoint)
    x = torch.rand(2, 3, 37, 45)  # any size
    method.eval(), again.eval()
    out = again.predict(x)
    assert out.shape == (2, 1, 37, 45) and 0 <= out.min() and out.max() <= 1
    assert torch.allclose(out, method.predict(x))
    assert not torch.allclose(out, method.teacher.predict(x))  # its own head, not MOVE's
    grid = method.sample()
    assert grid.shape[:2] == (1, 3) and grid.shape[2] == 3 * 32 + 2 * 2  # rows: image, pseudo-mask, prediction
    with pytest.raises(CheckpointError, match="selfmask"):  # a SelfMask run is not a teacher
        make(tmp_path)


def test_errors_are_clear(move_run, tmp_path):
    with pytest.raises(ValueError, match="--move-checkpoint"):
        SelfMask(PRESETS["smoke"])
    with pytest.raises(FileNotFoundError, match="train move"):
        make(tmp_path / "missing")
    with pytest.raises(ValueError, match="patch size"):
        make(move_run, size=36)
    with pytest.raises(ValueError, match="crop_scale"):
        dataclasses.replace(PRESETS["smoke"], crop_scale=(0.5, 1.5))
