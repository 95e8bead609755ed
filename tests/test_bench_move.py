"""The MOVE benchmarks run end to end at smoke size and end with their RESULT lines."""

from workbench.cli import main


def result_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_move_speed_smoke(tmp_path, capsys):
    assert main(["bench", "move-speed", "--preset", "smoke", "--repeats", "1", "--warmup", "0",
                 "--out", str(tmp_path)]) == 0
    line = result_line(capsys)
    assert line.startswith("RESULT move-speed ") and "shared_speedup=" in line and "approx_speedup=" in line
    assert "disc_arch=official" in line  # the official projected discriminator, whatever the preset
    assert (tmp_path / "move-speed.json").exists()


def test_move_speed_extra_paths(tmp_path, capsys):
    assert main(["bench", "move-speed", "--preset", "smoke", "--repeats", "1", "--warmup", "0", "--extra",
                 "channels-last", "--disc-arch", "preset", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "shared + channels-last head" in out and "channels_last_speedup=" in out.strip().splitlines()[-1]
    assert "disc_arch=workbench" in out.strip().splitlines()[-1]  # the smoke preset's own discriminator
    assert main(["bench", "move-speed", "--preset", "smoke", "--extra", "bf16", "--out", str(tmp_path)]) == 2
    assert "needs a CUDA device" in capsys.readouterr().err


def test_move_bench_smoke(tmp_path, capsys):
    assert main(["bench", "move", "--preset", "smoke", "--mae-steps", "2", "--move-steps", "2", "--n-test", "8",
                 "--selfmask-steps", "2", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = out.strip().splitlines()[-1]
    assert line.startswith("RESULT move ")
    keys = ["iou", "acc", "maxfb", "corloc", "best_baseline_iou", "minutes", "noshift_iou", "selfmask_iou"]
    assert [pair.split("=")[0] for pair in line.split()[2:]] == keys  # the first keys keep their order
    assert "no shift (ablation)" in out and "baseline: grabcut" in out and "SelfMask on MOVE" in out
    assert "reference: every shape" in out and "the distractors are movable too" in out  # benchmark scenes
    assert (tmp_path / "runs" / "mae").is_dir() and (tmp_path / "runs" / "move-no-shift").is_dir()
    assert any((tmp_path / "runs" / "selfmask" / "checkpoints").glob("step-*"))


def test_move_bench_without_distractors_has_no_distractor_note(tmp_path, capsys):
    assert main(["bench", "move", "--preset", "smoke", "--dataset", "synthetic:easy", "--mae-steps", "2",
                 "--move-steps", "2", "--n-test", "4", "--no-ablation", "--no-selfmask", "--runs",
                 str(tmp_path / "runs"), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "reference: every shape" in out and "movable too" not in out  # every shape is the object here


def test_every_shape_reference_row():
    from workbench.bench.move import every_shape_scores
    from workbench.data import build_dataset

    easy = every_shape_scores(build_dataset("synthetic:easy", size=32, split="test", n=4))
    assert easy["iou"] == 1.0  # no distractors: every shape is the object
    bench = every_shape_scores(build_dataset("synthetic:benchmark", size=64, split="test", n=8))
    assert bench["recall"] == 1.0 and 0.3 < bench["iou"] < 0.85  # the distractors cost precision
    assert every_shape_scores([{"image": None}]) is None  # not synthetic scenes: no reference
