"""The last official-vs-workbench differences of MOVE as switches (issue 13): data pipeline, epochs, shift
range, pooling window of the mask losses, the MAE's position table at other sizes."""

import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from workbench.bench.move_parity import DEFAULT_FIXTURES
from workbench.data.folders import SegmentationFolder
from workbench.methods.move import MOVE, PRESETS, MOVEConfig, OriginalCrops, iterations_for_epochs
from workbench.nets.mae import build_mae
from workbench.nets.vit import rescale_pos_embed, resize_pos_embed
from workbench.ops import random_offsets
from workbench.ops.augment import random_crop_box
from workbench.train.config import config_from_dict, config_to_dict
from workbench.train.sampler import InfiniteBatchSampler
from workbench.train.trainer import Trainer

SMOKE = PRESETS["smoke"]
FIXTURES = DEFAULT_FIXTURES.resolve()
SWITCHES = {"image_pipeline": ("official", "squash"), "epoch_drop_last": (True, False),
            "shift_scale": ("min_side", "per_axis"), "mask_loss_pool": (16, None),
            "mae_pos_resample": ("official", "when_needed")}  # switch -> (official, the workbench's former)


def make(**overrides) -> MOVE:
    torch.manual_seed(0)
    return MOVE(dataclasses.replace(SMOKE, **overrides))


def test_presets_and_old_configs():
    for name, (official, former) in SWITCHES.items():
        assert getattr(PRESETS["paper"], name) == getattr(PRESETS["smoke"], name) == official, name
        assert getattr(PRESETS["small"], name) == former, name  # small keeps the shipped assets' recipe
        assert MOVEConfig.LEGACY_DEFAULTS[name] == former, name
    old = {k: v for k, v in config_to_dict(SMOKE).items() if k not in SWITCHES}
    restored = config_from_dict(MOVEConfig, old)  # a run saved before the switches trains and predicts as it did
    assert all(getattr(restored, name) == former for name, (_, former) in SWITCHES.items())
    assert config_from_dict(MOVEConfig, config_to_dict(SMOKE)) == SMOKE


# 1. data pipeline


