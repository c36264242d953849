"""``routilux serve`` as a real process: it prints its URL (port 0: a free one),
hosts flows, stops on SIGTERM with exit code 0, and a restarted server shows the
history from the store. Wrong set-ups fail with one line, before listening."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from web_helpers import call, wait_until

HERE = Path(__file__).parent
FLOW = f"{HERE / 'web_helpers.py'}:served_flow"


class Serve:
    """``python -m routilux serve ...`` with its stdout read on a thread."""

    def __init__(self, *args: str, env: dict | None = None) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "routilux", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def url(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            if line is None:
                raise AssertionError(f"serve ended: {self.popen.stderr.read()}")
            if line.startswith("routilux monitor at "):
                return line.split()[3]

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.popen.send_signal(signum)
        return self.popen.wait(30)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self.popen.stdout.close()
        self.popen.stderr.close()


@pytest.fixture
def serve():
    started: list[Serve] = []

    def factory(*args: str, env: dict | None = None) -> Serve:
        started.append(Serve(*args, env=env))
        return started[-1]

    yield factory
    for server in started:
        server.kill()


def test_serve_hosts_flows_stops_on_sigterm_and_keeps_history(serve, tmp_path):
    store = str(tmp_path / "served.sqlite3")
    server = serve("--store", store, "--flows", FLOW, "--port", "0")
    url = server.url()
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":8470/")
    status, _, job = call(url, "POST", "/api/jobs", {"flow": "served", "params": {"n": 3}})
    assert status == 201
    assert wait_until(
        lambda: call(url, "GET", f"/api/jobs/{job['job_id']}")[2]["status"] == "completed", 30
    )
    assert server.stop(signal.SIGTERM) == 0
    viewer = serve("--store", store, "--port", "0")  # no flows: the store's history
    url = viewer.url()
    _, _, listing = call(url, "GET", "/api/jobs")
    assert [(j["job_id"], j["status"]) for j in listing["jobs"]] == [
        (job["job_id"], "completed")
    ]
    _, _, page = call(url, "GET", f"/api/jobs/{job['job_id']}")
    assert page["params"] == {"n": 3} and page["routines"]["sink"]["processed"] == 3
    assert viewer.stop(signal.SIGINT) == 0


def test_wrong_setups_fail_in_one_line(serve, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ROUTILUX_TOKEN"}
    missing = serve("--store", str(tmp_path / "none.sqlite3"), "--port", "0", env=env)
    assert missing.popen.wait(60) == 1
    assert "no checkpoint store at" in missing.popen.stderr.read()
    exposed = serve("--store", str(tmp_path / "s.sqlite3"), "--flows", FLOW, "--host",
                    "0.0.0.0", "--port", "0", env=env)
    assert exposed.popen.wait(60) == 1
    error = exposed.popen.stderr.read()
    assert "binding the monitor to '0.0.0.0'" in error and "Traceback" not in error
