"""Hinge vs KDD: how each generator loss moves the fake samples in feature space (figure 6.1, chapter 6).

A real cloud of k Gaussian modes on a ring and a fake cloud (a uniform square, as in figure 6.1a,
or a Gaussian) stand for the discriminator features φ(x) of real and generated images. The tab
shows, side by side for the two generator losses,

- the update −∂L_G/∂φ on a subsample of the fake points: under the hinge loss with the optimal
  linear discriminator wᵀφ + b it is the same vector w for every point (eq. 6.11); under the KDD
  loss it pulls each point up the real density and away from the fake one (eqs. 6.12, 6.13);
- what SGD on the points themselves makes of the fake cloud after the chosen number of steps
  (figures 6.1b and 6.1c): final positions and faint paths;
- numbers: the share of fake points nearest each mode and the energy distance to the real cloud,
  before and after.

The KDE kernel is the Gaussian of figure 6.1 (σ, on the raw 2D points) or the vMF kernel of eq.
(6.9) (τ, on the points projected onto the unit circle). Every number comes from
:mod:`workbench.methods.kdd_2d` and :class:`workbench.losses.KDD`; the tab only draws.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from apps.safety import finite
from workbench.losses import KDD
from workbench.methods import kdd_2d

__all__ = ["TITLE", "build", "compare", "clouds", "DEFAULTS", "FAKE_SHAPES", "KERNELS", "LOSS_NAMES"]

TITLE = "Hinge vs KDD"

FAKE_SHAPES = ("square", "Gaussian")  # the fake cloud: uniform square (figure 6.1a) or isotropic Gaussian
KERNELS = (("Gaussian σ (figure 6.1)", "gaussian"), ("vMF τ on the unit circle (eq. 6.9)", "vmf"))
LOSS_NAMES = {"hinge": "Hinge (eq. 6.3)", "kdd": "KDD (eq. 6.6)"}
RING_RADIUS = 2.0  # the real modes sit on a circle of this radius around the origin
MODE_STD = 0.25  # σ of every real mode
FAKE_CENTER = (-5.0, 0.0)  # where the fake cloud starts, left of the ring
SQUARE_SIDE = 2.0  # side of the fake square (figure 6.1a)
FAKE_STD = SQUARE_SIDE / math.sqrt(12)  # σ of the Gaussian fake cloud: the square's standard deviation
SEED = 0
ARROWS = 40  # fake points that get an arrow (evenly spread over the cloud)
PATHS = 80  # fake points whose paths are drawn
ARROW_LENGTH = 1.0  # the longest arrow of a panel, in plot units; the others are to scale
FRAMES = 40  # at most this many recorded positions per path
COLORS = {"real": "#1f77b4", "fake": "#ff7f0e", "boundary": "#2ca02c", "arrow": "#d62728", "path": "#ff7f0e"}

# computation (kdd_2d and the KDD loss do the work)


@lru_cache(maxsize=16)
def clouds(k: int, fake_shape: str, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, kdd_2d.LinearClassifier]:
    """The real cloud (n, 2) of k modes on the ring, the fake cloud (n, 2), the modes (k, 2) and the
    optimal linear classifier between the clouds (the green line). Cached: it depends on neither the
    kernel nor the optimisation settings."""
    centers = kdd_2d.ring_mixture(modes=k, radius=RING_RADIUS).centers  # (k, 2)
    real, fake, centers = kdd_2d.figure_6_1_clouds(n=n, seed=SEED, modes=tuple(map(tuple, centers.tolist())),
                                                   mode_std=MODE_STD, square_center=FAKE_CENTER,
                                                   square_side=SQUARE_SIDE)
    if fake_shape == "Gaussian":
        g = torch.Generator().manual_seed(SEED + 1)
        fake = torch.tensor(FAKE_CENTER) + FAKE_STD * torch.randn(n, 2, generator=g)  # (n, 2)
    elif fake_shape != "square":
        raise gr.Error(f"Unknown fake cloud {fake_shape!r}; choose one of {', '.join(FAKE_SHAPES)}.")
    return real, fake, centers, kdd_2d.fit_linear_classifier(real, fake)


def _check(k: float, kernel: str, width: float, lr: float, steps: float, n: float) -> None:
    finite(number_of_modes=k, kernel_width=width, learning_rate=lr, number_of_steps=steps, points_per_cloud=n)
    if k is None or int(k) != k or not 1 <= k <= 12:
        raise gr.Error(f"The number of modes must be a whole number from 1 to 12, got {k!r}.")
    if kernel not in dict(KERNELS).values():
        raise gr.Error(f"Unknown kernel {kernel!r}; choose 'gaussian' or 'vmf'.")
    if width is None or width <= 0:
        raise gr.Error(f"The kernel width (σ or τ) must be positive, got {width!r}.")
    if lr is None or lr <= 0:
        raise gr.Error(f"The learning rate must be positive, got {lr!r}.")
    if steps is None or int(steps) != steps or steps < 0:
        raise gr.Error(f"The number of steps must be a whole number >= 0, got {steps!r}.")
    if n is None or int(n) != n or n < 10:
        raise gr.Error(f"The number of points per cloud must be a whole number >= 10, got {n!r}.")


# drawing


def _spread(n: int, count: int) -> torch.Tensor:
    """``count`` indices spread evenly over 0..n-1 (the points are in random order already)."""
    return torch.linspace(0, n - 1, min(n, count)).round().long()


def _box(*clouds_: torch.Tensor, margin: float = 0.8) -> tuple[tuple[float, float], tuple[float, float]]:
    """x and y ranges that hold every point of the clouds (·, 2), plus a margin."""
    points = torch.cat([c.reshape(-1, 2) for c in clouds_])
    low, high = points.min(dim=0).values - margin, points.max(dim=0).values + margin
    return (float(low[0]), float(high[0])), (float(low[1]), float(high[1]))


def _boundary(classifier: kdd_2d.LinearClassifier, box) -> tuple[list[float], list[float]]:
    """The segment of the line wᵀφ + b = 0 that crosses ``box`` (any orientation)."""
    w = classifier.w.double()
    norm2 = float(w.square().sum())
    if norm2 == 0:
        return [], []
    anchor = -classifier.b * w / norm2  # the point of the line nearest the origin
    direction = torch.stack([-w[1], w[0]]) / math.sqrt(norm2)
    (x0, x1), (y0, y1) = box
    reach = math.hypot(x1 - x0, y1 - y0) + math.hypot(float(anchor[0]), float(anchor[1]))
    ends = [anchor - reach * direction, anchor + reach * direction]
    return [float(p[0]) for p in ends], [float(p[1]) for p in ends]


def _cloud(points: torch.Tensor, *, name: str, color: str, opacity: float, size: float = 4,
           showlegend: bool = False, meta: dict | None = None) -> go.Scatter:
    return go.Scatter(x=points[:, 0].tolist(), y=points[:, 1].tolist(), mode="markers", name=name,
                      marker=dict(color=color, size=size, opacity=opacity), showlegend=showlegend,
                      hoverinfo="skip", meta=meta)


def _arrows(starts: torch.Tensor, vectors: torch.Tensor, *, loss: str, showlegend: bool) -> list[go.Scatter]:
    """Shafts (a line per arrow) and heads (a rotated triangle at each tip) for vectors (A, 2) at starts (A, 2)."""
    tips = starts + vectors  # (A, 2)
    xs, ys = [], []
    for (x0, y0), (x1, y1) in zip(starts.tolist(), tips.tolist()):
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    angles = torch.rad2deg(torch.atan2(vectors[:, 0], vectors[:, 1])).tolist()  # clockwise from "up"
    shafts = go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=COLORS["arrow"], width=1.4),
                        name="update −∂L_G/∂φ", legendgroup="arrows", showlegend=showlegend, hoverinfo="skip",
                        meta={"loss": loss, "role": "arrows"})
    heads = go.Scatter(x=tips[:, 0].tolist(), y=tips[:, 1].tolist(), mode="markers", showlegend=False,
                       marker=dict(symbol="triangle-up", size=7, angle=angles, color=COLORS["arrow"]),
                       legendgroup="arrows", hoverinfo="skip", meta={"loss": loss, "role": "arrowheads"})
    return [shafts, heads]


def _panels(title: str) -> go.Figure:
    figure = make_subplots(rows=1, cols=2, subplot_titles=[LOSS_NAMES["hinge"], LOSS_NAMES["kdd"]],
                           horizontal_spacing=0.06)
    figure.update_layout(title=dict(text=title, x=0.5, font=dict(size=14)), height=420,
                         margin=dict(l=30, r=20, t=70, b=30), plot_bgcolor="white",
                         legend=dict(orientation="h", y=-0.06, x=0.5, xanchor="center"))
    for col in (1, 2):
        figure.update_xaxes(showgrid=True, gridcolor="#eee", zeroline=False, row=1, col=col)
        figure.update_yaxes(showgrid=True, gridcolor="#eee", zeroline=False, row=1, col=col,
                            scaleanchor="x" if col == 1 else "x2", scaleratio=1)
    return figure


def field_figure(real: torch.Tensor, fake: torch.Tensor, classifier: kdd_2d.LinearClassifier,
                 field: dict[str, torch.Tensor]) -> go.Figure:
    """Both losses' updates −∂L_G/∂φ on a subsample of the fake points; arrows scaled per panel."""
    figure = _panels("The update of each fake point: −∂L_G/∂φ (arrows to scale within a panel)")
    pick = _spread(len(fake), ARROWS)
    box = _box(real, fake, margin=ARROW_LENGTH + 0.5)
    line_x, line_y = _boundary(classifier, box)
    for col, loss in enumerate(("hinge", "kdd"), start=1):
        first = col == 1
        vectors = field[loss][pick]  # (A, 2)
        longest = float(vectors.norm(dim=1).max())
        scaled = vectors * (ARROW_LENGTH / longest) if longest > 0 else vectors
        traces = [_cloud(real, name="real φ(x_r)", color=COLORS["real"], opacity=0.35, showlegend=first),
                  _cloud(fake, name="fake φ(x_g)", color=COLORS["fake"], opacity=0.35, showlegend=first),
                  go.Scatter(x=line_x, y=line_y, mode="lines", line=dict(color=COLORS["boundary"], width=2),
                             name="linear D = 0", showlegend=first, hoverinfo="skip"),
                  *_arrows(fake[pick], scaled, loss=loss, showlegend=first)]
        for trace in traces:
            figure.add_trace(trace, row=1, col=col)
        figure.update_xaxes(range=box[0], row=1, col=col)
        figure.update_yaxes(range=box[1], row=1, col=col)
    return figure


