"""The Movability Workbench app: one ``gr.Blocks`` with a tab per module of :mod:`apps.tabs`.

``python -m workbench app --host 127.0.0.1 --port 7860`` calls :func:`launch`. The app binds to
localhost unless told otherwise, limits uploads to :data:`MAX_FILE_SIZE`, sends no analytics,
creates no share link (and prints no hint about one) and loads no web fonts. A ``gr.Error`` raised
by a callback is an ordinary user mistake that the page explains; it prints no traceback in the
console (:func:`quiet_user_errors`); any other exception still does.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import gradio as gr

from apps.tabs import load_tabs

__all__ = ["MAX_FILE_SIZE", "build_app", "launch", "quiet_user_errors", "theme"]

MAX_FILE_SIZE = "20mb"  # largest accepted upload

# Small images are scaled up to fill their boxes; elements of class "pixelated" keep sharp pixels.
CSS = """
.pixelated img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
"""

_INTRO = """\
# Movability Workbench
*An object is what can be moved.* Cut out a correct mask, shift the object a little, and the scene
still looks real; a wrong mask leaves seams, duplicates or holes (Bielski, chapter 5, figure 5.1).
"""


def theme() -> gr.themes.Base:
    """The default Gradio theme with system fonts, so that the page needs no network."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "Consolas", "monospace"],
    )


def _quiet(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error as error:  # shown on the page; no console traceback for a user's mistake
            error.print_exception = False
            raise

    call.quiet_user_errors = True
    return call


def quiet_user_errors(demo: gr.Blocks) -> gr.Blocks:
    """Make every plain (not async, not generator) callback of ``demo`` raise its ``gr.Error`` without
    a console traceback. Returns ``demo``."""
    fns = demo.fns.values() if isinstance(demo.fns, dict) else demo.fns
    for block_fn in fns:
        fn = block_fn.fn
        if (fn is None or getattr(fn, "quiet_user_errors", False) or inspect.iscoroutinefunction(fn)
                or inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)):
            continue
        block_fn.fn = _quiet(fn)
    return demo


def build_app() -> gr.Blocks:
    """Build the app with every tab of :data:`apps.tabs.TAB_MODULES`, in order."""
    with gr.Blocks(title="Movability Workbench", analytics_enabled=False) as demo:
        gr.Markdown(_INTRO)
        with gr.Tabs():
            for tab in load_tabs():
                with gr.Tab(tab.TITLE):
                    tab.build()
    return quiet_user_errors(demo)


def launch(host: str = "127.0.0.1", port: int = 7860, **kw: Any) -> gr.Blocks:
    """Build and serve the app on ``host:port``; extra keywords go to ``gr.Blocks.launch``.

    Blocks until the server stops unless ``prevent_thread_lock=True``. Returns the running
    ``gr.Blocks``: its ``local_url`` is the address, and ``close()`` stops it.
    """
    if kw.get("share"):
        raise ValueError("share links are disabled in the workbench")
    kw.pop("share", None)
    kw.setdefault("max_file_size", MAX_FILE_SIZE)
    kw.setdefault("ssr_mode", False)
    kw.setdefault("theme", theme())
    kw.setdefault("css", CSS)
    quiet = kw.pop("quiet", False)
    block = not kw.pop("prevent_thread_lock", False)
    demo = build_app()
    demo.queue(default_concurrency_limit=2)
    # quiet: Gradio's own lines include a share-link hint; ours says where the app is
    demo.launch(server_name=host, server_port=port, share=False, quiet=True, prevent_thread_lock=True, **kw)
    if not quiet:
        print(f"Movability Workbench running on {demo.local_url} (this machine only unless --host says otherwise; "
              "Ctrl+C stops it)", flush=True)
    if block:
        demo.block_thread()
    return demo
