"""The launched workbench app: driven through gradio_client, and in a real headless Chromium.

The browser test uses Debian's Chromium (``shutil.which("chromium")``) through Python
Playwright; it never downloads a browser, and it is skipped where Chromium is missing.
It saves a screenshot to ``runs/screenshots/shift_explorer.png``.
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "runs" / "screenshots" / "shift_explorer.png"

# helpers


def _read_rgb(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    assert image is not None, f"not an image: {path}"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# gradio_client


def _args(**changes):
    args = dict(source="Synthetic scene", preset="benchmark", index=6, photo="coffee", upload=None,
                mask_source="Ground truth", brush=None, perturb="exact", k=3, dy=4, dx=10, radius=3)
    args.update(changes)
    return list(args.values())


def test_client_calls_the_shift_explorer_endpoint(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    assert "/shift_explorer" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    *paths, summary = client.predict(*_args(), api_name="/shift_explorer")
    views = [_read_rgb(p) for p in paths]  # mask view, background, composite, copy-paste, difference
    assert all(v.shape == (128, 128, 3) for v in views)
    assert "**0.0000**" in summary
    # shifting further moves the object: a different composite; the background is inpainted anew
    *moved_paths, _ = client.predict(*_args(dx=-12), api_name="/shift_explorer")
    assert np.abs(_read_rgb(moved_paths[2]).astype(int) - views[2].astype(int)).max() > 50
    # a dilated mask is not free
    *_, dilated_summary = client.predict(*_args(perturb="dilate"), api_name="/shift_explorer")
    assert "**0.0000**" not in dilated_summary and "Shift error" in dilated_summary


def test_client_gets_a_clear_error_for_a_non_image_upload(app_url, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    path = tmp_path / "report.png"
    path.write_text("this is text, not pixels")
    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match="is not an image that can be read"):
        client.predict(*_args(source="Upload", upload=handle_file(str(path)), mask_source="GrabCut"),
                       api_name="/shift_explorer")


def test_uploads_over_the_size_limit_are_refused(app_url):
    import httpx

    from apps.workbench_app import MAX_FILE_SIZE, launch

    assert MAX_FILE_SIZE == "20mb"
    assert inspect.signature(launch).parameters["host"].default == "127.0.0.1"  # this machine only
    upload = app_url.rstrip("/") + "/gradio_api/upload"
    too_big = httpx.post(upload, files={"files": ("big.png", b"\0" * (21 * 1024 * 1024))}, timeout=60)
    assert too_big.status_code == 413 and "maximum allowed size" in too_big.text
    small = httpx.post(upload, files={"files": ("small.png", b"\0" * 100)}, timeout=60)
    assert small.status_code == 200


# real browser


@pytest.mark.browser
def test_browser_moves_the_dx_slider_and_the_composite_changes(app_url):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium); the browser test needs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed")

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(app_url, wait_until="domcontentloaded")
            composite = page.locator("#shift-composite img")
            composite.wait_for(state="visible", timeout=30_000)
            before_src = composite.get_attribute("src")
            before = page.request.get(before_src).body()

            # move the dx slider to the right with the keyboard, as a user would
            slider = page.locator("#shift-dx input[type=range]")
            slider.focus()
            for _ in range(8):
                slider.press("ArrowRight")
            sync_api.expect(page.locator("#shift-dx input[type=number]")).to_have_value("18")
            page.wait_for_function(
                "src => { const img = document.querySelector('#shift-composite img');"
                " return img && img.src !== src; }",
                arg=before_src,
                timeout=30_000,
            )
            after = page.request.get(composite.get_attribute("src")).body()
            assert after != before
            moved = cv2.imdecode(np.frombuffer(after, np.uint8), cv2.IMREAD_COLOR)
            unmoved = cv2.imdecode(np.frombuffer(before, np.uint8), cv2.IMREAD_COLOR)
            assert moved.shape == unmoved.shape and np.abs(moved.astype(int) - unmoved.astype(int)).max() > 50

            # a too-large mask: the summary reports a non-zero shift error
            page.get_by_label("dilated by k px (too large)").check()
            sync_api.expect(page.locator("#shift-summary")).not_to_contain_text("0.0000", timeout=30_000)
            page.wait_for_function(  # every output settled: no progress overlay left
                "() => !document.querySelector('[data-testid=status-tracker]:not(.hide)')", timeout=30_000
            )
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000


def test_client_calls_the_hinge_vs_kdd_endpoint(app_url):
    import json

    from gradio_client import Client

    client = Client(app_url, verbose=False)
    assert "/hinge_vs_kdd" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    field, paths, numbers, summary = client.predict(5, "square", "gaussian", 1.0, 0.05, 30, 120,
                                                    api_name="/hinge_vs_kdd")
    metas = [t.get("meta") for t in json.loads(field["plot"])["data"]]
    assert {"loss": "hinge", "role": "arrows"} in metas and {"loss": "kdd", "role": "arrows"} in metas
    assert paths["type"] == "plotly" and numbers["headers"][0] == "fake cloud" and len(numbers["data"]) == 3
