"""The command line: every command answers --help, lists its presets, and runs."""

import subprocess
import sys

import pytest

from workbench.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=300)


def test_top_level_help_lists_commands():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("train", "eval", "baselines", "bench", "app"):
        assert command in out.stdout


@pytest.mark.parametrize("command", ["eval", "baselines", "bench", "app"])
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_bench_help_lists_presets(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "eval-speed", "--help"])
    out = capsys.readouterr().out
    assert "--preset" in out and "paper" in out and "smoke" in out


def test_baselines_help_lists_dataset_kinds(capsys):
    with pytest.raises(SystemExit):
        main(["baselines", "--help"])
    out = capsys.readouterr().out
    assert "synthetic" in out and "ecssd" in out


def test_train_help_lists_methods(capsys):
    assert main(["train", "--help"]) == 0
    assert "dcgan" in capsys.readouterr().out
    assert main(["train", "no-such-method"]) == 2


def test_baselines_command_prints_result_line(tmp_path):
    out = run_cli("baselines", "--dataset", "synthetic:benchmark", "--size", "32", "--n", "6", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT baselines ") and "grabcut_iou=" in last and "full_iou=" in last
    assert (tmp_path / "baselines.json").exists()


def test_eval_command_with_boxes(tmp_path, capsys):
    import cv2
    import numpy as np
    import pandas as pd

    gt = np.zeros((40, 40), np.uint8)
    gt[5:15, 5:15] = 255  # two objects
    gt[25:35, 20:38] = 255
    pred = np.zeros_like(gt)
    pred[25:35, 20:38] = 255  # the larger object: a hit
    pred[0:8, 30:40] = 255  # a wrong blob (80 px, above 1%)
    for folder in ("pred", "gt", "ann"):
        (tmp_path / folder).mkdir()
    cv2.imwrite(str(tmp_path / "gt" / "x.png"), gt)
    cv2.imwrite(str(tmp_path / "pred" / "x.png"), pred)
    assert main(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--boxes",
                 "--out", str(tmp_path / "out")]) == 0
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary["corloc"][0] == 1.0 and summary["corloc_multi"][0] == 1.0 and summary["multi_boxes"][0] == 2
    assert "corloc_multi" in capsys.readouterr().out
    # boxes only, from a VOC annotation, with the prediction at half size (resized to the annotation's)
    (tmp_path / "ann" / "x.xml").write_text(
        "<annotation><size><width>80</width><height>80</height></size><object><bndbox><xmin>1</xmin><ymin>1</ymin>"
        "<xmax>20</xmax><ymax>20</ymax></bndbox></object></annotation>")
    small = np.zeros((40, 40), np.uint8)
    small[0:10, 0:10] = 255
    cv2.imwrite(str(tmp_path / "pred" / "x.png"), small)
    assert main(["eval", "--pred", str(tmp_path / "pred"), "--gt-boxes", str(tmp_path / "ann"),
                 "--out", str(tmp_path / "out2")]) == 0
    per_image = pd.read_csv(tmp_path / "out2" / "per_image.csv")
    assert per_image["resized"][0] and per_image["box_iou"][0] > 0.8 and per_image["corloc"][0] == 1
    assert main(["eval", "--pred", str(tmp_path / "pred")]) == 2
    assert "--gt-boxes" in capsys.readouterr().err


def test_predict_refine_choices_are_the_refiners(capsys):
    from workbench.eval.predict import REFINERS

    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    out = capsys.readouterr().out
    assert "--refine" in out and all(name in out for name in REFINERS)
