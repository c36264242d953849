"""Flow graph building: add_routine, connect, validation, serialization."""

from __future__ import annotations

import json
import threading

import pytest

from routilux import ConfigurationError, Connection, ErrorHandler, Flow, JobState, Routine


class Src(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["value"])
        self.define_event("other")

    def go(self, value=1):
        self.emit("out", value=value * self.get_config("factor", 1))


class Dst(Routine):
    def __init__(self):
        super().__init__()
        self.got = []
        self.define_slot("in", handler=self.take)
        self.define_slot("aux")

    def take(self, value):
        self.got.append(value)


def test_flow_defaults():
    flow = Flow()
    assert isinstance(flow.flow_id, str) and flow.flow_id
    assert Flow().flow_id != flow.flow_id
    assert flow.execution_strategy == "sequential"
    assert flow.max_workers == 1  # 0.10: a sequential flow reads 1
    assert Flow(execution_strategy="concurrent").max_workers == 5
    assert flow.execution_timeout is None
    assert flow.routines == {} and flow.connections == []
    named = Flow("my-flow", "concurrent", 3, 2.5)
    assert (named.flow_id, named.execution_strategy, named.max_workers) == (
        "my-flow", "concurrent", 3,
    )
    assert named.execution_timeout == 2.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"execution_strategy": "parallel"},
        {"max_workers": 0},
        {"execution_timeout": 0},
        {"execution_timeout": -1},
        {"max_queued_per_routine": 0},
    ],
)
def test_invalid_flow_settings_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        Flow(**kwargs)


def test_building_a_flow_starts_no_thread():
    before = set(threading.enumerate())
    flow = Flow()
    flow.add_routine(Src(), "src")
    flow.add_routine(Dst(), "dst")
    flow.connect("src", "out", "dst", "in")
    flow.metrics()
    assert set(threading.enumerate()) == before


def test_add_routine_returns_the_id_and_defaults_to_routine_id():
    flow = Flow()
    src = Src()
    assert flow.add_routine(src) == src._id
    assert flow.get_routine(src._id) is src
    dst = Dst()
    assert flow.add_routine(dst, "dst") == "dst"
    assert flow.routines == {src._id: src, "dst": dst}
    assert flow.get_routine("nope") is None


def test_duplicate_routine_id_names_existing_routines():
    flow = Flow()
    flow.add_routine(Src(), "a")
    flow.add_routine(Src(), "b")
    with pytest.raises(ValueError, match=r"'a'.*\['a', 'b'\]"):
        flow.add_routine(Src(), "a")


def test_step_timeout_needs_a_process_routine():
    with pytest.raises(ValueError, match="process"):
        Flow().add_routine(Src(), "src", timeout=1.0)


def test_same_routine_object_twice_is_rejected():
    flow = Flow()
    src = Src()
    flow.add_routine(src, "a")
    with pytest.raises(ValueError, match="'a'"):
        flow.add_routine(src, "b")


@pytest.mark.parametrize(
    "routine, kwargs",
    [
        ("not a routine", {}),
        (None, {}),
        (Src(), {"execution": "fiber"}),
        (Src(), {"workers": 0}),
        (Src(), {"timeout": 0}),
        (Src(), {"routine_id": ""}),
    ],
)
def test_add_routine_validation(routine, kwargs):
    with pytest.raises(ConfigurationError):
        Flow().add_routine(routine, **kwargs)


def build():
    flow = Flow("f")
    flow.add_routine(Src(), "src")
    flow.add_routine(Dst(), "dst")
    return flow


def test_connect_returns_a_registered_connection():
    flow = build()
    conn = flow.connect("src", "out", "dst", "in", {"value": "value"})
    assert isinstance(conn, Connection)
    assert flow.connections == [conn]
    assert conn.source_event is flow.get_routine("src").get_event("out")
    assert conn.target_slot is flow.get_routine("dst").get_slot("in")
    assert conn.param_mapping == {"value": "value"}


def test_connect_unknown_source_routine_names_routines():
    with pytest.raises(ValueError, match=r"'ghost'.*\['dst', 'src'\]"):
        build().connect("ghost", "out", "dst", "in")


def test_connect_unknown_target_routine_names_routines():
    with pytest.raises(ValueError, match=r"'ghost'.*\['dst', 'src'\]"):
        build().connect("src", "out", "ghost", "in")


def test_connect_unknown_event_names_events():
    with pytest.raises(ValueError, match=r"'nope'.*\['other', 'out'\]"):
        build().connect("src", "nope", "dst", "in")


def test_connect_unknown_slot_names_slots():
    with pytest.raises(ValueError, match=r"'nope'.*\['aux', 'in'\]"):
        build().connect("src", "out", "dst", "nope")


def test_failed_connect_leaves_the_graph_unchanged():
    flow = build()
    with pytest.raises(ValueError):
        flow.connect("src", "out", "dst", "nope")
    assert flow.connections == []
    assert flow.get_routine("src").get_event("out").connections == []


def test_execute_validates_its_arguments(make_flow):
    flow = make_flow()
    flow.add_routine(Src(), "src")
    flow.add_routine(Dst(), "dst")
    with pytest.raises(ValueError, match=r"'ghost'.*\['dst', 'src'\]"):
        flow.execute("ghost")
    with pytest.raises(ValueError, match=r"'trigger'.*\['aux', 'in'\]"):
        flow.execute("dst")
    with pytest.raises(ValueError, match="entry_params"):
        flow.execute("src", ["not", "a", "dict"])
    with pytest.raises(ValueError, match="timeout"):
        flow.execute("src", timeout=0)


