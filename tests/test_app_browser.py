"""The launched app in a real headless Chromium: the Segment tab and the Shift explorer's photo path.

Debian's Chromium (``shutil.which("chromium")``) through Python Playwright; nothing is downloaded.
Where Chromium is missing the browser tests skip, except under CI (``$CI`` set), where they fail.
They save the screenshots that the documentation shows: ``docs/img/segment-tab.png`` and
``docs/img/shift-explorer.png``. The console test checks that the server prints no share-link
hint and no traceback for a user's mistake.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "img"
SETTLED = "() => !document.querySelector('[data-testid=status-tracker]:not(.hide)')"  # no progress overlay left


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    if chromium is None:
        message = "no Chromium on this machine (Debian: apt-get install chromium); the browser tests need it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def _no_error_shown(page) -> None:
    """No red Error toast and no output in an error state."""
    assert page.locator(".toast-body.error").count() == 0, page.locator(".toast-body").all_inner_texts()
    assert page.locator("[data-testid=status-tracker] .error").count() == 0


@pytest.mark.browser
def test_segment_tab_uploads_segments_and_downloads_the_mask(app_url, browser, tmp_path):
    from playwright.sync_api import expect

    from workbench.data.photos import load_sample_photo

    photo = load_sample_photo("chelsea")[:300, :420]  # (300, 420, 3): a cat, not a square
    upload = tmp_path / "cat.png"
    cv2.imwrite(str(upload), cv2.cvtColor(np.round(photo * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Segment").click()
    page.locator("#segment-source").get_by_label("Upload").check()
    page.locator("#segment-upload input[type=file]").set_input_files(str(upload))
    expect(page.locator("#segment-upload img")).to_be_visible(timeout=30_000)
    page.locator("#segment-run").click()
    expect(page.locator("#segment-summary")).to_contain_text("held-out", timeout=60_000)
    expect(page.locator("#segment-summary")).to_contain_text("420×300 px")
    expect(page.locator("#segment-overlay img")).to_be_visible()
    page.wait_for_function(SETTLED, timeout=30_000)
    _no_error_shown(page)

    link = page.locator("#segment-file a").first
    expect(link).to_be_visible(timeout=30_000)
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "mask.png"
    download.value.save_as(saved)
    mask = cv2.imread(str(saved), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (300, 420) and set(np.unique(mask)) <= {0, 255}  # the upload's own resolution

    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "segment-tab.png"), full_page=True)
    assert (IMAGES / "segment-tab.png").stat().st_size > 10_000


@pytest.mark.browser
def test_shift_explorer_photo_path_switches_to_grabcut_without_errors(app_url, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(app_url, wait_until="domcontentloaded")
    expect(page.locator("#shift-composite img")).to_be_visible(timeout=30_000)
    page.wait_for_function(SETTLED, timeout=60_000)
    expect(page.locator("#shift-mask-source").get_by_label("Ground truth")).to_be_checked()

    page.get_by_label("Sample photo", exact=True).first.check()  # the Image radio; the mask was "Ground truth"
    expect(page.locator("#shift-mask-source").get_by_label("GrabCut")).to_be_checked(timeout=30_000)
    expect(page.locator("#shift-summary")).to_contain_text("256×256 px", timeout=60_000)
    expect(page.locator("#shift-move-summary")).to_contain_text("held-out", timeout=60_000)
    expect(page.locator("#shift-error-caption")).to_contain_text("only synthetic scenes")
    page.wait_for_function(SETTLED, timeout=60_000)
    _no_error_shown(page)

    page.get_by_label("Upload", exact=True).first.check()  # no file yet: a hint, not an error
    expect(page.locator("#shift-summary")).to_contain_text("Upload an image", timeout=30_000)
    page.wait_for_function(SETTLED, timeout=60_000)
    _no_error_shown(page)
    page.get_by_label("Sample photo", exact=True).first.check()
    expect(page.locator("#shift-summary")).to_contain_text("256×256 px", timeout=60_000)
    page.wait_for_function(SETTLED, timeout=60_000)
    _no_error_shown(page)

    # back on a synthetic scene, a too-small true mask: the error map shows what it got wrong
    page.get_by_label("Synthetic scene", exact=True).first.check()
    page.locator("#shift-mask-source").get_by_label("Ground truth").check()
    expect(page.locator("#shift-error-caption")).to_contain_text("mean **0.0000**".replace("**", ""), timeout=60_000)
    page.get_by_label("eroded by k px (too small)").check()
    expect(page.locator("#shift-error-caption")).not_to_contain_text("0.0000", timeout=60_000)
    expect(page.locator("#shift-error-map img")).to_be_visible()
    page.wait_for_function(SETTLED, timeout=60_000)
    _no_error_shown(page)

    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "shift-explorer.png"), full_page=True)
    assert (IMAGES / "shift-explorer.png").stat().st_size > 10_000


def test_the_console_has_no_share_hint_and_no_traceback_for_a_user_error(capfd, free_port):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from apps.workbench_app import launch

    demo = launch(host="127.0.0.1", port=free_port, prevent_thread_lock=True)
    try:
        with pytest.raises(AppError, match="Enter the path"):
            Client(demo.local_url, verbose=False).predict("Sample photo", None, "coffee", "benchmark", 0, "path", "",
                                                          0.5, api_name="/segment")
    finally:
        demo.close()
    out, err = capfd.readouterr()
    assert "Movability Workbench running on http://127.0.0.1:" in out
    assert "share=True" not in out + err and "public link" not in out + err
    assert "Traceback" not in out + err