def path_figure(real: torch.Tensor, fake: torch.Tensor, classifier: kdd_2d.LinearClassifier,
                trajectories: dict[str, torch.Tensor], *, steps: int) -> go.Figure:
    """The fake points after ``steps`` SGD steps under each loss, with faint paths of a subsample."""
    figure = _panels(f"The fake cloud after {steps} SGD steps on the points (figures 6.1b, 6.1c)")
    pick = _spread(len(fake), PATHS)
    for col, loss in enumerate(("hinge", "kdd"), start=1):
        first = col == 1
        frames = trajectories[loss]  # (T + 1, N, 2)
        box = _box(real, fake, frames[-1])
        line_x, line_y = _boundary(classifier, box)
        xs, ys = [], []
        for path in frames[:, pick].permute(1, 0, 2).tolist():  # (P, T + 1, 2)
            xs += [p[0] for p in path] + [None]
            ys += [p[1] for p in path] + [None]
        traces = [_cloud(real, name="real", color=COLORS["real"], opacity=0.35, showlegend=first),
                  _cloud(fake, name="fake at the start", color="#bbbbbb", opacity=0.5, showlegend=first),
                  go.Scatter(x=line_x, y=line_y, mode="lines", line=dict(color=COLORS["boundary"], width=2),
                             name="linear D = 0", showlegend=first, hoverinfo="skip"),
                  go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=COLORS["path"], width=0.7), opacity=0.35,
                             name="paths", showlegend=first, hoverinfo="skip", meta={"loss": loss, "role": "paths"}),
                  _cloud(frames[-1], name="fake at the end", color=COLORS["fake"], opacity=0.9, size=5,
                         showlegend=first, meta={"loss": loss, "role": "final"})]
        for trace in traces:
            figure.add_trace(trace, row=1, col=col)
        figure.update_xaxes(range=box[0], row=1, col=col)
        figure.update_yaxes(range=box[1], row=1, col=col)
    return figure


