"""0.10 programs using ConditionalRouter and the condition language (spec §1.1, §2).

Each program is written as a routilux 0.10 user writes it; the router runs in a
thread and in a process routine.
"""

from __future__ import annotations

import logging

import pytest

from routilux import Flow, JobState
from routilux.builtin_routines import ConditionalRouter, Filter, Mapper, UnsafeExpressionError
from routilux.exceptions import ConfigurationError
from tests.compat.conftest import Sink, Source

# -- §1.1 the spec's program ---------------------------------------------------------


def test_the_0_10_router_program(make_flow, execution):
    router = ConditionalRouter()
    router.set_config(
        routes=[
            ("hi", "data.get('value', 0) > config.get('threshold', 0)"),
            ("lo", lambda data, config: data.get("value", 0) <= config["threshold"]),
        ],
        threshold=10,
    )
    flow: Flow = make_flow()
    flow.add_routine(Source(), "source")
    flow.add_routine(router, "router", execution=execution)
    high, low = Sink(), Sink()
    flow.add_routine(high, "high")
    flow.add_routine(low, "low")
    flow.connect("source", "output", "router", "input")
    flow.connect("router", "hi", "high", "input")
    flow.connect("router", "lo", "low", "input")
    job = flow.execute("source", {"messages": [{"data": {"value": 15}}, {"data": {"value": 5}}]})
    assert JobState.wait_for_completion(flow, job, timeout=30)
    assert job.status == "completed"
    assert high.results == [{"data": {"value": 15}, "route": "hi"}]
    assert low.results == [{"data": {"value": 5}, "route": "lo"}]
    assert router.get_config("threshold") == 10


def test_standalone_receive_on_input_slot_emits_synchronously():
    router = ConditionalRouter()
    router.set_config(routes=[("hi", "data.get('value', 0) > 10")])
    sink = Sink()
    router.get_event("hi").connect(sink.input_slot)
    router.default_output.connect(sink.input_slot)
    router.input_slot.receive({"data": {"value": 15}})
    router.input_slot.receive({"data": {"value": 1}})
    assert sink.results == [
        {"data": {"value": 15}, "route": "hi"},
        {"data": {"value": 1}, "route": "unmatched"},
    ]


# -- §1.1 configuration and routing --------------------------------------------------


def test_unmatched_goes_to_output_or_the_default_route(program):
    router = ConditionalRouter()
    router.set_config(routes=[("big", "data > 5")])
    got, _, _ = program.run(router, [{"data": 1}, {"data": 9}], events=("output", "big"))
    assert got == {
        "output": [{"data": 1, "route": "unmatched"}],
        "big": [{"data": 9, "route": "big"}],
    }
    router = ConditionalRouter()
    router.set_config(routes=[("big", "data > 5")], default_route="rest")
    got, _, _ = program.run(router, [{"data": 1}], events=("output", "rest"))
    assert got == {"output": [], "rest": [{"data": 1, "route": "rest"}]}


@pytest.mark.parametrize("priority", ["all_matches", "all", "anything"])
def test_any_priority_but_first_match_emits_every_match(program, priority):
    router = ConditionalRouter()
    router.set_config(
        routes=[("a", "data > 1"), ("b", "data > 2"), ("c", "data > 100")],
        route_priority=priority,
    )
    got, _, _ = program.run(router, [{"data": 3}], events=("a", "b", "c"))
    assert got == {"a": [{"data": 3, "route": "a"}], "b": [{"data": 3, "route": "b"}], "c": []}


def test_first_match_stops_and_duplicate_names_act_as_or(program):
    router = ConditionalRouter()
    router.set_config(routes=[("x", {"k": 1}), ("y", "True"), ("x", {"k": 2})])
    router.add_route("z", "True")
    got, _, _ = program.run(router, [{"data": {"k": 1}}, {"data": {"k": 2}}], events=("x", "y"))
    assert got == {"x": [{"data": {"k": 1}, "route": "x"}], "y": [{"data": {"k": 2}, "route": "y"}]}
    assert [name for name, _ in router.get_config("routes")] == ["x", "y", "x", "z"]


def test_route_events_are_created_by_add_route_set_config_or_first_use():
    router = ConditionalRouter()
    assert router.get_event("output").output_params == ["data", "route"]
    router.add_route("a", "True")
    router.set_config(routes=[*router.get_config("routes"), ("b", "True")], default_route="d")
    assert {"a", "b", "d"} <= set(router._events)
    router.get_config("routes").insert(0, ("late", "True"))  # appended behind its back
    router.input_slot.receive({"data": 1})
    assert router.get_event("late").output_params == ["data", "route"]


