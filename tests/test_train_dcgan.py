"""The reference method end to end: `launch.main("dcgan", ...)` on synthetic data, and its networks."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.nets.dcgan import Discriminator, Generator
from workbench.train import load_method
from workbench.train.launch import main


@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_networks_shapes(resolution):
    torch.manual_seed(0)
    G, D = Generator(resolution=resolution, z_dim=8, width=4), Discriminator(resolution=resolution, width=4)
    images = G(torch.randn(3, 8))
    assert images.shape == (3, 3, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert D(images).shape == (3,)
    with pytest.raises(ValueError, match="resolution"):
        Generator(resolution=48)


def test_smoke_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    assert main("dcgan", ["--preset", "smoke", "--out", str(out), "--device", "cpu"]) == 0
    assert "done:" in capsys.readouterr().err
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == [5, 10, 15, 20]
    assert {"discriminator/loss", "discriminator/real", "discriminator/fake", "generator/loss"} <= set(stats[-1])
    assert all(np.isfinite(v) for s in stats for v in s.values())
    grid = np.asarray(Image.open(out / "samples" / "step-0000020.png"))
    assert grid.shape == (4 * 18 + 2, 4 * 18 + 2, 3) and grid.std() > 0  # 16 images of 16 px, 2 px gaps
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000010", "step-0000020"]
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert json.loads((out / "config.json").read_text())["method"] == "dcgan"
    method = load_method(out)
    assert method.step == 20 and method.config.resolution == 16
    images = method.sample()
    assert images.shape == (16, 3, 16, 16) and 0 <= images.min() and images.max() <= 1
