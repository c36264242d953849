"""examples/durable_job.py survives a SIGKILL: run again, it finishes with the right total."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "durable_job.py"
TIMEOUT = 60.0


def _read_until_progress(process: subprocess.Popen, timeout: float) -> list[str]:
    """Lines printed until the first progress line (or fail after ``timeout``)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no progress line within {timeout} s: {lines}"
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if not ready:
            continue
        line = process.stdout.readline()
        assert line, f"the example exited early ({process.poll()}): {lines}"
        lines.append(line)
        if line.startswith("progress:"):
            return lines


@pytest.mark.slow
@pytest.mark.timeout(2 * TIMEOUT + 10)
def test_durable_job_finishes_after_sigkill(tmp_path):
    first = subprocess.Popen(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    try:
        lines = _read_until_progress(first, TIMEOUT)
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(TIMEOUT) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        first.stdout.close()
        first.stderr.close()
    started = re.search(r"started job (\S+);", lines[0])
    assert started, lines

    second = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"recovered job {started.group(1)} " in second.stdout, second.stdout
    assert "job completed: total 20100 (expected 20100)" in second.stdout, second.stdout
    store = tmp_path / ".routilux" / "durable_job.sqlite3"
    assert store.stat().st_mode & 0o777 == 0o600
