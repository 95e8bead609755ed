"""The DDP row of `bench gpu`: run under ``torchrun --nproc_per_node=1 -m workbench.bench.gpu_ddp``.

A single process still proves the multi-GPU path: it joins a process group with the asked
backend (``nccl`` on CUDA, ``gloo``), builds dcgan through the ``train`` command's builder, wraps
its trained modules in DistributedDataParallel as the trainer does under several processes (the
trainer leaves a world of one unwrapped), checks one ``all_reduce``, trains a few iterations with
``Trainer.fit`` (gradients go through DDP's reducer), writes the rank-0 checkpoint and loads it
back. It writes ``OUT/report.json`` for the bench.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

# functions


def main(argv: list[str]) -> int:
    start = time.perf_counter()
    parser = argparse.ArgumentParser(prog="python -m workbench.bench.gpu_ddp")
    parser.add_argument("--backend", choices=["nccl", "gloo"], required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    from workbench.train.checkpoint import load_method
    from workbench.train.device import pick_device
    from workbench.train.distributed import cleanup_distributed, local_rank
    from workbench.train.launch import build

    device = pick_device(args.device, local_rank=local_rank())
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.cuda.reset_peak_memory_stats(device)
    dist.init_process_group(backend=args.backend)
    try:
        probe = torch.ones(1, device=device)
        dist.all_reduce(probe)
        if probe.item() != dist.get_world_size():
            raise RuntimeError(f"all_reduce gave {probe.item()}, expected {dist.get_world_size()}")
        trainer = build("dcgan", ["--preset", args.preset, "--device", str(device), "--out", str(args.out),
                                  "--no-progress", "--no-tensorboard", "--steps", str(args.steps), "--seed",
                                  str(args.seed), "--log-every", "1", "--sample-every", "0", "--checkpoint-every", "0"])
        method = trainer.method
        wrapped = []
        for name, module in method.modules().items():  # as Trainer._wrap_ddp does for several processes
            if any(p.requires_grad for p in module.parameters()):
                setattr(method, name, DistributedDataParallel(
                    module, device_ids=[device.index] if device.type == "cuda" else None,
                    find_unused_parameters=method.find_unused_parameters))
                wrapped.append(name)
        launch_s = time.perf_counter() - start
        history = trainer.fit()
        times = [entry["time/step_s"] for entry in history]
        seconds = statistics.median(times[1:] or times)
        last = {k: v for k, v in history[-1].items() if k != "step" and not k.startswith("time/")}
        report = {"world_size": dist.get_world_size(), "backend": args.backend, "wrapped": wrapped,
                  "batch": method.config.batch_size, "step_s": seconds,
                  "img_s": method.config.batch_size * method.config.d_steps / seconds,
                  "peak_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
                  "finite": all(map(math.isfinite, last.values())),
                  "loss": ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k.endswith("loss")),
                  "launch_s": launch_s}
        if dist.get_rank() == 0:
            loaded = load_method(trainer.last_checkpoint, device=device, method="dcgan")
            same = all(torch.equal(v, loaded.module("generator").state_dict()[k])
                       for k, v in method.module("generator").state_dict().items())
            report["checkpoint"] = "ok" if same and loaded.step == args.steps else "mismatch"
            (args.out / "report.json").write_text(json.dumps(report, indent=1))
    finally:
        cleanup_distributed()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
