"""§9 of the 0.10 compatibility spec: ``serialize()``/``deserialize()`` on every core
object, callables in serialized data (with the safety rules), moving a paused job
to another host."""

from __future__ import annotations

import copy
import json
import logging
import threading

import pytest

from routilux import (
    ConfigurationError,
    Connection,
    ErrorHandler,
    ErrorStrategy,
    Event,
    ExecutionRecord,
    ExecutionTracker,
    Flow,
    FlowStateError,
    JobState,
    Routine,
    Slot,
)
from routilux.serialization import ExpressionFunction, decode_callable, encode_callable
from tests.compat.compat_helpers import EXECUTIONS, Doubler, Keeper, Starter, double


def round_trip(obj, fresh):
    """serialize -> JSON -> ``fresh.deserialize``; checks the protocol rules."""
    data = obj.serialize()
    assert data["_type"] == type(obj).__name__
    data = json.loads(json.dumps(data))
    before = copy.deepcopy(data)
    assert fresh.deserialize(data) is fresh  # fills the instance and returns it
    assert data == before  # never mutates its input (0.10 popped keys)
    return data


# ---------------------------------------------------------------- shapes
def test_error_handler():
    handler = ErrorHandler(ErrorStrategy.RETRY, 4, 0.5, 3.0, (KeyError,), True)
    handler.retry_count = 2
    data = round_trip(handler, back := ErrorHandler())
    assert {k: data[k] for k in ("strategy", "max_retries", "retry_delay", "retry_backoff",
                                 "retry_count", "is_critical")} == {
        "strategy": "retry", "max_retries": 4, "retry_delay": 0.5, "retry_backoff": 3.0,
        "retry_count": 2, "is_critical": True,
    }
    assert back.retryable_exceptions == (KeyError,) and back.retry_count == 2
    # a 0.10 dict has no retryable_exceptions: (Exception,)
    old = {"_type": "ErrorHandler", "strategy": "continue", "max_retries": 1, "retry_count": 0,
           "is_critical": False, "retry_backoff": 2.0, "retry_delay": 1.0}
    assert ErrorHandler().deserialize(old).retryable_exceptions == (Exception,)
    assert ErrorHandler().strategy is ErrorStrategy.STOP


def test_exception_names_are_restored_only_as_exception_classes():
    data = ErrorHandler("retry").serialize()
    data["retryable_exceptions"] = ["os.system"]
    with pytest.raises(ConfigurationError, match=r"os\.system"):
        ErrorHandler().deserialize(data)


def test_event_and_connection():
    src, dst = Doubler(), Keeper()
    event = src.get_event("output")
    assert round_trip(event, back := Event()) == {
        "_type": "Event", "name": "output", "output_params": ["value"],
    }
    assert back.name == "output" and back.output_params == ["value"]
    link = Connection(event, dst.input_slot, {"value": "v"})
    data = round_trip(link, back := Connection())
    assert data["param_mapping"] == {"value": "v"}
    assert (data["_source_event_name"], data["_target_slot_name"]) == ("output", "input")
    assert (data["_source_routine_id"], data["_target_routine_id"]) == (src._id, dst._id)
    assert back.param_mapping == {"value": "v"} and back.source_event is None
    assert back._source_event_name == "output" and back._target_slot_name == "input"


def test_slot_with_method_function_and_strategy():
    routine = Doubler()
    routine.input_slot.receive({"value": 3})
    data = round_trip(routine.input_slot, Slot())
    assert data["handler"] == {
        "_type": "callable", "callable_type": "method", "class_name": "Doubler",
        "method_name": "work", "object_id": routine._id,
    }
    assert data["_data"] == {"value": [3]} and data["merge_strategy"] == "append"
    standalone = Slot("s", handler=double, merge_strategy=merge_keep_old)
    back = Slot()
    data = round_trip(standalone, back)
    assert data["handler"]["callable_type"] == "function"
    assert back.handler is double and back.merge_strategy is merge_keep_old


def merge_keep_old(old, new):
    return {**new, **old}


def test_routine_round_trip_fills_an_instance():
    routine = Doubler()
    routine.set_config(fn=lambda v: v + 1, limit=3)
    routine.set_error_handler(ErrorHandler("continue"))
    routine.input_slot.receive({"value": 1})
    routine.define_event("extra", ["x"])
    data = routine.serialize()
    assert set(data) == {"_type", "_id", "_config", "_slots", "_events", "_error_handler"}
    assert data["_type"] == "Doubler"
    assert data["_config"]["fn"] == {
        "_type": "lambda_expression", "expression": "v + 1", "params": ["v"],
    }
    back = Doubler()
    round_trip(routine, back)
    assert back._id == routine._id and back.get_config("limit") == 3
    assert back.get_config("fn")(4) == 5  # the lambda works again
    assert back.get_error_handler().strategy is ErrorStrategy.CONTINUE
    assert back.input_slot.data == {"value": [1]}
    assert back.get_event("extra").output_params == ["x"]  # events the instance lacked
    assert back.input_slot.handler == back.work  # handlers stay bound to the instance
    got = []
    back.output_event.connect(Slot("k", handler=lambda value: got.append(value)))
    back.input_slot.receive({"value": 10})
    assert got == [11]


