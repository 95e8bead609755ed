"""``python -m workbench bench eval-speed``: how fast :class:`SegmentationMeter` scores masks.

It scores ``--n`` random soft masks of ``--size`` x ``--size`` pixels (5,000 at 320x320 by default,
the size of DUTS-TE) against random blocky ground truths, with all 256 thresholds of max F_beta.
Masks are generated in chunks, so memory stays at a few hundred MB; only ``update`` and
``compute`` are timed, not the generation. The counting runs in single-threaded numpy on the CPU;
with ``--device cuda`` the masks are made on the GPU and the timing includes their copy to the
CPU. ``--corloc`` adds the boxes (OpenCV connected components of every binary prediction).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from workbench.bench import BenchResult, register
from workbench.eval.metrics import SegmentationMeter
from workbench.train.device import pick_device

N_BY_PRESET = {"paper": 5000, "small": 5000, "smoke": 200}  # images when --n is not given

# helpers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options."""
    parser.add_argument("--n", type=int, default=None, help="number of masks (default 5000; 200 with --preset smoke)")
    parser.add_argument("--size", type=int, default=320, help="mask side in pixels (default 320)")
    parser.add_argument("--chunk", type=int, default=100, help="masks generated and scored per batch (default 100)")
    parser.add_argument("--corloc", action="store_true", help="also time boxes and CorLoc (OpenCV, on the CPU)")


def random_batch(
    n: int, size: int, *, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` blocky ground truths (N, S, S) bool and noisy soft predictions of them (N, S, S) float."""
    cells = max(size // 16, 1)
    coarse = torch.rand(n, 1, cells, cells, generator=generator) > 0.6  # (N, 1, s, s)
    gt = torch.nn.functional.interpolate(coarse.float(), size=(size, size), mode="nearest")[:, 0] > 0.5  # (N, S, S)
    noise = torch.rand(n, size, size, generator=generator)
    pred = 0.35 * gt.float() + 0.65 * noise  # (N, S, S): overlapping classes, so max F_beta < 1
    return pred.to(device), gt.to(device)


# benchmark


@register("eval-speed", help="time the segmentation metrics on 5,000 random 320x320 masks", add_arguments=add_arguments)
def run(args: argparse.Namespace) -> BenchResult:
    """Score ``--n`` random masks in chunks; time only :class:`SegmentationMeter`'s work."""
    n = args.n if args.n is not None else N_BY_PRESET[getattr(args, "preset", "small")]
    size, chunk = args.size, max(1, args.chunk)
    device = pick_device(getattr(args, "device", "auto"))
    generator = torch.Generator().manual_seed(getattr(args, "seed", 0))
    meter = SegmentationMeter(corloc=args.corloc)
    seconds = 0.0
    for start in range(0, n, chunk):
        pred, gt = random_batch(min(chunk, n - start), size, generator=generator, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        meter.update(pred, gt)
        seconds += time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = meter.compute()
    seconds += time.perf_counter() - t0
    table = pd.DataFrame([{
        "n": n,
        "size": size,
        "device": str(device),
        "corloc": bool(args.corloc),
        "seconds": seconds,
        "images_per_s": n / seconds,
        "max_f_beta": scores["max_f_beta"],
        "max_f_beta_per_image": scores["max_f_beta_per_image"],
    }])
    metrics = {"n": n, "size": size, "device": str(device), "seconds": seconds, "images_per_s": n / seconds}
    notes = ["the counting is single-threaded numpy; generating the random masks is not timed"]
    return BenchResult(name="eval-speed", table=table, metrics=metrics, notes=notes)
