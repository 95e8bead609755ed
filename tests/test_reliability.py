"""Issue 14: one test per defect, each the probe of ``python -m workbench bench robustness`` that pins it.

Each probe builds its own files (tiny smoke checkpoints, damaged weights, decompression-bomb PNGs,
hand-damaged run folders) in a temporary folder and raises when the workbench misbehaves. Probes of
memory and time run in a subprocess under an address-space limit and a timeout (see
:func:`workbench.bench.robustness.limited_python`), so they fail fast rather than exhaust the machine.
"""

from __future__ import annotations

import pytest

from workbench.bench.robustness import PROBES, Context

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Context(tmp_path_factory.mktemp("robustness"), smoke=True)


@pytest.mark.parametrize("probe", PROBES, ids=[f"defect{p.defect:02d}-{p.fn.__name__.removeprefix('probe_')}"
                                                for p in PROBES])
def test_defect(probe, ctx, monkeypatch):
    monkeypatch.chdir(ctx.folder)  # anything that defaults to runs/ writes into the temporary folder
    seen = probe.fn(ctx)
    assert isinstance(seen, str) and seen


def test_garbage_is_not_called_code_and_code_is_not_called_garbage(tmp_path):
    """Defect 11's other side: a text file is 'not a weights file', a pickled function is 'refused for safety'."""
    import os

    import torch

    from workbench.nets.weights import CheckpointError, load_pth

    (tmp_path / "text.pth").write_text("not weights at all")

    class Payload:
        def __reduce__(self):
            return (os.getpid, ())

    torch.save({"w": torch.zeros(1), "x": Payload()}, tmp_path / "code.pth")
    with pytest.raises(CheckpointError, match="corrupt or truncated") as garbage:
        load_pth(tmp_path / "text.pth")
    assert "safety" not in str(garbage.value)
    with pytest.raises(CheckpointError, match="not plain tensors .*refused for safety") as code:
        load_pth(tmp_path / "code.pth")
    assert "corrupt" not in str(code.value)
