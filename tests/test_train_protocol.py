"""The method protocol as documented: the example in workbench/methods/base.py runs as written."""

import re
import textwrap

import torch

import workbench.methods.base as base
from workbench.train import Trainer


def documented_example() -> dict:
    block = re.search(r"runs this very code\)::\n\n(.*?)\nRules a method follows", base.__doc__, re.S).group(1)
    namespace: dict = {}
    exec(compile(textwrap.dedent(block), "methods/base.py docstring", "exec"), namespace)
    return namespace


def test_documented_method_trains_with_the_shared_loop(tmp_path):
    Denoise = documented_example()["Denoise"]
    torch.manual_seed(0)
    method = Denoise(Denoise.presets["smoke"])
    assert set(method.modules()) == {"net"} and set(method.optimizers()) == {"opt"}
    seen = []
    trainer = Trainer(method, out_dir=tmp_path, progress=False, tensorboard=False,
                      callbacks=[lambda trainer, stats: seen.append(stats)])
    trainer.fit()
    assert [s["step"] for s in seen] == [1, 2, 3, 4, 5] and all("denoise/loss" in s for s in seen)
    assert trainer.history[-1]["step"] == 5  # logged at the end even though log_every is 10
    assert trainer.samples_drawn == 5 * 4
    assert (tmp_path / "checkpoints" / "step-0000005" / "ema.safetensors").exists()
    assert not (tmp_path / "samples").exists()  # the method has no sample grid
    assert any(not torch.equal(a, b) for a, b in zip(method.ema["net"].parameters(), method.net.parameters()))
