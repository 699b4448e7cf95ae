"""Open a page in headless Chromium and report what loaded: a tiny DevTools-protocol client over a pipe.

Chromium's ``--remote-debugging-pipe`` reads protocol commands (JSON, each ended by a NUL byte) from file
descriptor 3 and writes replies and events to descriptor 4, so no websocket library and no network port is needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
SKIP_REASON = ("no Chromium binary found: install the Debian package (`apt-get install chromium`) "
               "or set DANCENOW_CHROMIUM to a Chrome/Chromium executable")

# Waits for every <video> to load its metadata, plays it muted for a moment, and lists images and videos.
INSPECT_JS = r"""
(async () => {
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
  return {images, videos, title: document.title, text: document.body.innerText,
          h264: document.createElement('video').canPlayType('video/mp4; codecs="avc1.64001e"')};
})()
"""


def find_chromium() -> str | None:
    """A Chromium/Chrome executable: ``$DANCENOW_CHROMIUM`` or the first of the usual names on PATH."""
    if os.environ.get("DANCENOW_CHROMIUM"):
        return os.environ["DANCENOW_CHROMIUM"]
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


class Chromium:
    """A headless Chromium driven over ``--remote-debugging-pipe``; use as a context manager."""

    def __init__(self, binary: str, timeout: float = 60.0) -> None:
        self.timeout, self._id, self._buf = timeout, 0, b""
        self.events: list[dict] = []
        self._profile = tempfile.TemporaryDirectory(prefix="dancenow-chromium-")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        to_child_r, self._w = os.pipe()
        self._r, from_child_w = os.pipe()

        def fds_3_and_4() -> None:  # in the child: its command pipe on fd 3, its reply pipe on fd 4
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--mute-audio", "--autoplay-policy=no-user-gesture-required", "--remote-debugging-pipe",
             f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log, preexec_fn=fds_3_and_4,
            close_fds=False)  # our other descriptors are non-inheritable (PEP 446); fds 3 and 4 are dup2'ed
        os.close(to_child_r)
        os.close(from_child_w)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._send({"id": 0, "method": "Browser.close"})
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for fd in (self._w, self._r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()
        self._profile.cleanup()

    def log_tail(self) -> str:
        self._log.seek(0)
        return self._log.read()[-3000:].decode(errors="replace")

    def _send(self, message: dict) -> None:
        os.write(self._w, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"Chromium did not answer in {self.timeout} s; its log:\n{self.log_tail()}")
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise EOFError(f"Chromium exited; its log:\n{self.log_tail()}")
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept in ``self.events``."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._receive(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            self.events.append(m)

    def wait_event(self, method: str, **params) -> dict:
        """The first event ``method`` (kept or coming) whose params include ``params``."""
        deadline = time.monotonic() + self.timeout
        while True:
            for m in self.events:
                if m.get("method") == method and params.items() <= m.get("params", {}).items():
                    return m
            self.events.append(self._receive(deadline))

    def inspect(self, page: str | Path) -> dict:
        """Open a local page, wait for its load event, and return :data:`INSPECT_JS`'s report."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=session)
        self.call("Page.setLifecycleEventsEnabled", {"enabled": True}, session=session)
        nav = self.call("Page.navigate", {"url": Path(page).resolve().as_uri()}, session=session)
        if nav.get("errorText"):
            raise RuntimeError(f"{page}: Chromium could not open it: {nav['errorText']}")
        self.wait_event("Page.lifecycleEvent", loaderId=nav["loaderId"], name="load")
        reply = self.call("Runtime.evaluate", {"expression": INSPECT_JS, "awaitPromise": True,
                                               "returnByValue": True}, session=session)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page script failed: {reply['exceptionDetails']}")
        self.call("Target.closeTarget", {"targetId": target})
        self.events.clear()
        return reply["result"]["value"]
