"""The method protocol: what every trainable method gives the shared training loop.

A *method* owns its modules, its optimizers and its config. Each training iteration runs the
method's *phases* in order (for a GAN: "discriminator", possibly ``repeat``-ed, then "generator";
for a supervised method: one phase). A phase receives a fresh batch of real data (a dict of
tensors; ``None`` when the method has no dataset or the phase says ``real_data=False``), does its
own forward, backward and optimizer step, and returns a dict of float statistics. The trainer
(``workbench.train``) does everything else: batches, progress, logs, EMA, sample grids,
checkpoints, resume and DDP.

A minimal method, a denoising network (``tests/test_train_protocol.py`` runs this very code)::

    from dataclasses import dataclass

    import torch
    from torch import nn

    from workbench.data import build_dataset
    from workbench.methods.base import Method, Phase, TrainConfig

    @dataclass
    class DenoiseConfig(TrainConfig):
        dataset: str = "synthetic:easy"  # dataset spec for workbench.data.build_dataset
        size: int = 32  # image side in pixels
        lr: float = 1e-3  # Adam learning rate

    class Denoise(Method):
        name = "denoise"
        Config = DenoiseConfig
        presets = {"paper": DenoiseConfig(), "small": DenoiseConfig(steps=500),
                   "smoke": DenoiseConfig(steps=5, batch_size=4)}

        def __init__(self, config, *, device="cpu"):
            super().__init__(config, device=device)
            self.net = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(32, 3, 3, padding=1)).to(self.device)  # saved, trained
            self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr)  # saved with its state
            self.ema_betas = {"net": 0.99}  # the trainer keeps an EMA of self.net

        def build_dataset(self):
            return build_dataset(self.config.dataset, size=self.config.size, split="train")

        def phases(self):
            return [Phase("denoise", self.denoise)]

        def denoise(self, batch):
            x = batch["image"]  # (B, 3, H, W)
            loss = (self.net(x + 0.1 * torch.randn_like(x)) - x).square().mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            return {"loss": loss}

Rules a method follows:

- Every ``nn.Module`` attribute is part of the method: it is saved in checkpoints and, when it has
  trainable parameters, wrapped in DDP under ``torchrun``. Attributes named in :attr:`frozen`
  (pretrained ViT/MAE, a generator from an earlier stage) are neither saved nor wrapped; the
  method loads them itself in ``__init__`` (from paths in its config).
- Every ``torch.optim.Optimizer`` attribute is saved and restored with its full state.
- Phases call modules through ``self.name(x)``; under DDP that attribute is the DDP wrapper, so
  anything else (a sub-module, a helper method) goes through :meth:`module`. :meth:`sample` runs
  on rank 0 alone, so it uses :meth:`averaged` or :meth:`module`, never the DDP wrapper.
- Randomness comes from the global torch/numpy/python generators (the trainer saves and restores
  them) or from local ``torch.Generator`` objects seeded from the config (sample grids).
- State that is not a module or an optimizer goes through :meth:`extra_state` (JSON).
- ``self.step`` is the number of finished iterations; use it for ramps and schedules.
- Config fields become command-line flags, so none is named like a run option: ``preset``,
  ``out``, ``resume``, ``device``, ``no_progress``, ``no_tensorboard``.
"""

from __future__ import annotations

import dataclasses
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator, Mapping

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

# helpers

Stats = Mapping[str, "float | torch.Tensor"]  # what a phase returns: named scalars (0-dim tensors are fine)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (the module itself otherwise)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Run a block with ``module`` in evaluation mode, then put back the mode it had (also on errors)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


# classes


