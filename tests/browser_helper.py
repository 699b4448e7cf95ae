"""Pages in headless Chromium through Playwright: served over http on 127.0.0.1, inspected, screenshotted.

Playwright (the ``dev`` extra) drives the system's Chromium (Debian's ``chromium``, which ``make test`` installs
through tools/ensure_browser.sh); ``playwright install`` is never run. Every request the browser makes to anything
but 127.0.0.1 is aborted and recorded, so a page that reaches out to the internet shows up in its report.
Screenshots go to ``test-artifacts/`` in the repository (git-ignored), for a person to look at what a test saw.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--mute-audio", "--autoplay-policy=no-user-gesture-required"]
SKIP_REASON = ("no Chromium binary found: `make test` installs Debian's chromium when it can (tools/ensure_browser.sh "
               "says why it could not); or set DANCENOW_CHROMIUM to a Chrome/Chromium executable")
TIMEOUT_MS = 60_000  # the longest any one browser step (launch, navigation, script) may take

# Waits for every <video> to load its metadata, plays it muted until its time advances, and lists images, videos,
# links and the element names in the page.
INSPECT_JS = r"""
async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const once = (el, names, ms) => new Promise(res => {
    const t = setTimeout(() => res('timeout'), ms);
    for (const n of names) el.addEventListener(n, () => { clearTimeout(t); res(n); }, {once: true, capture: true});
  });
  const videos = [];
  for (const v of document.querySelectorAll('video')) {
    // NETWORK_NO_SOURCE (3): every <source> failed already (their error events are gone)
    if (v.readyState < 1 && !v.error && v.networkState !== 3) {
      await once(v, ['loadedmetadata', 'error'], 15000);
    }
    let played = 0;
    if (v.readyState >= 1) {
      v.muted = true;
      try {
        await v.play();
        for (let i = 0; i < 100 && v.currentTime === 0; i++) await sleep(50);
        played = v.currentTime;
        v.pause();
      } catch (e) { played = String(e); }
    }
    videos.push({src: (v.currentSrc || '').slice(0, 200), width: v.videoWidth, height: v.videoHeight,
                 duration: Number.isFinite(v.duration) ? v.duration : String(v.duration),  // or 'NaN', 'Infinity'
                 error: v.error ? v.error.code : null, network: v.networkState, played});
  }
  for (const i of document.images) if (!i.complete) await once(i, ['load', 'error'], 15000);
  const images = [...document.images].map(i => ({src: (i.getAttribute('src') || '').slice(0, 200),
                                                 width: i.naturalWidth, height: i.naturalHeight}));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  const tags = [...new Set([...document.body.querySelectorAll('*')].map(e => e.localName))].sort();
  return {images, videos, links, tags, title: document.title, text: document.body.innerText,
          h1: [...document.querySelectorAll('h1')].map(h => h.innerText),
          h264: document.createElement('video').canPlayType('video/mp4; codecs="avc1.64001e"')};
}
"""


def find_chromium() -> str | None:
    """A Chromium/Chrome executable: ``$DANCENOW_CHROMIUM`` or the first of the usual names on PATH."""
    if os.environ.get("DANCENOW_CHROMIUM"):
        return os.environ["DANCENOW_CHROMIUM"]
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def slug(text: str) -> str:
    """A file-name-safe version of ``text`` (for screenshots)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "page"


class _Handler(SimpleHTTPRequestHandler):
    """A static file handler that answers byte ranges (as web servers do for media) and logs nothing."""

    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's name)
        pass

    def send_head(self):
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        path = Path(self.translate_path(self.path))
        if not match or not path.is_file() or match.groups() == ("", ""):
            return super().send_head()
        size = path.stat().st_size
        first, last = match.groups()
        start = int(first) if first else max(0, size - int(last))
        end = min(size - 1, int(last)) if first and last else size - 1
        if start >= size or start > end:
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        f = path.open("rb")
        f.seek(start)
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return _Slice(f, end - start + 1)


class _Slice:
    """The first ``n`` bytes of an open file, read by ``copyfile`` like a file."""

    def __init__(self, f, n: int) -> None:
        self.f, self.left = f, n

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.f.read(size)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


@contextlib.contextmanager
def serve(directory: str | Path) -> Iterator[str]:
    """Serve ``directory`` over http on 127.0.0.1 (a free port) from a background thread; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass
class PageLog:
    """What went wrong while a page was open: console errors, uncaught exceptions, failed or refused requests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Everything but the blocked (non-local) requests, which a test judges on its own."""
        return self.console_errors + self.page_errors + self.failed


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname == "127.0.0.1"


class Browser:
    """Headless system Chromium under Playwright; use as a context manager (one per test session)."""

    def __init__(self, executable: str) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        try:
            self.browser = self._pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True,
                                                    timeout=TIMEOUT_MS)
        except Exception:
            self._pw.stop()
            raise

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.browser.close()
        self._pw.stop()

    @contextlib.contextmanager
    def page(self, width: int = 1280, height: int = 900):
        """A fresh page (its own context) and its :class:`PageLog`; requests off 127.0.0.1 are aborted."""
        context = self.browser.new_context(viewport={"width": width, "height": height}, service_workers="block")
        context.set_default_timeout(TIMEOUT_MS)
        log = PageLog()

        def route(r) -> None:
            if _is_local(r.request.url):
                r.continue_()
            else:
                log.blocked.append(r.request.url)
                r.abort("blockedbyclient")

        context.route("**/*", route)
        page = context.new_page()
        page.on("console", lambda m: log.console_errors.append(f"{m.text} ({m.location.get('url', '')})")
                if m.type == "error" and not _from_blocked(m, log) else None)
        page.on("pageerror", lambda e: log.page_errors.append(str(e)))
        page.on("requestfailed", lambda r: None if r.url in log.blocked
                else log.failed.append(f"{r.url}: {r.failure}"))
        page.on("response", lambda r: log.failed.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None)
        try:
            yield page, log
        finally:
            context.close()

    def inspect(self, url: str, screenshot: str | None = None) -> tuple[dict, PageLog]:
        """Open ``url``, wait for its load event, and return :data:`INSPECT_JS`'s report (plus the status of every
        local link, as ``link_status``) and the page's log; with ``screenshot``, save the whole page under
        ``test-artifacts/`` by that name."""
        with self.page() as (page, log):
            response = page.goto(url, wait_until="load")
            if response is None or not response.ok:
                raise AssertionError(f"{url}: {response.status if response else 'no response'}")
            report = page.evaluate(INSPECT_JS)
            report["link_status"] = {link: _status(page, link) for link in dict.fromkeys(report["links"])
                                     if urlsplit(link).scheme in ("http", "https")}
            if screenshot:
                save_screenshot(page, screenshot)
        return report, log


def _from_blocked(message, log: PageLog) -> bool:
    """A console error about a request this module refused (its URL is in the message or is its location)."""
    where = message.location.get("url", "")
    return any(url == where or url in message.text for url in log.blocked)


def _status(page, link: str) -> int | str:
    """The HTTP status of a local link (fetched by the page's context); ``'blocked'`` for anything else."""
    if not _is_local(link):
        return "blocked"
    return page.context.request.get(link.split("#")[0], timeout=TIMEOUT_MS).status


def save_screenshot(target, name: str) -> Path:
    """Save a page's (whole) or an element's screenshot as ``test-artifacts/<name>.png``; returns its path."""
    from playwright.sync_api import Page

    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{slug(name)}.png"
    if isinstance(target, Page):
        target.screenshot(path=str(path), full_page=True)
    else:
        target.screenshot(path=str(path))
    return path
