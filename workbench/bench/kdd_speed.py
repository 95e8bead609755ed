"""`python -m workbench bench kdd-speed`: one KDD GAN training step with the hinge loss vs. KDD.

The thesis reports that KDD GAN "is on par with conventional hinge loss training in terms of the
computational load" (chapter 6). The KDD loss itself is a (B, M) similarity matrix, tiny next to
the networks, so the cost of a step should be that of its network passes. This benchmark times
one discriminator step plus one generator step of the 32 px BigGAN (``paper``: ch = 64, K = 128,
batch 64, random weights) for

- ``hinge``: the BigGAN baseline (eqs. 6.2, 6.3);
- ``kdd``: the KDD loss (eqs. 6.5, 6.6), whose generator step passes a real batch through D and
  hands that pass to the discriminator step (see ``workbench/methods/kdd_gan.py``);
- ``kdd†``: the † variant, real anchors from the previous discriminator step (no real pass in G);
- ``kdd + DA ×3``: three DiffAugment copies of every batch as extra anchors, so D sees 4× the
  images: this one is expected to cost more, and the ratio says how much.

All paths are built from the same seed, timed in one run, round robin (a busy moment hits every
path alike) after warm-up; the median of the repeats is reported, with images/s and the ratio to
the hinge loss. ``--clock cpu`` times the process's CPU time instead of the wall clock: on a CPU
shared with other jobs the wall clock of the same step varies by ±50 %, its CPU time by ~2 %
(with several threads it is their sum, so use it with ``--threads 1``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import pandas as pd
import torch

from workbench.bench import BenchResult, register
from workbench.train.device import DeviceError, pick_device, seed_everything

# helpers

PATHS = {  # name: config overrides of the KDD GAN
    "hinge": dict(loss="hinge"),
    "kdd": dict(loss="kdd"),
    "kdd†": dict(loss="kdd", dagger=True),
    "kdd + DA ×3": dict(loss="kdd", augment_anchors=3),
}


def speed_config(preset: str, batch_size: int):
    """The preset's networks with one discriminator step per generator step at ``batch_size``."""
    from workbench.methods.kdd_gan import PRESETS

    return replace(PRESETS[preset], batch_size=batch_size, d_steps=1, dataset="synthetic:benchmark")


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_step(method, batch: dict, *, clock: str = "wall") -> float:
    """Seconds of one training iteration (every phase once, in the method's order) on ``clock``."""
    now = CLOCKS[clock]
    if method.device.type == "cuda":
        torch.cuda.synchronize(method.device)
    start = now()
    for phase in method.phases():
        phase.fn(batch if phase.real_data else None)
    if method.device.type == "cuda":
        torch.cuda.synchronize(method.device)
    return now() - start


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(preset="paper")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per step (default: the preset's; paper 64)")
    parser.add_argument("--repeats", type=int, default=3, help="timed iterations per path (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per path")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall: elapsed time (default); cpu: this process's CPU time, steady on a busy "
                             "machine (CPU device only; sums over threads, so pair it with --threads 1)")


# benchmark


@register("kdd-speed", help="time one KDD GAN step (D + G) with the hinge loss vs KDD, KDD† and KDD + DA ×3",
          add_arguments=add_arguments)
def kdd_speed(args: argparse.Namespace) -> BenchResult:
    from workbench.methods.kdd_gan import KDDGAN, PRESETS

    device = pick_device(args.device)
    if args.clock == "cpu" and device.type != "cpu":
        raise DeviceError(f"--clock cpu measures CPU time and cannot time work on {device.type}; use --clock wall")
    batch_size = args.batch_size or PRESETS[args.preset].batch_size
    base = speed_config(args.preset, batch_size)
    methods = {}
    for name, overrides in PATHS.items():
        seed_everything(args.seed)
        methods[name] = KDDGAN(replace(base, **overrides), device=device)
    x = torch.rand(batch_size, 3, base.resolution, base.resolution, generator=torch.Generator().manual_seed(args.seed))
    batch = {"image": x.to(device)}
    times: dict[str, list[float]] = {name: [] for name in PATHS}
    for r in range(args.warmup + args.repeats):  # round robin
        for name, method in methods.items():
            elapsed = time_step(method, batch, clock=args.clock)
            if r >= args.warmup:
                times[name].append(elapsed)
    seconds = {name: statistics.median(t) for name, t in times.items()}
    hinge = seconds["hinge"]
    table = pd.DataFrame([{"loss": name, "seconds_per_step": s, "images_per_s": batch_size / s,
                           "ratio_to_hinge": s / hinge} for name, s in seconds.items()])
    metrics = {"hinge_s": hinge, "kdd_s": seconds["kdd"], "ratio": seconds["kdd"] / hinge,
               "da3_ratio": seconds["kdd + DA ×3"] / hinge, "dagger_ratio": seconds["kdd†"] / hinge,
               "preset": args.preset, "device": device.type, "clock": args.clock, "batch": batch_size}
    g_params, d_params = (sum(p.numel() for p in module.parameters()) / 1e6
                          for module in (methods["hinge"].generator, methods["hinge"].discriminator))
    notes = [f"BigGAN {base.resolution} px, ch={base.width}, K={base.feature_dim}, G {g_params:.2f}M / "
             f"D {d_params:.2f}M parameters, random weights, {device.type}, {torch.get_num_threads()} threads; "
             f"one step = one discriminator step + one generator step, {args.clock} clock; median of {args.repeats} round-robin "
             f"repeats after {args.warmup} warm-up",
             "target (thesis: 'on par with hinge'): kdd ratio <= 1.05; DA ×3 passes 4x the images through D"]
    return BenchResult(name="kdd-speed", table=table, metrics=metrics, notes=notes)
