"""examples/daemon.py survives kill -9 and restart without losing or repeating a job."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAEMON = ROOT / "examples" / "daemon.py"


def start(directory):
    return subprocess.Popen([sys.executable, str(DAEMON), "--dir", str(directory)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_line(proc, text, lines):
    for line in proc.stdout:
        lines.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} never printed:\n{''.join(lines)}")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_daemon_survives_kill_9(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sizes = {"job-1": 30, "job-2": 40, "job-3": 50}
    for name, numbers in sizes.items():
        (inbox / f"{name}.json").write_text(json.dumps({"numbers": numbers, "delay": 0.02}))
    first = start(tmp_path)
    lines: list[str] = []
    try:
        wait_for_line(first, "accepted job-3", lines)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
        first.wait()
    assert not (tmp_path / "outbox" / "job-3.json").exists()  # killed mid-run
    second = start(tmp_path)
    try:
        deadline = time.monotonic() + 60
        outbox = tmp_path / "outbox"
        while len(list(outbox.glob("job-*.json"))) < 3:  # the service's own output
            assert time.monotonic() < deadline, "results did not appear"
            assert second.poll() is None, second.stdout.read()
            time.sleep(0.05)
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=30)
    finally:
        second.kill()
        second.wait()
    assert second.returncode == 0, out
    assert "unfinished job(s) recovered" in out
    for name, numbers in sizes.items():
        result = json.loads((tmp_path / "outbox" / f"{name}.json").read_text())
        assert result["status"] == "completed", result
        assert result["sum_of_squares"] == sum(n * n for n in range(1, numbers + 1))
    assert sorted(p.name for p in (inbox / "accepted").iterdir()) == \
        ["job-1.json", "job-2.json", "job-3.json"]
