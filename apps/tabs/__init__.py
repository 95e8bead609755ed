"""The tabs of the workbench app, in the order they appear.

Add a tab by writing a module in this package that defines

* ``TITLE: str`` — the tab's label, and
* ``build() -> None`` — called inside an open ``gr.Tab`` context; it creates the tab's widgets
  and wires their events,

and listing the module in :data:`TAB_MODULES` below.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["TAB_MODULES", "load_tabs"]

TAB_MODULES = [
    "apps.tabs.shift_explorer",  # chapter 5 principle: shift an object over its inpainted background
    "apps.tabs.segment",  # run any trained segmenter on a photo: mask, boxes, PNG download
    "apps.tabs.hinge_vs_kdd",  # chapter 6: generator updates of the hinge and KDD losses on 2D clouds
    "apps.tabs.triplet_browser",  # chapters 3-4: figure 3.3 of a PerturbGAN or layered GAN, with its segmenters
    "apps.tabs.curves",  # any run: the stats.jsonl it logged, as plotly curves
]


def load_tabs(names: list[str] | None = None) -> list[ModuleType]:
    """Import the tab modules (``TAB_MODULES`` by default) and check that each has ``TITLE`` and ``build``."""
    tabs = []
    for name in TAB_MODULES if names is None else names:
        module = importlib.import_module(name)
        if not isinstance(getattr(module, "TITLE", None), str) or not callable(getattr(module, "build", None)):
            raise TypeError(f"tab module {name} must define TITLE: str and build() -> None")
        tabs.append(module)
    return tabs