# -- §1.1 condition kinds ------------------------------------------------------------


def test_callable_conditions_are_called_by_their_signature(program):
    def by_config(data, config):
        return data["v"] == config["want"]

    def by_stats(data, stats):
        return isinstance(stats, dict) and data["v"] == 2

    def positional(value, settings):  # two other names: called (data, config)
        return value["v"] == settings["want"] + 2

    def many(data, config, stats, extra=None):
        return data["v"] == 4 and "want" in config and isinstance(stats, dict)

    def stats_without_config(data, stats, extra):  # called with data= only: fails
        return True

    router = ConditionalRouter()
    router.set_config(
        routes=[
            ("one", lambda d: d["v"] == 0),
            ("config", by_config),
            ("stats", by_stats),
            ("positional", positional),
            ("many", many),
            ("partial", stats_without_config),
        ],
        want=1,
    )
    events = ("one", "config", "stats", "positional", "many", "partial", "output")
    got, routine, _ = program.run(router, [{"data": {"v": v}} for v in range(6)], events=events)
    assert {name: [m["data"]["v"] for m in got[name]] for name in events} == {
        "one": [0],
        "config": [1],
        "stats": [2],
        "positional": [3],
        "many": [4],
        "partial": [],
        "output": [5],
    }
    assert routine.stats()["condition_errors"] == 1


def test_a_raising_callable_is_called_again_with_data_alone():
    calls = []

    def flaky(data, config=None):
        calls.append(("flaky", config is not None))
        if len(calls) == 3:  # the keyword call data=, config= fails once
            raise RuntimeError("first call fails")
        return True

    def always_raises(data):
        calls.append("raised")
        raise ValueError("no")

    router = ConditionalRouter(routes=[("r", always_raises), ("f", flaky)])
    sink = Sink()
    router.get_event("f").connect(sink.input_slot)
    router.input_slot.receive({"data": 1})
    assert calls == ["raised", "raised", ("flaky", True), ("flaky", False)]
    assert sink.results == [{"data": 1, "route": "f"}]
    assert router.stats()["condition_errors"] == 1


def test_dict_conditions(program):
    router = ConditionalRouter()
    router.set_config(
        routes=[
            ("checked", {"n": lambda v: v > 10, "kind": "a"}),
            ("intkey", {1: "one"}),
            ("anydict", {}),
        ]
    )
    messages = [
        {"data": {"n": 11, "kind": "a"}},
        {"data": {1: "one"}},
        {"data": {"z": 0}},
        {"data": "not a dict"},
        {"data": {"n": 5, "kind": "a"}},
    ]
    got, routine, _ = program.run(
        router, messages, events=("checked", "intkey", "anydict", "output")
    )
    assert [m["data"] for m in got["checked"]] == [{"n": 11, "kind": "a"}]
    assert [m["data"] for m in got["intkey"]] == [{1: "one"}]
    assert [m["data"] for m in got["anydict"]] == [{"z": 0}, {"n": 5, "kind": "a"}]
    assert [m["data"] for m in got["output"]] == ["not a dict"]
    assert "condition_errors" not in routine.stats()


def test_other_conditions_never_match_and_are_not_config_errors(program, caplog):
    router = ConditionalRouter()
    router.set_config(routes=[("none", None), ("number", 3), ("yes", "True")])
    with caplog.at_level(logging.WARNING):
        got, _, _ = program.run(router, [{"data": 1}], events=("none", "number", "yes"))
    assert got == {"none": [], "number": [], "yes": [{"data": 1, "route": "yes"}]}
    if program.execution == "thread":  # a process routine logs in its own process
        assert "None is not a condition" in caplog.text and "3 is not a condition" in caplog.text


def test_condition_errors_mean_no_match_are_counted_and_logged_once(program, caplog):
    router = ConditionalRouter()
    router.set_config(
        routes=[("bad", "data['missing'] > 1"), ("boom", lambda d: 1 / 0), ("ok", "True")]
    )
    with caplog.at_level(logging.WARNING):
        got, routine, _ = program.run(router, [{"data": {}}, {"data": {}}], events=("ok",))
    assert len(got["ok"]) == 2
    assert routine.stats()["condition_errors"] == 4
    if program.execution == "thread":  # a process routine logs in its own process
        assert caplog.text.count("route 'bad'") == 1 and caplog.text.count("route 'boom'") == 1


