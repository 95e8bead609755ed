"""Run by tests/test_train_ddp.py under `python -m torch.distributed.run --nproc_per_node=2`.

Each process trains the smoke DCGAN through the `train` command's builder (gloo on CPU), then
writes what the test checks: a checksum of its parameters and the data indices it was served.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from train_helpers import SMOKE_FLAGS, MemoryDataset

from workbench.train.distributed import cleanup_distributed
from workbench.train.launch import build


def checksum(method) -> str:
    digest = hashlib.sha256()
    for modules in (method.modules(), method.ema):
        for name, module in sorted(modules.items()):
            for key, value in module.state_dict().items():
                digest.update(f"{name}.{key}".encode())
                digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main(out: Path) -> None:
    dataset = MemoryDataset(n=40)
    trainer = build("dcgan", [*SMOKE_FLAGS, "--out", str(out), "--loss", "wgan-gp", "--steps", "6",
                              "--log-every", "2", "--checkpoint-every", "3", "--sample-every", "3",
                              "--batch-size", "4"], dataset=dataset)
    assert isinstance(trainer.method.generator, torch.nn.parallel.DistributedDataParallel)
    trainer.fit()
    rank = trainer.dist.rank
    report = {"rank": rank, "world_size": trainer.dist.world_size, "checksum": checksum(trainer.method),
              "served": dataset.served, "step": trainer.step}
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    cleanup_distributed()


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(Path(sys.argv[1]))
