"""JobState (fields, history, shared data, persistence, waiting) and ExecutionTracker."""

from __future__ import annotations

import json
import pickle
import threading
from datetime import datetime

import pytest

from routilux import ErrorHandler, ExecutionRecord, ExecutionTracker, JobState, Routine
from routilux.job_state import DEFAULT_HISTORY_LIMIT


class Opaque:
    def __repr__(self):
        return "<Opaque thing>"


# ---------------------------------------------------------------- fields
def test_fields_of_a_fresh_job_state():
    js = JobState("flow-1")
    assert js.flow_id == "flow-1"
    assert isinstance(js.job_id, str) and js.job_id
    assert JobState("flow-1").job_id != js.job_id
    assert js.status == "pending"
    assert js.current_routine_id is None
    assert js.routine_states == {}
    assert js.execution_history == []
    assert js.pause_points == [] and js.pending_tasks == [] and js.deferred_events == []
    assert js.shared_data == {} and js.shared_log == [] and js.output_log == []
    assert js.created_at <= js.updated_at
    assert js.error is None
    assert JobState("f", job_id="fixed").job_id == "fixed"


def test_routine_state_helpers():
    js = JobState("f")
    assert js.get_routine_state("r") is None
    js.update_routine_state("r", {"status": "running", "n": 1})
    js.update_routine_state("r", {"n": 2})
    assert js.get_routine_state("r") == {"status": "running", "n": 2}


def test_execution_history_and_filter():
    js = JobState("f")
    js.record_execution("a", "out", {"v": 1})
    js.record_execution("b", "done", {"v": 2})
    js.record_execution("a", "out", {"v": 3})
    history = js.execution_history
    assert all(isinstance(r, ExecutionRecord) for r in history)
    assert [(r.routine_id, r.event_name, r.data) for r in history] == [
        ("a", "out", {"v": 1}), ("b", "done", {"v": 2}), ("a", "out", {"v": 3}),
    ]
    assert history[0].timestamp <= history[-1].timestamp
    assert [r.data["v"] for r in js.get_execution_history("a")] == [1, 3]
    assert js.get_execution_history("zzz") == []
    copy = js.get_execution_history()
    copy.clear()
    assert len(js.execution_history) == 3


def test_execution_history_is_bounded_and_counts_dropped_records():
    js = JobState("f")
    assert js.history_limit == DEFAULT_HISTORY_LIMIT == 10_000
    js.history_limit = 5
    for i in range(12):
        js.record_execution("r", "e", {"i": i})
    assert [r.data["i"] for r in js.execution_history] == [7, 8, 9, 10, 11]
    assert js.history_dropped == 7
    for i in range(12, 40):
        js.record_execution("r", "e", {"i": i})
    assert len(js.execution_history) == 5
    assert js.history_dropped == 35
    assert [r.data["i"] for r in js.get_execution_history("r")] == [35, 36, 37, 38, 39]


def test_shared_data_and_log():
    js = JobState("f")
    js.update_shared_data("k", 1)
    assert js.get_shared_data("k") == 1
    assert js.get_shared_data("missing", "d") == "d"
    js.append_to_shared_log({"msg": "hello"})
    js.append_to_shared_log({"msg": "t", "timestamp": 5})
    log = js.get_shared_log()
    # 0.10: an ISO string timestamp
    assert log[0]["msg"] == "hello" and datetime.fromisoformat(log[0]["timestamp"])
    assert log[1] == {"msg": "t", "timestamp": 5}
    log.clear()
    assert len(js.shared_log) == 2


# ---------------------------------------------------------------- persistence
def test_save_load_round_trip(tmp_path):
    js = JobState("flow-x")
    js.update_routine_state("a", {"status": "completed", "processed": 3})
    js.record_execution("a", "out", {"v": 1})
    js.update_shared_data("k", [1, 2])
    js.append_to_shared_log({"m": 1})
    js.pause_points.append({"reason": "r"})
    js.deferred_events.append({"routine_id": "a", "event_name": "out", "data": {}})
    js.output_log.append({"routine_id": "a", "output_type": "t", "data": {"x": 1}})
    js.set_status("failed", "boom")
    path = tmp_path / "job.json"
    js.save(str(path))
    json.loads(path.read_text())  # plain JSON
    back = JobState.load(str(path))
    assert back.job_id == js.job_id and back.flow_id == "flow-x"
    assert back.status == "failed" and back.error == "boom"
    assert back.routine_states == {"a": {"status": "completed", "processed": 3}}
    assert [(r.routine_id, r.event_name, r.data) for r in back.execution_history] == [
        ("a", "out", {"v": 1})
    ]
    assert back.shared_data == {"k": [1, 2]}
    assert back.shared_log[0]["m"] == 1
    assert back.pause_points == [{"reason": "r"}]
    assert back.deferred_events == js.deferred_events
    assert back.output_log == js.output_log
    assert back.created_at == js.created_at
    assert back.updated_at == js.updated_at
    assert back.wait(0)  # a loaded terminal job is settled


