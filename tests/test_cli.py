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
