"""The on-screen score lines of trained models: read from metrics.json, verdict computed from the numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.eval.asset_scores import find_metrics, generator_verdict, scores_line, segmenter_verdict

ROOT = Path(__file__).resolve().parents[1]
BASELINES = {"dataset": "synthetic:benchmark", "split": "test", "size": 64, "n": 10, "seed": 0, "command": "x",
             "full": {"iou": 0.17}, "center": {"iou": 0.36}, "grabcut": {"iou": 0.70}}


@pytest.mark.parametrize("iou, verdict", [(0.18, "does not segment"), (0.25, "below a fixed centred ellipse"),
                                          (0.40, "about as well as a fixed centred ellipse"),
                                          (0.55, "below GrabCut"), (0.80, "above GrabCut")])
def test_the_verdict_follows_the_numbers(iou, verdict):
    line = segmenter_verdict({"iou": iou, "baselines": BASELINES}, name="M")
    assert verdict in line and f"IoU {iou:.3f}" in line and "GrabCut 0.700" in line and "10 held-out" in line


def test_a_layered_part_and_missing_scores():
    metrics = {"joint": {"iou": 0.3}, "post": None, "baselines": BASELINES}
    assert "IoU 0.300" in segmenter_verdict(metrics, part="joint")
    assert "no held-out scores" in segmenter_verdict(metrics, part="post")
    assert "no held-out scores" in segmenter_verdict(None)
    assert "no baselines stored" in segmenter_verdict({"iou": 0.5, "size": 32, "images": 3})
    assert "no scores stored" in generator_verdict({})


def test_find_metrics_looks_above_the_checkpoint(tmp_path):
    (tmp_path / "bundle" / "move").mkdir(parents=True)
    assert find_metrics(tmp_path / "bundle" / "move") is None
    (tmp_path / "bundle" / "metrics.json").write_text(json.dumps({"iou": 0.5}))
    assert find_metrics(tmp_path / "bundle" / "move") == tmp_path / "bundle" / "metrics.json"
    (tmp_path / "bundle" / "metrics.json").write_text("{cut short")
    assert "no held-out scores" in scores_line(tmp_path / "bundle" / "move", kind="segmenter")


def test_the_shipped_assets_carry_their_baselines():
    move = scores_line(ROOT / "assets" / "move-small" / "move", kind="segmenter")
    assert "It segments, below GrabCut" in move and "GrabCut 0.651" in move  # IoU 0.512 on movable (issue 19)
    post = scores_line(ROOT / "assets" / "layered-small" / "post", kind="segmenter", part="post")
    assert "does not segment" not in post and "300 held-out" in post
    assert "IoU 0.672" in scores_line(ROOT / "assets" / "perturbgan-small", kind="generator")


def test_segments_is_unknown_without_the_baseline():
    from workbench.eval.asset_scores import segments

    assert segments({"iou": 0.18, "baselines": BASELINES}) is False
    assert segments({"iou": 0.5, "baselines": BASELINES}) is True
    assert segments({"iou": 0.5}) is None and segments(None) is None
