"""`python -m workbench bench robustness --preset smoke`: every probe passes and the RESULT line says so."""

from __future__ import annotations

import argparse

import pytest

from workbench.bench import BENCHMARKS, load_all, result_line

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_robustness_bench_smoke(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    load_all()
    bench = BENCHMARKS["robustness"]
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--seed", type=int, default=0)
    bench.add_arguments(parser)
    result = bench.run(parser.parse_args([]))
    failed = result.table[~result.table["passed"]]
    assert failed.empty, failed.to_string()
    assert set(result.table["defect"]) == set(range(1, 13))  # every defect of issue 14 has a probe
    n = len(result.table)
    assert result_line(result) == f"RESULT robustness probes={n} passed={n} failed=0"
    assert not list(tmp_path.iterdir())  # the probes' files went to a temporary folder, now removed
