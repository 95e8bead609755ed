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
    assert "synthetic:movable" in out and "target (issue 19): IoU >= 0.6" in out and "0.80" not in out
    assert "reference: every shape" in out and "movable too" not in out  # movable scenes: every shape is in the mask
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


def test_move_bench_ladder_smoke(tmp_path, capsys):
    assert main(["bench", "move", "--preset", "smoke", "--mae-steps", "2", "--move-steps", "2", "--n-test", "4",
                 "--no-selfmask", "--ladder", "--supervised-steps", "2", "--runs", str(tmp_path / "runs"),
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = out.strip().splitlines()[-1]
    keys = [pair.split("=")[0] for pair in line.split()[2:]]
    assert keys[-4:] == ["oracle_inpainter_iou", "other_features_iou", "supervised_iou", "other_supervised_iou"]
    assert "oracle inpainter (true background; diagnostic)" in out and "EfficientNet-Lite0" in out
    assert (tmp_path / "runs" / "move-oracle").is_dir() and (tmp_path / "runs" / "move-efficientnet").is_dir()
    assert (tmp_path / "runs" / "ladder.png").stat().st_size > 0
    assert "oracle inpainter" in (tmp_path / "runs" / "ladder.txt").read_text()


def test_supervised_head_learns_true_masks():
    """Rung 5's head lowers its loss on a fixed batch (it really trains on the true masks)."""
    import dataclasses

    import torch

    from workbench.bench.move_ladder import SupervisedHead
    from workbench.data import build_dataset
    from workbench.methods.move import MOVE

    torch.manual_seed(0)
    move = MOVE(dataclasses.replace(MOVE.presets["smoke"], dataset="synthetic:movable"))
    data = build_dataset("synthetic:movable", size=32, split="train", n=8)
    head = SupervisedHead(move, seed=0)
    losses = head.fit(data, steps=30, batch_size=8, lr=2e-3)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert head.predict(torch.rand(2, 3, 40, 40)).shape == (2, 1, 40, 40)
