"""`python -m workbench bench move-speed`: one MOVE training step, faithful vs. the workbench's path.

The official implementation runs the MAE encoder three times per composite (inpaint x,
autoencode x, autoencode the shifted x). The workbench shares the first two (exact), and can
approximate the third (``shift_autoencoding="approx"``). This benchmark times one full training
iteration (a discriminator step plus a segmenter step) of each path at the same configuration,
random weights, in one run, and reports images/s and the ratios. The ``paper`` preset uses the
thesis' model sizes (MAE ViT-L/16, DINO ViT-S/8 features, 224 px) at batch 2 so that it runs on a
CPU; on a GPU pass ``--batch-size 32``. Every preset times the official projected discriminator
(``disc_arch=official``: EfficientNet-lite0 with the packaged ImageNet weights, inputs resized to
224 px, one call per image set) unless ``--disc-arch preset`` keeps the preset's own.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import pandas as pd
import torch

from workbench.bench import BenchResult, register
from workbench.train.device import pick_device, seed_everything

# helpers

PATHS = {  # name: config overrides
    "faithful (3 encoder passes)": dict(share_encoder=False, shift_autoencoding="exact"),
    "shared encoder (2 passes, exact)": dict(share_encoder=True, shift_autoencoding="exact"),
    "shared + approx shift (1 pass)": dict(share_encoder=True, shift_autoencoding="approx"),
}
EXTRAS = {  # --extra NAME: another path, the shared-encoder one plus one more speed switch
    "channels-last": ("shared + channels-last head", dict(share_encoder=True, channels_last=True)),
    "compile": ("shared + torch.compile (MAE decoder)", dict(share_encoder=True, compile=True)),
    "bf16": ("shared + bf16 autocast", dict(share_encoder=True, autocast_bf16=True)),
}


def speed_config(preset: str, batch_size: int, *, disc_arch: str = "official"):
    """A MOVE config of the preset's model sizes with random weights (nothing to download).

    ``paper``: MAE ViT-L/16, DINO ViT-S/8 features and the official projected discriminator over
    EfficientNet-lite0 (its packaged ImageNet weights), as in section 5.3; the MAE and DINO are
    randomly initialised. ``disc_arch="official"`` puts that discriminator into every preset;
    ``"preset"`` keeps the preset's own.
    """
    from workbench.methods.move import PRESETS

    base = PRESETS[preset]
    if preset == "paper":
        base = replace(base, features_weights="random")
    if disc_arch == "official":
        base = replace(base, discriminator="projected", disc_arch="official", disc_features="efficientnet",
                       disc_weights=None, disc_width=64)
    return replace(base, mae_weights=None, mae_run=None, batch_size=batch_size, dataset="synthetic:benchmark")


def time_step(method, batch: dict) -> float:
    """Seconds of one training iteration (a discriminator step plus a segmenter step)."""
    if method.device.type == "cuda":
        torch.cuda.synchronize(method.device)
    start = time.perf_counter()
    method.discriminator_step(batch)
    method.segmenter_step(batch)
    if method.device.type == "cuda":
        torch.cuda.synchronize(method.device)
    return time.perf_counter() - start


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(preset="paper")
    parser.add_argument("--batch-size", type=int, default=2, help="images per step (default 2, for a CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed iterations per path (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per path")
    parser.add_argument("--disc-arch", choices=["official", "preset"], default="official",
                        help="official (default): the official projected discriminator in every preset; preset: the preset's own")
    parser.add_argument("--extra", nargs="+", choices=sorted(EXTRAS), default=[],
                        help="also time the shared path with these switches (bf16 needs CUDA; compile warms up longer)")


# benchmark


@register("move-speed", help="time one MOVE training step: faithful 3-pass vs shared-encoder path",
          add_arguments=add_arguments)
def move_speed(args: argparse.Namespace) -> BenchResult:
    from workbench.methods.move import MOVE

    device = pick_device(args.device)
    base = speed_config(args.preset, args.batch_size, disc_arch=args.disc_arch)
    if "bf16" in args.extra and device.type != "cuda":
        raise ValueError("--extra bf16 needs a CUDA device (autocast_bf16 is ignored on the CPU)")
    paths = {**PATHS, **dict(EXTRAS[e] for e in args.extra)}
    methods = {}
    for name, overrides in paths.items():
        seed_everything(args.seed)
        methods[name] = MOVE(replace(base, **overrides), device=device)
    x = torch.rand(args.batch_size, 3, base.size, base.size, generator=torch.Generator().manual_seed(args.seed))
    batch = {"image": x.to(device)}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(args.warmup + args.repeats):  # round robin, so that a busy moment hits every path alike
        for name, method in methods.items():
            elapsed = time_step(method, batch)
            if r >= args.warmup:
                times[name].append(elapsed)
    seconds = {name: statistics.median(t) for name, t in times.items()}
    rows = [{"path": name, "seconds_per_step": seconds[name], "images_per_s": args.batch_size / seconds[name]}
            for name in paths]
    faithful, shared, approx = (seconds[n] for n in PATHS)
    table = pd.DataFrame(rows)
    table["speedup"] = faithful / table["seconds_per_step"]
    metrics = {"preset": args.preset, "device": device.type, "batch": args.batch_size, "size": base.size,
               "faithful_img_s": args.batch_size / faithful, "shared_img_s": args.batch_size / shared,
               "approx_img_s": args.batch_size / approx, "shared_speedup": faithful / shared,
               "approx_speedup": faithful / approx}
    for extra in args.extra:
        metrics[f"{extra.replace('-', '_')}_speedup"] = faithful / seconds[EXTRAS[extra][0]]
    metrics["disc_arch"] = base.disc_arch if base.discriminator == "projected" else "conv"
    notes = [f"MAE {base.mae_arch}, features {base.features}, discriminator {base.discriminator} ({base.disc_arch}) over "
             f"{base.disc_features}, {base.size} px, random weights, {torch.get_num_threads()} threads; "
             f"one step = a discriminator step + a segmenter step; median of {args.repeats} round-robin repeats",
             "shared encoder is exact (tests/test_methods_move.py checks equal images); approx shift is not"]
    return BenchResult(name="move-speed", table=table, metrics=metrics, notes=notes)
