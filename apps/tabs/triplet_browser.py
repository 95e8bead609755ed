"""Triplet browser: what a trained PerturbGAN generates, in the layout of figure 3.3 (chapter 3).

Pick a PerturbGAN checkpoint (the shipped ``assets/perturbgan-small``, or any run or checkpoint
folder), a first seed and how many consecutive seeds to show. Each seed is one column; the rows
are the generator's background B, foreground F, mask m, masked foreground F ⊙ m and the composite
x̂ (eq. 3.1). The sliders set the truncation ψ, a shift (dy, dx) of the foreground and mask over
the background (the composite of eq. 3.2, which the discriminator saw with random shifts up to
δ·R in training) and a contrast factor of the background (the jitter of ablation (d), table 3.1).

Every picture comes from :meth:`PerturbGAN.generate`; this module only loads checkpoints
(:func:`load_perturbgan`, cached), upscales and labels the rows (:func:`figure_grid`) and wires
the widgets. Small models (16 or 32 px) are upscaled with nearest neighbours to about
:data:`CELL` pixels per picture, so that their pixels stay visible.
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import cv2
import gradio as gr
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from workbench.methods.base import tile_rows
from workbench.methods.perturbgan import PerturbGAN
from workbench.train.checkpoint import find_checkpoint, load_method

__all__ = ["TITLE", "build", "browse", "export_png", "checkpoint_changed", "load_perturbgan", "checkpoint_path",
           "figure_rows", "labelled_grid", "figure_grid", "shift_limit", "CheckpointUnavailable",
           "SHIPPED_PERTURBGAN", "DEFAULTS", "ROWS", "CELL", "PAD", "LABEL_WIDTH", "HEADER", "MAX_SEEDS"]

TITLE = "Triplet browser"

SHIPPED_PERTURBGAN = Path(__file__).resolve().parents[2] / "assets" / "perturbgan-small"  # the repository's checkpoint
SHIPPED, FROM_PATH = "shipped", "path"  # the checkpoint dropdown's values
TRAIN_HINT = "python -m workbench train perturbgan --preset small --out runs/perturbgan-small"
ROWS = (  # figure 3.3's rows: key of PerturbGAN.generate, label lines
    ("background", ("background", "B")),
    ("foreground", ("foreground", "F")),
    ("mask", ("mask", "m")),
    ("masked", ("foreground", "x mask")),
    ("composite", ("composite",)),
)
CELL = 128  # pictures are upscaled by a whole factor to at least this many pixels a side
PAD = 4  # white gap between pictures, pixels
LABEL_WIDTH = 112  # the white column of row labels on the left, pixels
HEADER = 24  # the white row of seed labels on top, pixels
MAX_SEEDS = 8  # at most this many columns
JITTER_RANGE = (0.7, 1.3)  # background contrast factors of ablation (d)
DEVICE = "auto"  # cuda, then mps, then cpu
TEXT_COLOR = (40, 40, 40)  # dark grey, uint8 RGB
FONT = cv2.FONT_HERSHEY_SIMPLEX

# helpers


class CheckpointUnavailable(ValueError):
    """No PerturbGAN can be loaded from the chosen checkpoint; the message says why and what to do."""


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """float (H, W, 3) in [0, 1] -> uint8."""
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def _shown(path: Path) -> str:
    """A path as the user should read it: relative to the repository when inside it."""
    root = SHIPPED_PERTURBGAN.parents[1]
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def shift_limit(method: PerturbGAN) -> int:
    """The largest shift the sliders allow for this model: a quarter of its resolution, pixels."""
    return max(1, method.config.resolution // 4)


def _check(seed: float, seeds: float, truncation: float, jitter: float) -> None:
    if seed is None or int(seed) != seed or not 0 <= seed < 2**63:
        raise gr.Error(f"The seed must be a whole number >= 0, got {seed!r}.")
    if seeds is None or int(seeds) != seeds or not 1 <= seeds <= MAX_SEEDS:
        raise gr.Error(f"The number of seeds must be a whole number from 1 to {MAX_SEEDS}, got {seeds!r}.")
    if truncation is None or not 0 <= truncation <= 1:
        raise gr.Error(f"The truncation ψ must be in [0, 1], got {truncation!r}.")
    low, high = JITTER_RANGE
    if jitter is None or not low <= jitter <= high:
        raise gr.Error(f"The background contrast factor must be in [{low}, {high}], got {jitter!r}.")


# loading (cached)

_METHODS: OrderedDict[str, PerturbGAN] = OrderedDict()  # resolved checkpoint folder -> loaded method
CACHE_SIZE = 4


def load_perturbgan(path: str | Path, *, device: str | torch.device = DEVICE) -> PerturbGAN:
    """The PerturbGAN of a checkpoint folder or a run folder (its newest checkpoint), in evaluation mode.

    Cached by the resolved checkpoint folder (the :data:`CACHE_SIZE` most recent), so that a run
    that has written a newer checkpoint since is loaded anew. Raises :class:`CheckpointUnavailable`
    with a readable message for a missing path, a folder without a checkpoint, a checkpoint of
    another method, or damaged files.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointUnavailable(f"{path} does not exist.")
    try:
        key = str(find_checkpoint(path).resolve())
        if key not in _METHODS:
            _METHODS[key] = load_method(key, device=device, method=PerturbGAN.name)
            while len(_METHODS) > CACHE_SIZE:
                _METHODS.popitem(last=False)
    except (OSError, ValueError) as error:  # CheckpointError, ConfigError, unreadable files
        raise CheckpointUnavailable(str(error)) from None
    _METHODS.move_to_end(key)
    return _METHODS[key]


