"""examples/builtin_routines_demo.py runs, exits 0 and prints what happened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "builtin_routines_demo.py")],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    stdout = out.stdout
    assert "triage job: completed" in stdout
    assert "normal entries (2):" in stdout
    assert "rejected lines (2):" in stdout
    assert "**msg**: disk full" in stdout  # 0.10 markdown layout
    assert "batch of 2 (flush): ['slow query', 'slow upload']" in stdout
    assert "'route:debug': 1" in stdout
