"""Shift explorer: cut an object out with a mask, inpaint the hole, move the object (figure 5.1).

Pick an image (a synthetic scene, a sample photo or an upload) and a mask (the ground truth,
GrabCut, MOVE's prediction, the released official MOVE model's when its checkpoint is in the weights
folder, or a brush), make the mask exact, too large or too small, and shift the
object with the dx / dy sliders. The tab shows the inpainted background b̂, the shifted composite
x̂_δ (eq. 5.3), the copy-paste x̃_δ and the difference |x̂_δ − x̂_0|, all computed by
:func:`workbench.ops.shift_scene.shift_scene` with OpenCV's Telea inpainting, and, on synthetic
scenes, the error map of x̂_δ against the truly moved scene
(:func:`workbench.ops.shift_scene.shift_error_map`): the panel that tells a right mask from a
wrong one. Photos and uploads have no ground truth: there the mask falls back to GrabCut.

Below, the same mask and shift go through a trained MOVE (chapter 5; the shipped
``assets/move-small`` bundle, or ``$WORKBENCH_MOVE_CHECKPOINT``): its MAE inpaints b̂ and builds
x̂_δ (:meth:`MOVE.compose`), and its discriminator scores the composite, D(x̂_δ), with a plot of
the score along each slider's axis, and a line with what that checkpoint scores on held-out
scenes against the baselines (:func:`workbench.eval.asset_scores.scores_line`). An official MAE found in the weights folder can replace the
checkpoint's MAE for the pictures. The callbacks only convert between widgets and workbench arrays
(:mod:`workbench.methods.move_explore`).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import cv2
import gradio as gr
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from apps.safety import finite, read_upload, scene_index
from workbench.data.photos import SAMPLE_PHOTOS, load_sample_photo, resize_image
from workbench.data.synthetic import SCENE_PRESETS, overlay, render_scene
from workbench.eval.asset_scores import read_metrics, scores_line, segments
from workbench.eval.baselines import grabcut
from workbench.eval.segmenters import OFFICIAL_MOVE_ENV, official_move_path, segment_image, segmenter_registry
from workbench.methods import move_explore as mx
from workbench.methods.move_assets import SHIPPED_MOVE, load_move
from workbench.nets.mae import MAE_FILES, find_weights, weights_dir
from workbench.ops.classical import perturb_mask
from workbench.ops.shift_scene import shift_error, shift_error_map, shift_scene

__all__ = ["TITLE", "build", "explore", "move_explore", "error_view", "mask_for_source", "load_source", "editor_value", "inpainter_choices",
           "mask_choices", "SOURCES", "MASK_SOURCES", "OFFICIAL_MOVE", "OWN_MAE", "OFFICIAL_MAES", "CHECKPOINT_ENV"]

TITLE = "Shift explorer"

SOURCES = ("Synthetic scene", "Sample photo", "Upload")
MASK_SOURCES = ("Ground truth", "GrabCut", "MOVE", "Brush")
OFFICIAL_MOVE = "Official MOVE"  # the released model's mask; offered only when its checkpoint is there (mask_choices)
PERTURB_CHOICES = [("exact", "exact"), ("dilated by k px (too large)", "dilate"), ("eroded by k px (too small)", "erode")]
SCENE_SIZE = 128  # synthetic scenes are rendered at this size
MAX_SIDE = 256  # sample photos are centre-cropped to this size; uploads are shrunk to fit inside it
ERROR_SCALE = 0.5  # the error map's colour scale: 0 (black) to this mean |x̂_δ − truth| (white)
UPLOAD_FIRST = "**Upload an image** (PNG, JPEG, ...) to start; the mask will be GrabCut's, or paint one with the Brush."
MAX_SHIFT = 48  # slider range, pixels
CURVE_POINTS = 25  # at most this many shifts per score curve (each is an MAE decoding and a D pass)
CHECKPOINT_ENV = "WORKBENCH_MOVE_CHECKPOINT"  # a MOVE bundle, checkpoint or run folder instead of the shipped one
OWN_MAE = "MAE of the MOVE checkpoint"  # the inpainter MOVE was trained with, the one D scores
OFFICIAL_MAES: dict[str, tuple[str, str, int, str]] = {  # label -> (weights file, architecture, size, inpainter)
    "Official MAE ViT-L/16, GAN loss (224 px)": (MAE_FILES[0], "mae_vit_large_patch16", 224, "gan"),
    "Official MAE ViT-L/16, MSE (224 px)": (MAE_FILES[1], "mae_vit_large_patch16", 224, "mse"),
}

# helpers


def _resize_to_fit(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Shrink (H, W, 3) so that its longer side is at most ``max_side``."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    return resize_image(image, (max(1, round(h * scale)), max(1, round(w * scale))))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """float (H, W, 3) in [0, 1] -> uint8 for display."""
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def _key(array: np.ndarray) -> str:
    """A cache key for an array's content."""
    return hashlib.sha1(array.tobytes() + str((array.shape, array.dtype)).encode()).hexdigest()