def test_strict_conditions_fail_the_step(make_flow, execution):
    router = ConditionalRouter(routes=[("bad", "data['missing'] > 1")], strict_conditions=True)
    flow = make_flow()
    flow.add_routine(Source(), "source")
    flow.add_routine(router, "router", execution=execution)
    flow.connect("source", "output", "router", "input")
    job = flow.execute("source", {"messages": [{"data": {}}]})
    assert JobState.wait_for_completion(flow, job, timeout=30)
    assert job.status == "failed" and "missing" in str(job.error)


# -- §2 the condition language -------------------------------------------------------

ACCEPTED = [
    ("data.get('priority') == 'high'", {"priority": "high"}),
    ("isinstance(data, dict) and data.get('value', 0) > config.get('threshold', 0)", {"value": 11}),
    ("stats.get('count', 0) < 10", {}),
    (
        "data.get('name', '').lower().startswith('a') and 'x' in data.get('tags', [])",
        {"name": "Ann", "tags": ["x"]},
    ),
    ("len(data.get('items', [])) >= 3 and data['items'][0] is not None", {"items": [1, 2, 3]}),
    ("any([data.get('a'), data.get('b')]) or hasattr(data, 'keys')", {}),
    ("isinstance(data, (list, tuple, set)) or data.get('kind') in ('a', 'b')", {"kind": "b"}),
    ("getattr(data, 'missing', None) is None and list(data.keys()) == ['k']", {"k": 1}),
    ("data.get('s', '').strip().split(',')[1] == 'b'", {"s": " a,b "}),
    ("max(data.get('n', []), default=0) > 2 and all(data['n'])", {"n": [1, 3]}),
    ("dict(data).items() and float(data['f']) == 1.5 and int('7') == 7", {"f": "1.5"}),
    ("data.get('data') == 1", {"data": 1}),  # a field called data never shadows data
]


@pytest.mark.parametrize("condition, data", ACCEPTED, ids=[c for c, _ in ACCEPTED])
def test_conditions_0_10_users_write_route_in_a_flow(program, condition, data):
    router = ConditionalRouter()
    router.set_config(routes=[("yes", condition)], threshold=10)
    got, routine, _ = program.run(router, [{"data": data}], events=("yes", "output"))
    assert got["yes"] == [{"data": data, "route": "yes"}], routine.stats()


REFUSED = [
    ("data.__class__", "__class__"),
    ("data.get.__self__", "__self__"),
    ("'{0.__class__}'.format(data)", "format"),
    ("data.pop('x')", "pop"),
    ("[x for x in data]", "ListComp"),
    ("(lambda: 1)()", "lambda"),
    ("str.join(',', data)", "'str'"),
    ("data['fn']()", "data['fn']"),
    ("data.get('a') +", "invalid expression"),
    ("'%s' % data", "%-formatting"),
    ("''.join(['a'] * 10) .replace('a', 'bb')", "replace"),
    ("isinstance(data, type)", "isinstance"),
]


@pytest.mark.parametrize("condition, named", REFUSED, ids=[c for c, _ in REFUSED])
def test_unsafe_conditions_are_refused_at_set_config_naming_the_construct(condition, named):
    router = ConditionalRouter()
    with pytest.raises(UnsafeExpressionError, match="route 'r'") as info:
        router.set_config(routes=[("r", condition)])
    assert named in str(info.value)
    assert isinstance(info.value, ConfigurationError)
    assert router.get_config("routes") == []


def test_repetition_bound_is_a_run_time_no_match(program):
    router = ConditionalRouter()
    router.set_config(routes=[("big", "len(''.join(['a'] * 10**7)) > 0"), ("ok", "True")])
    got, routine, _ = program.run(router, [{"data": 1}], events=("big", "ok"))
    assert got == {"big": [], "ok": [{"data": 1, "route": "ok"}]}
    assert routine.stats()["condition_errors"] == 1


def test_filter_and_mapper_use_the_same_names(program):
    # the whole message is the value: a field called "data" does not shadow it
    keep = Filter(condition="data.get('data') == 1 and config.get('cutoff') == 2", cutoff=2)
    got, _, _ = program.run(keep, [{"data": 1}, {"data": 2}], events=("output",))
    assert got["output"] == [{"data": 1}]
    double = Mapper(function="data['n'] * config['factor']", output_key="y", factor=3)
    got, _, _ = program.run(double, [{"n": 2}], events=("output",))
    assert got["output"] == [{"y": 6}]