def test_a_callable_with_no_form_is_named():
    routine = Routine()
    routine.set_config(op=ErrorHandler)  # a class is not a function value
    with pytest.raises(ValueError, match=r"config\['op'\]"):
        routine.serialize()
    flow = Flow("unserialized")
    flow.add_routine(routine, "r")
    assert flow.serialize()["routines"]["r"]["unserialized_config"] == ["op"]


def test_execution_record_and_tracker():
    record = ExecutionRecord("r", "out", {"x": 1}, 1_700_000_000.5)
    data = round_trip(record, back := ExecutionRecord())
    assert data["timestamp"] == record.timestamp.isoformat()
    assert (back.routine_id, back.event_name, back.data) == ("r", "out", {"x": 1})
    assert back.timestamp == record.timestamp
    tracker = ExecutionTracker("f")
    tracker.record_event("a", "e")
    round_trip(tracker, ExecutionTracker())


# ---------------------------------------------------------------- callables
ROUTES = [("big", lambda d: d["v"] > 10), ("small", lambda d: d["v"] <= 10)]


def test_inline_lambdas_in_a_list_are_found_by_ast():
    encoded = [encode_callable(fn, expressions=True) for _, fn in ROUTES]
    assert [e["expression"] for e in encoded] == ['d["v"] > 10', 'd["v"] <= 10']
    restored = [decode_callable(e) for e in encoded]
    assert [fn({"v": 11}) for fn in restored] == [True, False]


def test_nested_def_returning_one_expression():
    def inner(data, config):
        """Docstrings are fine."""
        return data["v"] * config["k"]

    encoded = encode_callable(inner, expressions=True)
    assert encoded == {
        "_type": "lambda_expression", "expression": 'data["v"] * config["k"]',
        "params": ["data", "config"],
    }
    assert decode_callable(encoded)({"v": 2}, {"k": 3}) == 6


def test_closure_variables_are_lost_with_a_warning(caplog):
    limit = 5
    with caplog.at_level(logging.WARNING, logger="routilux.serialization"):
        encoded = encode_callable(lambda x: x > limit, expressions=True)
    assert "limit" in caplog.text
    with pytest.raises(ValueError):  # ExpressionEvaluationError: "no match" for a condition
        decode_callable(encoded)(1)


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('true')", "data.__class__", "(lambda: 1)()", "[x for x in data]"],
)
def test_lambda_expressions_go_through_the_safe_interpreter_only(expression):
    with pytest.raises(ConfigurationError):
        decode_callable({"_type": "lambda_expression", "expression": expression,
                         "params": ["data"]})


def test_a_0_10_lambda_expression_without_params():
    # 0.10 stored the body only, its parameter renamed to data where it was x/item/...
    fn = decode_callable({"_type": "lambda_expression", "expression": "x > 3"})
    assert fn(5) is True and fn(1) is False
    assert fn.encode() == {"_type": "lambda_expression", "expression": "x > 3"}


@pytest.mark.parametrize(
    ("module", "name"),
    [("os", "system"), ("subprocess", "Popen"), ("tests.compat.compat_helpers", "Starter")],
)
def test_function_references_restore_plain_functions_only(module, name):
    with pytest.raises(ConfigurationError, match="not a plain function"):
        decode_callable({"_type": "callable", "callable_type": "function", "module": module,
                         "name": name})


def test_method_references_bind_to_the_routine_being_filled():
    keeper = Keeper()
    ref = {"_type": "callable", "callable_type": "method", "class_name": "Keeper",
           "method_name": "keep", "object_id": "0x1"}
    assert decode_callable(ref, keeper) == keeper.keep
    with pytest.raises(ConfigurationError):
        decode_callable({**ref, "method_name": "nope"}, keeper)


def test_restored_lambdas_pickle_for_process_routines():
    import pickle

    fn = ExpressionFunction(["v"], "v * 3")
    assert pickle.loads(pickle.dumps(fn))(2) == 6