def _remember(cache: OrderedDict, key: Any, value: Any, *, size: int = 16) -> Any:
    """Store ``value`` under ``key``, dropping the oldest entries beyond ``size``."""
    cache[key] = value
    while len(cache) > size:
        cache.popitem(last=False)
    return value


_GRABCUT_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()  # the sliders re-run explore(): cache GrabCut


def _grabcut_mask(image: np.ndarray) -> np.ndarray:
    """GrabCut from a centred rectangle, bool (H, W); cached by image content. gr.Error if it cannot run."""
    key = _key(image)
    if key not in _GRABCUT_CACHE:
        try:
            _remember(_GRABCUT_CACHE, key, grabcut(image) > 0.5)
        except ValueError as error:  # e.g. an image too small for the initial rectangle
            raise gr.Error(f"GrabCut cannot run on this {image.shape[1]}×{image.shape[0]} image ({error}). "
                           "Use the Brush mask, or a larger image.") from None
    return _GRABCUT_CACHE[key]


def move_checkpoint() -> Path:
    """The MOVE the tab uses: ``$WORKBENCH_MOVE_CHECKPOINT`` when set, else the shipped bundle."""
    return Path(os.environ.get(CHECKPOINT_ENV) or SHIPPED_MOVE).expanduser()


_METHODS: OrderedDict[tuple, Any] = OrderedDict()  # loaded MOVEs and official-MAE inpainters


def _move_key() -> tuple[str, str]:
    """The cache key of the MOVE in use (its path), also a part of the keys of what it computed."""
    return ("move", str(move_checkpoint().resolve()))


def _move_method():
    """The loaded MOVE of :func:`move_checkpoint` (cached); gr.Error when it cannot be loaded."""
    path = move_checkpoint()
    key = _move_key()
    if key not in _METHODS:
        try:
            method = load_move(path)
        except (OSError, ValueError) as error:  # missing files, CheckpointError, a config of another method
            raise gr.Error(f"The MOVE checkpoint cannot be loaded: {error}") from None
        _remember(_METHODS, key, method, size=3)
    return _METHODS[key]


def inpainter_choices() -> list[str]:
    """The checkpoint's own MAE, then the official MAEs whose weights are in the weights folder."""
    return [OWN_MAE, *(label for label, (file, *_) in OFFICIAL_MAES.items() if find_weights(file) is not None)]


def _inpainter(label: str):
    """The MOVE whose :meth:`compose` makes the MAE pictures for inpainter ``label`` (cached)."""
    if label == OWN_MAE:
        return _move_method()
    if label not in OFFICIAL_MAES:
        raise gr.Error(f"Unknown inpainter {label!r}; choose one of: {', '.join(inpainter_choices())}.")
    file, arch, size, mode = OFFICIAL_MAES[label]
    found = find_weights(file)
    if found is None:
        raise gr.Error(f"{file} is not in {weights_dir()} (or $WORKBENCH_WEIGHTS); put the official MAE "
                       "weights there, see the README's MOVE section.")
    key = ("official", str(found), arch, size, mode)
    if key not in _METHODS:
        try:
            inpainter = mx.mae_inpainter(found, arch=arch, size=size, inpainter=mode)
        except (OSError, ValueError) as error:  # a damaged file, pickled code, another model's weights
            raise gr.Error(f"The official MAE weights {found.name} cannot be loaded: {error} Replace the file "
                           f"in {weights_dir()}, or choose “{OWN_MAE}”.") from None
        _remember(_METHODS, key, inpainter, size=3)
    return _METHODS[key]


