from __future__ import annotations

import cloudpickle
import pytest
from helpers import Node, Sink

from routilux.builtin_routines import Aggregator, Mapper
from routilux.exceptions import ConfigurationError


def send(aggregator, *messages):
    for message in messages:
        aggregator.get_slot("input").receive(message)


def test_count_mode(collect):
    agg = Aggregator(count=2)
    got = collect(agg)["output"]
    send(agg, {"a": 1}, {"b": 2}, {"c": 3})
    assert got == [
        {"aggregated_data": {"a": 1, "b": 2}, "messages": [{"a": 1}, {"b": 2}], "count": 2,
         "sources": None}
    ]
    assert agg.pending == [{"c": 3}]
    send(agg, {"d": 4})
    assert got[1]["aggregated_data"] == {"c": 3, "d": 4}
    assert agg.pending == []


def test_count_one_emits_each_message(collect):
    agg = Aggregator(count=1)
    got = collect(agg)["output"]
    send(agg, {"x": 1})
    assert got[0]["aggregated_data"] == {"x": 1}


def test_conflicting_keys_are_an_error_by_default(collect):
    agg = Aggregator(count=2)
    collect(agg)
    with pytest.raises(ValueError, match="disagree on key 'v'"):
        send(agg, {"v": 1}, {"v": 2})


def test_equal_values_are_not_a_conflict(collect):
    agg = Aggregator(count=2)
    got = collect(agg)["output"]
    send(agg, {"v": 1, "a": 0}, {"v": 1, "b": 0})
    assert got[0]["aggregated_data"] == {"v": 1, "a": 0, "b": 0}


@pytest.mark.parametrize("policy, expected", [("first", 1), ("last", 2)])
def test_conflict_policies(collect, policy, expected):
    agg = Aggregator(count=2, on_conflict=policy)
    got = collect(agg)["output"]
    send(agg, {"v": 1}, {"v": 2})
    assert got[0]["aggregated_data"] == {"v": expected}


def test_expected_sources(collect):
    agg = Aggregator(expected_sources=["left", "right"], on_conflict="last")
    got = collect(agg)["output"]
    send(agg, {"source": "right", "v": 2, "r": True})
    send(agg, {"source": "right", "v": 3})  # queued for the next group, not lost
    assert got == []
    send(agg, {"source": "left", "v": 1})
    assert got == [
        {
            # messages in expected_sources order: left's v is overridden by right's
            "aggregated_data": {"v": 2, "r": True},
            "messages": [{"source": "left", "v": 1}, {"source": "right", "v": 2, "r": True}],
            "count": 2,
            "sources": ["left", "right"],
        }
    ]
    assert agg.pending == [{"source": "right", "v": 3}]
    send(agg, {"source": "left", "v": 4})
    assert got[1]["messages"] == [{"source": "left", "v": 4}, {"source": "right", "v": 3}]
    assert agg.pending == []


def test_source_key_is_left_out_of_the_merge(collect):
    agg = Aggregator(expected_sources=["a", "b"], source_key="from", on_conflict="error")
    got = collect(agg)["output"]
    send(agg, {"from": "a", "x": 1}, {"from": "b", "y": 2})
    assert got[0]["aggregated_data"] == {"x": 1, "y": 2}


def test_unknown_or_missing_source_is_an_error(collect):
    agg = Aggregator(expected_sources=["a", "b"])
    collect(agg)
    with pytest.raises(ValueError, match="unknown source 'c'"):
        send(agg, {"source": "c"})
    with pytest.raises(ValueError, match="no 'source' field"):
        send(agg, {"x": 1})


def emitter() -> Node:
    """A routine with an ``output`` event and no slot (emits by hand)."""
    return Node(slots=(), events=("output",))


def test_one_from_each_connected_source(collect):
    agg = Aggregator()
    got = collect(agg)["output"]
    sources = [emitter(), emitter(), emitter()]
    for source in sources:
        source.get_event("output").connect(agg.get_slot("input"))
    sources[0].emit("output", a=1)
    sources[1].emit("output", b=2)
    assert got == []
    sources[2].emit("output", c=3)
    assert got[0]["aggregated_data"] == {"a": 1, "b": 2, "c": 3}
    assert got[0]["count"] == 3