def numbers_table(summary: dict[str, dict[str, float]], centers: torch.Tensor) -> pd.DataFrame:
    """Energy distance, share on a mode and share nearest each mode, for the start and each loss's end."""
    rows = []
    for key, label in (("initial", "fake at the start"), ("hinge", "after hinge"), ("kdd", "after KDD")):
        s = summary[key]
        row = {"fake cloud": label, "energy distance to real": round(s["energy_distance"], 3),
               "within 3σ of a mode (%)": round(100 * s["on_a_mode"], 1)}
        for i, (x, y) in enumerate(centers.tolist()):
            row[f"nearest mode {i + 1} at {math.degrees(math.atan2(y, x)) % 360:.0f}° (%)"] = round(
                100 * s[f"nearest_mode{i}"], 1)
        rows.append(row)
    return pd.DataFrame(rows)


# the callback


def compare(k: float, fake_shape: str, kernel: str, width: float, lr: float, steps: float,
            n: float) -> tuple[go.Figure, go.Figure, pd.DataFrame, str]:
    """Hinge against KDD on the points: the update field, the trajectories and the numbers.

    ``k`` modes on the ring; ``fake_shape`` "square" or "Gaussian"; ``kernel`` "gaussian" (σ =
    ``width``, figure 6.1) or "vmf" (τ = ``width``, eq. 6.9); ``steps`` SGD steps at learning rate
    ``lr`` *per point* (each point moves by lr times its own −∂L_G/∂φ; figure 6.1's lr 10 on the mean
    over 1000 points is lr 0.01 here); ``n`` points per cloud. Returns two plotly figures (update
    arrows, trajectories: hinge left, KDD right), a table and a Markdown summary.
    """
    _check(k, kernel, width, lr, steps, n)
    k, steps, n = int(k), int(steps), int(n)
    start = time.perf_counter()
    real, fake, centers, classifier = clouds(k, fake_shape, n)
    kdd = KDD(kernel=kernel, sigma=width, tau=width)
    field = kdd_2d.gradient_field(real, fake, classifier=classifier, kernel=kernel, sigma=width, tau=width)
    losses = {"hinge": lambda p: n * kdd_2d.hinge_generator_loss(p, classifier),  # sum over points: lr per point
              "kdd": lambda p: n * kdd.generator(p, real)}
    every = max(1, math.ceil(steps / FRAMES))
    trajectories = {name: kdd_2d.move_points(fake, fn, steps=steps, lr=lr, record_every=every)
                    for name, fn in losses.items()}
    summary = {"initial": kdd_2d.cloud_summary(fake, real, centers, mode_std=MODE_STD)}
    for name, frames in trajectories.items():
        summary[name] = kdd_2d.cloud_summary(frames[-1], real, centers, mode_std=MODE_STD)
    seconds = time.perf_counter() - start

    kdd_norms = field["kdd"].norm(dim=1)
    w = classifier.w.tolist()
    if kernel == "gaussian":
        kernel_text = (f"Gaussian kernel σ = {width:g}, the vMF kernel's τ = σ² = {width**2:.3g} on normalised "
                       "features): each point heads for the real modes nearest to it")
    else:
        kernel_text = (f"vMF kernel τ = {width:g} on the points projected onto the unit circle): only the direction "
                       "of φ counts, so the points turn around the origin towards the modes' directions")
    text = "\n\n".join([
        f"**Hinge**: every fake point gets the same update w = ({w[0]:+.2f}, {w[1]:+.2f}) (eq. 6.11): the cloud "
        f"only translates, and with a frozen D it keeps going. **KDD**: the updates differ from point to point, "
        f"|−∂L_G/∂φ| from {float(kdd_norms.min()):.2f} to {float(kdd_norms.max()):.2f} "
        f"(eq. 6.12; {kernel_text}.",
        f"Energy distance to the real cloud: {summary['initial']['energy_distance']:.2f} at the start → "
        f"**{summary['hinge']['energy_distance']:.2f}** (hinge), **{summary['kdd']['energy_distance']:.2f}** "
        f"(KDD) after {steps} steps at lr {lr:g} per point; {n} points per cloud; {seconds:.2f} s.",
    ])
    return (field_figure(real, fake, classifier, field), path_figure(real, fake, classifier, trajectories, steps=steps),
            numbers_table(summary, centers), text)


