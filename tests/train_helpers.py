"""Shared pieces of the training-loop tests: an in-memory dataset and a one-phase toy method."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from workbench.methods.base import Method, Phase, TrainConfig

SMOKE_FLAGS = ["--preset", "smoke", "--device", "cpu", "--no-progress", "--no-tensorboard"]


class MemoryDataset(torch.utils.data.Dataset):
    """``n`` fixed random images as workbench dicts; records the indices it serves."""

    def __init__(self, n: int = 40, *, size: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.rand(n, 3, size, size, generator=g)  # (N, 3, S, S) in [0, 1]
        self.masks = (torch.rand(n, 1, size, size, generator=g) > 0.5).float()  # (N, 1, S, S)
        self.served: list[int] = []

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        self.served.append(index)
        return {"image": self.images[index], "mask": self.masks[index], "name": f"item-{index:03d}"}


@dataclass
class ToyConfig(TrainConfig):
    lr: float = 0.1  # SGD learning rate
    steps: int = 6
    batch_size: int = 4


class Toy(Method):
    """A one-phase method without data: fit y = 2x + 1 with noise drawn from the global RNG."""

    name = "toy"
    Config = ToyConfig
    presets = {"paper": ToyConfig(), "small": ToyConfig(), "smoke": ToyConfig()}

    def __init__(self, config: ToyConfig, *, device="cpu"):
        super().__init__(config, device=device)
        self.line = nn.Linear(1, 1).to(self.device)
        self.opt = torch.optim.SGD(self.line.parameters(), lr=config.lr, momentum=0.9)

    def phases(self):
        return [Phase("fit", self.fit_step)]

    def fit_step(self, batch):
        assert batch is None
        x = torch.randn(self.config.batch_size, 1)  # (B, 1)
        loss = (self.line(x) - (2 * x + 1)).square().mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss}


def read_stats(run: Path) -> list[dict]:
    """stats.jsonl without the timing fields."""
    lines = (Path(run) / "stats.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("time/")} for line in lines]


def smoke_perturbgan_run(folder: Path, *, steps: int = 2) -> Path:
    """A PerturbGAN run folder: the smoke preset trained ``steps`` steps from seed 0 (checkpoints/step-*)."""
    from workbench.methods.perturbgan import PRESETS, PerturbGAN
    from workbench.train.trainer import Trainer

    torch.manual_seed(0)
    Trainer(PerturbGAN(PRESETS["smoke"]), out_dir=folder, progress=False, tensorboard=False).fit(steps)
    return folder


def size_hinge_input(monkeypatch, method, module, draw: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run one generator step of a layered GAN; return (the mask its size hinges read, G_m(z), m_Δ).

    ``module`` is the module of ``PerturbGAN.size_hinges`` (its ``bracket_size_loss`` is recorded); ``draw`` names the method's
    draw of (composites, layers, shifted masks): ``fakes`` (chapter 4) or ``shifted_fakes`` (chapter 3)."""
    from workbench.ops.mask_losses import size_loss

    drawn, read = [], []
    original = getattr(method, draw)
    monkeypatch.setattr(method, draw, lambda n: drawn.append(original(n)) or drawn[-1])
    monkeypatch.setattr(module, "bracket_size_loss",
                        lambda mask, **kw: read.append(mask) or size_loss(mask, min_area=kw["min_area"]))
    method.generator_step(None)
    _, layers, shifted = drawn[0]
    return read[0], layers.mask, shifted
