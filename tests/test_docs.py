"""The documentation holds: a short README that links to docs/, links that resolve, and commands that exist.

Every ``python -m workbench ...`` line in a fenced code block of README.md and docs/*.md is checked
against the parser of its command (``--help`` of ``train METHOD``, ``bench NAME``, ``predict METHOD``,
``eval``, ...): the command exists and every ``--option`` the line uses is one of its options. The
quick start's ``--preset smoke`` commands run for real.
"""

import re
import shlex
from pathlib import Path

import pytest

from workbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
REQUIRED = ["index", "data", "evaluation", "training", "perturbgan", "layered", "move", "kdd-gan", "app", "notebooks"]
MAX_README_LINES = 250

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


def links(page: Path) -> list[str]:
    """Relative link targets of a markdown page (outside code blocks)."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z]+:", t)]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to dashes."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    out = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


def workbench_commands() -> list[tuple[str, list[str]]]:
    """``(where, argv)`` of every ``python -m workbench`` (or ``torchrun ... -m workbench``) line in a fenced block."""
    found = []
    for page in PAGES:
        for block in FENCE.findall(page.read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" # ")[0].strip().removeprefix("$ ")
                match = re.search(r"-m workbench\b([^`]*)", line)
                if match is None or line.startswith("#"):
                    continue
                argv = shlex.split(match.group(1))
                if any(w.startswith("<") or w.isupper() for w in argv[:2]):
                    continue  # a placeholder (`python -m workbench bench <name>` in the layout), not a command
                found.append((f"{page.relative_to(ROOT)}: {line}", argv))
    return found


def command_key(argv: list[str]) -> tuple[str, ...]:
    """The sub-command an argv names: ``()``, ``("eval",)``, ``("train", "move")``, ``("bench", "kdd-2d")``, ..."""
    if not argv or argv[0].startswith("-"):
        return ()
    if argv[0] in ("train", "bench", "predict") and len(argv) > 1 and not argv[1].startswith("-"):
        return tuple(argv[:2])
    return (argv[0],)


def help_text(key: tuple[str, ...], capsys) -> str:
    """The ``--help`` of a sub-command, run in this process; it must succeed."""
    try:
        code = main([*key, "--help"])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    assert code == 0, f"`python -m workbench {' '.join(key)} --help` exited {code}: {captured.err[-500:]}"
    assert "usage:" in captured.out
    return captured.out


COMMANDS = workbench_commands()


def test_readme_is_a_short_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < MAX_README_LINES
    linked = {Path(t.split("#")[0]).as_posix() for t in links(README)}
    for name in REQUIRED:
        assert (ROOT / "docs" / f"{name}.md").is_file(), name
        assert f"docs/{name}.md" in linked, f"README does not link docs/{name}.md"


def test_docs_index_lists_every_page():
    listed = {t.split("#")[0] for t in links(ROOT / "docs" / "index.md")}
    assert {p.name for p in DOCS if p.name != "index.md"} <= listed


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    targets = links(page)
    for target in targets:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}: no heading #{anchor} in {resolved.name}"


def test_the_pages_show_commands():
    keys = {command_key(argv) for _, argv in COMMANDS}
    for key in [("train", "move"), ("bench", "kdd-2d"), ("bench", "move"), ("eval",), ("baselines",), ("app",)]:
        assert key in keys, key


@pytest.mark.parametrize("key", sorted({command_key(argv) for _, argv in COMMANDS}), ids=lambda k: " ".join(k) or "-")
def test_documented_commands_exist_with_their_options(key, capsys):
    text = help_text(key, capsys)
    for where, argv in COMMANDS:
        if command_key(argv) != key:
            continue
        for option in (a.split("=")[0] for a in argv if a.startswith("--")):
            if option == "--help":
                continue
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), f"{where}: {option} is not an option"


def quick_start_commands() -> list[list[str]]:
    """The ``--preset smoke`` commands of the README's quick start."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in FENCE.findall(section):
        for line in block.splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith("python -m workbench ") and "--preset smoke" in line:
                commands.append(shlex.split(line)[3:])
    return commands


def test_quick_start_smoke_commands_run(tmp_path, monkeypatch, capsys):
    commands = quick_start_commands()
    assert len(commands) >= 2
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        assert main(argv) == 0, argv
    out = capsys.readouterr()
    assert "RESULT eval-speed" in out.out
    assert any(tmp_path.glob("runs/first/checkpoints/step-*"))
