"""examples/durable_job.py survives a SIGKILL: run again, it finishes with the right total."""

from __future__ import annotations

import re
import signal

import pytest
from helpers import run_example, start_example

TIMEOUT = 60.0


@pytest.mark.slow
@pytest.mark.timeout(2 * TIMEOUT + 10)
def test_durable_job_finishes_after_sigkill(tmp_path):
    first = start_example("durable_job.py", cwd=tmp_path)
    try:
        first.until_line(lambda line: line.startswith("progress:"), timeout=TIMEOUT)
        first.kill()
        assert first.wait(TIMEOUT) == -signal.SIGKILL
    finally:
        first.close()
    started = re.search(r"started job (\S+);", "\n".join(first.seen))
    assert started, first.seen

    second = run_example("durable_job.py", cwd=tmp_path, timeout=TIMEOUT)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"recovered job {started.group(1)} " in second.stdout, second.stdout
    assert "job completed: total 20100 (expected 20100)" in second.stdout, second.stdout
    store = tmp_path / ".routilux" / "durable_job.sqlite3"
    assert store.stat().st_mode & 0o777 == 0o600
