"""Write the README's screenshot: a fresh page with a photo, the Cinematic look, one section open,
the 1:1 loupe and a processed result.

Usage: ``python docs/make_screenshot.py [OUT]`` (default ``docs/screenshot.png``). Starts the app on a
free port and uses Debian's chromium through Playwright. The browser test calls :func:`capture`
with a temporary file, so running the tests never rewrites the tracked screenshot.
"""
from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = {"width": 1440, "height": 1560}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def capture(browser, url: str, out: Path) -> None:
    """Screenshot the page at ``url`` in a new tab of ``browser`` (a Playwright browser) to ``out``."""
    from playwright.sync_api import expect
    tab = browser.new_page(viewport=SIZE)
    tab.set_default_timeout(60_000)
    tab.goto(url)
    tab.locator("#source input[type=file]").set_input_files(str(ROOT / "examples" / "astronaut.png"))
    tab.wait_for_selector("#preview.has-image")
    shown = tab.evaluate("studio.shown.length")
    tab.locator("#preset-pick input").click()
    tab.get_by_role("option", name="Cinematic").click()
    tab.wait_for_function("n => studio.shown.length > n", arg=shown)
    tab.locator("#effect-color_correction button").first.click()
    tab.locator("#preview img").click(position={"x": 200, "y": 120})
    tab.wait_for_selector("#loupe.has-image")
    tab.locator("#run").click()
    expect(tab.locator("#download")).to_be_visible()
    tab.mouse.move(0, 0)  # no hover highlight in the picture
    tab.wait_for_timeout(500)
    tab.evaluate("window.scrollTo(0, 0)")
    tab.screenshot(path=str(out))
    tab.close()


def main() -> None:
    import os
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright
    import app
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                           quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                        args=ARGS)
            capture(browser, url, out)
            browser.close()
    finally:
        app.demo.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
