"""Command-line rough edges (issue 18, section 3): a quick `--help` that imports no torch, option help
that shows the default preset's values, a short progress status, and `baselines` saying where it wrote."""

import dataclasses
import io
import re
import subprocess
import sys
import time

import pytest

from workbench.cli import main


def imported_modules(*args: str) -> set[str]:
    """The modules ``python -X importtime -m workbench ARGS`` imports (from its stderr)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "workbench", *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    names = set()
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "workbench.cli" in names  # the log was read
    return names


@pytest.mark.parametrize("args", [("--help",), ("bench", "--help")])
def test_help_imports_no_torch(args):
    names = imported_modules(*args)
    heavy = sorted(n for n in names if n.split(".")[0] in ("torch", "pandas", "gradio"))
    assert not heavy, f"`python -m workbench {' '.join(args)}` imported {heavy[:5]}"


def test_bench_catalogue_matches_the_registered_benchmarks():
    from workbench.bench import catalogue, load_all

    listed = {name: text for name, (_, text) in catalogue().items()}
    registered = {name: bench.help for name, bench in load_all().items()}
    assert listed == registered


def test_bench_help_of_one_benchmark_has_its_own_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "move", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--no-ablation" in out and "--preset" in out


def test_unknown_benchmark_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "no-such-bench"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def squashed(text: str) -> str:
    """``text`` without whitespace: argparse wraps help lines anywhere, even after a dash."""
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("method", ["move", "perturbgan", "layered", "selfmask", "dcgan"])
def test_train_help_shows_the_default_preset_and_the_paper_value(method):
    from workbench.methods import METHODS
    from workbench.train.launch import build_parser

    cls = METHODS[method]
    shown, paper = cls.presets[cls.default_preset], cls.presets["paper"]
    assert cls.default_preset != "paper"
    text = squashed(build_parser(cls).format_help())
    differing = 0
    for f in dataclasses.fields(shown):
        value, reference = getattr(shown, f.name), getattr(paper, f.name)
        spell = lambda v: " ".join(map(str, v)) if isinstance(v, tuple) else str(v)  # noqa: E731
        if value == reference:
            assert squashed(f"(default: {spell(value)})") in text, f.name
        else:
            differing += 1
            assert squashed(f"(default: {spell(value)}; paper: {spell(reference)})") in text, f.name
    assert differing > 0
    # a help text describes the option, not the paper's value of it
    assert "--stepsINTtrainingiterations" in text


def test_format_status_keeps_the_losses():
    from workbench.train.trainer import STATUS_FIELDS, format_status

    stats = {"step": 10, "time/elapsed_s": 3.0, "time/step_s": 0.3}
    for phase in ("discriminator", "segmenter"):
        stats.update({f"{phase}/loss": 1.23456, **{f"{phase}/extra{i}": float(i) for i in range(6)}})
    line = format_status(stats)
    assert line == "discriminator 1.235  segmenter 1.235"
    many = {f"phase{i}/loss": float(i) for i in range(10)}
    assert len(format_status(many).split("  ")) == STATUS_FIELDS
    assert format_status({"step": 1, "a/iou": 0.5, "time/step_s": 1.0}) == "a/iou 0.5"  # no losses: the first stats


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_interval_is_long_without_a_terminal():
    from workbench.train.trainer import NON_TTY_INTERVAL_S, progress_interval

    assert progress_interval(io.StringIO()) == NON_TTY_INTERVAL_S >= 10
    assert progress_interval(FakeTerminal()) == 0.1


def test_progress_bar_in_a_log_file_writes_few_lines(capsys):
    from workbench.methods.dcgan import DCGAN
    from workbench.train.trainer import Trainer

    method = DCGAN(DCGAN.presets["smoke"], device="cpu")
    slow = lambda trainer, stats: time.sleep(0.03)  # noqa: E731  (0.6 s in all: 6 refreshes at tqdm's 0.1 s)
    Trainer(method, progress=True, callbacks=[slow], tensorboard=False).fit(20)
    err = capsys.readouterr().err  # pytest's capture is not a terminal
    renders = re.findall(r"\d+/20 \[", err)
    assert 1 <= len(renders) <= 3, renders  # the first line and the last, not one per update


def test_baselines_says_where_it_wrote(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["baselines", "--n", "3", "--size", "32", "--names", "full", "center", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out / 'baselines.json'}" in text
    assert (out / "baselines.json").is_file()
    assert text.strip().splitlines()[-1].startswith("RESULT baselines ")
