"""`eval --convention official`: MOVE's official segmentation_eval.py, reproduced (issue 13, item 10)."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.bench.move_parity_discriminator import metrics_checks
from workbench.eval.metrics import SegmentationMeter, official_aggregates, official_image_scores

FIXTURES = Path(os.environ.get("MOVE_OFFICIAL_FIXTURES", Path(__file__).resolve().parents[1] / ".." / "shared" /
                               "fixtures" / "move-official"))
needs_fixtures = pytest.mark.skipif(not (FIXTURES / "metrics.json").is_file(),
                                    reason=f"official MOVE fixtures not found at {FIXTURES} (set MOVE_OFFICIAL_FIXTURES)")


def ours(pred, gt):
    meter = SegmentationMeter()
    meter.update(pred, gt)
    return meter.per_image().iloc[0], meter.curve()


def test_official_conventions_differ_from_ours_where_documented():
    empty = np.zeros((6, 5), np.float32)
    none = np.zeros((6, 5), bool)
    both_empty = official_image_scores(empty, none)
    assert both_empty["iou"] == 0 and ours(empty, none)[0]["iou"] == 1  # both empty: 0 vs our 1
    assert both_empty["precision"] == 1 and both_empty["recall"] == 1  # 0/0: 1 vs our 0
    assert np.all(both_empty["f_beta_curve"] == 1)
    assert ours(empty, none)[0]["precision"] == 0
    full_gt = np.ones((6, 5), bool)
    official = official_image_scores(empty, full_gt)
    assert official["precision"] == 1 and official["recall"] == 0 and official["f_beta_curve"].max() == 0
    # no all-foreground level: ours marks every pixel foreground at level 0 and scores F > 0 there
    assert ours(empty, full_gt)[1]["f_beta"].max() > 0
    # strict threshold: 0.5 itself is background for the official script, foreground for ours
    half = np.full((6, 5), 0.5, np.float32)
    assert official_image_scores(half, full_gt)["recall"] == 0 and ours(half, full_gt)[0]["recall"] == 1


def test_official_curves_count_pixels_above_k_over_256():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 256, (9, 7)).astype(np.float32) / np.float32(255)
    gt = rng.random((9, 7)) > 0.5
    scores = official_image_scores(pred, gt)
    for k in (0, 1, 100, 128, 255):
        b = pred > np.float32(k / 256)
        tp = np.sum(b & gt)
        assert scores["precision_curve"][k] == pytest.approx(tp / b.sum() if b.sum() else 1.0, rel=1e-6)
        assert scores["recall_curve"][k] == pytest.approx(tp / gt.sum(), rel=1e-6)
    assert scores["f_beta_curve"].dtype == np.float32
    agg = official_aggregates(np.stack([scores["f_beta_curve"]] * 3))
    assert agg["max_f_beta"] == pytest.approx(float(scores["f_beta_curve"].max()))
    assert agg["max_f_beta_level"] == int(np.argmax(scores["f_beta_curve"]))


@needs_fixtures
def test_every_metrics_fixture_output_within_tolerance():
    rows = metrics_checks(FIXTURES)
    assert len(rows) >= 15
    failed = {r["item"]: (r["max_abs_diff"], r["tolerance"]) for r in rows if not r["max_abs_diff"] <= r["tolerance"]}
    assert not failed


@needs_fixtures
def test_eval_cli_official_convention(tmp_path, capsys):
    import json

    from workbench.cli import main

    root = FIXTURES / "metrics"
    code = main(["eval", "--pred", str(root / "pred" / "cls"), "--gt", str(root / "gt" / "cls"), "--convention",
                 "official", "--out", str(tmp_path / "official")])
    assert code == 0
    reference = json.loads((FIXTURES / "metrics.json").read_text())["official_fbeta"]
    summary = pd.read_csv(tmp_path / "official" / "summary.csv").iloc[0]
    assert summary["iou"] == pytest.approx(reference["Mean IoU"], abs=1e-6)
    assert summary["max_f_beta"] == pytest.approx(reference["FBetaMax"], abs=1e-6)
    assert summary["max_f_beta_threshold"] == reference["FBetaArgMax"] / 256
    assert main(["eval", "--pred", str(root / "pred" / "cls"), "--gt", str(root / "gt" / "cls"),
                 "--out", str(tmp_path / "ours")]) == 0
    assert pd.read_csv(tmp_path / "ours" / "summary.csv").iloc[0]["iou"] != pytest.approx(reference["Mean IoU"], abs=1e-3)
    assert main(["eval", "--pred", str(root / "pred" / "cls"), "--gt", str(root / "gt" / "cls"), "--convention",
                 "official", "--boxes", "--out", str(tmp_path / "x")]) == 2
    assert "error: --convention official" in capsys.readouterr().err
