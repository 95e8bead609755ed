"""Shift explorer: cut an object out with a mask, inpaint the hole, move the object (figure 5.1).

Pick an image (a synthetic scene, a sample photo or an upload) and a mask (the ground truth,
GrabCut or a brush), make the mask exact, too large or too small, and shift the object with the
dx / dy sliders. The tab shows the inpainted background b̂, the shifted composite x̂_δ (eq. 5.3),
the copy-paste x̃_δ and the difference |x̂_δ − x̂_0|, all computed by
:func:`workbench.ops.shift_scene.shift_scene`. The callbacks only convert between widgets and
workbench arrays.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import cv2
import gradio as gr
import numpy as np

from workbench.data.images import ImageReadError, read_image
from workbench.data.photos import SAMPLE_PHOTOS, load_sample_photo, resize_image
from workbench.data.synthetic import SCENE_PRESETS, overlay, render_scene
from workbench.eval.baselines import grabcut
from workbench.ops.classical import perturb_mask
from workbench.ops.shift_scene import shift_error, shift_scene

__all__ = ["TITLE", "build", "explore", "load_source", "editor_value", "SOURCES", "MASK_SOURCES"]

TITLE = "Shift explorer"

SOURCES = ("Synthetic scene", "Sample photo", "Upload")
MASK_SOURCES = ("Ground truth", "GrabCut", "Brush")
PERTURB_CHOICES = [("exact", "exact"), ("dilated by k px (too large)", "dilate"), ("eroded by k px (too small)", "erode")]
SCENE_SIZE = 128  # synthetic scenes are rendered at this size
MAX_SIDE = 256  # sample photos are centre-cropped to this size; uploads are shrunk to fit inside it
MAX_SHIFT = 48  # slider range, pixels

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


_GRABCUT_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()  # the sliders re-run explore(): cache GrabCut


def _grabcut_mask(image: np.ndarray) -> np.ndarray:
    """GrabCut from a centred rectangle, bool (H, W); cached by image content. gr.Error if it cannot run."""
    key = hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()
    if key not in _GRABCUT_CACHE:
        try:
            _GRABCUT_CACHE[key] = grabcut(image) > 0.5
        except ValueError as error:  # e.g. an image too small for the initial rectangle
            raise gr.Error(f"GrabCut cannot run on this {image.shape[1]}×{image.shape[0]} image ({error}). "
                           "Use the Brush mask, or a larger image.") from None
        while len(_GRABCUT_CACHE) > 16:
            _GRABCUT_CACHE.popitem(last=False)
    return _GRABCUT_CACHE[key]


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
        if preset not in SCENE_PRESETS:
            raise gr.Error(f"Unknown scene preset {preset!r}; choose one of {', '.join(SCENE_PRESETS)}.")
        if index is None or index < 0 or int(index) != index:
            raise gr.Error(f"The scene index must be a whole number >= 0, got {index!r}.")
        return render_scene(int(index), preset=preset, size=SCENE_SIZE)
    if source == "Sample photo":
        if photo not in SAMPLE_PHOTOS:
            raise gr.Error(f"Unknown sample photo {photo!r}; choose one of {', '.join(SAMPLE_PHOTOS)}.")
        return load_sample_photo(photo, size=MAX_SIDE), None
    if source == "Upload":
        if not upload:
            raise gr.Error("Upload an image first (PNG, JPEG, ...), or pick a synthetic scene or a sample photo.")
        try:
            image = read_image(upload)
        except ImageReadError as error:
            reason = str(error).removeprefix(f"{upload}: ")
            raise gr.Error(f"“{Path(upload).name}” is not an image that can be read ({reason}).") from None
        return _resize_to_fit(image), None
    raise gr.Error(f"Unknown image source {source!r}; choose one of {', '.join(SOURCES)}.")


def editor_value(source: str, preset: str, index: float, photo: str, upload: str | None) -> dict | Any:
    """The brush editor's content: the chosen image as background and no strokes."""
    try:
        image, _ = load_source(source, preset, index, photo, upload)
    except gr.Error:
        return gr.skip()  # explore() reports the problem
    return {"background": _to_uint8(image), "layers": [], "composite": None}


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
    """Run :func:`shift_scene` on the chosen image and mask.

    Returns uint8 images (mask overlay, background b̂, composite x̂_δ, copy-paste x̃_δ,
    difference |x̂_δ − x̂_0|) and a Markdown summary.
    """
    image, true_mask = load_source(source, preset, index, photo, upload)
    if mask_source == "Ground truth":
        if true_mask is None:
            raise gr.Error("Only synthetic scenes have a ground-truth mask. Choose GrabCut or Brush for photos and uploads.")
        mask = true_mask
    elif mask_source == "GrabCut":
        mask = _grabcut_mask(image)
    elif mask_source == "Brush":
        mask = _brush_mask(brush, image.shape[:2])
        if mask is None:
            raise gr.Error("Paint over the object in the brush editor first (then the mask follows your strokes).")
    else:
        raise gr.Error(f"Unknown mask source {mask_source!r}; choose one of {', '.join(MASK_SOURCES)}.")

    mask = perturb_mask(mask, mode=perturb, k=int(k))
    result = shift_scene(image, mask, dy=int(dy), dx=int(dx), inpaint_radius=int(radius))

    lines = [
        f"**Image** {image.shape[1]}×{image.shape[0]} px · **mask** {int(mask.sum())} px "
        f"({100 * mask.mean():.1f}% of the image) · **shift** (dy, dx) = ({int(dy)}, {int(dx)})",
    ]
    if not mask.any():
        lines.append("**The mask is empty** (nothing to move): draw a larger mask, or lower k for an eroded one.")
    if true_mask is not None:
        error = shift_error(result, true_mask)
        lines.append(
            f"**Shift error** against the truly moved object: **{error:.4f}** "
            "(mean |x̂_δ − truth| where the truth is known; 0 for a correct mask)"
        )
    views = (overlay(image, mask), result.background, result.composite, result.copy_paste, result.difference)
    return (*(_to_uint8(view) for view in views), "\n\n".join(lines))


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
    """Create the widgets and wire them to :func:`explore` (api_name ``shift_explorer``)."""
    d = DEFAULTS
    first = explore(**d)
    gr.Markdown(
        "Cut an object out with a mask, fill the hole (OpenCV Telea inpainting of the mask and its "
        "shifted copy), and paste the object back a few pixels away. **A correct mask gives a "
        "realistic picture; a dilated one drags background texture along, an eroded one leaves a "
        "ghost of the object's rim in the background and duplicates in the copy-paste.**"
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            source = gr.Radio(list(SOURCES), value=d["source"], label="Image")
            preset = gr.Dropdown(list(SCENE_PRESETS), value=d["preset"], label="Scene preset")
            index = gr.Number(value=d["index"], precision=0, minimum=0, label="Scene index")
            photo = gr.Dropdown(list(SAMPLE_PHOTOS), value=d["photo"], label="Sample photo", visible=False)
            upload = gr.File(label="Upload an image", type="filepath", visible=False)
            mask_source = gr.Radio(list(MASK_SOURCES), value=d["mask_source"], label="Mask")
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
        with gr.Column(scale=2):
            summary = gr.Markdown(first[5], elem_id="shift-summary")
            with gr.Row():
                mask_view = _view(first[0], "Image and mask", "shift-mask", height=250)
                background = _view(first[1], "Inpainted background b̂", "shift-background", height=250)
                difference = _view(first[4], "Difference |x̂_δ − x̂_0|", "shift-difference", height=250)
            with gr.Row():
                composite = _view(first[2], "Shifted composite x̂_δ (eq. 5.3)", "shift-composite", height=360)
                copy = _view(first[3], "Copy-paste x̃_δ", "shift-copy-paste", height=360)

    sources = [source, preset, index, photo, upload]
    inputs = [*sources, mask_source, brush, perturb, k, dy, dx, radius]
    outputs = [mask_view, background, composite, copy, difference, summary]
    changes = [w.change for w in sources]
    source.change(source_visibility, inputs=source, outputs=[preset, index, photo, upload], api_visibility="private")
    gr.on(changes, editor_value, inputs=sources, outputs=brush, api_visibility="private")
    mask_source.change(open_brush, inputs=mask_source, outputs=brush_box, api_visibility="private")
    gr.on(
        [*changes, mask_source.change, brush.input, perturb.change, k.change, dy.change, dx.change, radius.change],
        explore,
        inputs=inputs,
        outputs=outputs,
        api_name="shift_explorer",
        trigger_mode="always_last",
    )


def _view(value: np.ndarray, label: str, elem_id: str, *, height: int) -> gr.Image:
    """An output image, drawn with sharp pixels (the app's ``pixelated`` class)."""
    return gr.Image(value=value, label=label, format="png", interactive=False, elem_id=elem_id, height=height,
                    buttons=["download"], elem_classes=["pixelated"])
