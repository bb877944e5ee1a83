"""Live preview under a real slider drag: Playwright moves the mouse in Debian's Chromium.

Starts ``python app.py`` on a free port (as :mod:`load_test` does), uploads a 1 MP photo, enables
Color correction and drags the Contrast thumb back and forth with real mouse moves (``--seconds``,
one move per display frame), then releases it at new positions ``--releases`` times. Prints:

* **updates/s**: previews shown during the drag (the page's script logs each one it displays);
* **main thread busy**: the share of the drag the browser's main thread spent in long tasks
  (> 50 ms, ``PerformanceObserver('longtask')``), the time the thumb cannot follow the mouse;
* **release → final preview**: from the pointer-up at a new position to the preview of exactly that
  position on screen, median and range.

Targets on the 2-core machine: ≥ 10 updates/s, busy ≤ 30 %, release → final ≤ 150 ms median.
Usage: ``python benchmarks/bench_drag.py [--seconds 4] [--releases 9] [--runs 1]``
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from load_test import ROOT, start_server

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

OBSERVE_JS = """() => {
  window.__longtasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longtasks.push([e.startTime, e.duration]);
  }).observe({type: 'longtask'});
}"""

WINDOW_JS = """([t0, t1]) => {
  const busy = window.__longtasks.reduce(
    (sum, [start, duration]) => sum + Math.max(0, Math.min(t1, start + duration) - Math.max(t0, start)), 0);
  const shown = studio.shown.filter((s) => s.t >= t0 && s.t <= t1).length;
  return {shown, busy, span: t1 - t0};
}"""

# Resolves with the ms from the next pointer-up to the preview of the settings current at that time.
RELEASE_JS = """() => { window.__release = new Promise((resolve, reject) => {
  const give_up = setTimeout(() => reject(new Error('no final preview')), 20000);
  window.addEventListener('pointerup', () => {
    const t_up = performance.now();
    requestAnimationFrame(() => {
      const check = () => {
        const done = studio.settled() && studio.shown[studio.shown.length - 1];
        if (done) { clearTimeout(give_up); resolve(Math.max(0, done.t - t_up)); }
        else requestAnimationFrame(check);
      };
      check();
    });
  }, {once: true, capture: true});
}); }"""


def run_once(url: str, photo: Path, seconds: float, releases: int) -> dict:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(url)
        page.locator("#source input[type=file]").set_input_files(str(photo))
        page.wait_for_selector("#preview.has-image")
        page.locator("#effect-color_correction button").first.click()
        page.locator("#enable_color_correction input[type=checkbox]").check()
        slider = page.locator("#contrast input[type=range]")
        slider.scroll_into_view_if_needed()
        page.wait_for_timeout(1500)  # the enable's preview, the gallery and the fonts settle
        box = slider.bounding_box()
        y, left, width = box["y"] + box["height"] / 2, box["x"] + 8, box["width"] - 16
        page.evaluate(OBSERVE_JS)

        page.mouse.move(left + width / 2, y)
        page.mouse.down()
        t0 = page.evaluate("performance.now()")
        start, frame = time.monotonic(), 0
        while time.monotonic() - start < seconds:  # a sweep across the track every 1.5 s
            phase = ((time.monotonic() - start) / 1.5) % 2
            position = phase if phase <= 1 else 2 - phase
            page.mouse.move(left + width * (0.1 + 0.8 * position), y)
            frame += 1
            time.sleep(max(0.0, start + frame / 60 - time.monotonic()))
        t1 = page.evaluate("performance.now()")
        drag = page.evaluate(WINDOW_JS, [t0, t1])
        page.mouse.up()

        latencies = []
        for i in range(releases):
            page.wait_for_timeout(600)
            target = left + width * (0.15 + 0.7 * ((i * 0.37) % 1))
            page.mouse.move(target, y)
            page.evaluate(RELEASE_JS)
            page.mouse.down()
            page.mouse.move(target + 3, y)
            page.mouse.up()
            latencies.append(page.evaluate("window.__release"))
        browser.close()
    return {"updates_per_s": drag["shown"] / drag["span"] * 1000, "busy": drag["busy"] / drag["span"],
            "moves_per_s": frame / seconds, "release_ms": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--releases", type=int, default=9)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        photo = temp / "coffee-1mp.png"
        Image.open(ROOT / "examples" / "coffee.png").resize((1224, 816), Image.LANCZOS).save(photo)
        server, url = start_server(temp)
        try:
            for run in range(args.runs):
                r = run_once(url, photo, args.seconds, args.releases)
                ms = r["release_ms"]
                print(f"run {run + 1}: {r['updates_per_s']:.1f} preview updates/s "
                      f"({r['moves_per_s']:.0f} mouse moves/s), main thread busy {100 * r['busy']:.0f} % "
                      f"of the drag, release → final preview median {statistics.median(ms):.0f} ms "
                      f"(min {min(ms):.0f}, max {max(ms):.0f}, n={len(ms)})", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
