"""The benchmark suite runs end to end in smoke mode, so its scripts cannot rot.

No timing is asserted: smoke sizes are too small to mean anything, and the
machine may be busy.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SUITE = BENCHMARKS / "suite.py"
SCALING = BENCHMARKS / "scaling.py"
WORKLOADS = [
    "chain_concurrent",
    "chain_sequential",
    "process_messages",
    "process_ping_pong",
    "kill_redelivered",
    "process_cold_start",
    "store_serial_jobs",
    "store_tiny_jobs",
    "store_concurrent_jobs",
    "cpu_fanout",
]


def smoke_rows(script: Path, cwd: Path) -> list[dict]:
    """Run a benchmark script with ``--smoke --json``; its JSON lines."""
    out = subprocess.run(
        [sys.executable, str(script), "--smoke", "--json"],
        capture_output=True,
        text=True,
        timeout=55,
        cwd=cwd,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.slow
def test_suite_smoke_prints_one_json_row_per_workload(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SUITE), "--smoke"],
        capture_output=True,
        text=True,
        timeout=55,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [row["workload"] for row in rows] == WORKLOADS
    for row in rows:
        assert row["error"] is None, row
        assert row["smoke"] is True and row["met"] is None, row
        assert row["ours"] > 0, row
        assert len(row["loadavg_before"]) == 3 and len(row["loadavg_after"]) == 3
        if row["workload"] == "chain_sequential":  # no routilux 0.10 venv in smoke mode
            assert row["baseline"] is None and "skipped" in row["note"], row
        else:
            assert row["baseline"] > 0 and row["ratio"] > 0, row
    assert "workload" in out.stdout.splitlines()[2]  # the human table's header


def test_suite_refuses_an_unknown_workload():
    out = subprocess.run(
        [sys.executable, str(SUITE), "--only", "no_such_workload"],
        capture_output=True,
        text=True,
        timeout=55,
    )
    assert out.returncode == 2
    assert "invalid choice: 'no_such_workload'" in out.stderr


@pytest.mark.slow
def test_scaling_curves_smoke_print_every_curve(tmp_path):
    points = smoke_rows(SCALING, tmp_path)
    assert [p["curve"] for p in points] == ["memory"] * 2 + ["chain_length"] * 2 + [
        "concurrent_jobs"
    ] * 2
    for point in points:
        if point["curve"] == "memory":
            assert point["idle_python_child_mib"] > 0, point
        else:
            assert point["ours_msg_s"] > 0 and point["baseline_msg_s"] > 0, point
    process = points[1]
    assert process["child_mib_per_routine"] > 0, "each process routine has a child"


@pytest.mark.slow
def test_settings_costs_smoke_print_one_row_per_setting(tmp_path):
    rows = smoke_rows(BENCHMARKS / "settings.py", tmp_path)
    assert len(rows) == 9 and rows[0]["setting"] == "record_history=False"
    for row in rows:
        assert row["big_job_ratio"] > 0 and row["tiny_jobs_ratio"] > 0, row


@pytest.mark.slow
def test_backlog_cuts_smoke_prints_its_row(tmp_path):
    (row,) = smoke_rows(BENCHMARKS / "backlog_cuts.py", tmp_path)
    assert row["ours_stall_ms"] > 0 and row["baseline_stall_ms"] > 0 and row["cuts_per_run"] >= 1


@pytest.mark.slow
def test_pickling_smoke_prints_its_three_rows(tmp_path):
    rows = smoke_rows(BENCHMARKS / "pickling.py", tmp_path)
    assert [row["workload"] for row in rows] == ["history_record", "history_pickle", "queue_pickle"]
    for row in rows:
        assert row["ours_ms"] > 0 and row["baseline_ms"] > 0, row


@pytest.mark.slow
def test_captured_state_smoke_prints_its_two_rows(tmp_path):
    rows = smoke_rows(BENCHMARKS / "captured_state.py", tmp_path)
    assert [row["workload"] for row in rows] == ["method_calls", "chain_jobs"]
    for row in rows:
        assert row["ours"] > 0 and row["baseline"] > 0, row
