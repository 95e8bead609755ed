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