def test_set_execution_strategy(make_flow):
    flow = make_flow()
    flow.set_execution_strategy("concurrent", 3)
    assert (flow.execution_strategy, flow.max_workers) == ("concurrent", 3)
    flow.set_execution_strategy("sequential")
    assert (flow.execution_strategy, flow.max_workers) == ("sequential", 1)  # as 0.10
    flow.set_execution_strategy("concurrent")  # the configured number comes back
    assert (flow.execution_strategy, flow.max_workers) == ("concurrent", 3)
    with pytest.raises(ValueError):
        flow.set_execution_strategy("bogus")
    with pytest.raises(ValueError):
        flow.set_execution_strategy("concurrent", 0)


def test_set_execution_strategy_on_a_started_flow(make_flow):
    flow = make_flow()
    dst = Dst()
    flow.add_routine(Src(), "src")
    flow.add_routine(dst, "dst")
    flow.connect("src", "out", "dst", "in")
    assert flow.execute("src", {"value": 1}).status == "completed"
    flow.set_execution_strategy("concurrent", 2)
    assert flow.execute("src", {"value": 2}).status == "completed"
    assert dst.got == [1, 2]


def test_job_control_rejects_foreign_job_states(make_flow):
    flow = make_flow()
    foreign = JobState("another-flow")
    for op in (flow.pause, flow.resume, flow.cancel):
        with pytest.raises(ValueError, match="another-flow"):
            op(foreign)
    with pytest.raises(ValueError):
        flow.cancel("not a job state")


def test_metrics_before_any_job_lists_every_routine_with_zeros():
    flow = build()
    metrics = flow.metrics()
    assert set(metrics) == {"src", "dst"}
    for figures in metrics.values():
        for key in ("processed", "failed", "queued", "in_flight", "restarts", "mean_ms", "p95_ms"):
            assert figures[key] == 0


# ---------------------------------------------------------------- serialization
def test_serialize_is_json_compatible_with_routine_ids_on_connections():
    flow = build()
    flow.get_routine("src").set_config(factor=3)
    flow.connect("src", "out", "dst", "in", {"value": "value"})
    flow.set_error_handler(ErrorHandler("retry", 2, 0.1, 1.5, is_critical=True))
    data = flow.serialize()
    text = json.dumps(data)
    assert json.loads(text) == data
    assert data["flow_id"] == "f"
    assert set(data["routines"]) == {"src", "dst"}
    [conn] = data["connections"]
    assert conn["source_routine_id"] == "src" and conn["target_routine_id"] == "dst"
    assert conn["source_event"] == "out" and conn["target_slot"] == "in"
    assert conn["param_mapping"] == {"value": "value"}


def test_serialize_lists_config_it_cannot_hold():
    routine = Routine()
    routine.set_config(limit=3, predicate=lambda x: x > 1, lock=threading.Lock())
    flow = Flow(flow_id="cfg")
    flow.add_routine(routine, "r")
    spec = flow.serialize()["routines"]["r"]
    # Callables are encoded now (0.10's lambda_expression form); objects are not.
    assert spec["config"] == {
        "limit": 3,
        "predicate": {"_type": "lambda_expression", "expression": "x > 1", "params": ["x"]},
    }
    assert spec["unserialized_config"] == ["lock"]


def test_deserialize_builds_a_working_flow(make_flow):
    flow = build()
    flow.get_routine("src").set_config(factor=3)
    flow.connect("src", "out", "dst", "in")
    flow.set_error_handler(ErrorHandler("continue"))
    data = json.loads(json.dumps(flow.serialize()))
    copy = Flow.deserialize(data)
    try:
        assert copy.flow_id == "f"
        assert set(copy.routines) == {"src", "dst"}
        assert copy.get_routine("src") is not flow.get_routine("src")
        assert copy.get_routine("src").get_config("factor") == 3
        assert copy.get_error_handler().strategy.value == "continue"
        assert len(copy.connections) == 1
        job = copy.execute("src", {"value": 2})
        assert job.status == "completed"
        assert copy.get_routine("dst").got == [6]
    finally:
        copy.shutdown()


def test_deserialize_rejects_garbage():
    with pytest.raises(ValueError):
        Flow.deserialize({"format": "something else"})


def test_flow_is_a_context_manager(no_thread_leak):
    with Flow() as flow:
        dst = Dst()
        flow.add_routine(Src(), "src")
        flow.add_routine(dst, "dst")
        flow.connect("src", "out", "dst", "in")
        assert flow.execute("src", {"value": 4}).status == "completed"
    assert dst.got == [4]


def test_routines_added_after_a_job_take_part_in_later_jobs(make_flow):
    flow = make_flow()
    flow.add_routine(Src(), "src")
    assert flow.execute("src", {"value": 1}).status == "completed"
    dst = Dst()
    flow.add_routine(dst, "dst")
    flow.connect("src", "out", "dst", "in")
    assert flow.execute("src", {"value": 7}).status == "completed"
    assert dst.got == [7]
