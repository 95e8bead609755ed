"""scripts/export_layered_asset.py end to end on smoke runs, into a temporary folder (never into assets/).

A layered GAN of setting (c), a U-Net post-trained on it and an oracle U-Net (smoke presets, 2
steps each) are exported as ``assets/layered-small`` under a temporary working directory,
reloaded, scored and described; the copies must score exactly as the runs they came from, and the
generator's separation figures are stored and described.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from apps.tabs import triplet_browser as tb
from workbench.data import build_dataset
from workbench.eval.segmenter import evaluate_segmenter
from workbench.eval.separation import generated_separation, ghost_test, true_scene_reference
from workbench.methods.layered import PRESETS as LAYERED_PRESETS
from workbench.methods.layered import LayeredGAN
from workbench.methods.layered_post import PRESETS as POST_PRESETS
from workbench.methods.layered_post import PostSegmenter
from workbench.methods.oracle import OracleUNet
from workbench.train.checkpoint import load_method
from workbench.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "export_layered_asset.py"
N = 24  # test scenes scored (the script's default is 300)
N_GENERATED, GHOST_N = 12, 6  # composites and ghost-test scenes of the separation figures (defaults 1000, 200)


def _script():
    spec = importlib.util.spec_from_file_location("export_layered_asset", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """The working directory ``tmp_path`` with runs/gan (layered, setting c), runs/post (layered-post) and
    runs/oracle (oracle-unet on the GAN's scenes)."""
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    Trainer(LayeredGAN(replace(LAYERED_PRESETS["smoke"], setting="c")), out_dir="runs/gan", progress=False,
            tensorboard=False).fit(2)
    torch.manual_seed(0)
    post = PostSegmenter(replace(POST_PRESETS["smoke"], generator=str(tmp_path / "runs" / "gan")))
    Trainer(post, out_dir="runs/post", progress=False, tensorboard=False).fit(2)
    torch.manual_seed(0)
    Trainer(OracleUNet(replace(OracleUNet.presets["smoke"], dataset="synthetic:benchmark")), out_dir="runs/oracle",
            progress=False, tensorboard=False).fit(2)
    return tmp_path


def test_the_export_copies_reloads_scores_and_describes_both_segmenters(runs, monkeypatch, capsys):
    trained_with = "python -m workbench train layered --preset smoke --setting c --out runs/gan"
    argv = ["--run", "runs/gan", "--post", "runs/post", "--oracle", "runs/oracle", "--out", "assets/layered-small",
            "--n", str(N), "--n-generated", str(N_GENERATED), "--ghost-n", str(GHOST_N), "--trained-with", trained_with]
    metrics = _script().main(argv)
    out = runs / "assets" / "layered-small"

    for name in ("gan", "post"):  # weights only: they load, they do not resume
        assert json.loads((out / name / "state.json").read_text())["weights_only"] is True
        assert not (out / name / "state.safetensors").exists()
    post_config = json.loads((out / "post" / "config.json").read_text())["config"]
    assert post_config["generator"] == "assets/layered-small/gan"  # relative: out lies in the working directory

    written = json.loads((out / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics)) and json.loads(capsys.readouterr().out) == written
    assert (written["setting"], written["resolution"], written["test_images"]) == ("c", 16, N)
    assert written["gan_step"] == written["post_step"] == 2
    test = build_dataset("synthetic:benchmark", size=16, split="test", n=N, seed=0)
    gan, post = load_method("runs/gan", method="layered"), load_method("runs/post", method="layered-post")
    assert written["joint"]["iou"] == evaluate_segmenter(gan.segment, test)["iou"]  # the copies score as the runs
    assert written["post"]["iou"] == evaluate_segmenter(post.predict, test)["iou"]
    assert 0 <= written["post"]["iou"] <= 1 and written["post"]["n"] == N

    separation = written["separation"]  # the generator's figures, as the layered bench computes them
    oracle = load_method("runs/oracle", method="oracle-unet")
    expected = {**generated_separation(gan, oracle, n=N_GENERATED, seed=0, progress=False),
                **true_scene_reference(oracle, preset="benchmark", resolution=16, seed=0),
                **ghost_test(gan, preset="benchmark", n=GHOST_N, seed=0)}
    assert (separation["preset"], separation["n"], separation["oracle"]) == ("benchmark", N_GENERATED, "runs/oracle")
    for key, value in expected.items():
        assert separation[key] == pytest.approx(value, nan_ok=True), key

    with Image.open(out / "triplets.png") as png:  # the tab's grid: 8 seeds, 16 px shown at 96 px, both segmenters
        figure = np.asarray(png.convert("RGB"))
    assert figure.shape == (tb.HEADER + 7 * 96 + 4 * tb.PAD + 2 * tb.CAPTION, tb.LABEL_WIDTH + 8 * 96 + 7 * tb.PAD, 3)
    expected = tb.figure_grid(gan, seeds=8, post=post, cell=96)
    assert np.array_equal(figure, (expected * 255).round().astype(np.uint8))

    readme = (out / "README.md").read_text()
    assert trained_with in readme and "python scripts/export_layered_asset.py --run runs/gan --post runs/post" in readme
    assert f"| post-trained U-Net (`layered-post`) | {written['post']['iou']:.3f} |" in readme
    assert "setting (c)" in readme and f"{N} test scenes of `synthetic:benchmark` at 16 px" in readme
    assert "--oracle runs/oracle" in readme and "separate object from background" in readme
    for figure in ("bg_object_area <= bg_floor + 0.05", f"| {separation['mask_diversity']:.3f} | true masks",
                   f"true objects {separation['true_area']:.3f}", "centroid_corr >= 0.7",
                   f"{separation['ghost_auc_duplicate']:.3f}"):
        assert figure in readme, figure

    with pytest.raises(SystemExit, match="exists; remove it first"):
        _script().main(argv)

    (runs / "elsewhere").mkdir()  # the shipped U-Net finds its generator from any working directory
    monkeypatch.chdir(runs / "elsewhere")
    monkeypatch.setattr(tb, "_SEGMENTERS", OrderedDict())
    reloaded = tb.load_segmenter(out / "post", device="cpu")
    assert Path(reloaded.config.generator).resolve() == (out / "gan").resolve() and reloaded.step == 2


def test_a_segmenter_of_another_generator_is_refused(runs):
    shutil.copytree(runs / "runs" / "gan" / "checkpoints" / "step-0000002", runs / "other-gan")
    with pytest.raises(SystemExit, match="was post-trained on .*runs/gan/checkpoints/step-0000002, not on"):
        _script().main(["--run", "other-gan", "--post", "runs/post", "--oracle", "runs/oracle",
                        "--out", "assets/layered-small"])
    assert not (runs / "assets").exists()  # nothing written
    with pytest.raises(SystemExit, match="checkpoint of method 'layered', not 'layered-post'"):
        _script().main(["--run", "runs/gan", "--post", "runs/gan", "--oracle", "runs/oracle",
                        "--out", "assets/layered-small"])
    with pytest.raises(SystemExit, match="checkpoint of method 'layered-post', not 'oracle-unet'"):
        _script().main(["--run", "runs/gan", "--post", "runs/post", "--oracle", "runs/post",
                        "--out", "assets/layered-small"])
