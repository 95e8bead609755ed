"""Segment: run any trained segmenter the workbench can load on a photo, see its mask and boxes, download the mask.

Pick an image (an upload, a sample photo or a synthetic scene) and a model from
:func:`workbench.eval.segmenters.segmenter_registry` (the shipped MOVE, the chapter-4 layered
GAN's joint segmenter and post-trained U-Net, or any run folder: a PerturbGAN encoder, a MOVE, ...).
The tab shows the mask overlaid on the image with the boxes of :mod:`workbench.eval.boxes` (the
largest component's box, the one CorLoc scores, in green; the other "Multi" boxes covering at least
1% of the image in yellow), the soft mask, what the model scores on held-out scenes against the
baselines (:func:`workbench.eval.asset_scores.scores_line`), and a PNG of the binary mask at the
image's resolution to download.

A typed folder must lie inside ``runs/`` or ``assets/`` (:func:`apps.safety.readable_folder`).
Uploads keep their resolution up to :data:`MAX_SIDE` pixels on the longer side; larger ones are
shrunk to it (area averaging). Each model predicts at its own scale and the mask is resized to
the image (MOVE at its training size, the U-Nets at their training scale).
"""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from apps.safety import OutsideRootsError, finite, read_upload, readable_folder, scene_index
from workbench.data.photos import SAMPLE_PHOTOS, load_sample_photo, resize_image
from workbench.data.synthetic import SCENE_PRESETS, overlay, render_scene
from workbench.eval.asset_scores import scores_line
from workbench.eval.boxes import draw_boxes, mask_to_boxes
from workbench.eval.predict import write_mask_png
from workbench.eval.segmenters import metrics_part, segment_image, segmenter_registry

__all__ = ["TITLE", "build", "segment", "load_image", "model_choices", "MAX_SIDE", "SOURCES", "DEFAULTS"]

TITLE = "Segment"

SOURCES = ("Upload", "Sample photo", "Synthetic scene")
MAX_SIDE = 1024  # uploads and sample photos keep their resolution up to this longer side, pixels
SCENE_SIZE = 128  # synthetic scenes are rendered at this size
LARGEST, MULTI = (0.1, 0.9, 0.2), (1.0, 0.85, 0.1)  # box colours: the CorLoc box, the other Multi boxes

# helpers


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def _fit(image: np.ndarray) -> np.ndarray:
    """Shrink (H, W, 3) so that its longer side is at most :data:`MAX_SIDE`; smaller images are kept."""
    h, w = image.shape[:2]
    scale = MAX_SIDE / max(h, w)
    if scale >= 1:
        return image
    return resize_image(image, (max(1, round(h * scale)), max(1, round(w * scale))))


def model_choices() -> list[tuple[str, str]]:
    """(label, key) of every registry entry whose checkpoint is here (the path entry always)."""
    return [(entry.label, key) for key, entry in segmenter_registry().items() if entry.available]


_MODELS: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (key, resolved path) -> loaded model


def _model(key: str, path: str | None) -> tuple[Any, Path, str | None]:
    """The loaded model of registry entry ``key`` (cached), its checkpoint folder and its metrics part."""
    registry = segmenter_registry()
    if key not in registry:
        raise gr.Error(f"Unknown model {key!r}; choose one of: {', '.join(registry)}.")
    entry = registry[key]
    if entry.path is None:
        if not path or not str(path).strip():
            raise gr.Error("Enter the path of a run or checkpoint folder (e.g. runs/move-small or "
                           "runs/perturbgan-encoder), then press Segment.")
        try:  # only inside runs/ and assets/ (or $WORKBENCH_APP_ROOTS): the app may be served on a network
            folder = readable_folder(path, what="The run or checkpoint folder")
        except OutsideRootsError as error:
            raise gr.Error(str(error)) from None
    else:
        folder = entry.path
    if not folder.exists():
        raise gr.Error(f"{folder} does not exist.")
    cache = (key, str(folder.resolve()))
    if cache not in _MODELS:
        try:
            _MODELS[cache] = entry.load(folder)
        except (OSError, ValueError) as error:  # no checkpoint, CheckpointError, a method that does not segment
            raise gr.Error(f"Cannot load a segmenter from {folder}: {error}") from None
        while len(_MODELS) > 3:
            _MODELS.popitem(last=False)
    loaded = _MODELS[cache]
    return loaded, folder, entry.part or metrics_part(loaded)


def _shown(folder: Path) -> str:
    """A checkpoint folder as the user reads it: relative to the repository when inside it."""
    root = Path(__file__).resolve().parents[2]
    try:
        return str(folder.resolve().relative_to(root))
    except ValueError:
        return str(folder)


# callbacks


