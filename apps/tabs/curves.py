"""Training curves: the logged stats of a run (its ``stats.jsonl``) against the step, as plotly charts.

Pick a run found under ``runs/`` (every folder with a ``stats.jsonl``, newest first) or type any
run folder inside ``runs/`` (:func:`apps.safety.readable_folder`), choose the stats and a smoothing window. Reading and drawing are
:func:`workbench.train.curves.read_stats` and :func:`~workbench.train.curves.curves_figure`; a run
that is still training is read anew on every Refresh.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from apps.safety import finite, readable_folder
from workbench.train.curves import curves_figure, find_runs, read_stats, stat_names

__all__ = ["TITLE", "build", "show_curves", "run_choices", "stats_of", "RUNS"]

TITLE = "Training curves"

RUNS = Path(__file__).resolve().parents[2] / "runs"  # where `python -m workbench train --out runs/...` writes


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_choices(root: str | Path = RUNS) -> list[str]:
    """The run folders under ``root`` that hold a stats.jsonl, newest first."""
    return [_shown(run) for run in find_runs(root)]


def _read(run: str | None):
    if not run or not str(run).strip():
        raise gr.Error("Choose a run (a folder written by `python -m workbench train ... --out runs/NAME`).")
    try:
        folder = readable_folder(run, what="The run folder")  # inside runs/ or assets/ (or $WORKBENCH_APP_ROOTS)
        return read_stats(folder)
    except (FileNotFoundError, ValueError) as error:  # OutsideRootsError is a ValueError
        raise gr.Error(str(error)) from None


def stats_of(run: str | None) -> Any:
    """The stat checkboxes for a run: every logged stat, the first four ticked."""
    try:
        names = stat_names(_read(run))
    except gr.Error:
        return gr.update(choices=[], value=[])
    return gr.update(choices=names, value=names[:4])


def show_curves(run: str | None, keys: list[str] | None, smooth: float = 1) -> tuple[Any, str]:
    """The plotly figure of the chosen stats of ``run`` and a Markdown summary of the run's log."""
    finite(smoothing=smooth)
    stats = _read(run)
    names = stat_names(stats)
    keys = [key for key in (keys or names[:4]) if key in names]
    if not keys:
        raise gr.Error(f"Tick at least one stat; this run logged: {', '.join(names)}.")
    figure = curves_figure(stats, keys=keys, smooth=int(smooth or 1), title=str(run).strip())
    summary = (f"**{len(stats)} logged points**, steps {int(stats['step'].iloc[0])}…{int(stats['step'].iloc[-1])} · "
               f"stats: {', '.join(f'`{n}`' for n in names)}")
    return figure, summary


def build() -> None:
    """Create the widgets and wire them to :func:`show_curves` (api_name ``training_curves``)."""
    runs = run_choices()
    first_keys, first = stats_of(runs[0] if runs else None), (None, "Choose a run.")
    if runs and first_keys.get("value"):
        first = show_curves(runs[0], first_keys["value"])
    gr.Markdown(
        "The stats a run logged while training (`RUN/stats.jsonl`: the mean of each loss and measure over every "
        "`log_every` steps), against the step. Runs under `runs/` are listed; type any other run folder. "
        "Press **Refresh** to re-read a run that is still training."
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            run = gr.Dropdown(runs, value=runs[0] if runs else None, allow_custom_value=True,
                              label="Run folder", info=None if runs else "no run under runs/ yet: type a folder",
                              elem_id="curves-run")
            keys = gr.CheckboxGroup(first_keys.get("choices", []), value=first_keys.get("value", []), label="Stats",
                                    elem_id="curves-keys")
            smooth = gr.Slider(1, 51, value=1, step=2, label="Smoothing (rolling mean over logged points)")
            refresh = gr.Button("Refresh", elem_id="curves-refresh")
        with gr.Column(scale=3):
            summary = gr.Markdown(first[1], elem_id="curves-summary")
            plot = gr.Plot(first[0], label="Training curves", elem_id="curves-plot", show_label=False)

    run.change(stats_of, inputs=run, outputs=keys, api_visibility="private").then(
        show_curves, inputs=[run, keys, smooth], outputs=[plot, summary], api_visibility="private")
    gr.on([keys.change, smooth.change, refresh.click], show_curves, inputs=[run, keys, smooth],
          outputs=[plot, summary], api_name="training_curves", trigger_mode="always_last")