def test_save_stores_non_json_values_as_repr(tmp_path):
    js = JobState("f")
    js.update_shared_data("obj", Opaque())
    js.update_shared_data("nested", {"inner": [Opaque(), 1]})
    js.update_shared_data("bytes", b"\x00\x01")
    js.update_shared_data("tuple", (1, 2))
    js.record_execution("r", "e", {"thing": Opaque()})
    js.update_routine_state("r", {"err": ValueError("bad")})
    path = tmp_path / "job.json"
    js.save(str(path))  # never a crash at save time
    back = JobState.load(str(path))
    assert back.shared_data["obj"] == "<Opaque thing>"
    assert back.shared_data["nested"] == {"inner": ["<Opaque thing>", 1]}
    assert back.shared_data["bytes"] == repr(b"\x00\x01")
    assert back.shared_data["tuple"] == [1, 2]
    assert back.execution_history[0].data == {"thing": "<Opaque thing>"}
    assert back.routine_states["r"]["err"] == repr(ValueError("bad"))


def test_history_bound_survives_save_load(tmp_path):
    js = JobState("f")
    js.history_limit = 3
    for i in range(10):
        js.record_execution("r", "e", {"i": i})
    path = tmp_path / "j.json"
    js.save(str(path))
    back = JobState.load(str(path))
    assert back.history_limit == 3
    assert back.history_dropped == 7
    assert [r.data["i"] for r in back.execution_history] == [7, 8, 9]


def test_from_dict_rejects_garbage():
    with pytest.raises(ValueError):
        JobState.from_dict({"nope": 1})


def test_pickle_round_trip_keeps_settled_state():
    js = JobState("f")
    js.set_status("completed")
    back = pickle.loads(pickle.dumps(js))
    assert back.status == "completed" and back.wait(0)
    pending = pickle.loads(pickle.dumps(JobState("f")))
    assert not pending.wait(0)


# ---------------------------------------------------------------- waiting
def test_wait_times_out_on_a_pending_job():
    js = JobState("f")
    assert js.wait(0.01) is False
    assert JobState.wait_for_completion(None, js, timeout=0.01) is False


def test_wait_wakes_as_soon_as_the_job_is_done():
    js = JobState("f")
    js.set_status("running")
    woke = []
    started = threading.Event()

    def waiter():
        started.set()
        woke.append(js.wait())  # no timeout: only the status change can wake it

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    assert started.wait(5)
    assert woke == []
    js.set_status("completed")
    t.join(5)
    assert not t.is_alive(), "wait() was not woken by the job's end"
    assert woke == [True]


# ---------------------------------------------------------------- in a flow
class Chain(Routine):
    def __init__(self, fail=False):
        super().__init__()
        self.fail = fail
        self.define_slot("trigger", handler=self.step)
        self.define_slot("in", handler=self.step)
        self.define_event("out")

    def step(self, n=0):
        if self.fail:
            raise ValueError(f"bad {n}")
        self.emit("out", n=n + 1)


def test_every_routine_that_ran_gets_a_routine_state(make_flow):
    flow = make_flow()
    for rid in ("a", "b", "c"):
        flow.add_routine(Chain(), rid)
    flow.add_routine(Chain(), "never")
    flow.connect("a", "out", "b", "in")
    flow.connect("b", "out", "c", "in")
    job = flow.execute("a", {"n": 0})
    assert job.status == "completed"
    assert set(job.routine_states) == {"a", "b", "c"}
    for rid in ("a", "b", "c"):
        state = job.get_routine_state(rid)
        assert state["status"] == "completed"
        assert state["processed"] == 1
        assert state["failed"] == 0
        assert state["last_error"] is None
    assert [(r.routine_id, r.data) for r in job.execution_history] == [
        ("a", {"n": 0}),  # the "start" record with the entry params (0.10)
        ("a", {"n": 1}), ("b", {"n": 2}), ("c", {"n": 3}),
    ]
    assert job.finished_at is not None and job.error is None


