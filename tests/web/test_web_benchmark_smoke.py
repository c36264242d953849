"""The web monitor benchmark runs end to end in smoke mode, so it cannot rot.

No figure is asserted: smoke sizes are too small to mean anything.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "web_monitor.py"


@pytest.mark.slow
def test_web_monitor_benchmark_smoke(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke"],
        capture_output=True, text=True, timeout=55, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for words in ("no monitor", "job-list clients", "all-events clients", "SSE latency p50",
                  "first page", "status=failed", "process RSS"):
        assert words in text, (words, text)
    assert "(0 events read)" not in text, "the SSE clients read events"
