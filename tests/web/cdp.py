"""A tiny driver of headless Chromium over the DevTools protocol (websocket-client).

Enough for the browser test: open a page, evaluate JavaScript, wait for a condition
in the page, take a screenshot. Chromium runs with a fresh profile and is killed
(by its pid) when closed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
    "--window-size=1280,900",
]


def find_chromium() -> str | None:
    """The Chromium binary (Debian's ``chromium``), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """One headless Chromium with one page, driven over its DevTools websocket."""

    def __init__(self, binary: str, profile: Path, log: Path) -> None:
        self.profile = profile
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a reused profile's
        self._log = open(log, "wb")
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "about:blank"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._next_id = 0
        try:
            self.ws = self._connect(self._port())
        except BaseException:
            self._kill()
            raise
        self.send("Page.enable")
        self.send("Runtime.enable")

    def _port(self, timeout: float = 30.0) -> int:
        """Chromium writes its DevTools port to DevToolsActivePort once it listens."""
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            if marker.exists():
                first = marker.read_text().splitlines()[:1]
                if first and first[0].isdigit():
                    return int(first[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def _connect(self, port: int) -> websocket.WebSocket:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        return websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True
        )

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result (events met meanwhile are dropped)."""
        self._next_id += 1
        ident = self._next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Wait until ``expression`` is truthy in the page; returns its value."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:
                value = None  # the page is still loading
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {expression!r} (last value {value!r})")

    def screenshot(self, path: Path, width: int = 1280, height: int = 900) -> Path:
        """Save a PNG of the page (at least width x height, the whole page if taller)."""
        full = self.evaluate("document.documentElement.scrollHeight") or height
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width, height=max(height, int(full)), deviceScaleFactor=1, mobile=False,
        )
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        self.send("Emulation.clearDeviceMetricsOverride")
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self._kill()

    def _kill(self) -> None:
        try:
            os.killpg(self.process.pid, 9)  # its own group: renderers and helpers too
        except ProcessLookupError:
            pass
        self.process.wait(10)
        self._log.close()
