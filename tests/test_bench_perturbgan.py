"""The perturbgan benchmark (tables 3.1-3.3) runs end to end at smoke size, offline, with the shipped MAE
as its feature network, for the default setting and for ablation (b) of table 3.1."""

from __future__ import annotations

import json
import math

import pytest
import torch

from workbench.cli import main
from workbench.train import load_method

KEYS = ("gen_mask_iou", "full_mask_ref_iou", "encoder_iou", "grabcut_iou", "fid_kind", "fid", "minutes", "detected",
        "bg_object_area", "bg_floor", "mask_diversity", "true_mask_diversity", "centroid_corr", "mask_area", "true_area",
        "fake_auc", "ghost_auc_duplicate", "ghost_auc_wrong_mask", "ghost_auc_moved")
SEPARATION = ("bg_object_area", "bg_floor", "mask_diversity", "true_mask_diversity", "mask_area", "true_area")


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """Empty weights folder and torch hub cache: no Inception file, so the shipped MAE gives the features."""
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # the benchmark's --threads 1 must not slow the tests after these


def run_bench(tmp_path, capsys, *extra: str, keys: tuple[str, ...] = KEYS) -> tuple[str, dict]:
    argv = ["bench", "perturbgan", "--preset", "smoke", "--threads", "1", "--device", "cpu",
            "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), *extra]
    assert main(argv) == 0
    out = capsys.readouterr().out
    line = out.strip().splitlines()[-1]
    assert line.startswith("RESULT perturbgan ")
    pairs = dict(item.split("=", 1) for item in line.split()[2:])
    missing = [key for key in keys if key not in pairs]
    assert not missing, f"RESULT line lacks {missing}: {line}"
    return out, pairs


def check_figures(pairs: dict) -> None:
    for key in ("encoder_iou", "grabcut_iou"):
        assert 0 <= float(pairs[key]) <= 1, key
    for key in ("gen_mask_iou", "full_mask_ref_iou"):  # nan when the smoke oracle detects nothing
        value = float(pairs[key])
        assert math.isnan(value) or 0 <= value <= 1, key
    assert 0 <= float(pairs["detected"]) <= 1  # a fraction of N_GENERATED["smoke"] = 16 composites
    assert math.isnan(float(pairs["gen_mask_iou"])) == (float(pairs["detected"]) == 0)
    for key in SEPARATION:
        assert 0 <= float(pairs[key]) <= 1, key
    assert -1 <= float(pairs["centroid_corr"]) <= 1
    assert math.isfinite(float(pairs["fid"])) and float(pairs["fid"]) >= 0
    assert float(pairs["minutes"]) > 0


def gan_config(tmp_path) -> dict:
    return json.loads((tmp_path / "runs" / "gan" / "config.json").read_text())["config"]


def test_perturbgan_bench_smoke(tmp_path, capsys):
    out, pairs = run_bench(tmp_path, capsys)
    check_figures(pairs)
    assert pairs["fid_kind"] == "mae-mean:assets/move-small/mae" and pairs["ablation"] == "default"
    assert "not Inception" in out and "FID (MAE features)" in out
    for name in ("oracle", "gan", "encoder", "no-shift"):  # the no-shift GAN is trained beside the default
        assert any((tmp_path / "runs" / name / "checkpoints").glob("step-*")), name
    assert json.loads((tmp_path / "runs" / "no-shift" / "config.json").read_text())["config"]["max_shift"] == 0.0
    assert 0 <= float(pairs["noshift_detected"]) <= 1 and "noshift_gen_mask_iou" in pairs
    assert "separation: gen_mask_iou >= 0.6" in out
    assert gan_config(tmp_path)["max_shift"] == 0.125
    saved = json.loads((tmp_path / "out" / "perturbgan.json").read_text())
    assert saved["metrics"]["fid_kind"] == pairs["fid_kind"]
    assert {row["table"] for row in saved["table"]} >= {"3.1", "3.2", "3.3"}
    encoder = load_method(tmp_path / "runs" / "encoder")  # the encoder run names the GAN it inverts
    assert encoder.segment(torch.rand(2, 3, 16, 16)).shape == (2, 1, 16, 16)


def test_perturbgan_bench_no_shift_ablation(tmp_path, capsys):
    _, pairs = run_bench(tmp_path, capsys, "--ablation", "no-shift", "--steps", "2",  # the ablation and train options
                         "--gan-arg=--discriminator=projected", "--gan-arg=--disc-input-size=32")
    check_figures(pairs)
    assert pairs["ablation"] == "no-shift" and pairs["discriminator"] == "projected"
    config = gan_config(tmp_path)
    assert config["max_shift"] == 0.0 and config["steps"] == 2
    assert config["discriminator"] == "projected" and config["disc_input_size"] == 32
    assert (tmp_path / "runs" / "gan" / "checkpoints" / "step-0000002").is_dir()
    assert not (tmp_path / "runs" / "no-shift").exists() and "noshift_gen_mask_iou" not in pairs


def test_perturbgan_bench_scores_a_trained_run_with_chunked_encoders(tmp_path, capsys):
    run_bench(tmp_path / "first", capsys, "--steps", "2", "--no-ablation")  # a GAN and an oracle to reuse
    first = tmp_path / "first" / "runs"
    out, pairs = run_bench(tmp_path, capsys, "--gan", str(first / "gan"), "--oracle", str(first / "oracle"), "--chunks")
    check_figures(pairs)
    assert pairs["ablation"] == "as-trained" and 0 <= float(pairs["encoder_chunks_iou"]) <= 1
    assert "encoder (chunks) IoU" in out
    assert not (tmp_path / "runs" / "gan").exists() and not (tmp_path / "runs" / "oracle" / "checkpoints").exists()


def test_generated_only_skips_the_encoder_and_image_quality(tmp_path, capsys):
    encoder_keys = ("encoder_iou", "grabcut_iou", "fid_kind", "fid")
    out, pairs = run_bench(tmp_path, capsys, "--steps", "2", "--generated-only", "--gan-arg=--d-loss=nonsaturating-r1",
                           keys=tuple(key for key in KEYS if key not in encoder_keys))
    assert not any(key in pairs for key in encoder_keys)
    assert "noshift_gen_mask_iou" in pairs and 0 <= float(pairs["mask_diversity"]) <= 1  # the separation figures stay
    assert "--generated-only: no encoder, no FID/KID" in out and "| 3.2 " not in out and "| 3.3 " not in out
    assert not (tmp_path / "runs" / "encoder").exists()
    assert gan_config(tmp_path)["d_loss"] == "nonsaturating-r1"


def test_gan_arg_takes_train_perturbgan_flags_and_names_itself_when_wrong(tmp_path, capsys):
    from workbench.bench.perturbgan import gan_overrides

    assert gan_overrides(["--discriminator=projected", "--disc_input_size", "128", "--d-loss=wgan-gp"]) == {
        "discriminator": "projected", "disc_input_size": 128, "d_loss": "wgan-gp"}
    assert gan_overrides([]) == {}
    with pytest.raises(ValueError, match="--gan-arg .*invalid choice"):
        gan_overrides(["--discriminator=pixel"])
    with pytest.raises(ValueError, match="--gan-arg .*unrecognized"):
        gan_overrides(["--no-such-flag=1"])
    argv = ["bench", "perturbgan", "--preset", "smoke", "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path / "out")]
    assert main([*argv, "--gan", str(tmp_path / "some-run"), "--gan-arg=--max-shift=0"]) == 2
    assert "--gan-arg" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before any training
