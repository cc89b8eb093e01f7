"""The README's picture of the studio: starts `launch.py serve` on a free port (or uses --url),
opens the page in headless Chromium at 1440x900, loads a demo clip, optionally makes and keeps
a stem, and saves a screenshot of the viewport (what a user sees without scrolling).

    PYTHONPATH=. python scripts/screenshot_studio.py --out docs/img/studio-1440x900.png
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 180_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(work: Path) -> tuple[subprocess.Popen, str]:
    """`launch.py serve` with its own home and work folders; returns it and its URL."""
    port = _free_port()
    (work / "home").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FOLEY_STUDIO_HOME": str(work / "home"), "PYTHONUNBUFFERED": "1"}
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "launch.py", "serve", "--port", str(port),
                             "--work-dir", str(work)], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 240
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited; see {work / 'server.log'}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url
        except OSError:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGTERM)
                raise SystemExit("the server did not start")
            time.sleep(1)


def shoot(url: str, out: Path, *, width: int, height: int, stems: int) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url)
        page.wait_for_selector("#generate-btn", timeout=WAIT_MS)
        expect(page.locator("#video-info")).to_contain_text("pick a demo clip", timeout=WAIT_MS)
        page.locator("#demo-picker input").click()
        page.get_by_role("option").first.click()
        expect(page.locator("#video-info")).to_contain_text(".mp4", timeout=WAIT_MS)
        for i, caption in enumerate(["a ball bounces on a wooden floor", "footsteps on gravel"]
                                    [:stems]):
            page.locator("#caption textarea").fill(caption)
            page.click("#generate-btn")
            expect(page.locator("#result-info")).to_contain_text("candidate", timeout=WAIT_MS)
            page.wait_for_function("() => !document.querySelector('.progress-text, .eta-bar')",
                                   timeout=WAIT_MS)
            page.click("#add-stem-btn")
            expect(page.locator("#timeline .tl-lane[data-stem]")).to_have_count(i + 1,
                                                                              timeout=WAIT_MS)
        page.wait_for_timeout(1000)
        close = page.locator("#studio-notice .sn-close")       # the last message, if any
        if close.is_visible():
            close.click()
        page.evaluate("() => window.scrollTo(0, 0)")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out))
        browser.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "studio-1440x900.png")
    ap.add_argument("--url", help="a running studio (default: start one)")
    ap.add_argument("--width", type=int, default=1440)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--stems", type=int, default=1, choices=(0, 1, 2),
                    help="stems to generate and keep before the picture")
    args = ap.parse_args(argv)
    proc = None
    with tempfile.TemporaryDirectory(prefix="foley-shot-") as tmp:
        url = args.url
        if url is None:
            proc, url = start_server(Path(tmp))
        try:
            shoot(url, args.out, width=args.width, height=args.height, stems=args.stems)
        finally:
            if proc is not None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
    print(args.out)


if __name__ == "__main__":
    main()
