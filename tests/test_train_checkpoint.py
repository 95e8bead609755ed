"""Checkpoints: round trip, bit-exact resume after a kill, the NaN guard, wrong-method, mismatch and damaged-file
errors, .pth files."""

import argparse
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import SMOKE_FLAGS, MemoryDataset, Toy, ToyConfig, read_stats

from workbench.train import (CheckpointError, NonFiniteError, StateDictMismatchError, Trainer, load_method, load_pth,
                             load_state_dict_strict, read_checkpoint)
from workbench.train.launch import build, main


def scramble_global_rng():
    """Whatever a fresh process would have: nothing the resumed run may depend on."""
    torch.manual_seed(987654)
    np.random.seed(4321)
    random.seed(1234)


@pytest.mark.parametrize("loss", ["hinge", "nonsaturating-r1", "wgan-gp"])
def test_resume_after_a_kill_is_bit_exact(tmp_path, loss):
    """10 steps straight == a run killed after step 5, rebuilt from its step-3 checkpoint, run to 10."""
    flags = [*SMOKE_FLAGS, "--loss", loss, "--log-every", "2", "--checkpoint-every", "3", "--sample-every", "0",
             "--batch-size", "4"]
    if loss == "wgan-gp":
        flags += ["--d-steps", "2"]
    straight = build("dcgan", [*flags, "--steps", "10", "--out", str(tmp_path / "a")], dataset=MemoryDataset())
    straight.fit()

    def kill(trainer, stats):
        if trainer.step == 5:
            raise KeyboardInterrupt

    killed = build("dcgan", [*flags, "--steps", "8", "--out", str(tmp_path / "b")], dataset=MemoryDataset(),
                   callbacks=[kill])
    with pytest.raises(KeyboardInterrupt):
        killed.fit()
    assert killed.last_checkpoint.name == "step-0000003"
    del killed
    scramble_global_rng()
    resumed = build("dcgan", ["--resume", str(tmp_path / "b"), "--steps", "10", "--no-progress", "--no-tensorboard"],
                    dataset=MemoryDataset())  # a longer run than the killed one was set to
    assert resumed.step == 3 and resumed.out_dir == tmp_path / "b"
    resumed.fit()

    expected, got = read_stats(tmp_path / "a"), read_stats(tmp_path / "b")
    assert [e["step"] for e in got] == [2, 4, 6, 8, 10]  # the entries after the checkpoint were dropped, then redone
    assert got == expected  # exact float equality, every stat; step 4 averages step 3 (before the kill) and step 4
    for name, module in straight.method.modules().items():
        for (key, a), b in zip(module.state_dict().items(), resumed.method.modules()[name].state_dict().values()):
            assert torch.equal(a, b), f"{name}.{key}"
    for a, b in zip(straight.method.ema["generator"].parameters(), resumed.method.ema["generator"].parameters()):
        assert torch.equal(a, b)
    assert straight.samples_drawn == resumed.samples_drawn


def test_checkpoint_round_trip_restores_optimizers_and_ema(tmp_path):
    trainer = build("dcgan", [*SMOKE_FLAGS, "--steps", "3", "--out", str(tmp_path)], dataset=MemoryDataset())
    trainer.fit()
    path = trainer.last_checkpoint
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "ema.safetensors", "modules.safetensors",
                                                      "state.json", "state.safetensors"]
    assert json.loads((path / "config.json").read_text())["config"]["resolution"] == 16
    assert not list(path.parent.glob(".*"))  # no temporary folders left behind

    method = load_method(tmp_path, method="dcgan")  # the run folder finds its newest checkpoint
    assert not method.generator.training and method.step == trainer.method.step == 3  # the trained one agrees
    for name in ("generator", "discriminator"):
        for a, b in zip(trainer.method.modules()[name].state_dict().values(), method.modules()[name].state_dict().values()):
            assert torch.equal(a, b)
    ema, live = method.ema["generator"], method.generator
    assert any(not torch.equal(a, b) for a, b in zip(ema.parameters(), live.parameters()))  # a real average
    for a, b in zip(trainer.method.ema["generator"].parameters(), ema.parameters()):
        assert torch.equal(a, b)
    assert method.sample().shape == (16, 3, 16, 16)

    fresh = build("dcgan", ["--resume", str(path), "--no-progress", "--no-tensorboard"], dataset=MemoryDataset())
    for name in ("opt_g", "opt_d"):
        old, new = getattr(trainer.method, name).state_dict(), getattr(fresh.method, name).state_dict()
        assert new["param_groups"] == old["param_groups"]  # betas come back as a tuple
        assert isinstance(new["param_groups"][0]["betas"], tuple)
        for index, state in old["state"].items():
            for key, value in state.items():
                assert torch.equal(new["state"][index][key], value), (name, index, key)
    assert fresh.step == 3 and fresh.samples_drawn == trainer.samples_drawn == 3 * 8  # the G phase draws none


def test_toy_method_without_data_and_wrong_method_errors(tmp_path, capsys):
    toy = Toy(ToyConfig(log_every=1))
    trainer = Trainer(toy, out_dir=tmp_path / "toy", progress=False, tensorboard=False)
    history = trainer.fit()
    assert [h["step"] for h in history] == list(range(1, 7)) and history[-1]["fit/loss"] < history[0]["fit/loss"]
    with pytest.raises(CheckpointError, match="checkpoint of method 'toy', not 'dcgan'"):
        read_checkpoint(tmp_path / "toy", method="dcgan")
    assert main("dcgan", ["--resume", str(tmp_path / "toy")]) == 2
    assert "checkpoint of method 'toy', not 'dcgan'" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="does not have"):
        load_method(tmp_path / "toy")  # toy is no registered method


