"""Benchmarks: `python -m workbench bench <name>`.

A benchmark measures the real thing and reports what it saw. Each one is a function registered
with :func:`register`; it receives the parsed command-line namespace and returns a
:class:`BenchResult`. :func:`report` prints the table, writes the figures as JSON under
``runs/bench/`` and ends with one line ``RESULT <name> key=value ...``.

Add a benchmark by writing a module in this package that calls :func:`register`, and listing
the module in ``_MODULES`` below.

``python -m workbench bench --help`` lists the benchmarks without importing them (they import
torch): :func:`catalogue` reads each module's ``@register("name", help="...")`` from its source.
Only the benchmark that runs, or whose ``--help`` is asked for, is imported (:func:`load`).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pandas is imported by the benchmarks; `bench --help` does without
    import pandas as pd

# helpers

_MODULES = ["workbench.bench.eval_speed", "workbench.bench.kdd_2d", "workbench.bench.kdd_images", "workbench.bench.kdd_speed", "workbench.bench.layered",
            "workbench.bench.gpu", "workbench.bench.move", "workbench.bench.move_parity", "workbench.bench.move_speed",
            "workbench.bench.perturbgan", "workbench.bench.robustness"]  # modules that register benchmarks when imported


@dataclass
class Benchmark:
    name: str
    help: str
    run: Callable[[argparse.Namespace], "BenchResult"]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None


@dataclass
class BenchResult:
    name: str
    table: pd.DataFrame  # the results table a person reads
    metrics: dict[str, float | int | str]  # the figures of the RESULT line
    notes: list[str] = field(default_factory=list)  # honest remarks printed under the table


BENCHMARKS: dict[str, Benchmark] = {}


class StageTimer:
    """Wall-clock minutes per named stage of a benchmark: ``timer("gan", fn)`` runs ``fn`` and records it."""

    def __init__(self):
        self.minutes: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[[], object]):
        start = time.perf_counter()
        out = fn()
        self.minutes[name] = (time.perf_counter() - start) / 60
        return out

    def summary(self) -> str:
        """Each stage and its minutes, e.g. "gan 12.3, post-training 1.0", for the notes."""
        return ", ".join(f"{k} {v:.1f}" for k, v in self.minutes.items())


def register(name: str, *, help: str, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None):
    """Decorator: register ``fn(args) -> BenchResult`` as benchmark ``name``."""

    def wrap(fn: Callable[[argparse.Namespace], BenchResult]):
        BENCHMARKS[name] = Benchmark(name=name, help=help, run=fn, add_arguments=add_arguments)
        return fn

    return wrap


def load_all() -> dict[str, Benchmark]:
    """Import every benchmark module so that each registers itself."""
    for module in _MODULES:
        importlib.import_module(module)
    return BENCHMARKS


def _registrations(module: str) -> list[tuple[str, str]] | None:
    """``(name, help)`` of each ``@register`` call in ``module``'s source, without importing it;
    None when a name or help is not a plain string literal (the module must then be imported)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    found = []
    for node in ast.walk(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "register":
            helps = [k.value for k in node.keywords if k.arg == "help"]
            if not node.args or len(helps) != 1:
                return None
            try:
                name, text = ast.literal_eval(node.args[0]), ast.literal_eval(helps[0])
            except ValueError:
                return None
            found.append((name, text))
    return found


def catalogue() -> dict[str, tuple[str, str]]:
    """Every benchmark as ``{name: (module, help)}``, read from the sources of ``_MODULES``."""
    out: dict[str, tuple[str, str]] = {}
    for module in _MODULES:
        found = _registrations(module)
        if found is None:  # not readable statically: import it
            before = set(BENCHMARKS)
            importlib.import_module(module)
            found = [(n, BENCHMARKS[n].help) for n in BENCHMARKS if n not in before]
        out.update({name: (module, text) for name, text in found})
    return out


def load(name: str) -> Benchmark:
    """Import the module of benchmark ``name`` (it registers itself) and return the benchmark."""
    if name not in BENCHMARKS:
        entry = catalogue().get(name)
        if entry is None:
            raise KeyError(f"unknown benchmark {name!r}")
        importlib.import_module(entry[0])
    return BENCHMARKS[name]


def format_value(value: float | int | str) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def result_line(result: BenchResult) -> str:
    pairs = " ".join(f"{k}={format_value(v)}" for k, v in result.metrics.items())
    return f"RESULT {result.name} {pairs}"


def report(result: BenchResult, *, out_dir: str | Path = "runs/bench") -> Path:
    """Print the table and the RESULT line; write both to ``out_dir/<name>.json``."""
    print(result.table.to_markdown(index=False, floatfmt=".4g"))
    for note in result.notes:
        print(f"note: {note}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{result.name}.json"
    payload = {
        "name": result.name,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "metrics": result.metrics,
        "table": json.loads(result.table.to_json(orient="records")),
        "notes": result.notes,
    }
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")
    print(result_line(result))
    return path
