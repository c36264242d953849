"""The examples run as scripts (in a temporary directory), exit 0 and print what they
promise."""

from __future__ import annotations

from helpers import run_example


def stdout_of(name: str, cwd) -> str:
    out = run_example(name, cwd=cwd, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_basic_example_runs(tmp_path):
    stdout = stdout_of("basic_example.py", tmp_path)
    assert "completed" in stdout
    assert "'words': 6" in stdout


def test_fan_in_out_example(tmp_path):
    stdout = stdout_of("fan_in_out.py", tmp_path)
    assert "metric=['words', 'lines', 'longest'] value=[11, 2, 'supervisor']" in stdout
    assert "words=5, lines=3, longest=append" in stdout


def test_error_handling_example(tmp_path):
    stdout = stdout_of("error_handling.py", tmp_path)
    assert "STOP: job failed; sink received []" in stdout
    assert "CONTINUE: job completed; sink received [1, 3]" in stdout
    assert "RETRY: job completed; sink received [1, 3, 2]" in stdout  # retry does not block 3


def test_compat_010_example_runs_unchanged(tmp_path):
    stdout = stdout_of("compat_010.py", tmp_path)
    assert "job status: completed" in stdout
    assert "urgent: [1] billing: [2] backlog: [3] general: [4]" in stdout
    assert "paged: [1] after 1 retry" in stdout
    assert "error_continued in auditor: ticket 4 has no owner" in stdout
    assert "auditor status: error_continued" in stdout


def test_builtin_routines_demo_runs(tmp_path):
    stdout = stdout_of("builtin_routines_demo.py", tmp_path)
    assert "triage job: completed" in stdout
    assert "normal entries (2):" in stdout
    assert "rejected lines (2):" in stdout
    assert "**msg**: disk full" in stdout  # 0.10 markdown layout
    assert "batch of 2 (flush): ['slow query', 'slow upload']" in stdout
    assert "'route:debug': 1" in stdout