def test_failed_routine_state_has_last_error(make_flow):
    flow = make_flow()
    flow.add_routine(Chain(), "a")
    flow.add_routine(Chain(fail=True), "b")
    flow.connect("a", "out", "b", "in")
    job = flow.execute("a", {"n": 0})
    assert job.status == "failed"
    state = job.get_routine_state("b")
    assert state["status"] == "failed"
    assert state["failed"] == 1
    assert "ValueError" in state["last_error"] and "bad 1" in state["last_error"]
    # job.error is a one-line summary naming the routine and the exception.
    assert "\n" not in job.error
    assert "'b'" in job.error and "ValueError" in job.error and "bad 1" in job.error


def test_job_error_is_one_line_even_for_multiline_messages(make_flow):
    class Multi(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=self.go)

        def go(self):
            raise ValueError("first line\nsecond line")

    flow = make_flow()
    flow.add_routine(Multi(), "m")
    job = flow.execute("m")
    assert job.status == "failed"
    assert "first line" in job.error
    assert "\n" not in job.error
    # the full message stays in the failure record
    assert job.failures[0]["message"] == "first line\nsecond line"


def test_history_of_a_job_is_bounded(make_flow):
    class Spray(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=self.spray)
            self.define_event("out")

        def spray(self, count):
            for i in range(count):
                self.emit("out", i=i)

    flow = make_flow()
    flow.add_routine(Spray(), "spray")
    job = flow.execute("spray", {"count": DEFAULT_HISTORY_LIMIT + 50})
    assert job.status == "completed"
    history = job.execution_history
    assert len(history) == DEFAULT_HISTORY_LIMIT
    assert job.history_dropped == 51  # the "start" record and the first 50 emits
    assert history[0].data == {"i": 50}
    assert history[-1].data == {"i": DEFAULT_HISTORY_LIMIT + 49}


def test_save_load_of_a_real_job(make_flow, tmp_path):
    flow = make_flow()
    flow.add_routine(Chain(), "a")
    flow.add_routine(Chain(), "b")
    flow.connect("a", "out", "b", "in")
    job = flow.execute("a", {"n": 0})
    path = tmp_path / "job.json"
    job.save(str(path))
    back = JobState.load(str(path))
    assert back.status == "completed"
    assert back.flow_id == flow.flow_id
    assert set(back.routine_states) == {"a", "b"}
    assert len(back.execution_history) == 3  # start, a's emit, b's emit


# ---------------------------------------------------------------- tracker
def test_execution_tracker_covers_every_routine(make_flow):
    flow = make_flow()
    flow.add_routine(Chain(), "a")
    flow.add_routine(Chain(), "b")
    flow.add_routine(Chain(fail=True), "c")
    flow.set_error_handler(ErrorHandler("continue"))
    flow.connect("a", "out", "b", "in")
    flow.connect("a", "out", "b", "in")
    flow.connect("b", "out", "c", "in")
    job = flow.execute("a", {"n": 0})
    assert job.status == "completed"
    tracker = job.execution_tracker
    assert isinstance(tracker, ExecutionTracker)
    assert tracker.job_id == job.job_id and tracker.flow_id == flow.flow_id
    assert flow.execution_tracker is tracker
    # 0.10: one list of executions per routine (one summary per routine of the job)
    execs = {rid: runs[0] for rid, runs in tracker.routine_executions.items()}
    assert set(execs) == {"a", "b", "c"}
    # a->b connected twice delivers once (0.10)
    assert execs["b"]["steps"] == 1 and execs["b"]["processed"] == 1
    assert execs["c"]["steps"] == 1 and execs["c"]["failed"] == 1
    assert execs["c"]["status"] == "error_continued"  # 0.10's name for CONTINUE
    for perf in execs.values():
        assert perf["end"] >= perf["start"]
        assert perf["duration"] == pytest.approx(perf["end"] - perf["start"])
    assert tracker.get_routine_performance("zzz") is None
    totals = tracker.get_flow_performance()
    assert totals["job_id"] == job.job_id and totals["status"] == "completed"
    assert totals["routines"] == 3 and totals["steps"] == 3 and totals["failed"] == 1
    # The job's span: from its creation to its end.
    span = job.finished_at.timestamp() - job.created_at.timestamp()
    assert totals["duration"] == pytest.approx(span)


def test_history_records_pickled_under_their_old_module_still_load():
    """Checkpoints written before ExecutionRecord moved to its own module name it as
    ``routilux.job_state.ExecutionRecord``; they must still load."""
    record = ExecutionRecord("r", "out", {"x": 1}, timestamp=1_700_000_000.0)
    old = pickle.dumps(record, protocol=0).replace(
        b"routilux.execution_record", b"routilux.job_state"
    )
    assert b"routilux.job_state" in old
    assert pickle.loads(old) == record
