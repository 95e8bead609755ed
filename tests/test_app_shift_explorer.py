"""The Shift explorer tab's callbacks, called directly (no server), and the tab registry."""

from __future__ import annotations

import cv2
import gradio as gr
import numpy as np
import pytest

from apps.tabs import TAB_MODULES, load_tabs
from apps.tabs import shift_explorer as se
from workbench.data.synthetic import render_layers
from workbench.ops.shift_scene import shift_layers

INDEX, DY, DX, K = 6, 4, 10, 3

# helpers


def _explore(**changes):
    args = {**se.DEFAULTS, "index": INDEX, "dy": DY, "dx": DX, "k": K, **changes}
    return se.explore(**args)


def _u8(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def scene():
    """The default scene's layers, the truly moved scene (uint8) and the moved true mask."""
    layers = render_layers(INDEX, preset="benchmark", size=se.SCENE_SIZE)
    truth = shift_layers(background=layers.background, foreground=layers.foreground, mask=layers.mask, dy=DY, dx=DX)
    shifted = np.zeros_like(layers.mask)
    h, w = shifted.shape
    shifted[DY:, DX:] = layers.mask[: h - DY, : w - DX]
    return layers, _u8(truth), shifted


def _known(scene) -> np.ndarray:
    """Where the truly moved scene is known without the background behind the old object."""
    layers, _, shifted = scene
    return shifted | ~layers.mask


# callbacks


def test_exact_ground_truth_mask_reproduces_the_truly_moved_scene(scene):
    layers, truth, shifted = scene
    mask_view, background, composite, copy_paste, difference, summary = _explore(perturb="exact")
    for view in (mask_view, background, composite, copy_paste, difference):
        assert view.dtype == np.uint8 and view.shape == (se.SCENE_SIZE, se.SCENE_SIZE, 3)
    # where the truth is known (moved object, background away from the old object): identical pixels
    known = _known(scene)
    assert np.array_equal(composite[known], truth[known])
    assert "**0.0000**" in summary
    # away from the old and the new object, x̂_δ and x̂_0 are the same image
    away = ~layers.mask & ~shifted
    assert difference[away].max() == 0
    assert difference[layers.mask | shifted].max() > 50


@pytest.mark.parametrize("perturb", ["dilate", "erode"])
def test_wrong_masks_leave_artifacts(scene, perturb):
    _, truth, _ = scene
    known = _known(scene)
    _, _, composite, _, _, summary = _explore(perturb=perturb)
    wrong = np.abs(composite.astype(int) - truth.astype(int)).max(-1)[known]  # (N,) per-pixel error
    assert (wrong > 12).sum() >= 40, "a k-pixel mask error must change dozens of pixels by > 12/255"
    error = float(summary.split("**Shift error** against the truly moved object: **")[1].split("**")[0])
    assert error > 0.002


def test_eroded_mask_duplicates_the_rim_in_the_copy_paste():
    _, _, _, exact_copy, _, _ = _explore(perturb="exact")
    _, _, _, eroded_copy, _, _ = _explore(perturb="erode")
    # with an exact mask the copy-paste shows the moved object plus the uncovered rest of the old one;
    # with an eroded mask the old object's rim also shows *inside* the moved object's outline
    changed = np.abs(eroded_copy.astype(int) - exact_copy.astype(int)).max(-1) > 12
    assert changed.sum() >= 40


def test_ground_truth_needs_a_synthetic_scene():
    with pytest.raises(gr.Error, match="ground-truth"):
        _explore(source="Sample photo", photo="coffee", mask_source="Ground truth")


def test_sample_photo_with_grabcut():
    mask_view, background, composite, copy_paste, difference, summary = _explore(
        source="Sample photo", photo="coffee", mask_source="GrabCut", perturb="dilate"
    )
    assert composite.shape == (se.MAX_SIDE, se.MAX_SIDE, 3)
    assert difference.max() > 0
    assert "Shift error" not in summary  # no truth for photos


def test_upload_of_an_image_is_read_and_shrunk(tmp_path):
    rng = np.random.default_rng(0)
    photo = (rng.random((300, 520, 3)) * 255).astype(np.uint8)
    path = tmp_path / "scene.png"
    assert cv2.imwrite(str(path), photo)
    image, true_mask = se.load_source("Upload", "benchmark", 0, "coffee", str(path))
    assert image.shape == (148, 256, 3) and true_mask is None
    views = _explore(source="Upload", upload=str(path), mask_source="GrabCut")
    assert views[2].shape == (148, 256, 3)


@pytest.mark.parametrize("content", [b"hello, not an image", b"", b"\x89PNG\r\n\x1a\n truncated"])
def test_non_image_upload_gives_a_clear_message(tmp_path, content):
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    with pytest.raises(gr.Error, match="“notes.png” is not an image that can be read"):
        _explore(source="Upload", upload=str(path), mask_source="GrabCut")


def test_grabcut_on_a_tiny_upload_gives_a_clear_message(tmp_path):
    path = tmp_path / "tiny.png"
    assert cv2.imwrite(str(path), np.full((4, 4, 3), 128, np.uint8))
    with pytest.raises(gr.Error, match="GrabCut cannot run on this 4×4 image"):
        _explore(source="Upload", upload=str(path), mask_source="GrabCut")


def test_a_mask_eroded_away_is_reported():
    *views, summary = _explore(index=12, perturb="erode", k=12)  # scene 12's horse is thinner than 24 px
    assert "**mask** 0 px" in summary and "The mask is empty" in summary
    assert views[4].max() == 0  # nothing moved: no difference


def test_missing_upload_and_missing_strokes_give_clear_messages():
    with pytest.raises(gr.Error, match="Upload an image first"):
        _explore(source="Upload", upload=None, mask_source="GrabCut")
    with pytest.raises(gr.Error, match="Paint over the object"):
        _explore(mask_source="Brush", brush=None)
    empty = se.editor_value("Synthetic scene", "benchmark", INDEX, "coffee", None)
    with pytest.raises(gr.Error, match="Paint over the object"):
        _explore(mask_source="Brush", brush=empty)


def test_brush_strokes_become_the_mask():
    size = se.SCENE_SIZE
    editor = se.editor_value("Synthetic scene", "benchmark", INDEX, "coffee", None)
    assert editor["background"].shape == (size, size, 3) and editor["layers"] == []
    layer = np.zeros((2 * size, 2 * size, 4), np.uint8)  # the browser may send a larger canvas
    layer[40:120, 60:140] = (255, 48, 48, 255)
    editor["layers"] = [layer]
    mask_view, *_, summary = _explore(mask_source="Brush", brush=editor, perturb="exact")
    assert f"**mask** {40 * 40} px" in summary  # (80 x 80) canvas px = (40 x 40) image px


def test_bad_scene_choices_give_clear_messages():
    with pytest.raises(gr.Error, match="preset"):
        _explore(preset="impossible")
    with pytest.raises(gr.Error, match="whole number"):
        _explore(index=-1)


def test_source_visibility():
    updates = se.source_visibility("Sample photo")
    assert [u["visible"] for u in updates] == [False, False, True, False]


# registry and app


def test_tab_registry():
    tabs = load_tabs()
    assert [t.__name__ for t in tabs] == TAB_MODULES
    assert tabs[0].TITLE == "Shift explorer"
    with pytest.raises(TypeError, match="TITLE"):
        load_tabs(["apps.workbench_app"])  # a module that is not a tab


def test_app_has_the_shift_explorer_endpoint_and_refuses_share_links():
    from apps.workbench_app import build_app, launch

    demo = build_app()
    names = [fn.api_name for fn in demo.fns.values()]
    assert "shift_explorer" in names
    assert demo.analytics_enabled is False
    with pytest.raises(ValueError, match="share"):
        launch(share=True)