def load_image(source: str, upload: str | None, photo: str, preset: str, index: float
               ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The chosen image, float32 (H, W, 3) (see :data:`MAX_SIDE`), its true mask (scenes) or None, and a name."""
    if source == "Upload":
        image = read_upload(upload, alternatives="pick a sample photo or a synthetic scene")
        return _fit(image), None, Path(upload).stem
    if source == "Sample photo":
        if photo not in SAMPLE_PHOTOS:
            raise gr.Error(f"Unknown sample photo {photo!r}; choose one of {', '.join(SAMPLE_PHOTOS)}.")
        return _fit(load_sample_photo(photo)), None, photo
    if source == "Synthetic scene":
        if preset not in SCENE_PRESETS:
            raise gr.Error(f"Unknown scene preset {preset!r}; choose one of {', '.join(SCENE_PRESETS)}.")
        index = scene_index(index)
        image, mask = render_scene(index, preset=preset, size=SCENE_SIZE)
        return image, mask, f"{preset}-{index}"
    raise gr.Error(f"Unknown image source {source!r}; choose one of {', '.join(SOURCES)}.")


def segment(source: str, upload: str | None, photo: str, preset: str, index: float, model: str,
            path: str | None = "", threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Segment the chosen image with the chosen model.

    Returns uint8 (H, W, 3) pictures (the image with the mask tinted and the boxes drawn; the soft
    mask in grey), a Markdown summary and the path of the binary mask as a PNG (0 / 255, at the
    image's size). Bad choices raise ``gr.Error`` with what to do.
    """
    finite(threshold=threshold)
    if not 0 < threshold < 1:
        raise gr.Error(f"The threshold must be between 0 and 1, got {threshold!r}.")
    image, truth, name = load_image(source, upload, photo, preset, index)
    loaded, folder, part = _model(model, path)
    soft = segment_image(loaded, image)  # (H, W) in [0, 1]
    binary = soft >= threshold
    largest = mask_to_boxes(binary, mode="largest")  # (0 or 1, 4)
    multi = mask_to_boxes(binary, mode="all")  # (K, 4), largest first
    picture = draw_boxes(draw_boxes(overlay(image, binary), multi[1:], colour=MULTI), largest, colour=LARGEST)
    h, w = image.shape[:2]
    lines = [
        scores_line(folder, kind="segmenter", part=part, name="This model"),
        f"**Model** `{_shown(folder)}` · **image** `{name}`, {w}×{h} px · **mask** {100 * binary.mean():.1f}% of the image at threshold "
        f"{threshold:g} · **boxes** (x0, y0, x1, y1), exclusive ends: largest component "
        + (", ".join(str(tuple(int(v) for v in box)) for box in largest) or "none (empty mask)")
        + f"; {len(multi)} component box(es) covering ≥ 1% of the image (green: the largest, which CorLoc "
        "scores; yellow: the others).",
    ]
    if truth is not None:
        union = (binary | truth).sum()
        lines.append(f"**IoU with this scene's true mask**: {(binary & truth).sum() / union if union else 1.0:.3f}")
    out = Path(tempfile.mkdtemp(prefix="workbench-segment-")) / f"{name}-{model}-mask.png"
    write_mask_png(out, binary.astype(np.float32))
    return _to_uint8(picture), _to_uint8(np.repeat(soft[..., None], 3, axis=2)), "\n\n".join(lines), str(out)


def source_visibility(source: str) -> tuple[Any, Any, Any, Any]:
    """Show only the widgets of the chosen source (upload, photo, preset, index)."""
    return (gr.update(visible=source == "Upload"), gr.update(visible=source == "Sample photo"),
            gr.update(visible=source == "Synthetic scene"), gr.update(visible=source == "Synthetic scene"))


# the tab

DEFAULTS: dict[str, Any] = dict(source="Sample photo", upload=None, photo="coffee", preset="benchmark", index=12,
                                model="layered-post", path="", threshold=0.5)


def build() -> None:
    """Create the widgets and wire the Segment button to :func:`segment` (api_name ``segment``)."""
    d = DEFAULTS
    choices = model_choices()
    keys = [key for _, key in choices]
    gr.Markdown(
        "Run a trained segmenter on your own photo. Upload an image (kept at its resolution up to "
        f"{MAX_SIDE} px on the longer side), or pick a sample photo or a synthetic scene, choose a model and press "
        "**Segment**: the mask is drawn over the image with its boxes, and the binary mask can be downloaded as a "
        "PNG. The line above the pictures says what the model scores on held-out scenes against the baselines: the "
        "shipped models are small CPU runs on synthetic scenes, so expect rough masks on photos."
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            source = gr.Radio(list(SOURCES), value=d["source"], label="Image", elem_id="segment-source")
            upload = gr.Image(type="filepath", label="Upload an image", sources=["upload"], visible=False,
                              elem_id="segment-upload", height=220)
            photo = gr.Dropdown(list(SAMPLE_PHOTOS), value=d["photo"], label="Sample photo")
            preset = gr.Dropdown(list(SCENE_PRESETS), value=d["preset"], label="Scene preset", visible=False)
            index = gr.Number(value=d["index"], precision=0, minimum=0, label="Scene index", visible=False)
            model = gr.Dropdown(choices, value=d["model"] if d["model"] in keys else keys[0], label="Model",
                                elem_id="segment-model")
            path = gr.Textbox(value=d["path"], label="Run or checkpoint folder (for the last model choice)",
                              placeholder="runs/perturbgan-encoder-small", elem_id="segment-path")
            threshold = gr.Slider(0.05, 0.95, value=d["threshold"], step=0.05, label="Mask threshold")
            run = gr.Button("Segment", variant="primary", elem_id="segment-run")
            file = gr.File(label="Binary mask (PNG, the image's size)", interactive=False, elem_id="segment-file")
        with gr.Column(scale=2):
            summary = gr.Markdown("Choose an image and a model, then press **Segment**.", elem_id="segment-summary")
            with gr.Row():
                picture = gr.Image(label="Mask and boxes", format="png", interactive=False, elem_id="segment-overlay",
                                   height=420, buttons=["download"])
                soft = gr.Image(label="Soft mask", format="png", interactive=False, elem_id="segment-soft",
                                height=420, buttons=["download"])

    source.change(source_visibility, inputs=source, outputs=[upload, photo, preset, index], api_visibility="private")
    run.click(segment, inputs=[source, upload, photo, preset, index, model, path, threshold],
              outputs=[picture, soft, summary, file], api_name="segment")
