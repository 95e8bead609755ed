"""The layered benchmark (table 4.1) runs end to end at smoke size, offline, in all four settings: a
conditional layered GAN, its joint segmenter (a-c), a post-trained U-Net, FID with the shipped MAE, baselines."""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest
import torch

from workbench.cli import main
from workbench.eval.baselines import BASELINES
from workbench.methods.layered import SETTINGS
from workbench.nets.unet_discriminator import parameter_count
from workbench.train import load_method

KEYS = ("setting", "joint_iou", "post_iou", "post_acc", "post_maxfb", "fid_kind", "fid", "best_baseline",
        "best_baseline_iou", "g_params", "minutes", "grabcut_iou", "mask_area", "true_area", "bg_object_area", "bg_floor",
        "mask_diversity", "true_mask_diversity", "centroid_corr", "fake_auc", "ghost_auc_duplicate",
        "ghost_auc_wrong_mask", "ghost_auc_moved")

# helpers


def run_bench(folder, *extra: str) -> tuple[str, dict]:
    """``python -m workbench bench layered --preset smoke ...`` in this process; (stdout, RESULT fields)."""
    argv = ["bench", "layered", "--preset", "smoke", "--threads", "1", "--device", "cpu",
            "--runs", str(folder / "runs"), "--out", str(folder / "out"), *extra]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(argv) == 0
    out = stdout.getvalue()
    line = out.strip().splitlines()[-1]
    assert line.startswith("RESULT layered ")
    pairs = dict(item.split("=", 1) for item in line.split()[2:])
    missing = [key for key in KEYS if key not in pairs]
    assert not missing, f"RESULT line lacks {missing}: {line}"
    return out, pairs


@pytest.fixture(scope="module")
def benches(tmp_path_factory):
    """The bench once per setting of table 4.1, offline (empty weights folder and torch hub cache, so the
    shipped MAE gives the FID features): setting -> (stdout, RESULT fields, folder)."""
    threads = torch.get_num_threads()
    results = {}
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("bench-layered")
        patch.setenv("WORKBENCH_WEIGHTS", str(root / "weights"))
        patch.setenv("TORCH_HOME", str(root / "torch-home"))
        for setting in SETTINGS:
            folder = root / setting
            ablation = [] if setting == "d" else ["--no-ablation"]  # one setting also trains its no-shift GAN
            ablation += LADDER_FLAGS.get(setting, [])
            results[setting] = (*run_bench(folder, "--setting", setting, *ablation), folder)
    torch.set_num_threads(threads)  # the benchmark's --threads 1 must not slow the tests after these
    return results


LADDER_FLAGS = {"a": ["--g-architecture", "orig"], "b": ["--rgb-init", "0.5"], "c": ["--disc-trunk", "plain"],
                "d": ["--size-loss-on", "shifted"]}  # issue 16's ladder switches, one per setting


def check_figures(pairs: dict, setting: str) -> None:
    assert pairs["setting"] == setting
    if SETTINGS[setting].segmenter:
        assert 0 <= float(pairs["joint_iou"]) <= 1
    else:
        assert pairs["joint_iou"] == "-"  # setting (d) has no joint segmenter
    for key in ("post_iou", "post_acc", "post_maxfb", "best_baseline_iou", "grabcut_iou", "mask_area", "true_area",
                "bg_object_area", "bg_floor", "mask_diversity", "true_mask_diversity"):
        assert 0 <= float(pairs[key]) <= 1, key
    assert pairs["fid_kind"] == "mae-mean:assets/move-small/mae"
    assert math.isfinite(float(pairs["fid"])) and float(pairs["fid"]) >= 0
    assert pairs["best_baseline"] in BASELINES
    assert int(pairs["g_params"]) > 0 and float(pairs["minutes"]) > 0


# tests


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_layered_bench_smoke(benches, setting):
    out, pairs, folder = benches[setting]
    check_figures(pairs, setting)
    assert "FID (MAE features)" in out and "not Inception" in out and "post-training IoU" in out
    for name in ("gan", "post"):
        assert any((folder / "runs" / name / "checkpoints").glob("step-*")), name
    gan = load_method(folder / "runs" / "gan")
    assert gan.name == "layered" and gan.config.setting == setting
    assert int(pairs["g_params"]) == parameter_count(gan.module("generator"))
    post = load_method(folder / "runs" / "post")  # the post run names the GAN run it was trained on
    assert post.name == "layered-post" and post.predict(torch.rand(2, 3, 16, 24)).shape == (2, 1, 16, 24)
    saved = json.loads((folder / "out" / "layered.json").read_text())
    assert saved["metrics"]["setting"] == setting and saved["metrics"]["fid_kind"] == pairs["fid_kind"]
    assert {row["table"] for row in saved["table"]} >= {"4.1", "4.2", "baseline"}
    baselines = [row["value"] for row in saved["table"] if row["table"] == "baseline"]
    assert len(baselines) == len(BASELINES)
    assert max(baselines) == pytest.approx(float(pairs["best_baseline_iou"]), abs=1e-3)
    post_row = next(row for row in saved["table"] if row["measure"] == "post-training IoU")
    assert post_row["value"] == pytest.approx(saved["metrics"]["post_iou"])


