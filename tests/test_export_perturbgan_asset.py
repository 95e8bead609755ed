"""scripts/export_perturbgan_asset.py end to end on smoke runs, into a temporary folder (never into assets/).

A PerturbGAN and an oracle U-Net (smoke presets, 2 steps each) are exported as
``assets/perturbgan-small`` under a temporary working directory, reloaded and scored; the
separation record in metrics.json must be what :mod:`workbench.eval.separation` gives the run.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from workbench.eval.asset_scores import scores_line
from workbench.eval.separation import generated_separation, ghost_test, true_scene_reference
from workbench.methods.oracle import OracleUNet
from workbench.methods.perturbgan import PRESETS, PerturbGAN
from workbench.train.checkpoint import load_method
from workbench.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "export_perturbgan_asset.py"
N, GHOST_N = 12, 6  # composites and ghost-test scenes scored (the script's defaults are 1000 and 200)


def _script():
    spec = importlib.util.spec_from_file_location("export_perturbgan_asset", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder with runs/gan (perturbgan smoke, synthetic:easy) and runs/oracle (oracle-unet smoke)."""
    root = tmp_path_factory.mktemp("perturbgan-export")
    torch.manual_seed(0)
    Trainer(PerturbGAN(PRESETS["smoke"]), out_dir=root / "runs" / "gan", progress=False, tensorboard=False).fit(2)
    torch.manual_seed(0)
    Trainer(OracleUNet(OracleUNet.presets["smoke"]), out_dir=root / "runs" / "oracle", progress=False,
            tensorboard=False).fit(2)
    return root


def test_the_export_stores_the_separation_figures_and_the_ghost_test(runs, monkeypatch, capsys):
    monkeypatch.chdir(runs)
    trained_with = "python -m workbench train perturbgan --preset smoke --out runs/gan"
    argv = ["--run", "runs/gan", "--oracle", "runs/oracle", "--out", "assets/perturbgan-small", "--n", str(N),
            "--ghost-n", str(GHOST_N), "--trained-with", trained_with]
    metrics = _script().main(argv)
    out = runs / "assets" / "perturbgan-small"
    written = json.loads((out / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics)) and written["n"] == N and written["step"] == 2
    assert json.loads(capsys.readouterr().out) == written

    separation = written["separation"]
    gan, oracle = load_method("runs/gan", method="perturbgan"), load_method("runs/oracle", method="oracle-unet")
    expected = {**generated_separation(gan, oracle, n=N, seed=0, progress=False),
                **true_scene_reference(oracle, preset="easy", resolution=16, seed=0),
                **ghost_test(gan, preset="easy", n=GHOST_N, seed=0)}
    assert (separation["preset"], separation["seed"], separation["oracle"]) == ("easy", 0, "runs/oracle")
    for key, value in expected.items():  # the exported copy scores as the run does
        assert separation[key] == pytest.approx(value, nan_ok=True), key
    assert {"bg_floor", "true_mask_diversity", "true_area", "ghost_auc_duplicate", "fake_auc"} <= set(separation)

    readme = (out / "README.md").read_text()  # the figures, their references and targets, in words
    assert trained_with in readme and "python scripts/export_perturbgan_asset.py --run runs/gan --oracle" in readme
    assert f"{written['detected']} detected of {N} composites | {written['gen_mask_iou']:.3f} |" in readme
    for figure in ("bg_object_area <= bg_floor + 0.05", f"| {separation['mask_diversity']:.3f} | true masks",
                   f"bg_floor {separation['bg_floor']:.3f}", "centroid_corr >= 0.7", "separate object from background",
                   f"{separation['fake_auc']:.3f} | 0.5 = chance"):
        assert figure in readme, figure

    line = scores_line(out, kind="generator", name="This PerturbGAN")  # the app's line reads the record
    assert "separate object from background" in line and "Its discriminator" in line

    with pytest.raises(SystemExit, match="exists; remove it first"):
        _script().main(argv)


def test_a_wrong_oracle_or_real_images_are_refused_before_anything_is_written(runs, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="checkpoint of method 'perturbgan', not 'oracle-unet'"):
        _script().main(["--run", str(runs / "runs" / "gan"), "--oracle", str(runs / "runs" / "gan"), "--out", "x"])
    copy = tmp_path / "photos-gan"  # the same run, recorded as trained on real images (no true backgrounds)
    shutil.copytree(runs / "runs" / "gan" / "checkpoints" / "step-0000002", copy)
    record = json.loads((copy / "config.json").read_text())
    record["config"]["dataset"] = "folder:photos"
    (copy / "config.json").write_text(json.dumps(record))
    with pytest.raises(SystemExit, match="need synthetic scenes"):
        _script().main(["--run", str(copy), "--oracle", str(runs / "runs" / "oracle"), "--out", "x"])
    assert not (tmp_path / "x").exists()
