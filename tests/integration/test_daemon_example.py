"""examples/daemon.py survives kill -9 and restart without losing or repeating a job."""

from __future__ import annotations

import json
import signal

import pytest
from helpers import start_example, wait_until


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_daemon_survives_kill_9(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    sizes = {"job-1": 30, "job-2": 40, "job-3": 50}
    for name, numbers in sizes.items():
        (inbox / f"{name}.json").write_text(json.dumps({"numbers": numbers, "delay": 0.02}))
    first = start_example("daemon.py", "--dir", str(tmp_path), cwd=tmp_path)
    try:
        first.until_line("accepted job-3", timeout=60)
        first.kill()
    finally:
        first.close()
    assert not (tmp_path / "outbox" / "job-3.json").exists()  # killed mid-run
    second = start_example("daemon.py", "--dir", str(tmp_path), cwd=tmp_path)
    try:
        outbox = tmp_path / "outbox"
        assert wait_until(  # the service's own output
            lambda: len(list(outbox.glob("job-*.json"))) >= 3 or second.popen.poll() is not None,
            timeout=60,
            interval=0.05,
        ), "results did not appear"
        assert second.popen.poll() is None, second.output()
        second.popen.send_signal(signal.SIGTERM)
        out = second.output(timeout=30)
        returncode = second.popen.returncode
    finally:
        second.close()
    assert returncode == 0, out
    assert "unfinished job(s) recovered" in out
    for name, numbers in sizes.items():
        result = json.loads((tmp_path / "outbox" / f"{name}.json").read_text())
        assert result["status"] == "completed", result
        assert result["sum_of_squares"] == sum(n * n for n in range(1, numbers + 1))
    assert sorted(p.name for p in (inbox / "accepted").iterdir()) == \
        ["job-1.json", "job-2.json", "job-3.json"]