def smooth_image(rng, h, w):
    """A random 8-bit image without pixel noise (PIL's two 8-bit passes would clip noise overshoots)."""
    small = rng.integers(0, 256, (max(2, h // 6), max(2, w // 6), 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    images = {"a": smooth_image(rng, 90, 150), "b": smooth_image(rng, 40, 40), "c": smooth_image(rng, 48, 40)}
    for name, image in images.items():
        cv2.imwrite(str(tmp_path / f"{name}.png"), image[..., ::-1])  # RGB -> OpenCV's BGR
    return tmp_path, images


def test_the_official_pipeline_crops_the_original_and_resizes_once_like_pil(folder):
    root, images = folder
    m = make(dataset=f"folder:{root}", crop_scale=(0.3, 0.6))  # small crops: the resize shrinks by up to 3x
    dataset = m.build_dataset()
    assert isinstance(dataset, OriginalCrops) and len(dataset) == 3
    for i, name in enumerate(["a", "b", "c"]):
        for seed in range(3):
            torch.manual_seed(seed)
            item = dataset[i]
            assert item["image"].shape == (3, 32, 32) and item["cropped"] is True
            torch.manual_seed(seed)
            top, left, h, w = random_crop_box(*images[name].shape[:2], scale=(0.3, 0.6), ratio=SMOKE.crop_ratio)
            reference = Image.fromarray(images[name]).crop((left, top, left + w, top + h))
            reference = np.asarray(reference.resize((32, 32), Image.BICUBIC), dtype=np.float32) / 255
            ours = item["image"].permute(1, 2, 0).numpy()
            assert np.abs(ours - reference).max() < 3 / 255, (name, seed, np.abs(ours - reference).max())
    squash = make(dataset=f"folder:{root}", image_pipeline="squash").build_dataset()
    assert isinstance(squash, SegmentationFolder) and squash[0]["image"].shape == (3, 32, 32)  # squashed first


def test_prepare_does_not_crop_twice(folder):
    root, _ = folder
    m = make(dataset=f"folder:{root}", hflip=False)
    batch = torch.utils.data.default_collate([m.build_dataset()[i] for i in range(3)])
    assert torch.equal(m.prepare(batch), batch["image"])  # cropped by the dataset, not again
    del batch["cropped"]
    assert not torch.equal(m.prepare(batch), batch["image"])  # a squashed batch is cropped here


def test_crop_boxes_follow_torchvision_rules():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        top, left, h, w = random_crop_box(100, 120, scale=(0.9, 1.0), ratio=(0.75, 4 / 3), generator=g)
        assert 0 <= top <= 100 - h and 0 <= left <= 120 - w
        assert 0.9 * 100 * 120 * 0.97 <= h * w <= 100 * 120 and 0.7 <= w / h <= 1.4
    assert random_crop_box(10, 100, scale=(0.9, 1.0), ratio=(0.75, 4 / 3), generator=g) == (0, 43, 10, 13)  # fallback


# 2. epochs cut at drop_last boundaries


def epochs_of(sampler, batches):
    stream = iter(sampler)
    return [next(stream) for _ in range(batches)]


def test_drop_last_epochs_see_each_image_once_and_start_afresh():
    n, b = 10, 4
    sampler = InfiniteBatchSampler(n, batch_size=b, seed=3, drop_last=True)
    assert sampler.batches_per_epoch == n // b == 2 and iterations_for_epochs(1, images=n, batch_size=b) * 2 == n // b
    batches = epochs_of(sampler, 6)
    for epoch in range(3):
        seen = batches[2 * epoch] + batches[2 * epoch + 1]
        assert len(set(seen)) == 8  # each image of the epoch's batches once
        assert seen == sampler.shard(epoch)[:8].tolist()  # the epoch's own permutation, from its start
        if epoch < 2:
            assert batches[2 * epoch + 2] == sampler.shard(epoch + 1)[:4].tolist()  # no leftover carried over
    assert epochs_of(InfiniteBatchSampler(n, batch_size=b, seed=3, drop_last=True, start=12), 2) == batches[3:5]
    streamed = epochs_of(InfiniteBatchSampler(n, batch_size=b, seed=3), 3)  # the former stream carries epoch 0's
    assert streamed[2][:2] == sampler.shard(0)[8:].tolist() != batches[2][:2]  # leftovers into the third batch
    with pytest.raises(ValueError, match="no full batch"):
        InfiniteBatchSampler(3, batch_size=4, drop_last=True)


class Indexed(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"image": torch.zeros(3, 32, 32), "index": i}


@pytest.mark.parametrize("drop_last", [True, False])
def test_the_trainer_cuts_epochs_as_the_config_says(drop_last):
    trainer = Trainer(make(epoch_drop_last=drop_last), dataset=Indexed(), progress=False, tensorboard=False)
    stream = trainer.batches()
    indices = [next(stream)["index"].tolist() for _ in range(5)]  # smoke batch 4
    sampler = InfiniteBatchSampler(10, batch_size=4, seed=SMOKE.seed)
    if drop_last:
        assert indices[2] == sampler.shard(1)[:4].tolist() and indices[4] == sampler.shard(2)[:4].tolist()
    else:
        assert indices[2] == sampler.shard(0)[8:].tolist() + sampler.shard(1)[:2].tolist()


# 3. shift range


def test_shift_range_on_non_square_images():
    g = torch.Generator().manual_seed(0)
    for sampling in ("rounded", "uniform"):
        min_side = random_offsets(4000, max_shift=0.125, size=(32, 64), generator=g, sampling=sampling,
                                  scale="min_side")
        per_axis = random_offsets(4000, max_shift=0.125, size=(32, 64), generator=g, sampling=sampling)
        assert min_side.abs().amax(0).tolist() == [4, 4]  # Δ·min(H, W) = 4 on both axes (official)
        assert per_axis.abs().amax(0).tolist() == [4, 8]  # Δ·H and Δ·W
    official, former = make(), make(shift_scale="per_axis")
    assert official.draw_offsets(2000, size=(32, 64), generator=g).abs().amax(0).tolist() == [4, 4]
    assert former.draw_offsets(2000, size=(32, 64), generator=g).abs().amax(0).tolist() == [4, 8]
    assert official.draw_offsets(2000, generator=g).abs().amax(0).tolist() == [4, 4]  # square crops: the same


# 4. pooling window of the mask losses


@pytest.mark.skipif(not (FIXTURES / "mask_losses.json").is_file(), reason=f"no official MOVE fixtures in {FIXTURES}")
def test_the_mask_losses_pool_by_16_as_the_official_whatever_the_mae_patch():
    from safetensors.torch import load_file

    masks = load_file(str(FIXTURES / "mask_losses.safetensors"))["masks"].float()  # (4, 1, 224, 224)
    results = json.loads((FIXTURES / "mask_losses.json").read_text())["results"]
    raw = next(r["raw"] for r in results if r["config"] == "default" and r["mask_loss_on"] == "org")
    official, former = make(), make(mask_loss_pool=None)  # the smoke MAE has 8-px patches
    assert official.mask_loss_window == 16 and former.mask_loss_window == official.mae.patch_size == 8
    for term, ours in (("bin", "bin"), ("minarea", "min")):
        expected = sum(raw[f"{term}_{key}"] for key in ("mask", "mask_avg16", "mask_max16"))
        assert float(official.mask_losses(masks)[ours]) == pytest.approx(expected, abs=1e-6)
        assert abs(float(former.mask_losses(masks)[ours]) - expected) > 1e-4


# 5. the MAE's position table at other sizes


def test_the_official_position_table_is_resampled_at_every_other_input_size():
    mae = build_mae("mae_tiny", img_size=32)  # patch 8: a stored 4 x 4 grid
    table = mae.pos_embed
    mae.pos_resample = "when_needed"
    assert mae.position_table(32, 32) is table and mae.position_table(36, 39) is table  # 4 x 4 grid: identity
    assert torch.equal(mae.position_table(40, 32), resize_pos_embed(table, (5, 4)))
    mae.pos_resample = "official"
    assert mae.position_table(32, 32) is table  # exactly the MAE's own size (224 px for the official MAEs)
    same_grid = mae.position_table(36, 39)  # the stored 4 x 4 grid, yet resampled by (4 + 0.1) / 4
    assert same_grid.shape == table.shape and not torch.allclose(same_grid, table, atol=1e-3)
    assert torch.equal(same_grid[:, :1], table[:, :1])  # the class token's row is kept
    tall = mae.position_table(40, 32)  # a 5 x 4 grid (rows x columns)
    reference = table[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)  # (1, D, rows, cols)
    reference = torch.nn.functional.interpolate(reference, scale_factor=(5.1 / 4, 4.1 / 4), mode="bicubic")
    assert reference.shape[-2:] == (5, 4)  # rows follow the image's height: the official call's swapped
    torch.testing.assert_close(tall[:, 1:], reference.flatten(2).transpose(1, 2))  # names cancel out
    assert torch.equal(tall, rescale_pos_embed(table, (5, 4)))
    assert not torch.allclose(tall, resize_pos_embed(table, (5, 4)), atol=1e-3)


def test_move_sets_the_mae_position_table_mode():
    official, former = make(), make(mae_pos_resample="when_needed")
    assert official.mae.pos_resample == "official" and former.mae.pos_resample == "when_needed"
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    former.mae.load_state_dict(official.mae.state_dict())
    assert torch.equal(official.encode_mae(x[..., :32, :32]), former.encode_mae(x[..., :32, :32]))  # own size
    assert not torch.allclose(official.encode_mae(x), former.encode_mae(x), atol=1e-4)  # 40 px: resampled


# 6. predicting with a workbench checkpoint the official way


def test_predict_can_resize_the_shorter_side_and_pad_by_reflection():
    m = make()
    x = torch.rand(1, 3, 27, 45, generator=torch.Generator().manual_seed(0))
    own = m.predict(x)
    assert own.shape == (1, 1, 27, 45)
    reflect = m.predict(x, padding="reflect")
    assert reflect.shape == own.shape and not torch.allclose(reflect, own, atol=1e-5)
    resized = m.predict(x, size=48)  # 48 x 80, then back to 27 x 45
    assert resized.shape == own.shape and not torch.allclose(resized, own, atol=1e-4)
    m.inference_size, m.inference_padding = 48, "reflect"
    torch.testing.assert_close(m.predict(x), m.predict(x, size=48, padding="reflect"))
