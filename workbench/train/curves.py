"""Training curves: a run's ``stats.jsonl`` as a table and a plotly figure, and live curves in notebooks.

The :class:`~workbench.train.trainer.Trainer` appends one JSON line per ``log_every`` steps to
``RUN/stats.jsonl`` (``{"step": 10, "loss_d": ..., ...}``, the means since the last line).

* :func:`find_runs` lists the run folders under a root that have one (the app's chooser);
* :func:`read_stats` reads one into a DataFrame indexed by nothing, one column per stat;
* :func:`curves_figure` draws chosen stats against the step, one panel each (plotly, for the app's
  Training curves tab and for notebooks);
* :class:`LiveCurves` is a trainer callback that redraws the curves in place in a notebook
  while ``Trainer.fit`` runs (matplotlib; outside a notebook it only keeps the history).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

__all__ = ["STATS_FILE", "find_runs", "read_stats", "stat_names", "curves_figure", "LiveCurves"]

STATS_FILE = "stats.jsonl"
MAX_PANELS = 12  # curves_figure draws at most this many stats


def find_runs(root: str | Path, *, limit: int = 200) -> list[Path]:
    """Run folders under ``root`` (any depth) that hold a ``stats.jsonl``, newest first; [] when none."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return []
    files = sorted(root.rglob(STATS_FILE), key=lambda p: p.stat().st_mtime, reverse=True)
    return [file.parent for file in files[:limit]]


def read_stats(path: str | Path) -> pd.DataFrame:
    """The logged stats of a run folder (or a ``stats.jsonl`` file): one row per line, sorted by step.

    Lines cut short by a crash are skipped. FileNotFoundError when there is no stats file,
    ValueError when it holds no complete line.
    """
    path = Path(path).expanduser()
    file = path if path.is_file() else path / STATS_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: a run folder written by `python -m workbench train ... "
                                "--out RUN` holds one")
    rows = []
    for line in file.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "step" in entry:
            rows.append(entry)
    if not rows:
        raise ValueError(f"{file} holds no logged step yet")
    return pd.DataFrame(rows).sort_values("step", kind="stable").reset_index(drop=True)


def stat_names(stats: pd.DataFrame) -> list[str]:
    """The numeric stats of a table, ``step`` and timing columns left out."""
    return [c for c in stats.columns if c != "step" and pd.api.types.is_numeric_dtype(stats[c])]


def curves_figure(stats: pd.DataFrame, *, keys: Sequence[str] | None = None, smooth: int = 1,
                  title: str | None = None):
    """A plotly figure of ``keys`` (default: every stat, at most :data:`MAX_PANELS`) against the step.

    One panel per stat, two columns; ``smooth`` > 1 adds a centred rolling mean over that many
    logged points beside the raw curve.
    """
    from plotly.subplots import make_subplots

    names = stat_names(stats)
    keys = list(names if keys is None else keys)[:MAX_PANELS]
    unknown = [key for key in keys if key not in names]
    if unknown:
        raise ValueError(f"unknown stats {unknown}; the run logged: {', '.join(names)}")
    if not keys:
        raise ValueError("choose at least one stat to draw")
    cols = 1 if len(keys) == 1 else 2
    rows = math.ceil(len(keys) / cols)
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=keys, shared_xaxes=False,
                           vertical_spacing=min(0.12, 0.6 / rows))
    for i, key in enumerate(keys):
        row, col = i // cols + 1, i % cols + 1
        raw = stats[["step", key]].dropna()
        figure.add_scatter(x=raw["step"], y=raw[key], mode="lines", name=key, line=dict(width=1),
                           opacity=0.45 if smooth > 1 else 1.0, showlegend=False, row=row, col=col)
        if smooth > 1:
            mean = raw[key].rolling(smooth, center=True, min_periods=1).mean()
            figure.add_scatter(x=raw["step"], y=mean, mode="lines", name=f"{key} (mean of {smooth})",
                               line=dict(width=2), showlegend=False, row=row, col=col)
        figure.update_xaxes(title_text="step" if row == rows else None, row=row, col=col)
    figure.update_layout(height=max(260, 220 * rows), margin=dict(l=40, r=20, t=60 if title else 40, b=40),
                         title=title, template="plotly_white")
    return figure


class LiveCurves:
    """A :class:`~workbench.train.trainer.Trainer` callback that redraws logged stats in a notebook cell.

    ``Trainer(method, callbacks=[LiveCurves(keys=["loss_d", "loss_g"])])``: every ``every`` steps
    (and at the last step) the figure below the cell is replaced by the curves so far (matplotlib,
    one panel per stat). ``history`` keeps every entry; :meth:`frame` gives it as a DataFrame.
    Outside IPython nothing is drawn.
    """

    def __init__(self, *, keys: Sequence[str] | None = None, every: int = 20, size: float = 2.6):
        self.keys, self.every, self.size = (list(keys) if keys is not None else None), every, size
        self.history: list[dict[str, Any]] = []
        self._handle = None

    def frame(self) -> pd.DataFrame:
        """The entries so far as a table (one row per call)."""
        return pd.DataFrame(self.history)

    def __call__(self, trainer: Any, stats: dict[str, Any]) -> None:
        self.history.append({k: float(v) if isinstance(v, (int, float)) else v for k, v in stats.items()})
        last = stats.get("step") == getattr(getattr(trainer, "config", None), "steps", None)
        if stats.get("step", 0) % self.every and not last:
            return
        self.draw()

    def figure(self):
        """The matplotlib figure of the curves so far."""
        from matplotlib.figure import Figure

        table = self.frame()
        keys = [k for k in (self.keys or stat_names(table)) if k in table][:MAX_PANELS]
        cols = min(3, max(1, len(keys)))
        rows = max(1, math.ceil(len(keys) / cols))
        figure = Figure(figsize=(self.size * cols * 1.3, self.size * rows), layout="constrained")
        for i, key in enumerate(keys):
            ax = figure.add_subplot(rows, cols, i + 1)
            ax.plot(table["step"], table[key], linewidth=1)
            ax.set_title(key, fontsize=9)
            ax.tick_params(labelsize=7)
        return figure

    def draw(self) -> None:
        """Replace the cell's figure by the current curves (only under IPython)."""
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        figure = self.figure()
        if self._handle is None:
            self._handle = display(figure, display_id=True)
        else:
            self._handle.update(figure)
