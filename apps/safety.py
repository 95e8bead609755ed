"""What every tab checks before it acts on a request, so that the app is safe to serve on a network.

* :func:`finite` — every number a callback receives is finite: Gradio's raw API passes NaN and
  infinity straight through, past the sliders' limits.
* :func:`read_upload` and :func:`scene_index` — an uploaded file must be a readable image, a scene
  index a whole number >= 0; both answer with a ``gr.Error`` the visitor can act on.
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
import numpy as np

__all__ = ["ROOTS_ENV", "allowed_roots", "finite", "read_upload", "readable_folder", "scene_index", "OutsideRootsError"]

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


def read_upload(path: str | None, *, alternatives: str) -> np.ndarray:
    """The uploaded image at ``path`` as float32 (H, W, 3) in [0, 1] (``read_image``'s checks and pixel limit).

    No file, or one that is not a readable image, is a ``gr.Error`` that names the file and the reason;
    ``alternatives`` completes "Upload an image first (PNG, JPEG, ...), or ..." for the empty case.
    """
    from workbench.data.images import ImageReadError, read_image

    if not path:
        raise gr.Error(f"Upload an image first (PNG, JPEG, ...), or {alternatives}.")
    try:
        return read_image(path)
    except ImageReadError as error:
        reason = str(error).removeprefix(f"{path}: ")
        raise gr.Error(f"“{Path(path).name}” is not an image that can be read ({reason}).") from None


def scene_index(index: float | None) -> int:
    """A synthetic scene's index from a number box: finite, whole and >= 0, else a ``gr.Error``."""
    finite(scene_index=index)
    if index < 0 or int(index) != index:
        raise gr.Error(f"The scene index must be a whole number >= 0, got {index!r}.")
    return int(index)
