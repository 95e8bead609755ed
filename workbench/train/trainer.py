"""The shared training loop: any method, phase by phase, with logs, samples, EMA and checkpoints.

One iteration draws a fresh batch of real data for every phase call (unless the phase says
``real_data=False``), runs the method's phases in order (a phase does its own forward, backward
and optimizer step and returns float stats), checks every stat for NaN/inf, then updates the EMA
copies. Around that the trainer

- shows a tqdm bar whose status line holds each phase's loss (at most four figures; the rest is in
  the logs), refreshed every 0.1 s on a terminal and every 30 s when writing to a file or pipe;
  every ``log_every`` steps it appends the mean stats to ``stats.jsonl`` and TensorBoard (``tb/``);
- writes sample grids to ``samples/step-NNNNNNN.png`` (and TensorBoard) every ``sample_every`` steps;
- writes a checkpoint every ``checkpoint_every`` steps and at the end (atomically, see workbench/checkpoint.py);
- calls ``callback(trainer, stats)`` after every step, e.g. to plot live losses in a notebook;
- under ``torchrun``, wraps the trained modules in DDP and shards the data; rank 0 writes.

Resuming (:meth:`Trainer.load_checkpoint`) restores modules, optimizers, EMA, step, data position,
every RNG and the stats of the steps not yet logged, so that the run goes on exactly as if it had
not stopped, logs included (bit-exact on CPU with items that depend only on their index, or
``num_workers=0``; on GPUs as far as the kernels are deterministic).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from workbench.checkpoint import (CONFIG_FILE, TENSORS_FILE, Checkpoint, CheckpointError, RunLock, atomic_write_text,
                                  load_method_weights, load_optimizer_state, method_record, read_checkpoint,
                                  remove_orphans, rng_state, set_rng_state, step_of, write_checkpoint)
from workbench.device import seed_everything
from workbench.methods.base import Method
from workbench.nets.ema import ema_copy, ema_update
from workbench.train.distributed import broadcast_buffers, dist_info, gather_objects, mean_over_ranks
from workbench.train.sampler import InfiniteBatchSampler

Callback = Callable[["Trainer", dict[str, float]], None]

# classes


class NonFiniteError(RuntimeError):
    """Training produced NaN or inf; it stopped, and the last good checkpoint is untouched."""

    def __init__(self, *, step: int, phase: str, stat: str, value: float, checkpoint: Path | None):
        self.step, self.phase, self.stat, self.value, self.checkpoint = step, phase, stat, value, checkpoint
        where = (f"the last good checkpoint is {checkpoint} (resume with --resume {checkpoint})" if checkpoint
                 else "no checkpoint had been written yet")
        super().__init__(f"non-finite {stat} = {value} at step {step}, phase {phase!r}; training stopped, {where}. "
                         "Lower the learning rate or check the data.")


# helpers


def image_grid(images: torch.Tensor, *, columns: int | None = None, pad: int = 2) -> torch.Tensor:
    """Tile (N, 3, H, W) images in [0, 1] into one (3, H', W') image with white gaps."""
    n, c, h, w = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = torch.ones(c, rows * (h + pad) + pad, columns * (w + pad) + pad)
    for i, image in enumerate(images.detach().float().cpu().clamp(0, 1)):
        r, col = divmod(i, columns)
        grid[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = image
    return grid


def save_png(image: torch.Tensor, path: Path) -> None:
    """Save a (3, H, W) image in [0, 1] as an 8-bit PNG."""
    array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (H, W, 3)
    Image.fromarray(array).save(path)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a batch (a tensor, a dict, or a list/tuple of tensors) to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and batch and torch.is_tensor(batch[0]):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


STATUS_FIELDS = 4  # figures on the progress bar's status line; the logs hold every stat
NON_TTY_INTERVAL_S = 30.0  # seconds between progress-bar lines written to a file or pipe


def format_status(stats: dict[str, float], *, fields: int = STATUS_FIELDS) -> str:
    """The progress bar's status line: each phase's ``<phase>/loss`` as ``<phase> value``, at most
    ``fields`` of them (without losses: the first ``fields`` stats), so that the line never wraps."""
    figures = {k: v for k, v in stats.items() if k != "step" and not k.startswith("time/")}
    losses = {k.rsplit("/", 1)[0]: v for k, v in figures.items() if k == "loss" or k.endswith("/loss")}
    chosen = losses or figures
    return "  ".join(f"{k} {v:.4g}" for k, v in list(chosen.items())[:fields])


def progress_interval(stream: Any = None) -> float:
    """Seconds between progress-bar refreshes: 0.1 on a terminal or in a notebook widget, else
    :data:`NON_TTY_INTERVAL_S`, so that a log file gets a line now and then, not one per step."""
    if any(klass.__module__ == "tqdm.notebook" for klass in tqdm.__mro__):
        return 0.1
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return 0.1 if isatty is not None and isatty() else NON_TTY_INTERVAL_S


# the trainer


class Trainer:
    """Train ``method`` on ``dataset`` (default: ``method.build_dataset()``), writing to ``out_dir``.

    With ``out_dir=None`` nothing is written (no logs, samples or checkpoints): handy in notebooks,
    where ``trainer.history`` and the callbacks give the stats.
    """

    def __init__(self, method: Method, *, out_dir: str | Path | None = None, dataset: Dataset | None = None,
                 callbacks: list[Callback] | tuple[Callback, ...] = (), progress: bool = True,
                 tensorboard: bool = True):
        self.method = method
        self.config = method.config
        self.device = method.device
        self.dist = dist_info()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks = list(callbacks)
        self.progress, self.tensorboard = progress, tensorboard
        self.dataset = dataset if dataset is not None else method.build_dataset()
        self.step = 0  # finished iterations
        self.samples_drawn = 0  # this process's position in the data stream
        self.history: list[dict[str, float]] = []  # every logged entry of stats.jsonl
        self.log_window: dict[str, list[float]] = defaultdict(list)  # stats of the steps since the last log entry
        self.last_checkpoint: Path | None = None
        self.run_lock: RunLock | None = None  # the run folder's lock (taken by launch.build, or by fit)
        self._wrap_ddp()
        method.ema = {name: ema_copy(method.module(name)) for name in method.ema_betas}
        if self.writes:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / CONFIG_FILE).write_text(json.dumps(method_record(method), indent=2))
            existing = sorted((self.out_dir / "checkpoints").glob("step-*"), key=step_of)
            self.last_checkpoint = existing[-1] if existing else None

    @property
    def writes(self) -> bool:
        """Whether this process writes logs, samples and checkpoints (rank 0 with an out_dir)."""
        return self.out_dir is not None and self.dist.is_main

    def _wrap_ddp(self) -> None:
        if self.dist.world_size == 1:
            return
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        for name, module in self.method.modules().items():
            if any(p.requires_grad for p in module.parameters()):
                setattr(self.method, name, DistributedDataParallel(
                    module, device_ids=device_ids, find_unused_parameters=self.method.find_unused_parameters))

    # data

    def batches(self) -> Iterator[dict | None]:
        """Endless batches of real data from the current data position (``None`` without a dataset)."""
        if self.dataset is None:
            while True:
                yield None
        sampler = InfiniteBatchSampler(len(self.dataset), batch_size=self.config.batch_size, seed=self.config.seed,
                                       rank=self.dist.rank, world_size=self.dist.world_size, start=self.samples_drawn,
                                       drop_last=getattr(self.config, "epoch_drop_last", False))  # MOVE's official epochs
        # the seeds of the loader's worker processes: own to each rank and data position, so that
        # ranks draw different augmentations and a resumed run does not replay those of its start
        worker_seed = int(np.random.default_rng([self.config.seed, self.dist.rank, self.samples_drawn]).integers(2**62))
        loader = DataLoader(self.dataset, batch_sampler=sampler, num_workers=self.config.num_workers,
                            pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(worker_seed))
        for batch in loader:
            self.samples_drawn += self.config.batch_size
            yield to_device(batch, self.device)

    # one iteration

    def run_iteration(self, batches: Iterator[dict | None]) -> dict[str, float]:
        """Run every phase once (``repeat`` times each), update the EMA; return the step's stats."""
        self.method.step = self.step
        stats: dict[str, float] = {}
        for phase in self.method.phases():
            sums: dict[str, float] = defaultdict(float)
            for _ in range(phase.repeat):
                batch = next(batches) if phase.real_data else None
                for key, value in phase.fn(batch).items():
                    value = float(value.detach() if torch.is_tensor(value) else value)
                    if not math.isfinite(value):
                        raise NonFiniteError(step=self.step + 1, phase=phase.name, stat=f"{phase.name}/{key}",
                                             value=value, checkpoint=self.last_checkpoint)
                    sums[key] += value
            stats.update({f"{phase.name}/{k}": v / phase.repeat for k, v in sums.items()})
        broadcast_buffers(self.method.modules().values())
        for name, average in self.method.ema.items():
            ema_update(average, self.method.module(name), beta=self.method.ema_betas[name])
        self.step += 1
        self.method.step = self.step  # finished iterations, as a reloaded checkpoint has it
        return stats

    # the loop

    def fit(self, steps: int | None = None) -> list[dict[str, float]]:
        """Train until ``steps`` iterations are done (default: the config's); return the logged history."""
        total = self.config.steps if steps is None else steps
        if self.step >= total:
            return self.history
        cfg = self.config
        own_lock = self.writes and not (self.run_lock is not None and self.run_lock.held)
        if own_lock:  # no other process may write this run while it trains (launch.build takes it earlier)
            self.run_lock = RunLock(self.out_dir)
            remove_orphans(self.out_dir)
        try:
            return self._fit(total)
        finally:
            if self.run_lock is not None:
                self.run_lock.release()

    def _fit(self, total: int) -> list[dict[str, float]]:
        cfg = self.config
        self.method.train()
        writer = self._open_logs()
        bar = tqdm(total=total, initial=self.step, disable=not (self.progress and self.dist.is_main),
                   desc=self.method.name, dynamic_ncols=True, mininterval=progress_interval())
        window = self.log_window
        batches = self.batches()
        start = tick = time.perf_counter()
        ticked = self.step
        try:
            while self.step < total:
                stats = self.run_iteration(batches)
                bar.update(1)
                for key, value in stats.items():
                    window[key].append(value)
                done = self.step == total
                if self.step % cfg.log_every == 0 or done:
                    now = time.perf_counter()
                    entry = mean_over_ranks({k: sum(v) / len(v) for k, v in window.items()}, self.device)
                    entry = {"step": self.step, **entry, "time/elapsed_s": now - start,
                             "time/step_s": (now - tick) / max(self.step - ticked, 1)}
                    tick, ticked = now, self.step
                    window.clear()
                    self._log(entry, writer)
                    bar.set_postfix_str(format_status(entry), refresh=False)
                if (cfg.sample_every and self.step % cfg.sample_every == 0) or done:
                    self.save_samples(writer)
                if (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0) or done:
                    self.save_checkpoint()
                for callback in self.callbacks:
                    callback(self, {"step": self.step, **stats})
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        return self.history

    # outputs

    def _open_logs(self):
        """Open TensorBoard; drop entries of stats.jsonl beyond the current step (after a resume)."""
        if not self.writes:
            return None
        stats_path = self.out_dir / "stats.jsonl"
        if stats_path.exists():
            kept = []
            for line in stats_path.read_text().splitlines():
                try:
                    if json.loads(line).get("step", 0) <= self.step:
                        kept.append(line)
                except json.JSONDecodeError:  # a line cut short by a crash
                    continue
            atomic_write_text(stats_path, "".join(line + "\n" for line in kept))  # a kill now loses nothing
        if not self.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.out_dir / "tb"), purge_step=self.step or None)

    def _log(self, entry: dict[str, float], writer) -> None:
        if not self.dist.is_main:
            return
        self.history.append(entry)
        if not self.writes:
            return
        with open(self.out_dir / "stats.jsonl", "a") as file:
            file.write(json.dumps(entry) + "\n")
        if writer is not None:
            for key, value in entry.items():
                if key != "step":
                    writer.add_scalar(key, value, self.step)

    def save_samples(self, writer=None) -> Path | None:
        """Write the method's sample grid as ``samples/step-NNNNNNN.png`` (rank 0, with an out_dir)."""
        if not self.writes:
            return None
        images = self.method.sample()
        self.method.train()
        if images is None:
            return None
        grid = image_grid(images)
        path = self.out_dir / "samples" / f"step-{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_png(grid, path)
        if writer is not None:
            writer.add_image("samples", grid, self.step)
        return path

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step-NNNNNNN`` (rank 0) after checking that every weight is finite.

        Under DDP every process must call it (the RNG states are gathered).
        """
        tensors, rng = rng_state(self.device)
        gathered = gather_objects((tensors, rng, dict(self.log_window)))
        if not self.writes:
            return None
        for kind, modules in (("module", self.method.modules()), ("EMA", self.method.ema)):
            for name, module in modules.items():
                for key, value in module.state_dict().items():
                    if value.is_floating_point() and not torch.isfinite(value).all():
                        raise NonFiniteError(step=self.step, phase="checkpoint", stat=f"{kind} {name}.{key}",
                                             value=float("nan"), checkpoint=self.last_checkpoint)
        all_tensors = {f"rng.{rank}.{kind}": t for rank, (ts, _, _) in enumerate(gathered) for kind, t in ts.items()}
        state = {"step": self.step, "samples_drawn": self.samples_drawn, "world_size": self.dist.world_size,
                 "rng": [r for _, r, _ in gathered], "log_window": [w for _, _, w in gathered]}
        path = write_checkpoint(self.out_dir / "checkpoints" / f"step-{self.step:07d}", method=self.method,
                                state=state, tensors=all_tensors)
        self.last_checkpoint = path
        self._prune_checkpoints()
        return path

    def _prune_checkpoints(self) -> None:
        keep = self.config.keep_checkpoints
        if keep:
            for old in sorted((self.out_dir / "checkpoints").glob("step-*"), key=step_of)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)

    # resume

    def load_checkpoint(self, path: str | Path | Checkpoint) -> Checkpoint:
        """Restore modules, EMA, optimizers, step, data position, RNG, the stats not yet logged and
        the method's extra state from a checkpoint."""
        checkpoint = path if isinstance(path, Checkpoint) else read_checkpoint(path, method=self.method.name)
        if checkpoint.method != self.method.name:
            raise CheckpointError(f"{checkpoint.path} is a checkpoint of method {checkpoint.method!r}, "
                                  f"not {self.method.name!r}")
        missing = sorted({"step", "samples_drawn", "rng", "optimizers"} - set(checkpoint.state))
        if missing:
            raise CheckpointError(f"{checkpoint.path} cannot resume training: its state lacks {', '.join(missing)} "
                                  "(it was not written by the trainer; load_method reads its weights)")
        try:
            return self._load_checkpoint(checkpoint)
        except (KeyError, IndexError, TypeError, AttributeError, RuntimeError) as error:  # a hand-edited state.json
            raise CheckpointError(f"{checkpoint.path}/state.json is damaged and cannot resume training "
                                  f"({type(error).__name__}: {error})") from None

    def _load_checkpoint(self, checkpoint: Checkpoint) -> Checkpoint:
        load_method_weights(self.method, checkpoint)
        tensors = checkpoint.tensors(TENSORS_FILE)
        for name, optimizer in self.method.optimizers().items():
            if name not in checkpoint.state["optimizers"]:
                raise CheckpointError(f"{checkpoint.path} has no optimizer {name!r}")
            load_optimizer_state(name, optimizer, tensors, checkpoint.state["optimizers"][name],
                                 source=str(checkpoint.path))
        self.method.load_extra_state(checkpoint.state.get("method_state", {}))
        self.step = self.method.step = int(checkpoint.state["step"])
        rank = self.dist.rank
        self.log_window.clear()
        if checkpoint.state.get("world_size", 1) == self.dist.world_size:
            self.samples_drawn = int(checkpoint.state["samples_drawn"])
            rng_tensors = {k.split(".", 2)[2]: v for k, v in tensors.items() if k.startswith(f"rng.{rank}.")}
            set_rng_state(rng_tensors, checkpoint.state["rng"][rank], self.device)
            windows = checkpoint.state.get("log_window", [])
            self.log_window.update({k: list(v) for k, v in (windows[rank] if windows else {}).items()})
        else:  # another number of processes: the data order and the noise cannot match the old run
            self.samples_drawn = int(checkpoint.state["samples_drawn"]) * checkpoint.state.get("world_size", 1) \
                // self.dist.world_size
            seed_everything(self.config.seed + 1000 * self.step + rank)
        if self.writes and checkpoint.path.parent.parent.resolve() == self.out_dir.resolve():
            self.last_checkpoint = checkpoint.path
        return checkpoint
