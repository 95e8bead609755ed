"""Triplet browser: what a trained layered GAN generates, in the layout of figure 3.3 (chapters 3 and 4).

Pick a generator checkpoint: the shipped PerturbGAN ``assets/perturbgan-small`` (chapter 3), the
shipped conditional layered GAN ``assets/layered-small/gan`` (chapter 4), or any ``perturbgan``
or ``layered`` run or checkpoint folder; then a first seed and how many consecutive seeds to
show. Each seed is one column; the rows are the generator's background B, foreground F, mask m,
masked foreground F ⊙ m and the composite x̂ (eq. 3.1 / 4.1). The sliders set the truncation ψ,
a shift (dy, dx) of the foreground and mask over the background (the composite of eq. 3.2 / 4.2,
which the discriminator saw with random shifts up to δ·R in training) and a contrast factor of
the background (the jitter of ablation (d), table 3.1).

Chapter 4 trains *segmenters* on the generator's pairs (x̂, m): jointly, as the mask channel of
the discriminator (settings (a)-(c) of table 4.1, :meth:`LayeredGAN.segment`), or afterwards, as
a U-Net post-trained on the frozen generator (``layered-post``, :meth:`PostSegmenter.predict`).
When a segmenter is loaded (the joint one of a ``layered`` run, and/or a ``layered-post`` run
entered under "Segmenter path"; the shipped layered GAN brings its own post-trained U-Net,
``assets/layered-small/post``), its prediction on the composite is shown as an extra row below
the generated mask, captioned with each column's IoU (at 0.5) against the generator's own mask of
the composite (m, or m moved with the foreground when shifted: the m_Δ of eq. 4.7), which is not a
ground truth: a segmenter that copies a wrong generator scores high. The summary therefore also
states what each shown model scores on held-out scenes against the baselines, from the
``metrics.json`` beside its checkpoint (:func:`workbench.eval.asset_scores.scores_line`), and
opens with the generator's verdict (both chapters): whether it separates object from background by
the separation figures stored there (``metrics["separation"]``, issue 16), and whether its
discriminator sees the ghosts a shift reveals.

Every picture comes from :meth:`PerturbGAN.generate` (LayeredGAN inherits it) and every
prediction from the segmenters' own methods; this module only loads checkpoints
(:func:`load_perturbgan`, :func:`load_segmenter`, cached), upscales and labels the rows
(:func:`figure_grid`) and wires the widgets. Small models (16 or 32 px) are upscaled with nearest
neighbours to about :data:`CELL` pixels per picture, so that their pixels stay visible.
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import gradio as gr
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from apps.safety import OutsideRootsError, finite, readable_folder
from workbench.eval.asset_scores import scores_line
from workbench.methods.base import tile_rows
from workbench.methods.layered import LayeredGAN
from workbench.methods.layered_post import PostSegmenter
from workbench.methods.perturbgan import PerturbGAN
from workbench.ops.mask_losses import mask_iou
from workbench.ops.shift import translate
from workbench.train.checkpoint import (CONFIG_FILE, find_checkpoint, find_linked_path, load_method,
                                        method_from_checkpoint, read_checkpoint)
from workbench.train.config import config_from_dict

__all__ = ["TITLE", "build", "browse", "export_png", "checkpoint_changed", "load_perturbgan", "load_segmenter",
           "checkpoint_path", "segmenter_path", "segmenters_of", "figure_rows", "figure_order", "labelled_grid",
           "figure_grid", "shift_limit", "CheckpointUnavailable", "SHIPPED_PERTURBGAN", "SHIPPED_LAYERED",
           "SHIPPED_LAYERED_POST", "SHIPPED", "SHIPPED_LAYERED_CHOICE", "FROM_PATH", "GENERATORS", "DEFAULTS",
           "ROWS", "SEGMENTER_ROWS", "CELL", "PAD", "CAPTION", "LABEL_WIDTH", "HEADER", "MAX_SEEDS"]

TITLE = "Triplet browser"

ROOT = Path(__file__).resolve().parents[2]  # the repository
SHIPPED_PERTURBGAN = ROOT / "assets" / "perturbgan-small"  # the repository's chapter-3 checkpoint
SHIPPED_LAYERED = ROOT / "assets" / "layered-small" / "gan"  # the repository's chapter-4 checkpoint
SHIPPED_LAYERED_POST = ROOT / "assets" / "layered-small" / "post"  # its post-trained U-Net
SHIPPED, SHIPPED_LAYERED_CHOICE, FROM_PATH = "shipped", "shipped-layered", "path"  # the dropdown's values
GENERATORS = {"perturbgan": "chapter 3", "layered": "chapter 4"}  # the methods whose checkpoints it shows
TRAIN_HINT = "python -m workbench train perturbgan --preset small --out runs/perturbgan-small"
LAYERED_TRAIN_HINT = "python -m workbench train layered --preset small --setting c --out runs/layered-small"
POST_TRAIN_HINT = ("python -m workbench train layered-post --preset small --generator runs/layered-small "
                   "--out runs/layered-small-post")
ROWS = (  # figure 3.3's rows: key of PerturbGAN.generate, label lines
    ("background", ("background", "B")),
    ("foreground", ("foreground", "F")),
    ("mask", ("mask", "m")),
    ("masked", ("foreground", "x mask")),
    ("composite", ("composite",)),
)
SEGMENTER_ROWS = (  # chapter 4's extra rows, below the mask: key of figure_rows, label lines
    ("joint", ("S joint", "on composite")),  # the discriminator's mask channel (settings a-c)
    ("post", ("S post", "on composite")),  # the post-trained U-Net (layered-post)
)
CELL = 128  # pictures are upscaled by a whole factor to at least this many pixels a side
PAD = 4  # white gap between pictures, pixels
CAPTION = 18  # white gap below a segmenter's row that holds its per-column IoU, pixels
LABEL_WIDTH = 112  # the white column of row labels on the left, pixels
HEADER = 24  # the white row of seed labels on top, pixels
MAX_SEEDS = 8  # at most this many columns
JITTER_RANGE = (0.7, 1.3)  # background contrast factors of ablation (d)
DEVICE = "auto"  # cuda, then mps, then cpu
TEXT_COLOR = (40, 40, 40)  # dark grey, uint8 RGB
FONT = cv2.FONT_HERSHEY_SIMPLEX

# helpers


class CheckpointUnavailable(ValueError):
    """No generator (or segmenter) can be loaded from the chosen checkpoint; the message says why and what to do."""


class Rendered(NamedTuple):
    """What one rendering gives the callbacks."""

    image: np.ndarray | None  # the figure, uint8 (H, W, 3); None when nothing loads
    summary: str  # Markdown
    problem: str | None  # why nothing loads, else None
    stem: str = ""  # the exported PNG's file name without ".png"


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """float (H, W, 3) in [0, 1] -> uint8."""
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def _shown(path: Path) -> str:
    """A path as the user should read it: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def shift_limit(method: PerturbGAN) -> int:
    """The largest shift the sliders allow for this model: a quarter of its resolution, pixels."""
    return max(1, method.config.resolution // 4)


def _check(seed: float, seeds: float, truncation: float, jitter: float) -> None:
    finite(seed=seed, number_of_seeds=seeds, truncation_ψ=truncation, background_contrast_factor=jitter)
    if seed is None or int(seed) != seed or not 0 <= seed < 2**63:
        raise gr.Error(f"The seed must be a whole number >= 0, got {seed!r}.")
    if seeds is None or int(seeds) != seeds or not 1 <= seeds <= MAX_SEEDS:
        raise gr.Error(f"The number of seeds must be a whole number from 1 to {MAX_SEEDS}, got {seeds!r}.")
    if truncation is None or not 0 <= truncation <= 1:
        raise gr.Error(f"The truncation ψ must be in [0, 1], got {truncation!r}.")
    low, high = JITTER_RANGE
    if jitter is None or not low <= jitter <= high:
        raise gr.Error(f"The background contrast factor must be in [{low}, {high}], got {jitter!r}.")


def _not_a_generator(folder: Path, kind: str) -> str:
    if kind == PostSegmenter.name:
        return (f"{folder} is a post-trained segmenter (method {kind!r}), not a generator: enter it under "
                "“Segmenter path”, and the `layered` run it was trained on as the checkpoint.")
    return (f"{folder} is a checkpoint of method {kind!r}, not {' or '.join(map(repr, GENERATORS))}: the Triplet "
            "browser shows the layered generators of chapters 3 and 4.")


def _not_a_segmenter(folder: Path, kind: str) -> str:
    if kind == LayeredGAN.name:
        return (f"{folder} is a layered GAN (method {kind!r}), not a post-trained segmenter: enter it as the "
                "checkpoint (its joint segmenter, settings a-c, is shown with it), or post-train one "
                f"(`{POST_TRAIN_HINT}`).")
    return (f"{folder} is a checkpoint of method {kind!r}, not {PostSegmenter.name!r}: the segmenter must be a "
            f"post-trained U-Net (`{POST_TRAIN_HINT}`).")


# loading (cached)

_METHODS: OrderedDict[str, PerturbGAN] = OrderedDict()  # resolved checkpoint folder -> loaded generator
_SEGMENTERS: OrderedDict[str, PostSegmenter] = OrderedDict()  # resolved checkpoint folder -> loaded segmenter
CACHE_SIZE = 4


def _remember(cache: OrderedDict, key: str, value: Any) -> None:
    cache[key] = value
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


def load_perturbgan(path: str | Path, *, device: str | torch.device = DEVICE) -> PerturbGAN:
    """The layered generator of a checkpoint or run folder (its newest checkpoint), in evaluation mode.

    A :class:`PerturbGAN` (method ``perturbgan``, chapter 3) or its subclass :class:`LayeredGAN`
    (``layered``, chapter 4). Cached by the resolved checkpoint folder (the :data:`CACHE_SIZE` most
    recent), so that a run that has written a newer checkpoint since is loaded anew. Raises
    :class:`CheckpointUnavailable` with a readable message for a missing path, a folder without a
    checkpoint, a checkpoint of another method, or damaged files.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointUnavailable(f"{path} does not exist.")
    try:
        key = str(find_checkpoint(path).resolve())
        if key not in _METHODS:
            kind = read_checkpoint(key).method
            if kind not in GENERATORS:
                raise CheckpointUnavailable(_not_a_generator(Path(key), kind))
            _remember(_METHODS, key, load_method(key, device=device, method=kind))
    except CheckpointUnavailable:
        raise
    except (OSError, ValueError) as error:  # CheckpointError, ConfigError, unreadable files
        raise CheckpointUnavailable(str(error)) from None
    _METHODS.move_to_end(key)
    return _METHODS[key]


def load_segmenter(path: str | Path, *, device: str | torch.device = DEVICE) -> PostSegmenter:
    """The post-trained U-Net (method ``layered-post``) of a checkpoint or run folder, in evaluation mode.

    It loads with the ``layered`` run it was trained on (its config's ``generator``), looked for
    as given, then relative to the folders above the checkpoint; when that run is not found (or none
    is recorded) it loads without it, to predict only (``segmenter.gan`` is None). Cached like
    :func:`load_perturbgan`; raises :class:`CheckpointUnavailable` with a readable message.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointUnavailable(f"Segmenter: {path} does not exist.")
    try:
        checkpoint = read_checkpoint(path)
        key = str(checkpoint.path.resolve())
        if key not in _SEGMENTERS:
            if checkpoint.method != PostSegmenter.name:
                raise CheckpointUnavailable(_not_a_segmenter(checkpoint.path, checkpoint.method))
            config = config_from_dict(PostSegmenter.Config, checkpoint.config,
                                      source=f"{checkpoint.path}/{CONFIG_FILE}")
            generator = find_linked_path(config.generator, checkpoint=checkpoint.path) if config.generator else None
            try:  # without its generator (none recorded, or moved away) the U-Net can still predict
                segmenter = method_from_checkpoint(checkpoint, PostSegmenter, device=device,
                                                   config=replace(config, generator=str(generator or "")))
            except ValueError as error:
                if generator is not None:
                    raise
                raise CheckpointUnavailable(
                    f"The segmenter {_shown(checkpoint.path)} was post-trained on the generator "
                    f"{config.generator or '(none recorded)'} (its config's `generator`), which was not found, and "
                    f"it does not load without it ({error}). Put the run back there, or post-train again "
                    f"(`{POST_TRAIN_HINT}`).") from None
            _remember(_SEGMENTERS, key, segmenter)
    except CheckpointUnavailable:
        raise
    except (OSError, ValueError) as error:  # CheckpointError, ConfigError, unreadable files
        raise CheckpointUnavailable(str(error)) from None
    _SEGMENTERS.move_to_end(key)
    return _SEGMENTERS[key]


def checkpoint_path(choice: str, path: str | None) -> Path:
    """The folder the dropdown ``choice`` ("shipped", "shipped-layered" or "path") and the textbox ``path`` name."""
    if choice in (SHIPPED, SHIPPED_LAYERED_CHOICE):
        folder, what, hint = ((SHIPPED_PERTURBGAN, "PerturbGAN", TRAIN_HINT) if choice == SHIPPED
                              else (SHIPPED_LAYERED, "layered GAN", LAYERED_TRAIN_HINT))
        if not folder.exists():
            raise CheckpointUnavailable(
                f"No shipped {what} checkpoint yet: {_shown(folder)} does not exist. Train one "
                f"(`{hint}`) and enter its folder under “Checkpoint path”.")
        return folder
    if choice != FROM_PATH:
        raise CheckpointUnavailable(f"Unknown checkpoint choice {choice!r}; choose {SHIPPED!r}, "
                                    f"{SHIPPED_LAYERED_CHOICE!r} or {FROM_PATH!r}.")
    if not path or not str(path).strip():
        raise CheckpointUnavailable("Enter the path of a PerturbGAN or layered GAN run folder or checkpoint folder "
                                    "(e.g. runs/perturbgan-small or runs/layered-small/checkpoints/step-0003000).")
    try:  # only inside the runs and assets folders (apps.safety), so that serving the app exposes no other files
        return readable_folder(path, what="The checkpoint")
    except OutsideRootsError as error:
        raise CheckpointUnavailable(str(error)) from None


def segmenter_path(choice: str, segmenter: str | None) -> Path | None:
    """The post-trained segmenter to show: the textbox ``segmenter`` when filled, else the shipped
    layered GAN's own U-Net (when that is the ``choice`` and it exists), else None."""
    text = str(segmenter or "").strip()
    if text:
        try:
            return readable_folder(text, what="Segmenter: the checkpoint")
        except OutsideRootsError as error:
            raise CheckpointUnavailable(str(error)) from None
    if choice == SHIPPED_LAYERED_CHOICE and SHIPPED_LAYERED_POST.exists():
        return SHIPPED_LAYERED_POST
    return None


# figure 3.3


def segmenters_of(method: PerturbGAN, post: PostSegmenter | None = None
                  ) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The segmenters to show, by row key: ``joint`` (a LayeredGAN of settings a-c) and ``post`` (when given).

    Each maps images (B, 3, H, W) in [0, 1] to soft masks (B, 1, H, W).
    """
    out: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}
    if isinstance(method, LayeredGAN) and method.setting.segmenter:
        out["joint"] = method.segment
    if post is not None:
        out["post"] = post.predict
    return out


@torch.no_grad()
def figure_rows(method: PerturbGAN, *, seeds: Sequence[int], truncation: float = 1.0,
                shift: tuple[int, int] = (0, 0), jitter: float | None = None,
                post: PostSegmenter | None = None) -> dict[str, torch.Tensor]:
    """Figure 3.3's rows for the given seeds, one column per seed: (N, 3, R, R) CPU tensors in [0, 1].

    Column i is ``method.generate(1, seed=seeds[i], ...)``, so a seed always gives the same scene
    whatever its neighbours. ``shift`` (dy, dx) moves foreground and mask over the background in
    the composite (eq. 3.2 / 4.2); ``jitter`` scales the background's contrast (ablation (d),
    table 3.1). The mask row is grey (repeated to 3 channels).

    With segmenters (:func:`segmenters_of`: the joint one of a LayeredGAN of settings a-c, and
    ``post``), each adds a grey row of its prediction on the composite under its key (``joint``,
    ``post``), and ``KEY_iou`` (N,): the IoU of the prediction at 0.5 with the composite's mask at
    0.5 (the generated mask, moved by ``shift``: m_Δ of eq. 4.7).
    """
    offset = torch.tensor(shift) if any(shift) else None  # (2,): one (dy, dx) for the batch
    columns = [method.generate(1, seed=int(s), truncation=truncation, offset=offset, jitter=jitter) for s in seeds]
    rows = {key: torch.cat([c[key] for c in columns]).float().cpu() for key, _ in ROWS}  # (N, C, R, R)
    target = rows["mask"] if offset is None else translate(rows["mask"], offset)  # (N, 1, R, R): the composite's mask
    for key, predict in segmenters_of(method, post).items():
        predicted = predict(rows["composite"]).float().cpu()  # (N, 1, R, R) in [0, 1]
        rows[key] = predicted.expand(-1, 3, -1, -1)  # (N, 3, R, R)
        rows[f"{key}_iou"] = mask_iou(predicted >= 0.5, target >= 0.5).float()  # (N,)
    rows["mask"] = rows["mask"].expand(-1, 3, -1, -1)  # (N, 3, R, R)
    return rows


def figure_order(rows: dict[str, torch.Tensor]) -> list[tuple[str, tuple[str, ...]]]:
    """The rows drawn, top to bottom, with their label lines: B, F, m, the segmenters present, F ⊙ m, x̂."""
    extra = [row for row in SEGMENTER_ROWS if row[0] in rows]
    return [*ROWS[:3], *extra, *ROWS[3:]]


def _put_lines(canvas: np.ndarray, lines: Sequence[str], *, center: tuple[int, int], scale: float = 0.5) -> None:
    """Write ``lines`` centred on ``center`` (x, y) of a uint8 (H, W, 3) canvas."""
    height = cv2.getTextSize("Ag", FONT, scale, 1)[0][1] + 8
    top = center[1] - height * len(lines) // 2 + height - 4
    for i, line in enumerate(lines):
        width = cv2.getTextSize(line, FONT, scale, 1)[0][0]
        cv2.putText(canvas, line, (center[0] - width // 2, top + i * height), FONT, scale, TEXT_COLOR, 1, cv2.LINE_AA)


def labelled_grid(rows: dict[str, torch.Tensor], *, first_seed: int = 0, cell: int = CELL,
                  labels: bool = True) -> np.ndarray:
    """Rows of :func:`figure_rows` (in :func:`figure_order`) as one float32 (H, W, 3) image in [0, 1] on white.

    Every picture is upscaled with nearest neighbours by ``s = max(1, cell // R)``. With
    ``labels`` a column of row names (:data:`LABEL_WIDTH` px) and a row of seed numbers
    (:data:`HEADER` px, from ``first_seed``) frame the grid of K rows and N columns, and each
    segmenter's row is followed by a :data:`CAPTION` px gap (instead of :data:`PAD`) holding each
    column's IoU against the generated mask (written "vs m: 0.93"):
    ``H = HEADER + K·s·R + (K - 1)·PAD + k·(CAPTION - PAD)`` for k segmenters, and
    ``W = LABEL_WIDTH + N·s·R + (N - 1)·PAD``. Without ``labels``, a plain grid with PAD gaps.
    """
    order = figure_order(rows)
    n, _, size, _ = rows["background"].shape
    scale = max(1, cell // size)
    upscaled = [F.interpolate(rows[key], scale_factor=scale, mode="nearest") for key, _ in order]  # (N, 3, sR, sR)
    if not labels:
        grid = tile_rows(upscaled, pad=PAD)[0].permute(1, 2, 0).numpy()  # (K sR + (K-1) PAD, N sR + (N-1) PAD, 3)
        return np.ascontiguousarray(grid, dtype=np.float32)
    side = scale * size
    tops = [HEADER]  # the top of every row on the canvas
    for key, _ in order[:-1]:
        tops.append(tops[-1] + side + (CAPTION if f"{key}_iou" in rows else PAD))
    width = LABEL_WIDTH + n * side + (n - 1) * PAD
    text = np.full((tops[-1] + side, width, 3), 255, np.uint8)  # OpenCV writes text on 8-bit images only
    for top, (key, lines) in zip(tops, order):
        _put_lines(text, lines, center=(LABEL_WIDTH // 2, top + side // 2))
        if f"{key}_iou" in rows:
            for i, value in enumerate(rows[f"{key}_iou"].tolist()):
                _put_lines(text, [f"vs m: {value:.2f}"], center=(LABEL_WIDTH + i * (side + PAD) + side // 2,
                                                               top + side + (CAPTION - PAD) // 2), scale=0.45)
    for i in range(n):
        _put_lines(text, [f"seed {first_seed + i}"], center=(LABEL_WIDTH + i * (side + PAD) + side // 2, HEADER // 2))
    canvas = text.astype(np.float32) / 255  # (H, W, 3)
    for top, picture in zip(tops, upscaled):  # the pictures keep their exact values; the text lies outside them
        canvas[top: top + side, LABEL_WIDTH:] = tile_rows([picture], pad=PAD)[0].permute(1, 2, 0).numpy()
    return canvas


def figure_grid(method: PerturbGAN, *, seed: int = 0, seeds: int = 4, truncation: float = 1.0,
                shift: tuple[int, int] = (0, 0), jitter: float | None = None, post: PostSegmenter | None = None,
                cell: int = CELL, labels: bool = True) -> np.ndarray:
    """Figure 3.3 of one generator, seeds ``seed … seed + seeds - 1``, as a float32 (H, W, 3) image in [0, 1].

    :func:`figure_rows` (with the joint segmenter of a LayeredGAN of settings a-c and ``post``,
    when given) drawn by :func:`labelled_grid` (see there for the size).
    """
    rows = figure_rows(method, seeds=range(seed, seed + seeds), truncation=truncation, shift=shift, jitter=jitter,
                       post=post)
    return labelled_grid(rows, first_seed=seed, cell=cell, labels=labels)


# callbacks


def _loaded_from(cache: OrderedDict, method: Any) -> Path:
    return next(Path(key) for key, value in cache.items() if value is method)  # the checkpoint folder


def _segmenter_lines(method: PerturbGAN, post: PostSegmenter | None, rows: dict[str, torch.Tensor], *,
                     shifted: bool, choice: str, typed: bool) -> list[str]:
    """The summary's chapter-4 lines: the setting, the segmenters and their mean IoU."""
    lines = []
    if isinstance(method, LayeredGAN):
        lines.append(f"**Table 4.1 setting ({method.config.setting})**: {method.setting.title}.")
    scores = []
    if "joint" in rows:
        scores.append(f"joint S (the discriminator's mask channel) {rows['joint_iou'].mean():.2f}")
    if post is not None:
        own = "" if typed else " (the shipped layered GAN's own)"
        alone = "" if getattr(post, "gan", None) is not None else " (its generator run is not here: predicting only)"
        scores.append(f"post-trained U-Net `{_shown(_loaded_from(_SEGMENTERS, post))}`{own}{alone}, step {post.step}, "
                      f"{rows['post_iou'].mean():.2f}")
    if scores:
        against = "m moved with the foreground (m_Δ, eq. 4.7)" if shifted else "the generated mask m"
        lines.append(f"**Segmenters on the composite**, mean IoU at 0.5 against {against}: " + "; ".join(scores)
                     + ". Each column's IoU is written under its prediction (“vs m”). These are agreements with the "
                     "generator's own mask, not scores against a ground truth; the held-out scores are below.")
    if "joint" in rows:
        lines.append(scores_line(_loaded_from(_METHODS, method), kind="segmenter", part="joint",
                                 name="Held-out, joint S"))
    if post is not None:
        lines.append(scores_line(_loaded_from(_SEGMENTERS, post), kind="segmenter", part="post",
                                 name="Held-out, post-trained U-Net"))
    if isinstance(method, LayeredGAN) and not method.setting.segmenter and post is None:
        lines.append(f"Setting ({method.config.setting}) has no joint segmenter: enter a `layered-post` run under "
                     f"“Segmenter path” to see a post-trained one (`{POST_TRAIN_HINT}`).")
    if choice == SHIPPED_LAYERED_CHOICE and post is None and not SHIPPED_LAYERED_POST.exists():
        lines.append(f"The shipped post-trained U-Net {_shown(SHIPPED_LAYERED_POST)} is missing.")
    return lines


def _render(choice: str, path: str | None, seed: float, seeds: float, truncation: float, dy: float, dx: float,
            jitter: float, segmenter: str | None = "") -> Rendered:
    """The figure (uint8 (H, W, 3), or None), the summary, the problem when nothing loads, and a file stem."""
    _check(seed, seeds, truncation, jitter)
    finite(shift_dy=dy, shift_dx=dx)
    try:
        method = load_perturbgan(checkpoint_path(choice, path))
    except CheckpointUnavailable as error:
        return Rendered(None, f"**No generator here.** {error}", str(error))
    try:
        folder = segmenter_path(choice, segmenter)
        post = load_segmenter(folder) if folder is not None else None
    except CheckpointUnavailable as error:
        return Rendered(None, f"**No segmenter here.** {error}", str(error))
    c = method.config
    limit = shift_limit(method)
    shift = (int(np.clip(round(dy or 0), -limit, limit)), int(np.clip(round(dx or 0), -limit, limit)))
    seed, seeds = int(seed), int(seeds)
    rows = figure_rows(method, seeds=range(seed, seed + seeds), truncation=truncation, shift=shift,
                       jitter=None if jitter == 1 else jitter, post=post)
    image = labelled_grid(rows, first_seed=seed)
    trained = round(c.max_shift * c.resolution)
    chapter = 4 if isinstance(method, LayeredGAN) else 3  # the equations' numbers
    areas = ", ".join(f"{100 * float(a):.0f}%" for a in rows["mask"][:, 0].mean(dim=(1, 2)))  # unshifted masks
    lines = [  # first the generator's verdict (chapter 3 or 4), from the metrics.json beside its checkpoint
        scores_line(_loaded_from(_METHODS, method), kind="generator",
                    name="This layered GAN" if isinstance(method, LayeredGAN) else "This PerturbGAN"),
        f"**Checkpoint** `{_shown(_loaded_from(_METHODS, method))}` · `{method.name}` ({GENERATORS[method.name]}) · "
        f"step {method.step} · {c.resolution}×{c.resolution} px (shown ×{max(1, CELL // c.resolution)}) · "
        f"trained on `{c.dataset}`",
        f"**Seeds** {seed}…{seed + seeds - 1} · ψ = {truncation:g} · shift (dy, dx) = {shift} px · "
        f"background contrast ×{jitter:g} · mask area per seed: {areas} "
        f"(η = {100 * c.min_mask:g}%, eq. {chapter}.3)",
        f"In training the foreground moved by up to δ·R = ±{trained} px (eq. {chapter}.2); "
        f"the sliders go to ±{limit} px.",
        *_segmenter_lines(method, post, rows, shifted=any(shift), choice=choice,
                          typed=bool(str(segmenter or "").strip())),
    ]
    if shift != (int(round(dy or 0)), int(round(dx or 0))):
        lines.append(f"The shift was clipped to ±{limit} px (a quarter of this model's resolution).")
    stem = (f"{method.name}{'-post' if post is not None else ''}_seeds{seed}-{seed + seeds - 1}_psi{truncation:g}"
            f"_dy{int(round(dy or 0))}_dx{int(round(dx or 0))}_contrast{jitter:g}")
    return Rendered(_to_uint8(image), "\n\n".join(lines), None, stem)


def browse(choice: str, path: str | None, seed: float, seeds: float, truncation: float, dy: float, dx: float,
           jitter: float, segmenter: str | None = "") -> tuple[np.ndarray | None, str]:
    """Figure 3.3 of the chosen checkpoint as uint8 (H, W, 3) (see :func:`figure_grid`), and a Markdown summary.

    ``choice`` is "shipped", "shipped-layered" or "path" (then ``path`` names a ``perturbgan`` or
    ``layered`` run or checkpoint folder); seeds ``seed … seed + seeds - 1``; ``truncation`` ψ in
    [0, 1]; (``dy``, ``dx``) the foreground shift in model pixels, clipped to a quarter of the
    resolution; ``jitter`` the background contrast factor in [0.7, 1.3]; ``segmenter`` an optional
    ``layered-post`` run whose predictions are shown (see :func:`segmenter_path`). When nothing
    loads, the image is ``None``, a ``gr.Warning`` pops up and the summary says why. Bad control
    values raise ``gr.Error``.
    """
    image, summary, problem, _ = _render(choice, path, seed, seeds, truncation, dy, dx, jitter, segmenter)
    if problem is not None:
        gr.Warning(problem)
    return image, summary


_EXPORTS: list[Path] = []  # the temporary folder of this process's PNG exports


def export_png(choice: str, path: str | None, seed: float, seeds: float, truncation: float, dy: float, dx: float,
               jitter: float, segmenter: str | None = "") -> str | None:
    """Write the figure of :func:`browse` (same arguments) to a temporary PNG and return its path.

    ``None`` (and a ``gr.Warning``) when nothing loads.
    """
    image, _, problem, stem = _render(choice, path, seed, seeds, truncation, dy, dx, jitter, segmenter)
    if problem is not None:
        gr.Warning(f"Nothing to export: {problem}")
        return None
    if not _EXPORTS or not _EXPORTS[0].is_dir():
        _EXPORTS[:] = [Path(tempfile.mkdtemp(prefix="triplet-browser-"))]
    # a folder of its own per request: concurrent exports with the same settings (of different checkpoints)
    # never write one file, and the download keeps its readable name
    file = Path(tempfile.mkdtemp(prefix="export-", dir=_EXPORTS[0])) / f"{stem}.png"
    Image.fromarray(image).save(file)
    return str(file)


def checkpoint_changed(choice: str, path: str | None, dy: float, dx: float) -> tuple[Any, Any]:
    """Bound the shift sliders to ± a quarter of the chosen model's resolution (unchanged without a model)."""
    finite(shift_dy=dy, shift_dx=dx)
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
    choice=SHIPPED, path="", seed=0, seeds=4, truncation=1.0, dy=0, dx=0, jitter=1.0, segmenter="",
)
SLIDER_LIMIT = 32  # the shift sliders' range before a checkpoint bounds them (128 px models)


def _shipped_label(what: str, folder: Path) -> str:
    return f"Shipped {what}{'' if folder.exists() else ' (missing)'}: {_shown(folder)}"


def build() -> None:
    """Create the widgets and wire them to :func:`browse` (api_name ``triplet_browser``) and
    :func:`export_png` (api_name ``triplet_browser_png``)."""
    d = DEFAULTS
    first, summary_text, _, _ = _render(**d)
    try:
        limit = shift_limit(load_perturbgan(checkpoint_path(d["choice"], d["path"])))
    except CheckpointUnavailable:
        limit = SLIDER_LIMIT
    gr.Markdown(
        "What a trained layered GAN generates, laid out as figure 3.3: one column per seed; rows background B, "
        "foreground F, mask m, F ⊙ m and the composite x̂ = (1 − m) ⊙ B + m ⊙ F (eq. 3.1). **Shift the "
        "foreground** with dy / dx (eq. 3.2): the background row does not change. Were the object wholly in the "
        "foreground layer, the shifted composite would still look like a real scene; a generator that paints the "
        "object into the background too (figure 3.2's trivial solution) leaves a coloured blob where the object "
        "sat, and the shift reveals it beside the moved object. The verdict line at the top of the summary "
        "states, from the figures stored with the shown checkpoint, whether its generator separates object from "
        "background, which figure fails, and whether its discriminator sees such ghosts. Chapter 4's conditional "
        "generator (`layered`) "
        "adds its **segmenters**: the discriminator's mask channel (settings a-c of table 4.1) and a U-Net "
        "post-trained on the frozen generator (a `layered-post` run under “Segmenter path”), shown as rows of "
        "their predictions on the composite. Each column's IoU under them is against the **generator's own "
        "mask**, not a ground truth; the summary gives each model's scores on held-out scenes against the "
        "baselines."
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            choice = gr.Dropdown([(_shipped_label("PerturbGAN (ch. 3)", SHIPPED_PERTURBGAN), SHIPPED),
                                  (_shipped_label("layered GAN (ch. 4)", SHIPPED_LAYERED), SHIPPED_LAYERED_CHOICE),
                                  ("The path below", FROM_PATH)], value=d["choice"], label="Checkpoint",
                                 elem_id="triplet-checkpoint")
            path = gr.Textbox(value=d["path"], label="Checkpoint path (press Enter)",
                              placeholder="runs/perturbgan-small or runs/layered-small (a run or checkpoint folder)",
                              elem_id="triplet-path")
            segmenter = gr.Textbox(value=d["segmenter"], label="Segmenter path (optional; press Enter)",
                                   placeholder="runs/layered-small-post (a layered-post run; the shipped layered "
                                               "GAN brings its own)", elem_id="triplet-segmenter")
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
            figure = gr.Image(value=first, label="Figure 3.3: B, F, m, (S), F ⊙ m, x̂ (one column per seed)",
                              format="png", interactive=False, elem_id="triplet-figure", buttons=["download"],
                              elem_classes=["pixelated"], show_label=False)  # the label would hide "seed 0"

    controls = [choice, path, seed, seeds, truncation, dy, dx, jitter, segmenter]  # the order of DEFAULTS
    outputs = [figure, summary]
    choice.input(checkpoint_changed, inputs=[choice, path, dy, dx], outputs=[dy, dx], api_visibility="private"
                 ).then(browse, inputs=controls, outputs=outputs, api_visibility="private")
    path.submit(use_path, outputs=choice, api_visibility="private"
                ).then(checkpoint_changed, inputs=[choice, path, dy, dx], outputs=[dy, dx], api_visibility="private"
                       ).then(browse, inputs=controls, outputs=outputs, api_visibility="private")
    segmenter.submit(browse, inputs=controls, outputs=outputs, api_visibility="private")
    gr.on([seed.change, seeds.change, truncation.change, dy.change, dx.change, jitter.change], browse,
          inputs=controls, outputs=outputs, api_name="triplet_browser", trigger_mode="always_last")
    export.click(export_png, inputs=controls, outputs=file, api_name="triplet_browser_png")
