"""The oracle U-Net method: training through the Trainer, checkpoints, predict, evaluation, bad data."""

import dataclasses

import pytest
import torch

from workbench.eval.oracle import evaluate_oracle, load_or_train_oracle
from workbench.methods import METHODS
from workbench.methods.oracle import OracleConfig, OracleUNet
from workbench.ops.mask_losses import dice_loss, mask_iou
from workbench.train.checkpoint import load_method
from workbench.train.device import seed_everything
from workbench.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def registered(monkeypatch):
    """load_method looks methods up in METHODS; register the oracle for the test (harmless once it is)."""
    monkeypatch.setitem(METHODS, OracleUNet.name, OracleUNet)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The smoke preset trained through the Trainer into a run folder: (method, run folder)."""
    run = tmp_path_factory.mktemp("oracle-run")
    seed_everything(0)
    method = OracleUNet(OracleUNet.presets["smoke"])
    Trainer(method, out_dir=run, progress=False, tensorboard=False).fit()
    return method.eval(), run


def test_smoke_trains_to_a_checkpoint_that_reloads(trained, registered):
    method, run = trained
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-0000002", "step-0000004"]
    assert (run / "samples" / "step-0000004.png").is_file()
    stats = (run / "stats.jsonl").read_text().splitlines()
    assert len(stats) == 2 and '"segmenter/dice"' in stats[-1] and '"segmenter/iou"' in stats[-1]
    assert set(method.ema) == {"net"}
    x = torch.rand(5, 3, 16, 16)
    loaded = load_method(run, method="oracle-unet")
    assert isinstance(loaded, OracleUNet) and loaded.step == 4 and set(loaded.ema) == {"net"}
    assert torch.equal(loaded.predict(x), method.predict(x))
    again = load_or_train_oracle(run / "checkpoints" / "step-0000004")
    assert torch.equal(again.predict(x, batch_size=2), method.predict(x))
    with pytest.warns(UserWarning, match="synthetic:easy"):
        load_or_train_oracle(run, dataset="synthetic:hard")


def test_predict_batches_and_resizes(trained):
    method, _ = trained
    torch.manual_seed(1)
    x = torch.rand(5, 3, 16, 16)  # (B, 3, R, R)
    masks = method.predict(x)
    assert masks.shape == (5, 1, 16, 16) and 0 <= masks.min() and masks.max() <= 1
    assert torch.allclose(method.predict(x, batch_size=2), masks, atol=1e-6)
    assert method.module("net").training is False and method.averaged("net") is method.ema["net"]
    other = method.predict(torch.rand(3, 3, 24, 40))  # another size, not square
    assert other.shape == (3, 1, 24, 40) and 0 <= other.min() and other.max() <= 1
    # a 2x nearest up-sampled image is resized back to about itself: about the same masks, up-sampled
    big = method.predict(x.repeat_interleave(2, -1).repeat_interleave(2, -2))  # (5, 1, 32, 32)
    small = torch.nn.functional.avg_pool2d(big, 2)  # (5, 1, 16, 16)
    assert (small - masks).abs().mean() < 0.05
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        method.predict(torch.rand(3, 16, 16))


def test_sample_grid_and_evaluation(trained):
    method, _ = trained
    grid = method.sample()  # rows image, true mask, prediction; 3 columns
    assert grid.shape == (1, 3, 3 * 16 + 2 * 2, 3 * 16 + 2 * 2)
    true_masks = grid[0, :, 18:34, :16]
    assert torch.equal(true_masks, method.build_dataset()[0]["mask"].expand(3, -1, -1))
    scores = evaluate_oracle(method, n=6)
    assert scores["n"] == 6 and 0 <= scores["iou"] <= 1 and 0 <= scores["max_f_beta"] <= 1


def test_load_or_train_without_a_path_trains(tmp_path):
    method = load_or_train_oracle(None, preset="smoke", dataset="synthetic:benchmark", resolution=24,
                                  out_dir=tmp_path, progress=False)
    assert isinstance(method, OracleUNet) and method.step == 4
    assert (method.config.dataset, method.config.resolution) == ("synthetic:benchmark", 24)
    assert method.module("net").training is False
    assert (tmp_path / "checkpoints" / "step-0000004" / "modules.safetensors").is_file()
    with pytest.raises(ValueError, match="unknown oracle preset"):
        load_or_train_oracle(None, preset="large")


def test_missing_masks_are_a_clear_error():
    method = OracleUNet(dataclasses.replace(OracleUNet.presets["smoke"], dataset="photos"))
    with pytest.raises(ValueError, match="has none"):
        method.build_dataset()
    with pytest.raises(ValueError, match="has none"):
        evaluate_oracle(method, n=2)
    with pytest.raises(ValueError, match="have none"):
        method.segmenter_step({"image": torch.rand(2, 3, 16, 16)})


def test_config_checks_and_dice():
    with pytest.raises(ValueError, match="multiple of 2\\*\\*depth"):
        OracleConfig(resolution=20, depth=3)
    with pytest.raises(ValueError, match="norm"):
        OracleConfig(norm="layer")
    g = torch.zeros(2, 1, 4, 4)
    g[:, :, :2] = 1
    assert dice_loss(g, g) == 0
    assert dice_loss(1 - g, g) > 0.9


def test_learning_rate_schedule():
    method = OracleUNet(dataclasses.replace(OracleUNet.presets["smoke"], steps=10, lr=1e-2, lr_late=1e-3,
                                            lr_late_from=0.5))
    method.step = 4
    assert method.learning_rate() == 1e-2
    method.step = 5
    assert method.learning_rate() == 1e-3


def test_mask_iou_by_hand():
    pred = torch.zeros(3, 1, 2, 2, dtype=torch.bool)
    target = torch.zeros(3, 1, 2, 2, dtype=torch.bool)
    pred[0, 0, 0, :] = True  # 2 pixels
    target[0, 0, :, 0] = True  # 2 pixels, 1 shared: IoU 1/3
    pred[1] = True  # 4 pixels against an empty target: 0
    # image 2: both empty -> 1
    assert mask_iou(pred, target).tolist() == pytest.approx([1 / 3, 0.0, 1.0])
