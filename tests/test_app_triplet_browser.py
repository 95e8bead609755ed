"""The Triplet browser tab (figure 3.3): its callbacks called directly, the tab in gr.Blocks, its endpoints.

The tests train their own PerturbGAN (the smoke preset, 2 steps), since the shipped
``assets/perturbgan-small`` may not exist yet; every picture is checked against
:meth:`PerturbGAN.generate`, which the tab only lays out.
"""

from __future__ import annotations

import socket

import gradio as gr
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from apps.tabs import triplet_browser as tb
from workbench.methods.perturbgan import PRESETS, PerturbGAN
from workbench.train.trainer import Trainer

from train_helpers import smoke_perturbgan_run

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
RESOLUTION = PRESETS["smoke"].resolution  # 16 px
SCALE = tb.CELL // RESOLUTION  # 8: each model pixel is an 8 x 8 block
SIDE = SCALE * RESOLUTION  # 128 px per picture

# helpers


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A PerturbGAN run folder: the smoke preset trained for 2 steps (checkpoints/step-0000002)."""
    return smoke_perturbgan_run(tmp_path_factory.mktemp("perturbgan"))


def _browse(run, **changes):
    args = {**tb.DEFAULTS, "choice": tb.FROM_PATH, "path": str(run), **changes}
    return tb.browse(**args)


def _cell(image: np.ndarray, row: int, column: int) -> np.ndarray:
    """The picture at (row, column) of a labelled grid: uint8 (SIDE, SIDE, 3)."""
    top, left = tb.HEADER + row * (SIDE + tb.PAD), tb.LABEL_WIDTH + column * (SIDE + tb.PAD)
    return image[top: top + SIDE, left: left + SIDE]


def _row(key: str) -> int:
    return [k for k, _ in tb.ROWS].index(key)


def _expected(tensor: torch.Tensor) -> np.ndarray:
    """One generated (1, C, R, R) picture in [0, 1] as the tab should show it: upscaled, grey masks, uint8."""
    big = F.interpolate(tensor.expand(-1, 3, -1, -1), scale_factor=SCALE, mode="nearest")[0]  # (3, SIDE, SIDE)
    return np.round(big.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


# rendering


@pytest.mark.parametrize("seeds", [1, 3])
def test_the_figure_has_one_column_per_seed_and_five_rows(run, seeds):
    image, summary = _browse(run, seed=5, seeds=seeds)
    assert image.dtype == np.uint8
    assert image.shape == (tb.HEADER + 5 * SIDE + 4 * tb.PAD, tb.LABEL_WIDTH + seeds * SIDE + (seeds - 1) * tb.PAD, 3)
    method = tb.load_perturbgan(run)
    for column in range(seeds):  # the tab lays out what generate() paints, seed by seed
        out = method.generate(1, seed=5 + column)
        for key, _ in tb.ROWS:
            assert np.array_equal(_cell(image, _row(key), column), _expected(out[key])), (key, column)
    assert image[: tb.HEADER, tb.LABEL_WIDTH:].min() < 128  # seed numbers written on top
    assert image[tb.HEADER:, : tb.LABEL_WIDTH].min() < 128  # row labels on the left
    assert f"**Seeds** 5…{4 + seeds}" in summary and "16×16 px (shown ×8)" in summary and "step 2" in summary


def test_a_seed_gives_the_same_column_whatever_its_neighbours(run):
    one, _ = _browse(run, seed=1, seeds=1)
    three, _ = _browse(run, seed=0, seeds=3)
    for row in range(5):
        assert np.array_equal(_cell(one, row, 0), _cell(three, row, 1))
    assert not np.array_equal(_cell(three, 0, 0), _cell(three, 0, 1))  # different seeds, different scenes


def test_shifting_moves_the_foreground_in_the_composite_but_not_the_background(run):
    still, _ = _browse(run, seeds=2)
    moved, summary = _browse(run, seeds=2, dy=2, dx=-3)
    for column in range(2):
        for key in ("background", "foreground", "mask", "masked"):  # the layers themselves do not move
            assert np.array_equal(_cell(moved, _row(key), column), _cell(still, _row(key), column))
        composite = _cell(moved, _row("composite"), column)
        assert np.abs(composite.astype(int) - _cell(still, _row("composite"), column).astype(int)).max() > 20
        out = tb.load_perturbgan(run).generate(1, seed=column, offset=torch.tensor([2, -3]))
        assert np.array_equal(composite, _expected(out["composite"]))  # eq. (3.2) as PerturbGAN computes it
    assert "shift (dy, dx) = (2, -3) px" in summary


def test_shifts_beyond_a_quarter_of_the_resolution_are_clipped(run):
    limit = RESOLUTION // 4
    clipped, summary = _browse(run, dy=100, dx=-100)
    at_limit, _ = _browse(run, dy=limit, dx=-limit)
    assert np.array_equal(clipped, at_limit)
    assert f"clipped to ±{limit} px" in summary
    dy, dx = tb.checkpoint_changed(tb.FROM_PATH, str(run), 100, 1)  # the sliders follow the model
    assert (dy["minimum"], dy["maximum"], dy["value"]) == (-limit, limit, limit) and dx["value"] == 1


def test_contrast_jitter_and_truncation_change_what_they_should(run):
    plain, _ = _browse(run)
    jittered, summary = _browse(run, jitter=1.3)
    background, mask = _row("background"), _row("mask")
    assert np.abs(_cell(jittered, background, 0).astype(int) - _cell(plain, background, 0).astype(int)).max() > 5
    assert np.array_equal(_cell(jittered, mask, 0), _cell(plain, mask, 0))
    assert "background contrast ×1.3" in summary
    truncated, _ = _browse(run, truncation=0.0)  # ψ = 0: every seed gets the mean style
    assert np.array_equal(_cell(truncated, background, 0), _cell(truncated, background, 1))
    assert not np.array_equal(_cell(plain, background, 0), _cell(plain, background, 1))


# checkpoints


def test_loaded_methods_are_cached_by_checkpoint_folder(run):
    method = tb.load_perturbgan(run)
    assert isinstance(method, PerturbGAN) and method.step == 2
    assert tb.load_perturbgan(run / "checkpoints" / "step-0000002") is method  # run folder or checkpoint folder
    assert len(tb._METHODS) <= tb.CACHE_SIZE


def test_a_bad_path_gives_a_clear_message(run, tmp_path):
    missing = tmp_path / "no-such-run"
    with pytest.warns(UserWarning, match="does not exist"):  # gr.Warning outside an event
        image, summary = _browse(run, path=str(missing))
    assert image is None and summary == f"**No PerturbGAN here.** {missing} does not exist."
    with pytest.warns(UserWarning, match="no checkpoint at"):
        image, summary = _browse(run, path=str(tmp_path))  # a folder, but no checkpoint in it
    assert image is None and "expected a checkpoint folder" in summary
    with pytest.warns(UserWarning, match="Enter the path"):
        assert _browse(run, path="  ")[0] is None
    assert tb.checkpoint_changed(tb.FROM_PATH, str(missing), 3, 3) == (gr.skip(), gr.skip())  # sliders kept


def test_a_checkpoint_of_another_method_is_refused(tmp_path):
    from train_helpers import Toy, ToyConfig

    Trainer(Toy(ToyConfig(steps=1)), out_dir=tmp_path, progress=False, tensorboard=False).fit()
    with pytest.warns(UserWarning, match="checkpoint of method 'toy', not 'perturbgan'"):
        image, summary = tb.browse(tb.FROM_PATH, str(tmp_path), 0, 2, 1.0, 0, 0, 1.0)
    assert image is None and summary.startswith("**No PerturbGAN here.**")


def test_the_shipped_checkpoint_or_a_clear_note_that_it_is_missing():
    if tb.SHIPPED_PERTURBGAN.exists():
        image, summary = tb.browse(**tb.DEFAULTS)
        assert image is not None and "**Checkpoint** `assets/perturbgan-small" in summary
    else:
        with pytest.warns(UserWarning, match="No shipped PerturbGAN checkpoint yet"):
            image, summary = tb.browse(**tb.DEFAULTS)
        assert image is None and "assets/perturbgan-small does not exist" in summary


@pytest.mark.parametrize("change, message", [({"seeds": 0}, "number of seeds"), ({"seeds": 9}, "number of seeds"),
                                             ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"),
                                             ({"truncation": 1.5}, "truncation"), ({"jitter": 2.0}, "contrast")])
def test_bad_settings_give_clear_errors(run, change, message):
    with pytest.raises(gr.Error, match=message):
        _browse(run, **change)


# export


def test_the_png_export_writes_the_figure(run, tmp_path):
    image, _ = _browse(run, seeds=3, dx=2)
    file = tb.export_png(**{**tb.DEFAULTS, "choice": tb.FROM_PATH, "path": str(run), "seeds": 3, "dx": 2})
    assert file.endswith(".png") and "seeds0-2" in file
    with Image.open(file) as png:
        assert png.format == "PNG"
        assert np.array_equal(np.asarray(png.convert("RGB")), image)
    with pytest.warns(UserWarning, match="Nothing to export"):
        assert tb.export_png(tb.FROM_PATH, str(tmp_path / "absent"), 0, 1, 1.0, 0, 0, 1.0) is None


# the tab and its endpoints


def _blocks() -> gr.Blocks:
    with gr.Blocks(analytics_enabled=False) as demo:
        with gr.Tab(tb.TITLE):
            tb.build()
    return demo


def test_the_tab_builds_with_its_endpoints():
    demo = _blocks()
    assert tb.TITLE == "Triplet browser"
    (render,) = [fn for fn in demo.fns.values() if fn.api_name == "triplet_browser"]
    assert len(render.inputs) == len(tb.DEFAULTS) and len(render.outputs) == 2
    (export,) = [fn for fn in demo.fns.values() if fn.api_name == "triplet_browser_png"]
    assert len(export.inputs) == len(tb.DEFAULTS) and isinstance(export.outputs[0], gr.File)
    (summary,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "triplet-summary"]
    if not tb.SHIPPED_PERTURBGAN.exists():
        assert "No shipped PerturbGAN checkpoint yet" in summary.value


def test_client_calls_the_triplet_browser_endpoints(run):
    from gradio_client import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = _blocks()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        ssr_mode=False)
    try:
        client = Client(demo.local_url, verbose=False)
        args = {**tb.DEFAULTS, "choice": tb.FROM_PATH, "path": str(run), "seeds": 2, "dy": 1}
        figure, summary = client.predict(*args.values(), api_name="/triplet_browser")
        with Image.open(figure) as png:
            shown = np.asarray(png.convert("RGB"))
        assert np.array_equal(shown, _browse(run, seeds=2, dy=1)[0])
        assert "shift (dy, dx) = (1, 0) px" in summary
        exported = client.predict(*args.values(), api_name="/triplet_browser_png")
        with Image.open(exported) as png:
            assert np.array_equal(np.asarray(png.convert("RGB")), shown)
    finally:
        demo.close()


def test_the_shipped_checkpoint_loads_and_matches_its_recorded_config():
    import json

    if not tb.SHIPPED_PERTURBGAN.is_dir():
        pytest.skip("assets/perturbgan-small is not in this checkout")
    method = tb.load_perturbgan(tb.SHIPPED_PERTURBGAN, device="cpu")
    config = json.loads((tb.SHIPPED_PERTURBGAN / "config.json").read_text())["config"]
    assert method.config.resolution == config["resolution"] == 32 and method.step == 3000
    out = method.generate(4, seed=0)
    area = (out["mask"] >= 0.5).float().mean().item()
    assert 0.05 < area < 0.6  # a trained mask: neither empty nor the whole image
