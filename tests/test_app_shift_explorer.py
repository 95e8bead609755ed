"""The Shift explorer tab's callbacks, called directly (no server), and the tab registry.

The MOVE part uses the shipped checkpoint (``assets/move-small``), as the app does on first launch.
"""

from __future__ import annotations

import json
import re

import cv2
import gradio as gr
import numpy as np
import pytest
import torch

from apps.tabs import TAB_MODULES, load_tabs
from apps.tabs import shift_explorer as se
from workbench.data.synthetic import overlay, render_layers
from workbench.methods.move_assets import SHIPPED_MOVE
from workbench.ops.shift_scene import shift_layers

INDEX, DY, DX, K = 6, 4, 10, 3

# helpers


def _explore(**changes):
    args = {**se.DEFAULTS, "index": INDEX, "dy": DY, "dx": DX, "k": K, **changes}
    return se.explore(**args)


def _move(**changes):
    args = {**se.DEFAULTS, "index": INDEX, "dy": DY, "dx": DX, "k": K, **changes}
    args.pop("radius")  # Telea's option
    return se.move_explore(**args)


def _score(summary: str) -> float:
    """D(x̂_δ) as the MOVE summary prints it."""
    return float(re.search(r"\*\*D\(x̂_δ\) = ([+-][0-9.]+)\*\*", summary).group(1))


def _brush(size: int = se.SCENE_SIZE) -> dict:
    editor = se.editor_value("Synthetic scene", "benchmark", INDEX, "coffee", None)
    layer = np.zeros((size, size, 4), np.uint8)
    layer[40:80, 30:90] = (255, 48, 48, 255)
    editor["layers"] = [layer]
    return editor


@pytest.fixture(autouse=True)
def shipped_move(monkeypatch):
    """Every test sees the shipped MOVE checkpoint, whatever the caller's environment says."""
    monkeypatch.delenv(se.CHECKPOINT_ENV, raising=False)


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


# MOVE (chapter 5): the shipped checkpoint, its mask, its MAE inpainting and its discriminator


def test_the_shipped_checkpoint_is_small_and_its_scores_are_true():
    from workbench.data import build_dataset
    from workbench.methods.move_explore import predict_mask

    files = [p for p in SHIPPED_MOVE.rglob("*") if p.is_file()]
    assert {"README.md", "metrics.json", "config.json", "modules.safetensors"} <= {p.name for p in files}
    assert sum(p.stat().st_size for p in files) < 12 * 2**20  # a few MB
    metrics = json.loads((SHIPPED_MOVE / "metrics.json").read_text())
    assert metrics["dataset"] == "synthetic:movable" and metrics["images"] == 500  # MOVE small's scenes (issue 19)
    assert 0 < metrics["iou"] < 1 and f"{metrics['iou']:.3f}" in (SHIPPED_MOVE / "README.md").read_text()
    # the recorded app-path IoU, recomputed: the same scenes, the same masks
    test = build_dataset(metrics["dataset"], size=se.SCENE_SIZE, split="test", n=100, seed=metrics["seed"])
    method = se._move_method()
    ious = []
    for item in (test[i] for i in range(len(test))):
        pred, truth = predict_mask(method, item["image"].permute(1, 2, 0).numpy()) > 0.5, item["mask"][0].numpy() > 0.5
        ious.append((pred & truth).sum() / max((pred | truth).sum(), 1))
    assert abs(np.mean(ious) - metrics["app_iou_128px_first_100"]) < 1e-4


def test_move_mask_source_is_moves_prediction():
    from workbench.methods.move_explore import predict_mask

    image, truth = se.load_source("Synthetic scene", "benchmark", INDEX, "coffee", None)
    predicted = predict_mask(se._move_method(), image) > 0.5
    assert 0 < predicted.mean() < 1
    mask_view, *_, summary = _explore(mask_source="MOVE", perturb="exact")
    assert f"**mask** {int(predicted.sum())} px" in summary
    iou = (predicted & truth).sum() / (predicted | truth).sum()
    assert f"**IoU** of this mask with the ground truth: {iou:.3f}" in summary
    assert np.array_equal(mask_view, _u8(overlay(image, predicted)))
    *_, dilated = _explore(mask_source="MOVE", perturb="dilate")  # MOVE's mask is perturbed like the others
    assert f"**mask** {int(predicted.sum())} px" not in dilated


@pytest.mark.parametrize("mask_source", ["Ground truth", "GrabCut", "MOVE", "Brush"])
def test_every_mask_source_goes_through_move(mask_source):
    background, composite, plot, summary = _move(mask_source=mask_source, brush=_brush())
    for view in (background, composite):
        assert view.dtype == np.uint8 and view.shape == (se.SCENE_SIZE, se.SCENE_SIZE, 3)
    assert np.abs(background.astype(int) - composite.astype(int)).max() > 30  # the object moved in
    labels = [line.get_label() for line in plot.axes[0].get_lines()]
    assert "along dx (dy = 4)" in labels and "along dy (dx = 10)" in labels
    assert "**D(x̂_δ) = " in summary and "Pictures: MAE of the MOVE checkpoint" in summary


