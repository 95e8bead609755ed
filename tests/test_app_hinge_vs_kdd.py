"""The Hinge vs KDD tab (figure 6.1): the callback called directly, the tab in gr.Blocks, its gradio_client endpoint.

Eq. (6.11): under the hinge loss every fake point gets the same update w; eq. (6.12): under KDD
the updates differ from point to point. The tests read the arrows back from the plotly figures.
"""

from __future__ import annotations

import json
import socket

import gradio as gr
import pytest
import torch

from apps.tabs import hinge_vs_kdd as hk
from workbench.methods import kdd_2d

FAST = {**hk.DEFAULTS, "n": 120, "steps": 30}  # small clouds, few steps: fast and still telling
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

# helpers


def _traces(figure, loss: str, role: str) -> list:
    return [t for t in figure.data if isinstance(t.meta, dict) and t.meta == {"loss": loss, "role": role}]


def _arrows(figure, loss: str) -> torch.Tensor:
    """The arrows of a panel as (A, 2) vectors, read from the shafts trace (x0, x1, None, ...)."""
    (shafts,) = _traces(figure, loss, "arrows")
    xs = torch.tensor([v for v in shafts.x if v is not None]).view(-1, 2)  # (A, 2): start, tip
    ys = torch.tensor([v for v in shafts.y if v is not None]).view(-1, 2)
    return torch.stack([xs[:, 1] - xs[:, 0], ys[:, 1] - ys[:, 0]], dim=1)  # (A, 2)


def _final(figure, loss: str) -> torch.Tensor:
    (final,) = _traces(figure, loss, "final")
    return torch.tensor([list(final.x), list(final.y)]).T  # (N, 2)


@pytest.fixture(scope="module")
def fast():
    return hk.compare(**FAST)


# the callback


def test_compare_draws_arrows_for_both_losses(fast):
    field, paths, numbers, summary = fast
    for loss in ("hinge", "kdd"):
        arrows = _arrows(field, loss)
        assert arrows.shape == (min(hk.ARROWS, FAST["n"]), 2)
        assert arrows.norm(dim=1).max() == pytest.approx(hk.ARROW_LENGTH, rel=1e-5)  # scaled to the longest
        (heads,) = _traces(field, loss, "arrowheads")
        assert len(heads.x) == len(arrows)
    assert "eq. 6.11" in summary and "eq. 6.12" in summary


def test_hinge_arrows_are_identical_and_kdd_arrows_differ(fast):
    field, *_ = fast
    hinge, kdd = _arrows(field, "hinge"), _arrows(field, "kdd")
    assert torch.allclose(hinge, hinge[0].expand_as(hinge), atol=1e-6)  # eq. (6.11): the same w everywhere
    _, _, _, classifier = hk.clouds(FAST["k"], FAST["fake_shape"], FAST["n"])
    w = classifier.w / classifier.w.norm()
    assert torch.allclose(hinge[0] / hinge[0].norm(), w, atol=1e-5)
    directions = kdd / kdd.norm(dim=1, keepdim=True)  # (A, 2)
    assert (directions - directions.mean(dim=0)).norm(dim=1).max() > 0.2, "KDD arrows must point different ways"
    assert kdd.norm(dim=1).min() < 0.95 * hk.ARROW_LENGTH  # and have different lengths


def test_hinge_translates_the_cloud_and_kdd_reshapes_it(fast):
    _, paths, numbers, _ = fast
    real, fake, centers, classifier = hk.clouds(FAST["k"], FAST["fake_shape"], FAST["n"])
    shift = _final(paths, "hinge") - fake  # (N, 2)
    expected = FAST["steps"] * FAST["lr"] * classifier.w  # steps · lr per point · w
    assert torch.allclose(shift, expected.expand_as(shift), atol=1e-3)
    kdd_shift = _final(paths, "kdd") - fake
    assert kdd_shift.std(dim=0).max() > 0.1  # not a translation
    assert list(numbers["fake cloud"]) == ["fake at the start", "after hinge", "after KDD"]
    energy = numbers["energy distance to real"]
    assert energy[2] < 0.5 * energy[0]  # KDD brings the fake cloud towards the real one
    mode_columns = [c for c in numbers.columns if c.startswith("nearest mode")]
    assert len(mode_columns) == FAST["k"]
    assert numbers[mode_columns].sum(axis=1).tolist() == pytest.approx([100.0] * 3, abs=0.5)
    (path_trace,) = _traces(paths, "kdd", "paths")
    assert sum(v is None for v in path_trace.x) == min(hk.PATHS, FAST["n"])  # one faint path per drawn point


