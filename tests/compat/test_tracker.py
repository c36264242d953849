"""§6 of the 0.10 compatibility spec: ``ExecutionTracker`` as the 0.10 data class
and as the per-job view."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from routilux import ErrorHandler, ExecutionTracker
from tests.compat.compat_helpers import EXECUTIONS, Worker, pipeline, run


# ---------------------------------------------------------------- standalone (0.10 class)
def test_standalone_tracker_records_like_0_10():
    tracker = ExecutionTracker("flow-1")
    assert (tracker.flow_id, tracker.routine_executions, tracker.event_flow) == ("flow-1", {}, [])
    assert tracker.performance_metrics == {}
    tracker.record_routine_start("a", {"p": 1})
    tracker.record_routine_start("b")
    [run_a] = tracker.routine_executions["a"]
    assert run_a["status"] == "running" and run_a["params"] == {"p": 1}
    assert tracker.routine_executions["b"][0]["params"] == {}
    tracker.record_routine_end("a", result={"r": 1})
    tracker.record_routine_end("b", status="failed", error="boom")
    tracker.record_routine_end("zzz")  # no exec: nothing happens
    assert run_a["status"] == "completed" and run_a["result"] == {"r": 1}
    assert datetime.fromisoformat(run_a["end_time"]) >= datetime.fromisoformat(run_a["start_time"])
    span = datetime.fromisoformat(run_a["end_time"]) - datetime.fromisoformat(run_a["start_time"])
    assert run_a["execution_time"] == pytest.approx(span.total_seconds())
    assert "error" not in run_a
    assert tracker.routine_executions["b"][0]["error"] == "boom"
    tracker.record_event("a", "out", "b", {"x": 1})
    tracker.record_event("a", "out")
    assert tracker.event_flow[0]["target_routine_id"] == "b"
    assert tracker.event_flow[1]["data"] == {}
    assert tracker.event_flow[1]["target_routine_id"] is None
    perf = tracker.get_routine_performance("a")
    assert perf["total_executions"] == 1 and perf["completed"] == 1 and perf["failed"] == 0
    assert perf["success_rate"] == 1.0
    assert perf["min_execution_time"] <= perf["avg_execution_time"] <= perf["max_execution_time"]
    assert tracker.get_routine_performance("b")["failed"] == 1
    assert tracker.get_routine_performance("nope") is None
    flow_perf = tracker.get_flow_performance()
    assert flow_perf["total_routines"] == 2 and flow_perf["total_events"] == 2
    assert set(flow_perf) == {
        "total_routines", "total_events", "total_execution_time", "avg_routine_time",
    }


def test_flow_performance_sums_the_non_zero_averages():
    tracker = ExecutionTracker()
    tracker.routine_executions = {
        "a": [{"status": "completed", "execution_time": 1.0}, {"status": "completed",
                                                                "execution_time": 3.0}],
        "b": [{"status": "completed", "execution_time": 0}],
        "c": [{"status": "running"}],
    }
    perf = tracker.get_flow_performance()
    assert perf["total_routines"] == 3
    assert perf["total_execution_time"] == 2.0 and perf["avg_routine_time"] == 2.0
    assert ExecutionTracker().get_flow_performance() == {
        "total_routines": 0, "total_events": 0, "total_execution_time": 0, "avg_routine_time": 0,
    }


def test_standalone_serialize_round_trip():
    tracker = ExecutionTracker("f")
    tracker.record_routine_start("a", {"p": 1})
    tracker.record_routine_end("a")
    tracker.record_event("a", "out", None, {"x": 1})
    data = json.loads(json.dumps(tracker.serialize()))
    assert data["_type"] == "ExecutionTracker"
    back = ExecutionTracker().deserialize(data)
    assert back.flow_id == "f" and back.routine_executions == tracker.routine_executions
    assert back.event_flow == tracker.event_flow


# ---------------------------------------------------------------- job view
@pytest.mark.parametrize("execution", EXECUTIONS)
def test_job_view_has_the_0_10_shapes(make_flow, execution):
    flow, worker, _ = pipeline(make_flow, execution)
    job = run(flow, params={"values": [1, 2]})
    tracker = job.execution_tracker
    assert tracker is flow.execution_tracker and tracker.flow_id == flow.flow_id
    execs = tracker.routine_executions
    assert set(execs) == {"producer", "worker", "collector"}
    [summary] = execs["producer"]
    assert summary["routine_id"] == "producer" and summary["params"] == {"values": [1, 2]}
    assert summary["status"] == "completed"
    assert datetime.fromisoformat(summary["start_time"]) <= datetime.fromisoformat(
        summary["end_time"]
    )
    [work] = execs["worker"]
    assert work["params"] == {} and work["steps"] == 2 and work["execution_time"] > 0
    events = tracker.event_flow
    assert [(e["event_name"], e["data"]) for e in events] == [
        ("output", {"value": 1}), ("output", {"value": 2}),
        ("output", {"value": 2}), ("output", {"value": 4}),
    ]  # sequential: breadth-first
    first = events[0]
    assert first["source_routine_id"] == flow.routines["producer"]._id
    assert first["target_routine_id"] == worker._id
    assert "job_state" not in first["data"]  # 0.10 leaked the JobState object here
    datetime.fromisoformat(first["timestamp"])
    perf = tracker.get_routine_performance("worker")
    assert perf["total_executions"] == 2 and perf["completed"] == 2 and perf["failed"] == 0
    assert perf["success_rate"] == 1.0
    assert 0 <= perf["min_execution_time"] <= perf["avg_execution_time"]
    assert perf["avg_execution_time"] <= perf["max_execution_time"]
    flow_perf = tracker.get_flow_performance()
    assert flow_perf["total_routines"] == 3 and flow_perf["total_events"] == 4
    assert flow_perf["job_id"] == job.job_id and flow_perf["steps"] == 5  # ours stay


def test_job_view_status_and_error(make_flow):
    flow, _, _ = pipeline(make_flow, worker=Worker(fail_first=-1), handler=ErrorHandler("continue"))
    job = run(flow)
    [work] = job.execution_tracker.routine_executions["worker"]
    assert work["status"] == "error_continued" and work["error"] == "bad value 1"
    assert job.execution_tracker.get_routine_performance("worker")["success_rate"] == 0


def test_recording_into_a_job_view_is_kept_and_merged(make_flow):
    flow, _, _ = pipeline(make_flow)
    job = run(flow)
    tracker = job.execution_tracker
    tracker.record_routine_start("manual", {"a": 1})
    tracker.record_routine_end("manual")
    tracker.record_event("manual", "note", None, {"n": 1})
    assert tracker.routine_executions["manual"][0]["status"] == "completed"
    assert tracker.event_flow[-1]["event_name"] == "note"
    snapshot = json.loads(json.dumps(tracker.serialize()))
    assert set(snapshot["routine_executions"]) == {"producer", "worker", "collector", "manual"}
    assert len(snapshot["event_flow"]) == 3