_MOVE_MASKS: OrderedDict[tuple, np.ndarray] = OrderedDict()


def _move_mask(image: np.ndarray) -> np.ndarray:
    """MOVE's predicted mask of the image (soft > 0.5), bool (H, W); cached by checkpoint and image."""
    method = _move_method()
    key = (_move_key(), _key(image))
    if key not in _MOVE_MASKS:
        _remember(_MOVE_MASKS, key, mx.predict_mask(method, image) > 0.5)
    return _MOVE_MASKS[key]


def mask_choices() -> list[str]:
    """The Mask radio's choices: :data:`MASK_SOURCES`, and "Official MOVE" when the released official
    checkpoint is where the Segment tab looks for it (:func:`workbench.eval.segmenters.official_move_path`)."""
    return [*MASK_SOURCES[:3], *([OFFICIAL_MOVE] if official_move_path().is_file() else []), MASK_SOURCES[3]]


def official_move_note() -> str:
    """One line on the official MOVE mask: where its checkpoint was found, or why the choice is absent."""
    path = official_move_path()
    if path.is_file():
        return f"Official MOVE: the released model ({path.name}, DINO ViT-S/8, predicted at 448 px)."
    return (f"“{OFFICIAL_MOVE}” appears when the released official checkpoint is at {path} (or where "
            f"${OFFICIAL_MOVE_ENV} points).")


def _official_move():
    """The released official MOVE (cached by path and file time), loaded as the Segment tab loads it.

    gr.Error when the file is missing or cannot be loaded."""
    path = official_move_path()
    if not path.is_file():
        raise gr.Error(f"The official MOVE checkpoint is not at {path}: put the released checkpoint-N.pth there "
                       f"(or set ${OFFICIAL_MOVE_ENV} to it), or choose another mask.")
    key = ("official-move", str(path.resolve()), path.stat().st_mtime_ns)
    if key not in _METHODS:
        try:
            model = segmenter_registry()["move-official"].load(path)
        except (OSError, ValueError) as error:  # CheckpointError, pickled code, foreign keys, no DINO weights
            raise gr.Error(f"The official MOVE checkpoint {path.name} cannot be loaded: {error}") from None
        _remember(_METHODS, key, model, size=3)
    return key, _METHODS[key]


def _official_move_mask(image: np.ndarray) -> np.ndarray:
    """The released official MOVE's mask of the image (soft > 0.5), bool (H, W); cached by checkpoint and image."""
    key, model = _official_move()
    cache = (key, _key(image))
    if cache not in _MOVE_MASKS:
        _remember(_MOVE_MASKS, cache, segment_image(model, image) > 0.5)
    return _MOVE_MASKS[cache]


