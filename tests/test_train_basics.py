"""Devices, seeding, the EMA, the data sampler and the config command line of the training loop."""

import dataclasses
import json
import random

import numpy as np
import pytest
import torch

from workbench.methods import METHODS, DCGAN, DCGANConfig
from workbench.train.config import ConfigError, config_from_dict, config_to_dict, field_help
from workbench.train.device import DeviceError, mps_available, pick_device, seed_everything
from workbench.nets.ema import ema_copy, ema_update
from workbench.train.launch import build_parser, main, resolve_config
from workbench.train.sampler import InfiniteBatchSampler

# devices and seeds


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    assert pick_device("auto").type == expected
    with pytest.raises(DeviceError, match="unknown device"):
        pick_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA"):
            pick_device("cuda:1")
    if not mps_available():
        with pytest.raises(DeviceError, match="MPS"):
            pick_device("mps")


def test_seed_everything_repeats_every_generator():
    def draw():
        return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]

    seed_everything(7)
    first = draw()
    seed_everything(7)
    assert draw() == first
    seed_everything(8)
    assert draw() != first


# EMA


def test_ema_math_and_buffers():
    net = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    average = ema_copy(net)
    assert not average.training and not any(p.requires_grad for p in average.parameters())
    with torch.no_grad():
        for p in average.parameters():
            p.fill_(0.0)
        for p in net.parameters():
            p.fill_(1.0)
        net[1].running_mean.fill_(5.0)
    ema_update(average, net, beta=0.75)
    assert all(torch.equal(p, torch.full_like(p, 0.25)) for p in average.parameters())  # 0.75·0 + 0.25·1
    ema_update(average, net, beta=0.75)
    assert all(torch.equal(p, torch.full_like(p, 0.4375)) for p in average.parameters())  # 0.75·0.25 + 0.25
    assert average[1].running_mean.item() == 5.0  # buffers are copied, not averaged
    with pytest.raises(ValueError):
        ema_update(average, net, beta=1.5)


# the sampler


def stream(sampler, batches):
    it = iter(sampler)
    return [next(it) for _ in range(batches)]


def test_sampler_is_deterministic_and_resumable():
    full = stream(InfiniteBatchSampler(10, batch_size=4, seed=3), 8)  # 32 indices: three epochs and a bit
    assert full == stream(InfiniteBatchSampler(10, batch_size=4, seed=3), 8)
    flat = [i for batch in full for i in batch]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))  # whole epochs
    assert flat[:10] != flat[10:20]  # reshuffled every epoch
    assert stream(InfiniteBatchSampler(10, batch_size=4, seed=3, start=12), 5) == stream(
        InfiniteBatchSampler(10, batch_size=4, seed=3), 8)[3:]  # resuming at 12 = skipping 3 batches
    assert stream(InfiniteBatchSampler(10, batch_size=4, seed=4), 2) != full[:2]


def test_sampler_shards_across_processes():
    shards = [InfiniteBatchSampler(11, batch_size=3, seed=0, rank=r, world_size=2) for r in range(2)]
    first = [set(s.shard(0)) for s in shards]
    assert len(shards[0].shard(0)) == len(shards[1].shard(0)) == 6  # 11 padded to 12
    assert first[0] | first[1] == set(range(11))
    assert len(first[0] & first[1]) <= 1  # only the wrapped-around padding index may repeat


# configs on the command line


def test_help_lists_presets_and_fields(capsys):
    assert main("dcgan", ["--help"]) == 0
    out = capsys.readouterr().out
    for text in ("--preset", "paper", "small", "smoke", "--batch-size", "--lr-g", "--ema-beta", "--resume",
                 "--out", "--device", "adversarial loss", "wgan-gp"):
        assert text in out, text


def parse(argv):
    args = build_parser(DCGAN).parse_args(argv)
    return resolve_config(DCGAN, args)[0]


def test_presets_and_overrides():
    assert parse([]) == DCGAN.presets["small"]
    smoke = parse(["--preset", "smoke"])
    assert smoke == DCGAN.presets["smoke"] and smoke.resolution == 16
    config = parse(["--preset", "smoke", "--lr-g", "0.001", "--betas", "0.5", "0.9", "--loss", "wgan-gp"])
    assert config.lr_g == 0.001 and config.betas == (0.5, 0.9) and config.loss == "wgan-gp"
    assert config.resolution == 16  # untouched fields keep the preset's value
    assert set(METHODS) >= {"dcgan"} and DCGAN.presets["paper"] == DCGANConfig()


def test_bad_options_give_clear_errors(tmp_path, capsys):
    assert main("dcgan", ["--resolution", "48", "--out", str(tmp_path)]) == 2
    assert "resolution must be one of" in capsys.readouterr().err
    assert main("dcgan", ["--loss", "lsgan"]) == 2
    assert main("dcgan", ["--preset", "smoke", "--resume", str(tmp_path)]) == 2
    assert "does not combine" in capsys.readouterr().err
    assert main("dcgan", ["--resume", str(tmp_path / "nothing-here")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_underscored_flags_work_like_dashed_ones(tmp_path):
    from train_helpers import SMOKE_FLAGS, MemoryDataset

    from workbench.train.launch import build

    trainer = build("dcgan", [*SMOKE_FLAGS, "--batch_size=3", "--out", str(tmp_path)], dataset=MemoryDataset())
    assert trainer.config.batch_size == 3


def test_config_json_round_trip():
    config = dataclasses.replace(DCGAN.presets["smoke"], betas=(0.1, 0.2), lr_d=1e-3)
    data = json.loads(json.dumps(config_to_dict(config)))
    assert data["betas"] == [0.1, 0.2]
    assert config_from_dict(DCGANConfig, data) == config
    with pytest.raises(ConfigError, match="does not know: colour"):
        config_from_dict(DCGANConfig, {**data, "colour": 1})
    with pytest.raises(ConfigError, match="should be int"):
        config_from_dict(DCGANConfig, {**data, "width": "wide"})
    assert field_help(DCGANConfig)["steps"].startswith("training iterations")  # inherited comment


# data loader workers


class RandomItems(torch.utils.data.Dataset):
    """Items drawn from the (worker's) global torch generator, like a random augmentation."""

    def __len__(self):
        return 50

    def __getitem__(self, index):
        return {"image": torch.rand(2)}


def test_loader_workers_are_seeded_by_position_and_never_replay():
    from workbench.methods.base import Method, Phase, TrainConfig
    from workbench.train import Trainer

    class Record(Method):
        name = "record"

        def __init__(self, config):
            super().__init__(config)
            self.seen = []

        def phases(self):
            return [Phase("read", lambda batch: self.seen.append(batch["image"].flatten().tolist()) or {"x": 0.0})]

    def run(steps, *, then=None):
        method = Record(TrainConfig(steps=steps, batch_size=2, num_workers=1, log_every=1))
        trainer = Trainer(method, dataset=RandomItems(), progress=False)
        trainer.fit()
        if then:
            trainer.fit(then)  # a notebook training on: a new loader from the current position
        return method.seen

    once, again = run(2), run(2)
    assert once == again  # deterministic
    continued = run(2, then=4)
    assert continued[:2] == once and continued[2] not in once  # the new loader does not replay its start