# the tab

DEFAULTS: dict[str, Any] = dict(k=5, fake_shape="square", kernel="gaussian", width=1.0, lr=0.05, steps=100, n=300)


def build() -> None:
    """Create the widgets and wire them to :func:`compare` (api_name ``hinge_vs_kdd``)."""
    d = DEFAULTS
    first = compare(**d)
    gr.Markdown(
        "The discriminator's features φ(x) of real (blue) and generated (orange) samples, in 2D. With a frozen "
        "discriminator the generator moves each φ(x_g) along −∂L_G/∂φ. **The hinge loss with a linear D gives "
        "every sample the same push (eq. 6.11); the KDD loss pushes each sample up the real density and away "
        "from the fake one (eq. 6.12), so the fake cloud splits over the nearest modes** (figure 6.1, section "
        "6.2.2). Below, SGD runs on the points themselves."
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            k = gr.Slider(1, 12, value=d["k"], step=1, label="real modes k (on a ring)", elem_id="kdd-k")
            fake_shape = gr.Radio(list(FAKE_SHAPES), value=d["fake_shape"], label="fake cloud", elem_id="kdd-fake")
            kernel = gr.Radio(list(KERNELS), value=d["kernel"], label="KDE kernel", elem_id="kdd-kernel")
            width = gr.Slider(0.05, 5.0, value=d["width"], step=0.05, label="kernel width: σ (Gaussian) or τ (vMF)",
                              elem_id="kdd-width")
            lr = gr.Slider(0.005, 0.2, value=d["lr"], step=0.005, label="learning rate per point",
                           info="figure 6.1's lr 10 on the mean over 1000 points is 0.01 per point",
                           elem_id="kdd-lr")
            steps = gr.Slider(0, 400, value=d["steps"], step=10, label="SGD steps", elem_id="kdd-steps")
            n = gr.Slider(50, 1000, value=d["n"], step=50, label="points per cloud", elem_id="kdd-n")
        with gr.Column(scale=3):
            summary = gr.Markdown(first[3], elem_id="kdd-summary")
            numbers = gr.Dataframe(first[2], label="fake points nearest each mode, and distance to the real cloud",
                                   interactive=False, elem_id="kdd-numbers", wrap=True)
            field = gr.Plot(first[0], label="update field", elem_id="kdd-field")
            paths = gr.Plot(first[1], label="trajectories", elem_id="kdd-paths")
    inputs = [k, fake_shape, kernel, width, lr, steps, n]
    gr.on([w.change for w in inputs], compare, inputs=inputs, outputs=[field, paths, numbers, summary],
          api_name="hinge_vs_kdd", trigger_mode="always_last")