def _brush_mask(editor: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """The strokes of the ImageEditor's layers as a bool (H, W) mask; None when nothing is drawn."""
    if not isinstance(editor, dict):
        return None
    strokes = None
    for layer in editor.get("layers") or []:
        layer = np.asarray(layer)
        if layer.ndim == 3 and layer.shape[2] == 4:
            drawn = layer[..., 3] > 0  # alpha
        elif layer.ndim >= 2:
            drawn = (layer.reshape(*layer.shape[:2], -1) > 0).any(-1)
        else:
            continue
        strokes = drawn if strokes is None else strokes | drawn
    if strokes is None or not strokes.any():
        return None
    if strokes.shape != shape:
        strokes = cv2.resize(strokes.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    return strokes


# callbacks


def load_source(source: str, preset: str, index: float, photo: str, upload: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The chosen image, float32 (H, W, 3), and its true mask (synthetic scenes) or None."""
    if source == "Synthetic scene":
        index = scene_index(index)
        if preset not in SCENE_PRESETS:
            raise gr.Error(f"Unknown scene preset {preset!r}; choose one of {', '.join(SCENE_PRESETS)}.")
        return render_scene(index, preset=preset, size=SCENE_SIZE)
    if source == "Sample photo":
        if photo not in SAMPLE_PHOTOS:
            raise gr.Error(f"Unknown sample photo {photo!r}; choose one of {', '.join(SAMPLE_PHOTOS)}.")
        return load_sample_photo(photo, size=MAX_SIDE), None
    if source == "Upload":
        image = read_upload(upload, alternatives="pick a synthetic scene or a sample photo")
        return _resize_to_fit(image), None
    raise gr.Error(f"Unknown image source {source!r}; choose one of {', '.join(SOURCES)}.")


def editor_value(source: str, preset: str, index: float, photo: str, upload: str | None) -> dict | Any:
    """The brush editor's content: the chosen image as background and no strokes."""
    try:
        image, _ = load_source(source, preset, index, photo, upload)
    except gr.Error:
        return gr.skip()  # explore() reports the problem
    return {"background": _to_uint8(image), "layers": [], "composite": None}


def chosen_mask(image: np.ndarray, true_mask: np.ndarray | None, mask_source: str, brush: Any, perturb: str,
                k: float) -> np.ndarray:
    """The mask of ``mask_source`` for the image, perturbed (exact, dilated or eroded by k px): bool (H, W).

    "Ground truth" on an image without one (a photo, an upload) gives GrabCut's mask (see
    :func:`mask_for_source`).
    """
    mask_source = mask_for_source(mask_source, has_truth=true_mask is not None)
    if mask_source == "Ground truth":
        if true_mask is None:
            raise gr.Error("Only synthetic scenes have a ground-truth mask. Choose GrabCut, MOVE or Brush for "
                           "photos and uploads.")
        mask = true_mask
    elif mask_source == "GrabCut":
        mask = _grabcut_mask(image)
    elif mask_source == "MOVE":
        mask = _move_mask(image)
    elif mask_source == OFFICIAL_MOVE:
        mask = _official_move_mask(image)
    elif mask_source == "Brush":
        mask = _brush_mask(brush, image.shape[:2])
        if mask is None:
            raise gr.Error("Paint over the object in the brush editor first (then the mask follows your strokes).")
    else:
        raise gr.Error(f"Unknown mask source {mask_source!r}; choose one of {', '.join(mask_choices())}.")
    return perturb_mask(mask, mode=perturb, k=int(k))


def mask_for_source(mask_source: str, *, has_truth: bool) -> str:
    """The mask actually used: GrabCut in place of "Ground truth" where the image has none."""
    return "GrabCut" if mask_source == "Ground truth" and not has_truth else mask_source


def explore(
    source: str,
    preset: str,
    index: float,
    photo: str,
    upload: str | None,
    mask_source: str,
    brush: Any,
    perturb: str,
    k: float,
    dy: float,
    dx: float,
    radius: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Run :func:`shift_scene` (OpenCV Telea inpainting) on the chosen image and mask.

    Returns uint8 images (mask overlay, background b̂, composite x̂_δ, copy-paste x̃_δ,
    difference |x̂_δ − x̂_0|) and a Markdown summary.
    """
    finite(k=k, shift_dy=dy, shift_dx=dx, inpainting_radius=radius)
    if source == "Upload" and not upload:  # not an error: the user has not chosen a file yet
        return None, None, None, None, None, UPLOAD_FIRST
    image, true_mask = load_source(source, preset, index, photo, upload)
    mask = chosen_mask(image, true_mask, mask_source, brush, perturb, k)
    result = shift_scene(image, mask, dy=int(dy), dx=int(dx), inpaint_radius=int(radius))

    used = mask_for_source(mask_source, has_truth=true_mask is not None)
    lines = [
        f"**Image** {image.shape[1]}×{image.shape[0]} px · **mask** {int(mask.sum())} px "
        f"({100 * mask.mean():.1f}% of the image) · **shift** (dy, dx) = ({int(dy)}, {int(dx)})",
    ]
    if used != mask_source:
        lines.append("Photos and uploads have no ground-truth mask: **the mask is GrabCut's** here.")
    if not mask.any():
        lines.append("**The mask is empty** (nothing to move): draw a larger mask, or lower k for an eroded one.")
    if true_mask is not None:
        error = shift_error(result, true_mask)
        lines.append(
            f"**Shift error** against the truly moved object: **{error:.4f}** "
            "(mean |x̂_δ − truth| where the truth is known; 0 for a correct mask)"
        )
        if used != "Ground truth":
            union = (mask | true_mask).sum()
            iou = (mask & true_mask).sum() / union if union else 1.0
            lines.append(f"**IoU** of this mask with the ground truth: {iou:.3f}")
    views = (overlay(image, mask), result.background, result.composite, result.copy_paste, result.difference)
    return (*(_to_uint8(view) for view in views), "\n\n".join(lines))


def error_view(
    source: str,
    preset: str,
    index: float,
    photo: str,
    upload: str | None,
    mask_source: str,
    brush: Any,
    perturb: str,
    k: float,
    dy: float,
    dx: float,
    radius: float,
) -> tuple[np.ndarray | None, str]:
    """The error map of x̂_δ against the truly moved scene (:func:`shift_error_map`), on synthetic scenes.

    Returns a uint8 (H, W, 3) picture (black: no error, white: a mean error of :data:`ERROR_SCALE`
    or more; blue: where the truth is unknown or neither mask touches) and a caption; ``None`` and
    a note for photos and uploads, which have no truth.
    """
    if source != "Synthetic scene":
        return None, "*The error map needs the truly moved scene: only synthetic scenes have one.*"
    image, true_mask = load_source(source, preset, index, photo, upload)
    mask = chosen_mask(image, true_mask, mask_source, brush, perturb, k)
    result = shift_scene(image, mask, dy=int(dy), dx=int(dx), inpaint_radius=int(radius))
    error, region = shift_error_map(result, true_mask)
    grey = np.clip(error / ERROR_SCALE, 0.0, 1.0)[..., None].repeat(3, axis=2)  # (H, W, 3)
    picture = np.where(region[..., None], grey, np.array([0.55, 0.65, 0.85], np.float32))
    mean = float(error[region].mean()) if region.any() else 0.0
    return _to_uint8(picture), (f"Error map |x̂_δ − truly moved scene|: mean **{mean:.4f}** "
                                f"(black 0, white ≥ {ERROR_SCALE:g}; blue: not compared)")


_CURVES: OrderedDict[tuple, pd.DataFrame] = OrderedDict()  # a slider move recomputes only the other axis' curve


def _score_curve(method: Any, image: np.ndarray, mask: np.ndarray, *, axis: str, held: float) -> pd.DataFrame:
    """D(x̂_δ) along ``axis`` with the other shift held (image px), cached per model-pixel shift."""
    h, w = image.shape[:2]
    held_model = mx.model_shift(held, held, shape=(h, w), size=method.config.size)[1 if axis == "dy" else 0]
    key = (_move_key(), _key(image), _key(mask), axis, held_model)
    if key not in _CURVES:
        _remember(_CURVES, key, mx.score_curve(method, image, mask, axis=axis, held=held, max_shift=MAX_SHIFT,
                                                      points=CURVE_POINTS))
    return _CURVES[key]


def _px(value: float) -> str:
    """A shift in image pixels for a legend: at most one decimal (2.67188 -> "2.7", 4.0 -> "4")."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def score_plot(curves: pd.DataFrame, *, dy: float, dx: float, scores: dict[str, float],
               trained: tuple[float, float]) -> Figure:
    """D(x̂_δ) against the shift along dx and along dy (image px); dots at the current (snapped) shift
    (dy, dx), whose score is ``scores["shifted"]``; the shifts seen in training, ``trained`` (dy, dx), shaded."""
    figure = Figure(figsize=(4.4, 3.3), dpi=100, layout="constrained")
    ax = figure.add_subplot()
    ax.axvspan(-max(trained), max(trained), color="0.92", zorder=0, label="shifts seen in training")
    ax.axhline(0, color="0.6", linewidth=0.8)
    for axis, now, colour in (("dx", dx, "tab:blue"), ("dy", dy, "tab:orange")):
        curve = curves[curves["axis"] == axis]
        held = f"dy = {_px(dy)}" if axis == "dx" else f"dx = {_px(dx)}"
        ax.plot(curve["shift"], curve["score"], color=colour, linewidth=1.5, label=f"along {axis} ({held})")
        ax.plot([now], [scores["shifted"]], "o", color=colour, markersize=6)
    ax.axhline(scores["real"], color="tab:green", linestyle=":", linewidth=1.2, label="D of the image itself")
    values = [*curves["score"], scores["shifted"], scores["real"], 0.0]
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    margin = 0.12 * max(high - low, 0.1)  # every line, the image's own included, clear of the frame
    ax.set_ylim(low - margin, high + margin)
    ax.set_title(r"MOVE's discriminator $D(\hat{x}_\delta)$ vs shift", fontsize=9)
    ax.set_xlabel("shift (image pixels)", fontsize=8)
    ax.set_ylabel(r"$D(\hat{x}_\delta)$ (logit)", fontsize=8)
    figure.legend(fontsize=7, loc="outside lower center", ncols=2, frameon=False)
    ax.tick_params(labelsize=8)
    return figure


def move_explore(
    source: str,
    preset: str,
    index: float,
    photo: str,
    upload: str | None,
    mask_source: str,
    brush: Any,
    perturb: str,
    k: float,
    dy: float,
    dx: float,
    inpainter: str = OWN_MAE,
) -> tuple[np.ndarray | None, np.ndarray | None, Figure | None, str]:
    """The same image, mask and shift through the MOVE checkpoint: MAE inpainting, composite, D's score.

    Returns uint8 images (the MAE-inpainted background b̂ and the composite x̂_δ, at the image's
    size; from ``inpainter``), a plot of D(x̂_δ) along both sliders' axes (the checkpoint's own
    composites, the ones D was trained on) and a Markdown summary, which opens with what the
    checkpoint scores on held-out scenes against the baselines (:func:`move_scores`). Without a
    usable checkpoint, or without a usable image or mask, the images and plot are ``None`` and the
    summary says why (no stale pictures stay on screen).
    """
    if source == "Upload" and not upload:
        return None, None, None, UPLOAD_FIRST
    try:
        finite(k=k, shift_dy=dy, shift_dx=dx)
        image, true_mask = load_source(source, preset, index, photo, upload)
        mask = chosen_mask(image, true_mask, mask_source, brush, perturb, k)
    except gr.Error as error:  # explore() shows the problem; clear the MOVE pictures
        return None, None, None, f"**No MOVE pictures.** {error.message}"
    try:
        method = _move_method()
    except gr.Error as error:
        return None, None, None, f"**No MOVE here.** {error.message}"
    composer = _inpainter(inpainter)
    views = mx.compose_views(composer, image, mask, dy=dy, dx=dx)
    scores = mx.verdicts(method, image, mask, dy=dy, dx=dx)
    curves = pd.concat([_score_curve(method, image, mask, axis="dx", held=dy),
                        _score_curve(method, image, mask, axis="dy", held=dx)], ignore_index=True)
    size = method.config.size
    h, w = image.shape[:2]
    reach = (method.config.max_shift * h, method.config.max_shift * w)  # Δ·side, in image pixels
    mdy, mdx = mx.model_shift(dy, dx, shape=(h, w), size=size)
    lines = [
        move_scores(),
        f"**D(x̂_δ) = {scores['shifted']:+.3f}** at (dy, dx) = ({int(dy)}, {int(dx)}) px "
        f"(({mdy}, {mdx}) px at MOVE's {size}×{size}) · unshifted composite D(x̂₀) = {scores['composed']:+.3f} · "
        f"copy-paste {scores['copy_paste']:+.3f} · the image itself {scores['real']:+.3f}",
        "D was trained with the hinge loss (eq. 5.5): ≥ +1 looks real to it, ≤ −1 looks shifted. "
        f"MOVE saw shifts up to ±{method.config.max_shift * size:.0f} px at {size} px "
        f"(±{reach[1]:.0f} px here, the shaded band).",
        f"Pictures: {inpainter}" + (f", {views.size}×{views.size} px, shown at the image's size." if
                                    views.size != max(h, w) else "."),
    ]
    plot = score_plot(curves, dy=mdy * h / size, dx=mdx * w / size, scores=scores, trained=reach)
    return _to_uint8(views.background), _to_uint8(views.shifted), plot, "\n\n".join(lines)


def move_scores() -> str:
    """What the MOVE in use scores on held-out scenes against the baselines (from its metrics.json)."""
    return scores_line(move_checkpoint(), kind="segmenter", name="This MOVE checkpoint")


def move_segments() -> bool | None:
    """Whether the MOVE in use segments, by its stored scores (None: not stored)."""
    return segments(read_metrics(move_checkpoint()))


def mask_for_image(source: str, mask_source: str) -> Any:
    """Switch the Mask radio from "Ground truth" to GrabCut when the image has no ground truth."""
    if source != "Synthetic scene" and mask_source == "Ground truth":
        return gr.update(value="GrabCut")
    return gr.skip()


def source_visibility(source: str) -> tuple[Any, Any, Any, Any]:
    """Show only the widgets of the chosen source (preset, index, photo, upload)."""
    synthetic = source == "Synthetic scene"
    return (
        gr.update(visible=synthetic),
        gr.update(visible=synthetic),
        gr.update(visible=source == "Sample photo"),
        gr.update(visible=source == "Upload"),
    )


def open_brush(mask_source: str) -> Any:
    """Open the brush editor when the Brush mask is chosen."""
    return gr.update(open=True) if mask_source == "Brush" else gr.skip()


# the tab

DEFAULTS: dict[str, Any] = dict(  # the tab's first state; explore(**DEFAULTS) fills the images at start
    source=SOURCES[0], preset="benchmark", index=12, photo=SAMPLE_PHOTOS[0] if SAMPLE_PHOTOS else None, upload=None,
    mask_source=MASK_SOURCES[0], brush=None, perturb="exact", k=3, dy=4, dx=10, radius=3,
)


def build() -> None:
    """Create the widgets and wire them to :func:`explore` (api_name ``shift_explorer``) and, once it
    succeeds, to :func:`move_explore` (api_name ``move_explorer``)."""
    d = DEFAULTS
    first = explore(**d)
    first_error = error_view(**d)
    inpainters = inpainter_choices()
    first_move = move_explore(**{key: value for key, value in d.items() if key != "radius"}, inpainter=inpainters[0])
    gr.Markdown(
        "Cut an object out with a mask, fill the hole (OpenCV Telea inpainting, or MOVE's MAE, of the mask and "
        "its shifted copy), and paste the object back a few pixels away. **A correct mask moves the object "
        "cleanly; a dilated one drags background texture along, an eroded one leaves the object's rim behind, "
        "smeared into the inpainted background.** The copy-paste x̃_δ keeps the original object in place, so it "
        "shows the object twice with every mask, and the difference |x̂_δ − x̂₀| marks where the object left and "
        "arrived, also with every mask: neither tells a right mask from a wrong one. On synthetic scenes the "
        "**error map** against the truly moved scene does: black everywhere for the exact mask, bright seams for "
        "wrong ones. MOVE's discriminator D, trained to spot shifted composites (chapter 5), scores each picture; "
        "read its scores line below before trusting its mask or its verdicts."
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            source = gr.Radio(list(SOURCES), value=d["source"], label="Image")
            preset = gr.Dropdown(list(SCENE_PRESETS), value=d["preset"], label="Scene preset")
            index = gr.Number(value=d["index"], precision=0, minimum=0, label="Scene index")
            photo = gr.Dropdown(list(SAMPLE_PHOTOS), value=d["photo"], label="Sample photo", visible=False)
            upload = gr.File(label="Upload an image", type="filepath", visible=False)
            mask_source = gr.Radio(mask_choices(), value=d["mask_source"], label="Mask",
                                   info="MOVE: the mask predicted by the MOVE checkpoint"
                                   + (" (which does not segment: see its scores)" if move_segments() is False
                                      else "") + ". " + official_move_note()
                                   + " Photos and uploads use GrabCut for “Ground truth”.",
                                   elem_id="shift-mask-source")
            with gr.Accordion("Brush (for the Brush mask)", open=False) as brush_box:
                brush = gr.ImageEditor(
                    value=editor_value(d["source"], d["preset"], d["index"], d["photo"], d["upload"]),
                    label="Paint over the object",
                    type="numpy",
                    image_mode="RGBA",
                    sources=(),
                    brush=gr.Brush(default_size=8, colors=["#ff3030"], color_mode="fixed"),
                    layers=False,
                    transforms=(),
                    height=300,
                )
            perturb = gr.Radio(PERTURB_CHOICES, value=d["perturb"], label="Mask perturbation (figure 5.1)")
            k = gr.Slider(0, 12, value=d["k"], step=1, label="k (pixels)")
            dx = gr.Slider(-MAX_SHIFT, MAX_SHIFT, value=d["dx"], step=1, label="dx (pixels, + moves right)",
                           elem_id="shift-dx")
            dy = gr.Slider(-MAX_SHIFT, MAX_SHIFT, value=d["dy"], step=1, label="dy (pixels, + moves down)",
                           elem_id="shift-dy")
            radius = gr.Slider(1, 15, value=d["radius"], step=1, label="Telea inpainting radius (pixels)")
            inpainter = gr.Radio(inpainters, value=inpainters[0], label="MAE inpainter (MOVE pictures)",
                                 info=f"official MAEs appear here when their weights are in {weights_dir()}",
                                 elem_id="shift-inpainter")
        with gr.Column(scale=2):
            summary = gr.Markdown(first[5], elem_id="shift-summary")
            with gr.Row():
                mask_view = _view(first[0], "Image and mask", "shift-mask", height=240)
                background = _view(first[1], "Background b̂: OpenCV Telea", "shift-background", height=240)
                mae_background = _view(first_move[0], "Background b̂: MAE (MOVE)", "shift-mae-background", height=240)
            with gr.Row():
                composite = _view(first[2], "Shifted composite x̂_δ (eq. 5.3): Telea", "shift-composite", height=300)
                mae_composite = _view(first_move[1], "Shifted composite x̂_δ: MAE (MOVE)", "shift-mae-composite",
                                      height=300)
            with gr.Row():
                copy = _view(first[3], "Copy-paste x̃_δ", "shift-copy-paste", height=240, scale=2)
                difference = _view(first[4], "Difference |x̂_δ − x̂_0| (Telea)", "shift-difference", height=240,
                                   scale=2)
                errors = _view(first_error[0], "Error map vs the truly moved scene (Telea)", "shift-error-map",
                               height=240, scale=2)
            error_caption = gr.Markdown(first_error[1], elem_id="shift-error-caption")
            with gr.Row():
                plot = gr.Plot(first_move[2], label="MOVE's discriminator D(x̂_δ) vs shift", show_label=False,
                               elem_id="shift-score-plot", format="png", scale=1)
                move_summary = gr.Markdown(first_move[3], elem_id="shift-move-summary")

    sources = [source, preset, index, photo, upload]
    inputs = [*sources, mask_source, brush, perturb, k, dy, dx, radius]
    outputs = [mask_view, background, composite, copy, difference, summary]
    move_inputs = [*sources, mask_source, brush, perturb, k, dy, dx, inpainter]
    move_outputs = [mae_background, mae_composite, plot, move_summary]
    changes = [w.change for w in sources]
    source.change(source_visibility, inputs=source, outputs=[preset, index, photo, upload], api_visibility="private")
    source.change(mask_for_image, inputs=[source, mask_source], outputs=mask_source, api_visibility="private")
    gr.on(changes, editor_value, inputs=sources, outputs=brush, api_visibility="private")
    mask_source.change(open_brush, inputs=mask_source, outputs=brush_box, api_visibility="private")
    triggers = [*changes, mask_source.change, brush.input, perturb.change, k.change, dy.change, dx.change,
                radius.change]
    # one event per change (always the last one): Telea pictures, then the error map, then MOVE's pictures
    gr.on(triggers, explore, inputs=inputs, outputs=outputs, api_name="shift_explorer", trigger_mode="always_last",
          ).then(error_view, inputs=inputs, outputs=[errors, error_caption], api_name="shift_error_map",
                 ).then(move_explore, inputs=move_inputs, outputs=move_outputs, api_name="move_explorer")
    inpainter.change(move_explore, inputs=move_inputs, outputs=move_outputs, api_visibility="private",
                     trigger_mode="always_last")


def _view(value: np.ndarray | None, label: str, elem_id: str, *, height: int, scale: int | None = None) -> gr.Image:
    """An output image, drawn with sharp pixels (the app's ``pixelated`` class)."""
    return gr.Image(value=value, label=label, format="png", interactive=False, elem_id=elem_id, height=height,
                    buttons=["download"], elem_classes=["pixelated"], scale=scale)
