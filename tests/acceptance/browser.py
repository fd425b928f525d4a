"""A real browser for the HLS tests: Debian's chromium, headless, opening a test page
served from its own loopback origin (so the stream is fetched cross-origin and CORS is
part of every test). The page loads hls.js (fetched by scripts/install-deps from the npm
registry, not committed) and POSTs its state to /report every 250 ms."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

HLSJS = Path(__file__).parent / ".hlsjs" / "hls-1.7.4.min.js"   # fetched by scripts/install-deps


class _Page(http.server.BaseHTTPRequestHandler):
    page = b""
    reports = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        body, ctype = (HLSJS.read_bytes(), "text/javascript") if self.path == "/hls.js" else (self.page, "text/html")
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        type(self).reports.append(json.loads(self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()


def run_page(page: bytes, tmp_path: Path, timeout: float = 60) -> dict:
    """Open `page` in headless chromium until it reports `done` (or `timeout` s pass);
    the page's last report."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: run scripts/install-deps"
    assert HLSJS.exists(), f"{HLSJS} is missing: scripts/install-deps fetches hls.js from the npm registry"
    _Page.page = page
    _Page.reports = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio", "--no-first-run",
         "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={tmp_path / 'profile'}",
         f"http://127.0.0.1:{httpd.server_address[1]}/"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "chromium.log", "w"))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (_Page.reports and _Page.reports[-1].get("done")):
            time.sleep(0.25)
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        httpd.shutdown()
    assert _Page.reports, f"the page never reported (chromium log:\n{(tmp_path / 'chromium.log').read_text()[-3000:]})"
    return _Page.reports[-1]
