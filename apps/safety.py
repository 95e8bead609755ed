"""What every tab checks before it acts on a request, so that the app is safe to serve on a network.

* :func:`finite` — every number a callback receives is finite: Gradio's raw API passes NaN and
  infinity straight through, past the sliders' limits.
* :func:`readable_folder` — a checkpoint path typed in a textbox (or sent through the API) must lie
  inside one of :func:`allowed_roots`: the repository's ``runs/`` and ``assets/`` and the ``runs/``
  of the working directory, or the folders listed in ``$WORKBENCH_APP_ROOTS`` (separated by
  ``os.pathsep``). The check comes before anything touches the path, and its message is the same
  whether an outside path exists or not, so a visitor learns nothing about the server's files.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import gradio as gr

__all__ = ["ROOTS_ENV", "allowed_roots", "finite", "readable_folder", "OutsideRootsError"]

ROOT = Path(__file__).resolve().parents[1]  # the repository
ROOTS_ENV = "WORKBENCH_APP_ROOTS"  # folders the app may read checkpoints from, instead of the defaults


class OutsideRootsError(ValueError):
    """A path outside the folders the app may read."""


def allowed_roots() -> list[Path]:
    """The folders whose contents the app may read: ``$WORKBENCH_APP_ROOTS`` when set, else
    ``<repository>/runs``, ``<repository>/assets`` and ``./runs``; resolved, without duplicates."""
    text = os.environ.get(ROOTS_ENV, "").strip()
    folders = ([Path(p).expanduser() for p in text.split(os.pathsep) if p.strip()] if text else
               [ROOT / "runs", ROOT / "assets", Path.cwd() / "runs"])
    out: list[Path] = []
    for folder in folders:
        resolved = folder.resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def _shown_roots(roots: list[Path]) -> str:
    def shown(path: Path) -> str:
        for base, prefix in ((ROOT, ""), (Path.cwd().resolve(), "./")):
            if path.is_relative_to(base):
                return prefix + str(path.relative_to(base)) + "/"
        return str(path) + "/"

    return ", ".join(dict.fromkeys(shown(r) for r in roots))


def readable_folder(text: str | os.PathLike, *, what: str = "The checkpoint") -> Path:
    """The resolved path ``text`` names when it lies inside :func:`allowed_roots`; otherwise an
    :class:`OutsideRootsError` whose message does not depend on whether the path exists.

    A relative path is taken from the working directory, then from the repository; symbolic links
    are followed before the check, so a link that leads outside is refused too.
    """
    raw = Path(str(text).strip()).expanduser()
    roots = allowed_roots()
    candidates = [raw] if raw.is_absolute() else [Path.cwd() / raw, ROOT / raw]
    inside = [c.resolve() for c in candidates if any(c.resolve().is_relative_to(r) for r in roots)]
    for candidate in inside:
        if candidate.exists():
            return candidate
    if inside:
        return inside[0]
    raise OutsideRootsError(f"{what} must be a folder inside {_shown_roots(roots)}; “{text}” is not one of them "
                            f"(the server's ${ROOTS_ENV} can allow other folders).")


def finite(**values: float | None) -> None:
    """A ``gr.Error`` naming the first of ``values`` (``name=value``) that is missing, not a number,
    NaN or infinite."""
    for name, value in values.items():
        try:
            ok = value is not None and not isinstance(value, bool) and math.isfinite(float(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise gr.Error(f"The {name.replace('_', ' ')} must be a finite number, got {value!r}.")