# ---------------------------------------------------------------- JobState and Flow
def test_job_state_round_trip_and_0_10_file(tmp_path):
    job = JobState("f")
    job.record_execution("r", "out", {"x": 1})
    data = round_trip(job, back := JobState())
    assert data["execution_history"][0]["_type"] == "ExecutionRecord"
    assert isinstance(data["execution_history"][0]["timestamp"], str)
    assert back.job_id == job.job_id and back.execution_history == job.execution_history
    assert JobState.deserialize(data).job_id == job.job_id  # the class form: a new job
    old = {  # the shape routilux 0.10 writes
        "_type": "JobState", "deferred_events": [], "pending_tasks": [], "pause_points": [],
        "routine_states": {"r": {"status": "completed"}},
        "execution_history": [
            {"_type": "ExecutionRecord", "event_name": "start", "routine_id": "r",
             "timestamp": "2025-01-02T03:04:05.000006", "data": {"a": 1}},
        ],
        "shared_log": [{"m": 1, "timestamp": "2025-01-02T03:04:06.000000"}],
        "flow_id": "f010", "created_at": "2025-01-02T03:04:05.000000",
        "shared_data": {"k": 2}, "job_id": "job-010", "current_routine_id": "r",
        "updated_at": "2025-01-02T03:04:06.000000", "output_log": [], "status": "completed",
    }
    path = tmp_path / "job010.json"
    path.write_text(json.dumps(old))
    loaded = JobState.load(str(path))
    [record] = loaded.execution_history
    assert record.timestamp.isoformat() == "2025-01-02T03:04:05.000006"
    assert (loaded.status, loaded.flow_id, loaded.shared_data) == ("completed", "f010", {"k": 2})
    assert loaded.wait(0)  # a finished job does not block waiters


def test_flow_serialize_encodes_config_callables_and_deserializes_into_an_instance(make_flow):
    flow = make_flow(flow_id="ser")
    doubler = Doubler()
    doubler.set_config(fn=lambda v: v * 10)
    doubler.set_error_handler(ErrorHandler("retry", max_retries=1))
    flow.add_routine(Starter(), "start")
    flow.add_routine(doubler, "double")
    flow.add_routine(Keeper(), "keep")
    flow.connect("start", "output", "double", "input")
    flow.connect("double", "output", "keep", "input", {"value": "value"})
    data = json.loads(json.dumps(flow.serialize()))
    assert data["_type"] == "Flow" and data["format"] == "routilux.flow/1"
    assert data["routines"]["double"]["unserialized_config"] == []
    target = make_flow()
    assert target.deserialize(data) is target  # the 0.10 pattern fills the instance
    assert target.flow_id == "ser" and set(target.routines) == {"start", "double", "keep"}
    assert target.routines["double"].get_error_handler().max_retries == 1
    assert Flow.deserialize(data).flow_id == "ser"  # the class form builds a new flow
    job = target.execute("start", {"values": [1, 2]})
    assert job.status == "completed"
    assert target.routines["keep"].values == [10, 20]


def test_deserialize_into_a_flow_running_a_job_is_refused(make_flow):
    release = threading.Event()

    class Gate(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=lambda: release.wait(10))

    flow = make_flow()
    flow.add_routine(Gate(), "g")
    job = flow.execute("g", wait=False)
    try:
        with pytest.raises(FlowStateError, match="idle"):
            flow.deserialize(Flow("other").serialize())
    finally:
        release.set()
    assert job.wait(10)


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_moving_a_paused_job_to_another_host(make_flow, execution):
    # Host A: the job pauses from a handler (0.10 pattern), flow and job are saved.
    host_a = make_flow(flow_id="moving")
    host_a.add_routine(Starter(), "start")
    host_a.add_routine(Doubler(), "double", execution=execution)
    host_a.add_routine(Keeper(), "keep")
    host_a.connect("start", "output", "double", "input")
    host_a.connect("double", "output", "keep", "input")
    job = host_a.execute("start", {"values": [1, 2], "pause": True})
    assert job.status == "paused"
    assert [t["routine_id"] for t in job.pending_tasks] == ["double", "double"]
    assert job.pause_points[-1]["reason"] == "handover"
    assert job.pause_points[-1]["checkpoint"] == {"at": "start"}
    flow_data = json.dumps(host_a.serialize())
    job_data = json.dumps(job.serialize())
    host_a.shutdown()
    # Host B: fresh objects from the JSON; resume continues the job.
    host_b = make_flow()
    host_b.deserialize(json.loads(flow_data))
    moved = JobState()
    moved.deserialize(json.loads(job_data))
    assert moved.status == "paused"
    assert host_b.resume(moved) is moved
    assert JobState.wait_for_completion(host_b, moved, timeout=30)
    assert moved.status == "completed", moved.error
    assert sorted(host_b.routines["keep"].values) == [2, 4, 200]  # 100 was deferred