def test_without_count_sources_or_connections_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="count, expected_sources, or connections"):
        send(Aggregator(), {"x": 1})


def test_changing_the_mode_drops_incomplete_groups(collect):
    agg = Aggregator(count=3)
    got = collect(agg)["output"]
    send(agg, {"x": 1})
    agg.set_config(count=2)
    assert agg.pending == []
    send(agg, {"y": 1}, {"z": 1})
    assert got[0]["messages"] == [{"y": 1}, {"z": 1}]


def test_state_of_another_mode_is_not_reused(collect):
    agg = Aggregator(count=3)
    got = collect(agg)["output"]
    send(agg, {"x": 1})
    agg._config["expected_sources"] = ["a"]  # bypasses set_config and its reset
    send(agg, {"source": "a", "y": 2})
    assert got[0]["messages"] == [{"source": "a", "y": 2}]


def test_reset(collect):
    agg = Aggregator(count=2)
    got = collect(agg)["output"]
    send(agg, {"x": 1})
    agg.reset()
    send(agg, {"y": 1}, {"z": 1})
    assert got[0]["messages"] == [{"y": 1}, {"z": 1}]


def test_pending_group_survives_cloudpickle(collect):
    agg = Aggregator(expected_sources=["a", "b"])
    send(agg, {"source": "a", "x": 1})
    copy = cloudpickle.loads(cloudpickle.dumps(agg))
    got = collect(copy)["output"]
    send(copy, {"source": "b", "y": 2})
    assert got[0]["aggregated_data"] == {"x": 1, "y": 2}


def test_in_a_flow_with_named_sources(flow_runner):
    messages = [{"source": "b", "y": 2}, {"source": "a", "x": 1}]
    run = flow_runner.run(Aggregator(expected_sources=["a", "b"]), messages)
    assert run.events["output"] == [
        {
            "aggregated_data": {"x": 1, "y": 2},
            "messages": [{"source": "a", "x": 1}, {"source": "b", "y": 2}],
            "count": 2,
            "sources": ["a", "b"],
        }
    ]
    assert run.routine.stats() == {"groups": 1}


def test_in_a_flow_joining_a_fan_out(make_flow, execution):
    flow = make_flow()
    flow.add_routine(Mapper(function="{'double': n * 2}"), "double")
    flow.add_routine(Mapper(function="{'square': n * n}"), "square")
    flow.add_routine(Aggregator(), "join", execution=execution)
    sink = Sink("input")
    flow.add_routine(sink, "sink")
    flow.add_routine(Mapper(function="{'n': n}"), "start")
    for branch in ("double", "square"):
        flow.connect("start", "output", branch, "input")
        flow.connect(branch, "output", "join", "input")
    flow.connect("join", "output", "sink", "input")
    job = flow.execute("start", {"n": 3}, entry_slot="input", timeout=30)
    assert job.status == "completed", job.error
    assert [m["aggregated_data"] for m in sink.calls] == [{"double": 6, "square": 9}]


def test_groups_are_kept_per_job(make_flow, execution):
    flow = make_flow()
    flow.add_routine(Aggregator(count=2), "agg", execution=execution)
    sink = Sink("input")
    flow.add_routine(sink, "sink")
    flow.connect("agg", "output", "sink", "input")
    jobs = [flow.execute("agg", {"n": i}, entry_slot="input", timeout=30) for i in range(3)]
    assert [j.status for j in jobs] == ["completed"] * 3
    assert sink.calls == []  # one message from each of three jobs never forms a group


def test_groups_complete_within_a_job(flow_runner):
    run = flow_runner.run(Aggregator(count=2), [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}, {"e": 5}])
    assert [m["aggregated_data"] for m in run.events["output"]] == [
        {"a": 1, "b": 2}, {"c": 3, "d": 4}
    ]


def test_unknown_source_fails_the_job(flow_runner):
    run = flow_runner.run(Aggregator(expected_sources=["a"]), {"source": "z"}, expect="failed")
    assert "unknown source 'z'" in run.job.error