def test_changing_k_changes_the_result(fast):
    field, _, numbers, _ = fast
    other_field, _, other_numbers, _ = hk.compare(**{**FAST, "k": 3})
    assert sum(c.startswith("nearest mode") for c in other_numbers.columns) == 3
    assert not torch.allclose(_arrows(other_field, "kdd"), _arrows(field, "kdd"), atol=1e-3)
    assert other_numbers["energy distance to real"][2] != numbers["energy distance to real"][2]


def test_fake_shape_and_kernel_change_the_result(fast):
    field, _, numbers, _ = fast
    _, gaussian_paths, gaussian_numbers, _ = hk.compare(**{**FAST, "fake_shape": "Gaussian"})
    assert gaussian_numbers["energy distance to real"][0] != numbers["energy distance to real"][0]
    vmf_field, _, _, vmf_summary = hk.compare(**{**FAST, "kernel": "vmf", "width": 0.2})
    assert "vMF kernel τ = 0.2" in vmf_summary
    assert not torch.allclose(_arrows(vmf_field, "kdd"), _arrows(field, "kdd"), atol=1e-3)
    # the same kernel width as kdd_2d.gradient_field computes: the tab draws, kdd_2d computes
    real, fake, _, classifier = hk.clouds(FAST["k"], FAST["fake_shape"], FAST["n"])
    grad = kdd_2d.gradient_field(real, fake, classifier=classifier, kernel="vmf", tau=0.2)["kdd"]
    drawn = grad[hk._spread(FAST["n"], hk.ARROWS)]
    drawn = drawn * hk.ARROW_LENGTH / drawn.norm(dim=1).max()
    assert torch.allclose(_arrows(vmf_field, "kdd"), drawn, atol=1e-4)


def test_zero_steps_leave_the_cloud_where_it_is():
    _, paths, numbers, _ = hk.compare(**{**FAST, "steps": 0})
    _, fake, _, _ = hk.clouds(FAST["k"], FAST["fake_shape"], FAST["n"])
    assert torch.allclose(_final(paths, "kdd"), fake)
    assert numbers["energy distance to real"].nunique() == 1


@pytest.mark.parametrize("change, message", [({"k": 0}, "modes"), ({"k": 2.5}, "modes"), ({"width": 0}, "width"),
                                             ({"lr": -1}, "learning rate"), ({"steps": -3}, "steps"),
                                             ({"n": 5}, "points"), ({"fake_shape": "circle"}, "fake cloud"),
                                             ({"kernel": "laplace"}, "kernel")])
def test_bad_settings_give_clear_messages(change, message):
    with pytest.raises(gr.Error, match=message):
        hk.compare(**{**FAST, **change})


# the tab and its endpoint


def _blocks() -> gr.Blocks:
    with gr.Blocks(analytics_enabled=False) as demo:
        with gr.Tab(hk.TITLE):
            hk.build()
    return demo


def test_the_tab_builds_with_its_endpoint():
    demo = _blocks()
    assert hk.TITLE == "Hinge vs KDD"
    (fn,) = [fn for fn in demo.fns.values() if fn.api_name == "hinge_vs_kdd"]
    assert len(fn.inputs) == len(hk.DEFAULTS) and len(fn.outputs) == 4
    plots = [block for block in demo.blocks.values() if isinstance(block, gr.Plot)]
    assert len(plots) == 2 and all(json.loads(p.value["plot"])["data"] for p in plots)  # drawn at start


def test_client_calls_the_hinge_vs_kdd_endpoint():
    from gradio_client import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = _blocks()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        ssr_mode=False)
    try:
        client = Client(demo.local_url, verbose=False)
        assert "/hinge_vs_kdd" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        field, paths, numbers, summary = client.predict(*FAST.values(), api_name="/hinge_vs_kdd")
        assert field["type"] == "plotly" and paths["type"] == "plotly"
        metas = [t.get("meta") for t in json.loads(field["plot"])["data"]]
        assert {"loss": "hinge", "role": "arrows"} in metas and {"loss": "kdd", "role": "arrows"} in metas
        assert numbers["headers"][0] == "fake cloud" and len(numbers["data"]) == 3
        assert "eq. 6.11" in summary
    finally:
        demo.close()
