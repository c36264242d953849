"""§10 and §11 of the 0.10 compatibility spec: Flow, JobState, Slot, Routine and
output-handler details, and the deliberate differences (one clear error line)."""

from __future__ import annotations

import pickle
import queue
import threading
import warnings
from datetime import datetime

import pytest

from routilux import (
    CallbackOutputHandler,
    ConfigurationError,
    ExecutionRecord,
    Flow,
    JobState,
    OutputHandler,
    QueueOutputHandler,
    Routine,
    Slot,
)
from tests.compat.compat_helpers import EXECUTIONS, Collector, Producer, Worker, pipeline, run


# ---------------------------------------------------------------- ExecutionRecord
def test_execution_record_constructor_and_timestamp():
    empty = ExecutionRecord()
    assert (empty.routine_id, empty.event_name, empty.data) == ("", "", {})
    assert isinstance(empty.timestamp, datetime)
    when = datetime(2025, 1, 2, 3, 4, 5, 6)
    assert ExecutionRecord("r", "e", None, when).timestamp == when
    assert ExecutionRecord("r", "e", None, when.timestamp()).timestamp == when
    record = ExecutionRecord("r", "e", {"x": 1}, when)
    assert pickle.loads(pickle.dumps(record)) == record


# ---------------------------------------------------------------- Routine
def test_calling_a_routine_is_a_deprecated_no_op():
    routine = Producer()
    assert callable(routine)
    with pytest.warns(DeprecationWarning, match="does nothing"):
        assert routine(values=[1]) is None


def test_repr_uses_square_brackets():
    routine = Producer()
    assert repr(routine) == f"{type(routine).__name__}[{routine._id}]"


def test_current_flow_in_and_out_of_steps(make_flow):
    seen = []

    class Probe(Routine):
        def __init__(self):
            super().__init__()
            self.trigger_slot = self.define_slot("trigger", handler=self.go)

        def go(self, **kwargs):
            seen.append(getattr(self, "_current_flow", None))  # the 0.10 guides' idiom

    probe = Probe()
    assert probe._current_flow is None
    flow = make_flow()
    flow.add_routine(probe, "probe")
    assert probe._current_flow is flow  # the flow it was last added to
    assert run(flow, "probe", {}).status == "completed"
    assert seen == [flow]
    assert "_current_flow" not in vars(probe)  # not stored: process routines stay small
    with pytest.raises(AttributeError):
        probe._current_flow = None


def test_a_routine_object_can_be_added_once(make_flow):
    # KEEP 9
    flow = make_flow()
    routine = Collector()
    flow.add_routine(routine, "a")
    with pytest.raises(ConfigurationError, match=r"0\.10 ran one object under two ids"):
        flow.add_routine(routine, "b")


# ---------------------------------------------------------------- Flow
@pytest.mark.parametrize("execution", EXECUTIONS)
@pytest.mark.parametrize("outcome", ["completed", "failed", "cancelled"])
def test_pause_resume_cancel_of_a_finished_job_leave_it(make_flow, execution, outcome):
    worker = Worker(fail_first=-1 if outcome == "failed" else 0)
    flow, _, _ = pipeline(make_flow, execution, worker)
    job = run(flow)
    if outcome == "cancelled":
        job = flow.execute("producer", {"values": [1]}, wait=False)
        flow.cancel(job)
        assert job.wait(10)
        outcome = job.status  # it may have finished before the cancel
    assert job.status == outcome
    for shut_down in (False, True):
        if shut_down:
            flow.shutdown()
        assert flow.resume(job) is job and job.status == outcome
        assert flow.pause(job) is job and job.status == outcome
        assert flow.cancel(job) is job and job.status == outcome
        assert flow.resume(job).status == outcome  # execute -> pause -> resume -> wait


def test_execute_takes_0_10_positional_arguments(make_flow):
    flow, _, collector = pipeline(make_flow)
    with pytest.warns(DeprecationWarning, match="set_execution_strategy"):
        job = flow.execute("producer", {"values": [1]}, "concurrent")
    assert job.status == "completed" and flow.execution_strategy == "sequential"
    job = flow.execute("producer", {"values": [2]}, None, 30)  # timeout is the 4th
    assert job.status == "completed" and collector.results == [{"value": 2}, {"value": 4}]


def test_wait_for_completion_of_one_job_and_shutdown_order(make_flow):
    flow, _, _ = pipeline(make_flow)
    job = flow.execute("producer", {"values": [1]}, wait=False)
    assert flow.wait_for_completion(timeout=10, job_state=job)
    assert job.status == "completed"
    flow.shutdown(True)  # 0.10 order: wait first; timeout=None means 10 s
    flow.shutdown(wait=True, timeout=None)


def test_max_workers_reads_1_for_a_sequential_flow():
    assert Flow().max_workers == 1
    assert Flow(execution_strategy="sequential", max_workers=7).max_workers == 1
    flow = Flow(execution_strategy="concurrent", max_workers=7)
    assert flow.max_workers == 7
    flow.set_execution_strategy("sequential")
    assert flow.max_workers == 1


def test_missing_entry_slot_says_what_0_10_did(make_flow):
    # KEEP 1: one ConfigurationError line naming the slots and what to write.
    flow = make_flow()
    flow.add_routine(Collector(), "c")
    with pytest.raises(ConfigurationError) as info:
        flow.execute("c")
    message = str(info.value)
    assert "\n" not in message and "['input']" in message
    assert "0.10" in message and "entry_slot=" in message


