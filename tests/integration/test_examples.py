"""The examples run as scripts, exit 0 and print what they promise."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_example(name: str) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_fan_in_out_example():
    stdout = run_example("fan_in_out.py")
    assert "metric=['words', 'lines', 'longest'] value=[11, 2, 'supervisor']" in stdout
    assert "words=5, lines=3, longest=append" in stdout


def test_error_handling_example():
    stdout = run_example("error_handling.py")
    assert "STOP: job failed; sink received []" in stdout
    assert "CONTINUE: job completed; sink received [1, 3]" in stdout
    assert "RETRY: job completed; sink received [1, 3, 2]" in stdout  # retry does not block 3


def test_compat_010_example_runs_unchanged():
    stdout = run_example("compat_010.py")
    assert "job status: completed" in stdout
    assert "urgent: [1] billing: [2] backlog: [3] general: [4]" in stdout
    assert "paged: [1] after 1 retry" in stdout
    assert "error_continued in auditor: ticket 4 has no owner" in stdout
    assert "auditor status: error_continued" in stdout