def test_resuming_with_changed_shapes_names_the_keys(tmp_path, capsys):
    build("dcgan", [*SMOKE_FLAGS, "--steps", "1", "--out", str(tmp_path)], dataset=MemoryDataset()).fit()
    with pytest.raises(StateDictMismatchError, match="shape mismatches"):
        build("dcgan", ["--resume", str(tmp_path), "--width", "8"], dataset=MemoryDataset())
    assert main("dcgan", [*SMOKE_FLAGS, "--out", str(tmp_path)]) == 2  # a fresh run must not reuse the folder
    assert "already holds checkpoints" in capsys.readouterr().err


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    def poison(trainer, stats):
        if trainer.step == 4:
            with torch.no_grad():
                trainer.method.discriminator.head.weight.fill_(float("nan"))

    trainer = build("dcgan", [*SMOKE_FLAGS, "--steps", "10", "--checkpoint-every", "3", "--out", str(tmp_path)],
                    dataset=MemoryDataset(), callbacks=[poison])
    with pytest.raises(NonFiniteError) as caught:
        trainer.fit()
    error = caught.value
    assert (error.step, error.phase, error.stat) == (5, "discriminator", "discriminator/loss")
    assert "step 5" in str(error) and "step-0000003" in str(error)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-0000003"]
    good = load_method(tmp_path)
    assert all(torch.isfinite(p).all() for p in good.discriminator.parameters())

    with pytest.raises(NonFiniteError, match=r"non-finite module discriminator\."):
        trainer.save_checkpoint()  # a poisoned state is never written over a good one
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-0000003"]


def test_damaged_checkpoints_give_checkpoint_errors(tmp_path, capsys):
    build("dcgan", [*SMOKE_FLAGS, "--steps", "2", "--out", str(tmp_path)], dataset=MemoryDataset()).fit()
    folder = tmp_path / "checkpoints" / "step-0000002"
    (folder / "state.safetensors").unlink()
    with pytest.raises(CheckpointError, match="incomplete: it has no state.safetensors"):
        build("dcgan", ["--resume", str(tmp_path), "--no-progress", "--no-tensorboard"], dataset=MemoryDataset())
    (folder / "modules.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="modules.safetensors is not a readable safetensors file"):
        load_method(tmp_path)
    assert main("dcgan", ["--resume", str(tmp_path)]) == 2  # a message, not a traceback
    assert "not a readable safetensors file" in capsys.readouterr().err


def test_load_pth_and_strict_loading(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    torch.save({"model": net.state_dict(), "epoch": 7}, tmp_path / "wrapped.pth")
    torch.save(net.state_dict(), tmp_path / "plain.pth")
    state = load_pth(tmp_path / "plain.pth")
    assert torch.equal(state["0.weight"], net[0].weight)
    assert load_pth(tmp_path / "wrapped.pth", key="model").keys() == state.keys()
    with pytest.raises(CheckpointError, match="pass key="):
        load_pth(tmp_path / "wrapped.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_pth(tmp_path / "missing.pth")

    torch.save({"args": argparse.Namespace(lr=0.1)}, tmp_path / "pickle.pth")  # an object, not weights
    with pytest.raises(CheckpointError, match="argparse.Namespace.*refused for safety") as caught:
        load_pth(tmp_path / "pickle.pth")
    assert "weights_only` set to `False" not in str(caught.value)  # torch's unsafe advice is not passed on
    (tmp_path / "cut.pth").write_bytes((tmp_path / "plain.pth").read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cut.pth .*corrupt or truncated"):
        load_pth(tmp_path / "cut.pth")

    other = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    load_state_dict_strict(other, state, source="plain.pth")
    assert torch.equal(other[2].weight, net[2].weight)
    broken = {k: v for k, v in state.items() if k != "2.bias"} | {"head.weight": torch.zeros(1)}
    with pytest.raises(StateDictMismatchError, match=r"missing keys: 2\.bias; unexpected keys: head\.weight"):
        load_state_dict_strict(other, broken, source="broken.pth")


def test_find_linked_path_tries_the_working_directory_then_the_folders_above(tmp_path, monkeypatch):
    from workbench.train.checkpoint import find_linked_path

    (tmp_path / "assets" / "gan").mkdir(parents=True)
    checkpoint = tmp_path / "assets" / "post" / "step-0000004"
    checkpoint.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert find_linked_path("assets/gan", checkpoint=checkpoint) == tmp_path / "assets" / "gan"
    assert find_linked_path("assets/none", checkpoint=checkpoint) is None
    (elsewhere / "assets" / "gan").mkdir(parents=True)  # the working directory comes first
    assert find_linked_path("assets/gan", checkpoint=checkpoint) == Path("assets/gan")


def test_load_method_finds_the_shipped_segmenters_generator_from_any_directory(tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)  # "assets/layered-small/gan" does not exist relative to here
    segmenter = load_method(repo / "assets" / "layered-small" / "post")
    assert segmenter.gan is not None
    assert Path(segmenter.config.generator).resolve() == (repo / "assets" / "layered-small" / "gan").resolve()