def checkpoint_path(choice: str, path: str | None) -> Path:
    """The folder the dropdown ``choice`` ("shipped" or "path") and the textbox ``path`` name."""
    if choice == SHIPPED:
        if not SHIPPED_PERTURBGAN.exists():
            raise CheckpointUnavailable(
                f"No shipped PerturbGAN checkpoint yet: {_shown(SHIPPED_PERTURBGAN)} does not exist. Train one "
                f"(`{TRAIN_HINT}`) and enter its folder under “Checkpoint path”.")
        return SHIPPED_PERTURBGAN
    if choice != FROM_PATH:
        raise CheckpointUnavailable(f"Unknown checkpoint choice {choice!r}; choose {SHIPPED!r} or {FROM_PATH!r}.")
    if not path or not str(path).strip():
        raise CheckpointUnavailable("Enter the path of a PerturbGAN run folder or checkpoint folder "
                                    "(e.g. runs/perturbgan-small or runs/perturbgan-small/checkpoints/step-0003000).")
    return Path(str(path).strip())


# figure 3.3


@torch.no_grad()
def figure_rows(method: PerturbGAN, *, seeds: Sequence[int], truncation: float = 1.0,
                shift: tuple[int, int] = (0, 0), jitter: float | None = None) -> dict[str, torch.Tensor]:
    """Figure 3.3's five rows for the given seeds, one column per seed: (N, 3, R, R) CPU tensors in [0, 1].

    Column i is ``method.generate(1, seed=seeds[i], ...)``, so a seed always gives the same scene
    whatever its neighbours. ``shift`` (dy, dx) moves foreground and mask over the background in
    the composite (eq. 3.2); ``jitter`` scales the background's contrast (ablation (d), table 3.1).
    The mask row is grey (repeated to 3 channels).
    """
    offset = torch.tensor(shift) if any(shift) else None  # (2,): one (dy, dx) for the batch
    columns = [method.generate(1, seed=int(s), truncation=truncation, offset=offset, jitter=jitter) for s in seeds]
    rows = {key: torch.cat([c[key] for c in columns]).float().cpu() for key, _ in ROWS}  # (N, C, R, R)
    rows["mask"] = rows["mask"].expand(-1, 3, -1, -1)  # (N, 3, R, R)
    return rows


