"""DDP: two CPU processes with the gloo backend, launched by torchrun, stay in lockstep."""

import json
import os
import subprocess
import sys
from pathlib import Path

from workbench.train import load_method

HERE = Path(__file__).parent


def test_two_process_gloo_training(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(HERE / "ddp_worker.py"), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in reports] == [2, 2] and [r["step"] for r in reports] == [6, 6]
    assert reports[0]["checksum"] == reports[1]["checksum"]  # identical parameters and EMA on both ranks
    first = [set(r["served"][:20]) for r in reports]  # one epoch of the 40 items: 20 per rank
    assert not first[0] & first[1] and first[0] | first[1] == set(range(40))  # disjoint shards

    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-0000003", "step-0000006"]
    stats = (tmp_path / "stats.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in stats] == [2, 4, 6]  # rank 0 alone writes
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step-0000003.png", "step-0000006.png"]
    state = json.loads((tmp_path / "checkpoints" / "step-0000006" / "state.json").read_text())
    assert state["world_size"] == 2 and len(state["rng"]) == 2  # every rank's RNG state is kept
    assert state["rng"][0] != state["rng"][1]  # seeded with seed + rank: each rank draws its own noise
    assert len(state["log_window"]) == 2
    assert load_method(tmp_path).step == 6
