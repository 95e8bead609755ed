"""The package's layers import only downwards: data -> ops -> nets -> losses -> methods -> train / eval -> bench / cli.

Every ``import`` statement is read from the sources with ``ast`` (function-level imports included,
``if TYPE_CHECKING:`` blocks excluded, as they never run), so a lazy import that goes upwards is
caught as well as a top-level one.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"

# the foundation modules below the methods: the JSON side of configs, devices, the checkpoint format
FOUNDATION = ("workbench.config", "workbench.device", "workbench.checkpoint")
ABOVE_METHODS = ("workbench.train", "workbench.eval", "workbench.bench", "workbench.cli", "apps")
# what each layer must not import (a name and everything under it)
FORBIDDEN = {
    "data": ("workbench.ops", "workbench.nets", "workbench.losses", "workbench.methods", *FOUNDATION[1:], *ABOVE_METHODS),
    "ops": ("workbench.nets", "workbench.losses", "workbench.methods", *FOUNDATION, *ABOVE_METHODS),
    "nets": ("workbench.losses", "workbench.methods", *FOUNDATION, *ABOVE_METHODS),
    "losses": ("workbench.methods", *FOUNDATION, *ABOVE_METHODS),
    "config.py": ("workbench.data", "workbench.ops", "workbench.nets", "workbench.methods", "workbench.device",
                  "workbench.checkpoint", *ABOVE_METHODS),
    "device.py": ("workbench.data", "workbench.nets", "workbench.methods", "workbench.checkpoint", *ABOVE_METHODS),
    "checkpoint.py": ("workbench.data", "workbench.methods", *ABOVE_METHODS),
    "methods": ABOVE_METHODS,
}


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import that can run in ``path``."""
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def layer_files(layer: str) -> list[Path]:
    target = PACKAGE / layer
    return sorted(target.rglob("*.py")) if target.is_dir() else [target]


def violations(layer: str) -> list[str]:
    bad = []
    for path in layer_files(layer):
        for line, name in imported_names(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer):
    assert layer_files(layer) and all(p.exists() for p in layer_files(layer))
    assert violations(layer) == []


def test_the_scan_sees_function_level_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import workbench.train\n"
                      "def f():\n    from workbench.train.checkpoint import load_method\n")
    assert imported_names(source) == [(1, "typing.TYPE_CHECKING"), (5, "workbench.train.checkpoint.load_method")]


def test_move_code_lives_with_the_methods():
    assert (PACKAGE / "methods" / "move_assets.py").is_file()
    assert not (PACKAGE / "train" / "move_assets.py").exists()


def test_methods_load_without_the_training_loop():
    """Importing every method (and loading checkpoints through the format module) imports nothing of train/ or eval/."""
    import subprocess
    import sys

    code = ("import sys, workbench.methods, workbench.checkpoint, workbench.methods.move_assets; "
            "print(sorted(m for m in sys.modules if m.startswith(('workbench.train', 'workbench.eval', 'workbench.bench'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