@dataclass
class TrainConfig:
    """Options of the shared training loop. Every method config extends this dataclass."""

    steps: int = 10_000  # training iterations; one iteration runs every phase once
    batch_size: int = 32  # real samples per phase call, per process
    seed: int = 0  # seeds python, numpy and torch (plus the process rank under DDP) and the data order
    num_workers: int = 0  # data loader processes; resuming stays bit-exact if items depend only on their index
    log_every: int = 10  # steps between entries in stats.jsonl and TensorBoard
    sample_every: int = 500  # steps between sample grids (0: only at the end)
    checkpoint_every: int = 1000  # steps between checkpoints (0: only at the end; a final one is always written)
    keep_checkpoints: int = 3  # how many of the newest checkpoints stay on disk (0: all)

    def __post_init__(self):
        for name in ("steps", "seed", "num_workers", "sample_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        check_ranges(self)


# every method config's numbers, checked by the names they share (so that `--ema-beta 2` is refused
# when the config is made, not by a traceback mid-training)
_AT_LEAST_ONE = ("size", "resolution", "samples", "d_steps", "depth", "head_convs", "chunk_size", "r1_every",
                 "feature_resolution")  # plus every int field named *width or *dim
_POSITIVE = ("lr", "lr_g", "lr_d", "lr_s", "lr_late")  # learning rates
_FRACTIONS = ("ema_beta",)  # in [0, 1)


def check_ranges(config) -> None:
    """A ValueError naming the option (``--ema-beta``) when a number of ``config`` is out of range:
    any float NaN or infinite, a size, width or dimension below 1, a learning rate <= 0, an EMA decay
    or an Adam beta outside [0, 1)."""
    for f in dataclasses.fields(config):
        value, flag = getattr(config, f.name), "--" + f.name.replace("_", "-")
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{flag} must be a finite number, got {value!r}")
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and (f.name in _AT_LEAST_ONE or f.name.endswith(("width", "dim"))) and value < 1:
            raise ValueError(f"{flag} must be a whole number >= 1, got {value}")
        if f.name in _POSITIVE and isinstance(value, (int, float)) and value <= 0:
            raise ValueError(f"{flag} must be > 0, got {value}")
        if (f.name in _FRACTIONS or f.name.startswith("betas")) and not all(
                isinstance(v, (int, float)) and 0 <= v < 1 for v in values):
            raise ValueError(f"{flag} must be in [0, 1), got {' '.join(map(str, values))}")


@dataclass
class Phase:
    """One named step of an iteration: ``fn(batch) -> stats``, run ``repeat`` times in a row."""

    name: str  # prefix of its stats in the logs, e.g. "discriminator" -> "discriminator/loss"
    fn: Callable[[dict | None], Stats]  # takes a fresh batch of real data, returns float stats
    repeat: int = 1  # e.g. several critic steps per generator step; stats are averaged
    real_data: bool = True  # False: no batch is drawn for this phase and fn receives None


class Method:
    """Base class of trainable methods; see the module docstring for the protocol."""

    name: ClassVar[str] = ""  # registry key in workbench.methods.METHODS; recorded in checkpoints
    Config: ClassVar[type[TrainConfig]] = TrainConfig  # the config dataclass
    presets: ClassVar[dict[str, TrainConfig]] = {}  # "paper" (GPU), "small" (minutes on CPU), "smoke" (seconds)
    default_preset: ClassVar[str] = "small"  # the preset the command line starts from
    frozen: ClassVar[tuple[str, ...]] = ()  # module attributes that are neither trained, wrapped nor saved
    find_unused_parameters: ClassVar[bool] = False  # DDP flag: some trained parameters get no gradient
    linked_runs: ClassVar[tuple[str, ...]] = ()  # config fields naming another run (resolved when loading)

    def __init__(self, config: TrainConfig, *, device: str | torch.device = "cpu"):
        self.config = config
        self.device = torch.device(device)
        self.step = 0  # finished iterations; the trainer keeps it current
        self.ema_betas: dict[str, float] = {}  # module name -> EMA decay; the trainer keeps the averages
        self.ema: dict[str, nn.Module] = {}  # the averaged copies, filled by the trainer or a checkpoint
        self._first_items: list[dict] | None = None  # cache of first_items()

    # the protocol

    def phases(self) -> list[Phase]:
        """The ordered phases of one iteration (asked anew every iteration)."""
        raise NotImplementedError

    def build_dataset(self) -> torch.utils.data.Dataset | None:
        """The real data, a dataset of dicts; ``None`` when phases need none."""
        return None

    @torch.no_grad()
    def sample(self) -> torch.Tensor | None:
        """Images for the periodic sample grid, (N, 3, H, W) in [0, 1]; ``None`` for none."""
        return None

    def extra_state(self) -> dict[str, Any]:
        """JSON-serialisable state beyond modules and optimizers, saved in checkpoints."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    # helpers for the trainer and for subclasses

    def modules(self) -> dict[str, nn.Module]:
        """The saved modules by attribute name (DDP unwrapped, frozen ones left out)."""
        return {k: unwrap(v) for k, v in vars(self).items() if isinstance(v, nn.Module) and k not in self.frozen}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers by attribute name."""
        return {k: v for k, v in vars(self).items() if isinstance(v, torch.optim.Optimizer)}

    def module(self, name: str) -> nn.Module:
        """Module ``name`` itself, never its DDP wrapper."""
        return unwrap(getattr(self, name))

    def averaged(self, name: str) -> nn.Module:
        """The EMA of module ``name`` when there is one, else the module itself."""
        return self.ema[name] if name in self.ema else self.module(name)

    def first_images(self, n: int) -> torch.Tensor:
        """The first ``n`` images of :meth:`build_dataset` (fewer if it is shorter), (N, 3, H, W) on the device.

        Read once and kept: the fixed inputs of a sample grid.
        """
        return torch.stack([item["image"] for item in self.first_items(n)]).to(self.device)

    def first_items(self, n: int) -> list[dict]:
        """The first ``n`` items of :meth:`build_dataset` (fewer if it is shorter).

        Read once and kept, so that a sample grid's fixed inputs and their other fields (masks)
        come from one pass over the dataset.
        """
        if self._first_items is None:
            dataset = self.build_dataset()
            self._first_items = [dataset[i] for i in range(min(n, len(dataset)))]
        return self._first_items

    def train(self, mode: bool = True) -> "Method":
        """Put the saved modules in training (or evaluation) mode."""
        for module in self.modules().values():
            module.train(mode)
        return self

    def eval(self) -> "Method":
        return self.train(False)


def tile_rows(rows: list[torch.Tensor], *, pad: int = 2) -> torch.Tensor:
    """Rows of (N, 3, H, W) images -> one sample grid (1, 3, H', W') in [0, 1] with white gaps.

    For ``Method.sample``: one row per kind of image, one column per sample.
    """
    n, c, h, w = rows[0].shape
    grid = torch.ones(c, len(rows) * (h + pad) - pad, n * (w + pad) - pad)
    for r, row in enumerate(rows):
        for i, image in enumerate(row.detach().float().cpu().clamp(0, 1)):
            grid[:, r * (h + pad): r * (h + pad) + h, i * (w + pad): i * (w + pad) + w] = image
    return grid[None]
