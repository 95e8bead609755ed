"""The kdd-images benchmark runs end to end at smoke size, with MAE features and with Inception features."""

from __future__ import annotations

import json
import re

import pytest
import torch

import workbench.bench.kdd_images  # noqa: F401  (registers the benchmark until bench._MODULES lists it)
from workbench.cli import main

KEYS = ("hinge_fid", "kdd_fid", "joint_fid", "fid_kind", "hinge_kid", "kdd_kid", "joint_kid", "hinge_density",
        "kdd_density", "joint_density", "hinge_coverage", "kdd_coverage", "joint_coverage", "tau", "minutes")
PLAIN_FID = re.compile(r"\|\s+FID\s+\|")  # a table column named plain "FID"


@pytest.fixture(autouse=True)
def offline_and_registered(tmp_path, monkeypatch):
    """Empty weights folder and torch hub cache; ``kdd-gan`` in the method registry (until the lead lists it)."""
    from workbench.methods import METHODS
    from workbench.methods.kdd_gan import KDDGAN

    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setitem(METHODS, KDDGAN.name, METHODS.get(KDDGAN.name, KDDGAN))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the benchmark's --threads 1 must not slow the tests after these


def run_bench(tmp_path, capsys, *extra: str) -> tuple[str, dict]:
    argv = ["bench", "kdd-images", "--preset", "smoke", "--threads", "1", "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path), *extra]
    assert main(argv) == 0
    out = capsys.readouterr().out
    line = out.strip().splitlines()[-1]
    assert line.startswith("RESULT kdd-images ")
    pairs = dict(item.split("=", 1) for item in line.split()[2:])
    assert tuple(pairs) == KEYS
    return out, pairs


def test_kdd_images_smoke_with_mae_features(tmp_path, capsys):
    out, pairs = run_bench(tmp_path, capsys, "--n-eval", "12")
    kind = pairs["fid_kind"]
    assert kind == f"mae-mean:{tmp_path / 'runs' / 'mae'}"  # no Inception file: an MAE pre-trained here
    assert "FID (MAE features)" in out and not PLAIN_FID.search(out) and "not Inception" in out
    for key in KEYS:
        if key != "fid_kind":
            assert float(pairs[key]) == float(pairs[key])  # a number, not nan
    for loss in ("hinge", "kdd", "joint"):
        assert 0.0 <= float(pairs[f"{loss}_coverage"]) <= 1.0 and float(pairs[f"{loss}_fid"]) > 0
        assert (tmp_path / "runs" / loss / "checkpoints").is_dir()
    assert float(pairs["tau"]) == 0.05  # unconditional scenes: the thesis' τ for unconditional runs
    saved = json.loads((tmp_path / "kdd-images.json").read_text())
    assert saved["metrics"]["fid_kind"] == kind and len(saved["table"]) == 3


def test_kdd_images_smoke_with_inception(tmp_path, capsys):
    from test_eval_gan_metrics import save_random_inception

    folder = tmp_path / "weights"
    folder.mkdir()
    save_random_inception(folder)
    out, pairs = run_bench(tmp_path, capsys, "--n-eval", "6", "--steps", "2")
    assert pairs["fid_kind"] == "inception"
    assert PLAIN_FID.search(out) and "MAE features" not in out and re.search(r"\|\s+IS\s+\|", out)
    assert not (tmp_path / "runs" / "mae").exists()  # Inception found: no MAE trained


def test_missing_inception_stops_before_training(tmp_path, capsys):
    argv = ["bench", "kdd-images", "--preset", "smoke", "--features", "inception", "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "weights-inception-2015-12-05-6726825d.pth" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