def _put_lines(canvas: np.ndarray, lines: Sequence[str], *, center: tuple[int, int], scale: float = 0.5) -> None:
    """Write ``lines`` centred on ``center`` (x, y) of a uint8 (H, W, 3) canvas."""
    height = cv2.getTextSize("Ag", FONT, scale, 1)[0][1] + 8
    top = center[1] - height * len(lines) // 2 + height - 4
    for i, line in enumerate(lines):
        width = cv2.getTextSize(line, FONT, scale, 1)[0][0]
        cv2.putText(canvas, line, (center[0] - width // 2, top + i * height), FONT, scale, TEXT_COLOR, 1, cv2.LINE_AA)


def labelled_grid(rows: dict[str, torch.Tensor], *, first_seed: int = 0, cell: int = CELL,
                  labels: bool = True) -> np.ndarray:
    """Rows of :func:`figure_rows` as one float32 (H, W, 3) image in [0, 1] on white.

    Every picture is upscaled with nearest neighbours by ``s = max(1, cell // R)``. With
    ``labels`` a column of row names (:data:`LABEL_WIDTH` px) and a row of seed numbers
    (:data:`HEADER` px, from ``first_seed``) frame the grid of N columns:
    ``H = HEADER + 5·s·R + 4·PAD`` and ``W = LABEL_WIDTH + N·s·R + (N - 1)·PAD``.
    """
    n, _, size, _ = rows["background"].shape
    scale = max(1, cell // size)
    upscaled = [F.interpolate(rows[key], scale_factor=scale, mode="nearest") for key, _ in ROWS]  # (N, 3, sR, sR)
    grid = tile_rows(upscaled, pad=PAD)[0].permute(1, 2, 0).numpy()  # (5 sR + 4 PAD, N sR + (N-1) PAD, 3)
    if not labels:
        return np.ascontiguousarray(grid, dtype=np.float32)
    h, w = grid.shape[:2]
    text = np.full((HEADER + h, LABEL_WIDTH + w, 3), 255, np.uint8)  # OpenCV writes text on 8-bit images only
    side = scale * size
    for r, (_, lines) in enumerate(ROWS):
        _put_lines(text, lines, center=(LABEL_WIDTH // 2, HEADER + r * (side + PAD) + side // 2))
    for i in range(n):
        _put_lines(text, [f"seed {first_seed + i}"], center=(LABEL_WIDTH + i * (side + PAD) + side // 2, HEADER // 2))
    canvas = text.astype(np.float32) / 255  # (HEADER + h, LABEL_WIDTH + w, 3)
    canvas[HEADER:, LABEL_WIDTH:] = grid  # the pictures keep their exact values; the labels lie outside them
    return canvas


def figure_grid(method: PerturbGAN, *, seed: int = 0, seeds: int = 4, truncation: float = 1.0,
                shift: tuple[int, int] = (0, 0), jitter: float | None = None, cell: int = CELL,
                labels: bool = True) -> np.ndarray:
    """Figure 3.3 of one PerturbGAN, seeds ``seed … seed + seeds - 1``, as a float32 (H, W, 3) image in [0, 1].

    :func:`figure_rows` drawn by :func:`labelled_grid` (see there for the size).
    """
    rows = figure_rows(method, seeds=range(seed, seed + seeds), truncation=truncation, shift=shift, jitter=jitter)
    return labelled_grid(rows, first_seed=seed, cell=cell, labels=labels)


# callbacks


def _render(choice: str, path: str | None, seed: float, seeds: float, truncation: float, dy: float, dx: float,
            jitter: float) -> tuple[np.ndarray | None, str, str | None]:
    """The figure (uint8 (H, W, 3), or None), the summary, and the problem when no checkpoint loads."""
    _check(seed, seeds, truncation, jitter)
    try:
        folder = checkpoint_path(choice, path)
        method = load_perturbgan(folder)
    except CheckpointUnavailable as error:
        return None, f"**No PerturbGAN here.** {error}", str(error)
    c = method.config
    limit = shift_limit(method)
    shift = (int(np.clip(round(dy or 0), -limit, limit)), int(np.clip(round(dx or 0), -limit, limit)))
    seed, seeds = int(seed), int(seeds)
    rows = figure_rows(method, seeds=range(seed, seed + seeds), truncation=truncation, shift=shift,
                       jitter=None if jitter == 1 else jitter)
    image = labelled_grid(rows, first_seed=seed)
    trained = round(c.max_shift * c.resolution)
    areas = ", ".join(f"{100 * float(a):.0f}%" for a in rows["mask"][:, 0].mean(dim=(1, 2)))  # unshifted masks
    loaded_from = next(Path(key) for key, value in _METHODS.items() if value is method)  # the checkpoint folder
    lines = [
        f"**Checkpoint** `{_shown(loaded_from)}` · step {method.step} · {c.resolution}×{c.resolution} px "
        f"(shown ×{max(1, CELL // c.resolution)}) · trained on `{c.dataset}`",
        f"**Seeds** {seed}…{seed + seeds - 1} · ψ = {truncation:g} · shift (dy, dx) = {shift} px · "
        f"background contrast ×{jitter:g} · mask area per seed: {areas} (η = {100 * c.min_mask:g}%, eq. 3.3)",
        f"In training the foreground moved by up to δ·R = ±{trained} px (eq. 3.2); the sliders go to ±{limit} px.",
    ]
    if shift != (int(round(dy or 0)), int(round(dx or 0))):
        lines.append(f"The shift was clipped to ±{limit} px (a quarter of this model's resolution).")
    return _to_uint8(image), "\n\n".join(lines), None


def browse(choice: str, path: str | None, seed: float, seeds: float, truncation: float, dy: float, dx: float,
           jitter: float) -> tuple[np.ndarray | None, str]:
    """Figure 3.3 of the chosen checkpoint as uint8 (H, W, 3) (see :func:`figure_grid`), and a Markdown summary.

    ``choice`` is "shipped" or "path" (then ``path`` names a run or checkpoint folder); seeds
    ``seed … seed + seeds - 1``; ``truncation`` ψ in [0, 1]; (``dy``, ``dx``) the foreground
    shift in model pixels, clipped to a quarter of the resolution; ``jitter`` the background
    contrast factor in [0.7, 1.3]. When no checkpoint loads, the image is ``None``, a
    ``gr.Warning`` pops up and the summary says why. Bad control values raise ``gr.Error``.
    """
    image, summary, problem = _render(choice, path, seed, seeds, truncation, dy, dx, jitter)
    if problem is not None:
        gr.Warning(problem)
    return image, summary


_EXPORTS: list[Path] = []  # the temporary folder of this process's PNG exports


def export_png(choice: str, path: str | None, seed: float, seeds: float, truncation: float, dy: float, dx: float,
               jitter: float) -> str | None:
    """Write the figure of :func:`browse` (same arguments) to a temporary PNG and return its path.

    ``None`` (and a ``gr.Warning``) when no checkpoint loads.
    """
    image, _, problem = _render(choice, path, seed, seeds, truncation, dy, dx, jitter)
    if problem is not None:
        gr.Warning(f"Nothing to export: {problem}")
        return None
    if not _EXPORTS or not _EXPORTS[0].is_dir():
        _EXPORTS[:] = [Path(tempfile.mkdtemp(prefix="triplet-browser-"))]
    name = (f"perturbgan_seeds{int(seed)}-{int(seed) + int(seeds) - 1}_psi{truncation:g}_dy{int(round(dy or 0))}"
            f"_dx{int(round(dx or 0))}_contrast{jitter:g}.png")
    file = _EXPORTS[0] / name
    Image.fromarray(image).save(file)
    return str(file)


def checkpoint_changed(choice: str, path: str | None, dy: float, dx: float) -> tuple[Any, Any]:
    """Bound the shift sliders to ± a quarter of the chosen model's resolution (unchanged without a model)."""
    try:
        limit = shift_limit(load_perturbgan(checkpoint_path(choice, path)))
    except CheckpointUnavailable:
        return gr.skip(), gr.skip()
    return tuple(gr.update(minimum=-limit, maximum=limit, value=int(np.clip(v or 0, -limit, limit)))
                 for v in (dy, dx))


def use_path() -> str:
    """Entering a path selects “the path below” in the dropdown."""
    return FROM_PATH


# the tab

DEFAULTS: dict[str, Any] = dict(  # the tab's first state; browse(**DEFAULTS) fills the figure at start
    choice=SHIPPED, path="", seed=0, seeds=4, truncation=1.0, dy=0, dx=0, jitter=1.0,
)
SLIDER_LIMIT = 32  # the shift sliders' range before a checkpoint bounds them (128 px models)


def build() -> None:
    """Create the widgets and wire them to :func:`browse` (api_name ``triplet_browser``) and
    :func:`export_png` (api_name ``triplet_browser_png``)."""
    d = DEFAULTS
    first, summary_text, _ = _render(**d)
    try:
        limit = shift_limit(load_perturbgan(checkpoint_path(d["choice"], d["path"])))
    except CheckpointUnavailable:
        limit = SLIDER_LIMIT
    shipped_label = f"Shipped{'' if SHIPPED_PERTURBGAN.exists() else ' (missing)'}: {_shown(SHIPPED_PERTURBGAN)}"
    gr.Markdown(
        "What a trained PerturbGAN (chapter 3) generates, laid out as figure 3.3: one column per seed; rows "
        "background B, foreground F, mask m, F ⊙ m and the composite x̂ = (1 − m) ⊙ B + m ⊙ F (eq. 3.1). "
        "**Shift the foreground** with dy / dx (eq. 3.2): with a mask that covers a whole object the "
        "composite stays realistic, while the background row does not change."
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            choice = gr.Dropdown([(shipped_label, SHIPPED), ("The path below", FROM_PATH)], value=d["choice"],
                                 label="Checkpoint", elem_id="triplet-checkpoint")
            path = gr.Textbox(value=d["path"], label="Checkpoint path (press Enter)",
                              placeholder="runs/perturbgan-small (a run folder or a checkpoint folder)",
                              elem_id="triplet-path")
            seed = gr.Number(value=d["seed"], precision=0, minimum=0, label="First seed")
            seeds = gr.Slider(1, MAX_SEEDS, value=d["seeds"], step=1, label="Seeds (one column each)")
            truncation = gr.Slider(0, 1, value=d["truncation"], step=0.05, label="Truncation ψ (1: none)")
            dy = gr.Slider(-limit, limit, value=d["dy"], step=1, label="dy (model pixels, + moves down)",
                           elem_id="triplet-dy")
            dx = gr.Slider(-limit, limit, value=d["dx"], step=1, label="dx (model pixels, + moves right)",
                           elem_id="triplet-dx")
            jitter = gr.Slider(*JITTER_RANGE, value=d["jitter"], step=0.05,
                               label="Background contrast factor (ablation (d))")
            export = gr.Button("Export PNG", elem_id="triplet-export")
            file = gr.File(label="PNG of the figure", interactive=False, elem_id="triplet-file")
        with gr.Column(scale=3):
            summary = gr.Markdown(summary_text, elem_id="triplet-summary")
            figure = gr.Image(value=first, label="Figure 3.3: B, F, m, F ⊙ m, x̂ (one column per seed)",
                              format="png", interactive=False, elem_id="triplet-figure", buttons=["download"],
                              elem_classes=["pixelated"], show_label=False)  # the label would hide "seed 0"

    controls = [choice, path, seed, seeds, truncation, dy, dx, jitter]
    outputs = [figure, summary]
    choice.input(checkpoint_changed, inputs=[choice, path, dy, dx], outputs=[dy, dx], api_visibility="private"
                 ).then(browse, inputs=controls, outputs=outputs, api_visibility="private")
    path.submit(use_path, outputs=choice, api_visibility="private"
                ).then(checkpoint_changed, inputs=[choice, path, dy, dx], outputs=[dy, dx], api_visibility="private"
                       ).then(browse, inputs=controls, outputs=outputs, api_visibility="private")
    gr.on([seed.change, seeds.change, truncation.change, dy.change, dx.change, jitter.change], browse,
          inputs=controls, outputs=outputs, api_name="triplet_browser", trigger_mode="always_last")
    export.click(export_png, inputs=controls, outputs=file, api_name="triplet_browser_png")