def test_layered_bench_trains_the_no_shift_ablation_with_the_same_figures(benches):
    out, pairs, folder = benches["d"]
    assert json.loads((folder / "runs" / "no-shift" / "config.json").read_text())["config"]["max_shift"] == 0.0
    for key in ("gen_mask_iou", "detected", "bg_object_area", "mask_diversity", "centroid_corr", "mask_area"):
        assert f"noshift_{key}" in pairs, key
    assert "no-shift ablation: gen_mask_iou" in out and "separation: " in out
    assert "noshift_gen_mask_iou" not in benches["c"][1]  # --no-ablation skips it
    assert float(pairs["grabcut_iou"]) <= float(pairs["best_baseline_iou"])


def test_layered_bench_passes_the_ladder_switches_to_the_gan(benches):
    for setting, rgb_init, trunk, outputs, size_loss_on in (
            ("a", 1.0, "resnet", "orig", "original"), ("b", 0.5, "resnet", "skip", "original"),
            ("c", 1.0, "plain", "skip", "original"), ("d", 1.0, "resnet", "skip", "shifted")):
        out, _, folder = benches[setting]
        gan = load_method(folder / "runs" / "gan")
        assert gan.config.rgb_init == rgb_init and gan.discriminator.architecture == trunk, setting
        assert gan.config.g_architecture == gan.module("generator").generator.architecture == outputs, setting
        assert gan.config.size_loss_on == size_loss_on, setting
        assert (f"rgb_init {rgb_init}, size hinges on the {size_loss_on} mask, stylegan2 generator ({outputs} outputs), "
                f"{trunk} discriminator trunk") in out, setting


def test_the_conditional_generator_has_half_the_parameters(benches):
    """Section 4.2: one conditional generator halves chapter 3's two generators (the bench's note)."""
    out, pairs, _ = benches["d"]
    note = next(line for line in out.splitlines() if line.startswith("note: parameters"))
    assert f"conditional stylegan2 generator {int(pairs['g_params']):,}" in note
    ratio = float(note.split("(")[1].split("×")[0])
    assert 0.45 < ratio < 0.55


def test_layered_bench_scores_a_trained_run(benches, tmp_path):
    trained = benches["c"][2] / "runs" / "gan"
    _, pairs = run_bench(tmp_path, "--gan", str(trained), "--setting", "a", "--post-steps", "2",
                         "--oracle", str(benches["c"][2] / "runs" / "oracle"))
    check_figures(pairs, "c")  # the run's own setting, not --setting
    assert not (tmp_path / "runs" / "gan").exists()
    assert (tmp_path / "runs" / "post" / "checkpoints" / "step-0000002").is_dir()
    post = load_method(tmp_path / "runs" / "post")
    assert post.config.generator == str(trained.resolve()) and post.config.steps == 2


def test_layered_bench_reuses_a_post_run_and_scores_other_datasets(benches, tmp_path):
    """--post skips post-training; --eval-on adds IoU / accuracy / max F_β rows of a folder dataset with masks."""
    from PIL import Image

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = torch.Generator().manual_seed(0)
    for i in range(3):  # a tiny pairs:IMAGES,MASKS tree: random images, a square mask each
        pixels = (torch.rand(24, 20, 3, generator=rng) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(images / f"im{i}.png")
        mask = torch.zeros(24, 20, dtype=torch.uint8)
        mask[6:18, 4:16] = 255
        Image.fromarray(mask.numpy()).save(masks / f"im{i}.png")
    folder = benches["c"][2] / "runs"
    out, pairs = run_bench(tmp_path, "--gan", str(folder / "gan"), "--post", str(folder / "post"),
                           "--eval-on", f"pairs:{images},{masks}")
    assert not (tmp_path / "runs" / "post").exists()  # nothing post-trained
    assert float(pairs["post_iou"]) == pytest.approx(float(benches["c"][1]["post_iou"]), abs=1e-4)
    rows = [line for line in out.splitlines() if line.startswith(f"| pairs:{images}")]
    assert len(rows) == 6  # joint and post-training: iou, accuracy, max_f_beta
    assert all(0 <= float(row.split("|")[3]) <= 1 for row in rows)