def test_the_discriminator_score_changes_with_the_shift():
    assert _score(_move(dx=0)[3]) != _score(_move(dx=-40)[3])
    _, _, plot, summary = _move(dx=12)
    along_dx = next(line for line in plot.axes[0].get_lines() if line.get_label().startswith("along dx"))
    shifts, values = along_dx.get_data()
    assert len(shifts) == se.CURVE_POINTS and np.ptp(values) > 0.02  # D's score moves with the shift
    assert np.isclose(values[list(shifts).index(12.0)], _score(summary), atol=6e-4)  # the curve meets the dot
    assert list(shifts) == sorted(shifts) and shifts[0] == -se.MAX_SHIFT and shifts[-1] == se.MAX_SHIFT


def test_mae_and_telea_fill_the_hole_differently(scene):
    layers, _, shifted = scene
    _, telea, *_ = _explore(perturb="exact")
    mae, *_ = _move(perturb="exact")
    image = _u8(se.load_source("Synthetic scene", "benchmark", INDEX, "coffee", None)[0]).astype(int)
    near = cv2.dilate((layers.mask | shifted).astype(np.uint8), np.ones((33, 33), np.uint8)) > 0  # 2 MAE patches
    assert np.abs(mae.astype(int) - image)[~near].mean() < 12  # away from the hole: the image (resized)
    assert np.abs(mae.astype(int) - image)[layers.mask].mean() > 30  # in the hole: the object is gone
    assert np.abs(mae.astype(int) - telea.astype(int))[layers.mask].mean() > 5  # two different fills


def test_an_official_mae_found_in_the_weights_folder_joins_the_inpainters(tmp_path, monkeypatch):
    from workbench.nets.mae import build_mae

    torch.manual_seed(0)
    torch.save({"model": build_mae("mae_tiny").state_dict()}, tmp_path / "tiny_mae.pth")
    label = "Official MAE (a tiny stand-in)"
    monkeypatch.setattr(se, "OFFICIAL_MAES", {label: ("tiny_mae.pth", "mae_tiny", 64, "gan"),
                                              "Official MAE (absent)": ("absent.pth", "mae_tiny", 64, "gan")})
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(tmp_path))
    assert se.inpainter_choices() == [se.OWN_MAE, label]
    own, *_, own_summary = _move()
    other, _, _, summary = _move(inpainter=label)
    assert f"Pictures: {label}" in summary and other.shape == own.shape
    assert np.abs(other.astype(int) - own.astype(int)).mean() > 5  # a random MAE paints something else
    assert _score(summary) == _score(own_summary)  # D always scores the checkpoint's own composite
    with pytest.raises(gr.Error, match="absent.pth is not in"):
        _move(inpainter="Official MAE (absent)")
    with pytest.raises(gr.Error, match="Unknown inpainter"):
        _move(inpainter="Telea")


def test_a_missing_move_checkpoint_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv(se.CHECKPOINT_ENV, str(tmp_path / "no-such-run"))
    assert _move() == (None, None, None, f"**No MOVE here.** The MOVE checkpoint cannot be loaded: no MOVE "
                                         f"checkpoint at {tmp_path / 'no-such-run'}.")
    with pytest.raises(gr.Error, match="cannot be loaded"):
        _explore(mask_source="MOVE")
    *_, summary = _explore(mask_source="GrabCut")  # the rest of the tab works without MOVE
    assert "Shift error" in summary


def test_ground_truth_on_a_photo_falls_back_to_grabcut():
    *views, summary = _explore(source="Sample photo", photo="coffee", mask_source="Ground truth")
    *grabcut_views, _ = _explore(source="Sample photo", photo="coffee", mask_source="GrabCut")
    assert "the mask is GrabCut's" in summary and "Error" not in summary
    assert all(np.array_equal(a, b) for a, b in zip(views, grabcut_views))
    background, composite, plot, move_summary = _move(source="Sample photo", photo="coffee",
                                                      mask_source="Ground truth")
    assert composite.shape == (se.MAX_SIDE, se.MAX_SIDE, 3) and "**D(x̂_δ) = " in move_summary
    assert se.mask_for_image("Sample photo", "Ground truth")["value"] == "GrabCut"  # the radio follows
    assert se.mask_for_image("Synthetic scene", "Ground truth") is not None


def test_the_move_panel_states_its_held_out_scores():
    *_, summary = _move()
    first = summary.split("\n\n")[0]
    assert "held-out" in first and "GrabCut 0.651" in first and "It segments, below GrabCut" in first  # the shipped one
    assert se.move_segments() is True