# ---------------------------------------------------------------- JobState
def test_job_state_small_items(make_flow):
    assert JobState().flow_id == ""
    job = JobState("f")
    job.append_to_shared_log({"level": "info", "m": 1})
    job.append_to_shared_log({"level": "error", "m": 2})
    assert datetime.fromisoformat(job.shared_log[0]["timestamp"])
    assert [e["m"] for e in job.get_shared_log(lambda e: e["level"] == "error")] == [2]
    assert len(job.get_shared_log()) == 2
    with pytest.raises(ValueError, match="dict"):
        job.append_to_shared_log("not a dict")


def test_pause_points_deferred_events_and_output_log_timestamps(make_flow):
    started, release = threading.Event(), threading.Event()

    class Talker(Routine):
        def __init__(self):
            super().__init__()
            self.trigger_slot = self.define_slot("trigger", handler=self.talk)
            self.output_event = self.define_event("output")

        def talk(self, **kwargs):
            self.send_output("log", text="hi")
            self.emit_deferred_event("output", later=True)
            started.set()
            release.wait(10)

    flow = make_flow()
    flow.add_routine(Talker(), "t")
    job = flow.execute("t", wait=False)
    assert started.wait(10)
    flow.pause(job, "a reason", wait=False, checkpoint={"step": 1})
    release.set()
    assert job.wait(10) and job.status == "paused"
    point = job.pause_points[-1]
    assert point["reason"] == "a reason" and point["checkpoint"] == {"step": 1}
    datetime.fromisoformat(point["timestamp"])
    datetime.fromisoformat(job.deferred_events[0]["timestamp"])
    datetime.fromisoformat(job.output_log[0]["timestamp"])
    flow.resume(job)
    assert job.wait(10) and job.status == "completed"
    flow.pause(job)  # finished: no pause point added
    assert job.pause_points == [point]


# ---------------------------------------------------------------- Slot
def test_call_handler_merges_and_swallows_as_asked(caplog):
    got = []
    slot = Slot("s", handler=lambda **kw: got.append(kw), merge_strategy="append")
    slot.call_handler({"a": 1})
    slot.call_handler({"a": 2})
    assert got == [{"a": [1]}, {"a": [1, 2]}] and slot._data == {"a": [1, 2]}
    failing = Slot("f", handler=lambda **kw: 1 / 0)
    assert failing.call_handler({"x": 1}) is None  # logged and swallowed (0.10)
    assert "ZeroDivisionError" in caplog.text
    with pytest.raises(ZeroDivisionError):
        failing.call_handler({"x": 1}, propagate_exceptions=True)
    with pytest.raises(ZeroDivisionError):
        failing.receive({"x": 1})  # KEEP 3: standalone exceptions propagate


def test_merge_data_and_the_append_fix():
    slot = Slot("s", merge_strategy="append")
    slot._data = {"text": "ab", "n": 5, "l": [1]}
    assert slot._merge_data({"text": "c", "n": 6, "l": 2, "new": 0}) == {
        "text": ["ab", "c"], "n": [5, 6], "l": [1, 2], "new": [0],
    }
    override = Slot("o")
    assert override._merge_data({"r": 2}) == {"r": 2} and override._data == {"r": 2}


def test_unknown_merge_strategy_says_what_0_10_did():
    # KEEP 4
    with pytest.raises(ConfigurationError, match=r"0\.10 silently used 'override'"):
        Slot("s", merge_strategy="apend")


def test_outside_a_flow_send_output_does_nothing_and_deferred_emits_at_once():
    # KEEP 11
    got = []
    producer = Producer()
    producer.output_event.connect(Slot("k", handler=lambda value: got.append(value)))
    producer.send_output("log", x=1)
    producer.emit_deferred_event("output", value=7)
    assert got == [7]


# ---------------------------------------------------------------- output handlers
class Reporter(Routine):
    def __init__(self):
        super().__init__()
        self.trigger_slot = self.define_slot("trigger", handler=self.report)

    def report(self, **kwargs):
        self.send_output("result", value=1)


def test_output_handlers_get_the_0_10_timestamp(make_flow):
    five, four = [], []
    seen = []

    class WithTimestamp(OutputHandler):
        def handle(self, job_id, routine_id, output_type, data, timestamp=None):
            seen.append(timestamp)

    class Old(OutputHandler):
        def handle(self, job_id, routine_id, output_type, data):
            seen.append("old")

    handlers = [
        CallbackOutputHandler(lambda job, rid, kind, data, ts: five.append(ts)),
        CallbackOutputHandler(lambda job, rid, kind, data: four.append(data)),
        QueueOutputHandler(queue.Queue()),
        WithTimestamp(),
        Old(),
    ]
    for handler in handlers:
        flow = make_flow()
        flow.add_routine(Reporter(), "r")
        flow.set_output_handler(handler)
        assert run(flow, "r", {}).status == "completed"
    assert isinstance(five[0], datetime) and four == [{"value": 1}]
    [entry] = handlers[2].get_all()
    assert datetime.fromisoformat(entry["timestamp"]) and entry["data"] == {"value": 1}
    assert isinstance(seen[0], datetime) and seen[1] == "old"


def test_deprecation_warnings_name_what_to_write(make_flow):
    flow, _, _ = pipeline(make_flow)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flow.execute("producer", {"values": [1]}, "sequential")
    assert any("set_execution_strategy" in str(w.message) for w in caught)


def test_extract_input_data_follows_0_10():
    routine = Routine()
    assert routine._extract_input_data("text") == "text"
    assert routine._extract_input_data(data="x") == "x"
    assert routine._extract_input_data(None, text="value") == "value"
    assert routine._extract_input_data(None, a=1, b=2) == {"a": 1, "b": 2}
    assert routine._extract_input_data() == {}
