"""The Segment tab's callbacks, called directly, and the segmenter registry behind them."""

from __future__ import annotations

import cv2
import gradio as gr
import numpy as np
import pytest

from apps.tabs import segment as sg
from workbench.eval.boxes import mask_to_boxes
from workbench.eval.segmenters import load_segmenter_path, segment_image, segmenter_registry


def _segment(**changes):
    return sg.segment(**{**sg.DEFAULTS, **changes})


def test_the_registry_lists_the_shipped_segmenters_and_a_path_entry():
    registry = segmenter_registry()
    assert {"move-small", "layered-post", "layered-joint", "path"} <= set(registry)
    assert registry["path"].path is None and registry["path"].available
    assert [key for _, key in sg.model_choices()][-1] == "path"
    listed = [key for _, key in sg.model_choices()]
    assert ("perturbgan-encoder" in listed) == registry["perturbgan-encoder"].path.exists()  # listed once trained


def test_the_official_move_is_listed_when_its_checkpoint_is_there(tmp_path, monkeypatch):
    from workbench.eval.segmenters import OFFICIAL_MOVE_ENV

    monkeypatch.setenv(OFFICIAL_MOVE_ENV, str(tmp_path / "checkpoint-9.pth"))
    assert "move-official" not in [key for _, key in sg.model_choices()]
    (tmp_path / "checkpoint-9.pth").write_bytes(b"not a checkpoint")
    assert "move-official" in [key for _, key in sg.model_choices()]
    with pytest.raises(gr.Error, match="Cannot load a segmenter"):  # read safely, refused with a message
        _segment(model="move-official")


@pytest.mark.parametrize("model", ["layered-post", "layered-joint", "move-small"])
def test_a_sample_photo_is_segmented_at_its_resolution_with_boxes_and_a_png(model):
    picture, soft, summary, png = _segment(model=model)
    assert picture.shape == (400, 600, 3) and soft.shape == (400, 600, 3)  # coffee.png, under MAX_SIDE
    written = cv2.imread(png, cv2.IMREAD_UNCHANGED)
    assert written.shape == (400, 600) and set(np.unique(written)) <= {0, 255}
    model_obj = sg._MODELS[next(k for k in sg._MODELS if k[0] == model)]
    expected = segment_image(model_obj, sg.load_image("Sample photo", None, "coffee", "benchmark", 0)[0]) >= 0.5
    assert np.array_equal(written == 255, expected)
    assert "held-out" in summary.split("\n\n")[0] and "largest component" in summary
    box = mask_to_boxes(expected, mode="largest")
    if len(box):
        assert str(tuple(int(v) for v in box[0])) in summary
    if model == "move-small":
        assert "It segments, below GrabCut" in summary  # the shipped MOVE's numbers say so (issue 19)


def test_an_upload_keeps_its_resolution_up_to_the_limit(tmp_path):
    rng = np.random.default_rng(0)
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    cv2.imwrite(str(small), (rng.random((300, 520, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(large), (rng.random((600, 2048, 3)) * 255).astype(np.uint8))
    assert sg.load_image("Upload", str(small), "coffee", "benchmark", 0)[0].shape == (300, 520, 3)
    assert sg.load_image("Upload", str(large), "coffee", "benchmark", 0)[0].shape == (300, sg.MAX_SIDE, 3)
    picture, _, _, png = _segment(source="Upload", upload=str(small), model="layered-post")
    assert picture.shape == (300, 520, 3) and cv2.imread(png, cv2.IMREAD_UNCHANGED).shape == (300, 520)


def test_a_synthetic_scene_reports_its_iou_with_the_truth():
    _, _, summary, _ = _segment(source="Synthetic scene", index=3, model="layered-post")
    assert "**IoU with this scene's true mask**" in summary


def test_bad_choices_give_clear_messages(tmp_path, monkeypatch):
    from apps.safety import ROOTS_ENV

    with pytest.raises(gr.Error, match="must be a folder inside"):  # outside runs/ and assets/
        _segment(model="path", path=str(tmp_path))
    monkeypatch.setenv(ROOTS_ENV, str(tmp_path))
    with pytest.raises(gr.Error, match="Upload an image first"):
        _segment(source="Upload", upload=None)
    (tmp_path / "notes.png").write_text("not pixels")
    with pytest.raises(gr.Error, match="is not an image that can be read"):
        _segment(source="Upload", upload=str(tmp_path / "notes.png"))
    with pytest.raises(gr.Error, match="Enter the path"):
        _segment(model="path", path="")
    with pytest.raises(gr.Error, match="does not exist"):
        _segment(model="path", path=str(tmp_path / "nothing"))
    with pytest.raises(gr.Error, match="Cannot load a segmenter"):
        _segment(model="path", path=str(tmp_path))
    with pytest.raises(gr.Error, match="threshold"):
        _segment(threshold=1.5)
    with pytest.raises(gr.Error, match="threshold must be a finite number"):
        _segment(threshold=float("nan"))


def test_a_run_folder_of_a_segmenting_method_loads_and_a_generator_is_refused():
    from apps.tabs.triplet_browser import SHIPPED_PERTURBGAN

    _, _, summary, _ = _segment(model="path", path=str(sg.segmenter_registry()["layered-post"].path))
    assert "IoU 0.350" in summary  # its metrics.json is found above the checkpoint (the issue-16 asset)
    with pytest.raises(ValueError, match="does not segment"):
        load_segmenter_path(SHIPPED_PERTURBGAN)


def test_a_perturbgan_encoder_run_segments_through_the_path_entry(tmp_path, monkeypatch):
    from apps.safety import ROOTS_ENV

    monkeypatch.setenv(ROOTS_ENV, str(tmp_path))
    from dataclasses import replace

    import torch

    from train_helpers import smoke_perturbgan_run
    from workbench.methods.perturbgan_encoder import PRESETS, PerturbEncoder
    from workbench.train.trainer import Trainer

    gan_run = smoke_perturbgan_run(tmp_path / "gan")
    torch.manual_seed(0)
    encoder = PerturbEncoder(replace(PRESETS["smoke"], gan=str(gan_run)))
    Trainer(encoder, out_dir=tmp_path / "enc", progress=False, tensorboard=False).fit()
    picture, soft, summary, png = _segment(model="path", path=str(tmp_path / "enc"))
    image = sg.load_image("Sample photo", None, "coffee", "benchmark", 0)[0]
    expected = encoder.segment(torch.from_numpy(image).permute(2, 0, 1)[None])[0, 0].numpy()  # (H, W)
    assert soft.shape == (*image.shape[:2], 3)
    assert np.abs(soft[..., 0].astype(int) - np.round(np.clip(expected, 0, 1) * 255)).max() <= 1
    assert "no held-out scores stored" in summary  # a fresh run has no metrics.json
