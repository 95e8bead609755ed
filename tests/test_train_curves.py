"""Training curves: stats.jsonl read back, drawn with plotly (the app's tab) and live in notebooks."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from apps.tabs import curves as tab
from workbench.train.curves import LiveCurves, curves_figure, find_runs, read_stats, stat_names


def _run(folder, steps=(10, 20, 30), cut=True):
    folder.mkdir(parents=True)
    lines = [json.dumps({"step": s, "loss_d": 1.0 / s, "loss_g": float(s), "note": "x"}) for s in steps]
    (folder / "stats.jsonl").write_text("\n".join(lines) + ("\n{\"step\": 4" if cut else "\n"))
    return folder


def test_read_stats_skips_a_cut_line_and_names_the_numeric_stats(tmp_path):
    stats = read_stats(_run(tmp_path / "a"))
    assert list(stats["step"]) == [10, 20, 30] and stat_names(stats) == ["loss_d", "loss_g"]
    assert find_runs(tmp_path) == [tmp_path / "a"] and find_runs(tmp_path / "none") == []
    with pytest.raises(FileNotFoundError, match="stats.jsonl"):
        read_stats(tmp_path)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "stats.jsonl").write_text("{cut")
    with pytest.raises(ValueError, match="no logged step"):
        read_stats(tmp_path / "b")


def test_curves_figure_draws_one_panel_per_stat_with_the_logged_values(tmp_path):
    stats = read_stats(_run(tmp_path / "a"))
    figure = curves_figure(stats, keys=["loss_g", "loss_d"], smooth=3)
    raw = [t for t in figure.data if t.name == "loss_g"][0]
    assert list(raw.x) == [10, 20, 30] and list(raw.y) == [10.0, 20.0, 30.0]
    assert len(figure.data) == 4 and [a.text for a in figure.layout.annotations] == ["loss_g", "loss_d"]
    with pytest.raises(ValueError, match="unknown stats"):
        curves_figure(stats, keys=["loss_x"])


def test_the_tab_shows_a_run_and_explains_a_bad_one(tmp_path, monkeypatch):
    from apps.safety import ROOTS_ENV

    run = _run(tmp_path / "runs" / "gan")
    with pytest.raises(gr.Error, match="must be a folder inside"):  # outside runs/ and assets/
        tab.show_curves(str(run), ["loss_d"])
    monkeypatch.setenv(ROOTS_ENV, str(tmp_path))
    assert tab.run_choices(tmp_path / "runs") == [str(run)]
    assert tab.stats_of(str(run))["value"] == ["loss_d", "loss_g"]
    figure, summary = tab.show_curves(str(run), ["loss_d"], 1)
    assert len(figure.data) == 1 and "**3 logged points**, steps 10…30" in summary
    with pytest.raises(gr.Error, match="does not exist"):
        tab.show_curves(str(tmp_path / "nothing"), ["loss_d"])
    with pytest.raises(gr.Error, match="Choose a run"):
        tab.show_curves("", [])
    with pytest.raises(gr.Error, match="smoothing must be a finite number"):
        tab.show_curves(str(run), ["loss_d"], float("inf"))


def test_live_curves_keep_the_history_and_draw_a_figure():
    live = LiveCurves(keys=["loss"], every=2)
    for step in range(1, 5):
        live(None, {"step": step, "loss": 1.0 / step})
    assert list(live.frame()["step"]) == [1, 2, 3, 4]
    figure = live.figure()
    (line,) = figure.axes[0].lines
    assert list(line.get_xdata()) == [1, 2, 3, 4] and figure.axes[0].get_title() == "loss"