def test_the_error_map_separates_right_and_wrong_masks():
    exact, caption = se.error_view(**{**se.DEFAULTS, "index": INDEX, "dy": DY, "dx": DX, "k": K})
    eroded, eroded_caption = se.error_view(**{**se.DEFAULTS, "index": INDEX, "dy": DY, "dx": DX, "k": K,
                                              "perturb": "erode"})
    blue = np.all(exact == np.array([140, 166, 217]), axis=2)  # not compared
    assert exact[~blue].max() == 0 and "**0.0000**" in caption
    assert eroded[~blue].max() > 100 and "**0.0000**" not in eroded_caption
    picture, note = se.error_view(**{**se.DEFAULTS, "source": "Sample photo", "mask_source": "GrabCut"})
    assert picture is None and "only synthetic scenes" in note


def test_the_score_plot_legend_rounds_the_shift():
    assert se._px(2.671875) == "2.7" and se._px(4.0) == "4" and se._px(-3.25) == "-3.2"


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
    assert _explore(source="Upload", upload=None, mask_source="GrabCut") == (None,) * 5 + (se.UPLOAD_FIRST,)
    assert _move(source="Upload", upload=None) == (None, None, None, se.UPLOAD_FIRST)  # no stale MOVE pictures
    with pytest.raises(gr.Error, match="Upload an image first"):
        se.load_source("Upload", "benchmark", 0, "coffee", None)
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
    assert "shift_explorer" in names and "move_explorer" in names
    assert demo.analytics_enabled is False
    with pytest.raises(ValueError, match="share"):
        launch(share=True)


def test_client_calls_the_move_explorer_endpoint():
    import socket

    from gradio_client import Client

    from apps.workbench_app import launch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = launch(host="127.0.0.1", port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        args = {**se.DEFAULTS, "index": INDEX, "dy": DY, "dx": DX, "k": K}
        args.pop("radius")
        background, composite, plot, summary = client.predict(*args.values(), se.OWN_MAE, api_name="/move_explorer")
        images = [cv2.imread(path, cv2.IMREAD_COLOR) for path in (background, composite)]
        assert all(image.shape == (se.SCENE_SIZE, se.SCENE_SIZE, 3) for image in images)
        assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/png;base64,")
        assert _score(summary) == _score(_move()[3])
        *_, telea_summary = client.predict(*args.values(), 3, api_name="/shift_explorer")  # Telea still answers
        assert "**0.0000**" in telea_summary
    finally:
        demo.close()


def test_the_released_official_move_is_a_mask_source_when_its_checkpoint_is_there(tmp_path, monkeypatch):
    import argparse

    from test_move_official import FIXTURES, official_state  # a checkpoint built from the official key list
    from workbench.eval.segmenters import OFFICIAL_MOVE_ENV
    from workbench.methods.move_official import load_official_move

    if not (FIXTURES / "model_state_dict_keys.json").is_file():
        pytest.skip(f"the official MOVE fixtures are not in {FIXTURES}")
    path = tmp_path / "checkpoint-0.pth"
    monkeypatch.setenv(OFFICIAL_MOVE_ENV, str(path))
    assert se.OFFICIAL_MOVE not in se.mask_choices() and str(path) in se.official_move_note()  # absent: said why
    with pytest.raises(gr.Error, match="not at"):
        _explore(mask_source=se.OFFICIAL_MOVE)
    args = argparse.Namespace(feature_extractor="dino_vits8", extractor_block_layer=-2, segmenter_head="conv_minc128")
    torch.save({"args": args, "epoch": 0, "model": official_state("ckpt_model_epoch0")}, path)  # DINO inside
    assert se.mask_choices() == ["Ground truth", "GrabCut", "MOVE", se.OFFICIAL_MOVE, "Brush"]
    image, _ = se.load_source("Synthetic scene", "benchmark", INDEX, "coffee", None)
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    expected = load_official_move(path).predict(x)[0, 0].numpy() > 0.5  # the same model in Python, at 448 px
    assert 0 < expected.mean() < 1
    mask_view, *_, summary = _explore(mask_source=se.OFFICIAL_MOVE)
    assert f"**mask** {int(expected.sum())} px" in summary
    assert np.array_equal(mask_view, _u8(overlay(image, expected)))
    background, composite, _, move_summary = _move(mask_source=se.OFFICIAL_MOVE)  # the MAE panel takes it too
    assert background.shape == composite.shape == (se.SCENE_SIZE, se.SCENE_SIZE, 3) and "**D(x̂_δ) = " in move_summary
    path.write_bytes(b"not a checkpoint")  # replaced by a damaged file: refused with a message, never unpickled
    with pytest.raises(gr.Error, match="cannot be loaded"):
        _explore(mask_source=se.OFFICIAL_MOVE)
