from __future__ import annotations

import os

import cloudpickle
import pytest

from routilux.builtin_routines import (
    ConditionalRouter,
    ExpressionEvaluationError,
    UnsafeExpressionError,
)
from routilux.exceptions import ConfigurationError


def route(collect, router, data):
    got = collect(router)
    router.get_slot("input").receive({"data": data})
    return {name: msgs for name, msgs in got.items() if msgs}


def test_each_route_gets_an_event():
    router = ConditionalRouter(routes=[("high", "p > 5"), ("low", "p <= 5")])
    assert sorted(router._events) == ["high", "low", "output"]
    assert router.default_output is router.get_event("output")
    assert router.default_output.output_params == ["data", "route"]


def test_first_match_with_expression_conditions(collect):
    router = ConditionalRouter(routes=[("high", "p > 5"), ("any", "True")])
    assert route(collect, router, {"p": 7}) == {"high": [{"data": {"p": 7}, "route": "high"}]}
    assert route(collect, router, {"p": 1}) == {"any": [{"data": {"p": 1}, "route": "any"}]}


def test_route_priority_all(collect):
    router = ConditionalRouter(
        routes=[("big", "p > 5"), ("odd", "p % 2 == 1"), ("neg", "p < 0")],
        route_priority="all",
    )
    out = route(collect, router, {"p": 7})
    assert out == {"big": [{"data": {"p": 7}, "route": "big"}],
                   "odd": [{"data": {"p": 7}, "route": "odd"}]}


def test_callable_and_field_conditions(collect):
    router = ConditionalRouter(
        routes=[("errors", {"level": "error"}), ("long", lambda d: len(d["msg"]) > 3)],
    )
    assert list(route(collect, router, {"level": "error", "msg": "x"})) == ["errors"]
    assert list(route(collect, router, {"level": "info", "msg": "long"})) == ["long"]
    assert route(collect, router, {"level": "info", "msg": "x"}) == {
        "output": [{"data": {"level": "info", "msg": "x"}, "route": "unmatched"}]
    }


def test_field_condition_with_missing_field_does_not_match(collect):
    router = ConditionalRouter(routes=[("a", {"kind": None})], default_route="other")
    assert list(route(collect, router, {})) == ["other"]


def test_default_route(collect):
    router = ConditionalRouter(routes=[("big", "p > 5")], default_route="rest")
    assert "rest" in router._events
    assert route(collect, router, {"p": 1}) == {"rest": [{"data": {"p": 1}, "route": "rest"}]}
    assert list(route(collect, router, {"p": 9})) == ["big"]


def test_unmatched_data_goes_to_output_and_is_counted(collect):
    router = ConditionalRouter(routes=[("big", "p > 5")])
    assert route(collect, router, {"p": 1}) == {
        "output": [{"data": {"p": 1}, "route": "unmatched"}]
    }
    assert router.stats() == {"unmatched": 1}
    route(collect, router, {"p": 6})
    assert router.stats() == {"unmatched": 1, "route:big": 1}


def test_routes_as_dict(collect):
    router = ConditionalRouter(routes={"yes": "ok", "no": "not ok"})
    assert list(route(collect, router, {"ok": False})) == ["no"]


def test_add_route(collect):
    router = ConditionalRouter()
    router.add_route("small", "p < 3")
    router.add_route("big", lambda d: d["p"] > 100)
    assert [name for name, _ in router.get_config("routes")] == ["small", "big"]
    assert list(route(collect, router, {"p": 500})) == ["big"]
    # a second condition under the same name acts as an OR (0.10 allows it)
    router.add_route("big", "p == 50")
    assert list(route(collect, router, {"p": 50})) == ["big"]


def test_expression_sees_the_data_as_data_and_non_dicts_as_value(collect):
    router = ConditionalRouter(routes=[("has", "'x' in data and data.x == x")])
    assert list(route(collect, router, {"x": 1})) == ["has"]
    router = ConditionalRouter(routes=[("num", "value > 3 and data == value")])
    assert list(route(collect, router, 4)) == ["num"]


def test_field_condition_on_non_dict_data_never_matches(collect):
    router = ConditionalRouter(routes=[("a", {"k": 1})])
    assert list(route(collect, router, 5)) == ["output"]
    assert router.stats().get("condition_errors") is None


def test_missing_field_in_expression_is_no_match_counted_and_logged(collect, caplog):
    router = ConditionalRouter(routes=[("a", "priority > 1"), ("b", "True")])
    with caplog.at_level("WARNING"):
        assert list(route(collect, router, {"p": 1})) == ["b"]
        assert list(route(collect, router, {"p": 2})) == ["b"]
    assert router.stats()["condition_errors"] == 2
    warnings = [r for r in caplog.records if "route 'a'" in r.getMessage()]
    assert len(warnings) == 1  # the first error of a route only
    assert "name 'priority' is not defined" in warnings[0].getMessage()
    strict = ConditionalRouter(routes=[("a", "priority > 1")], strict_conditions=True)
    with pytest.raises(ExpressionEvaluationError, match="name 'priority' is not defined"):
        route(collect, strict, {"p": 1})


def test_guarded_expression_handles_missing_fields(collect):
    router = ConditionalRouter(routes=[("a", "'priority' in data and priority > 1")],
                               default_route="b")
    assert list(route(collect, router, {"p": 1})) == ["b"]


@pytest.mark.parametrize(
    "condition",
    [
        "__import__('os').system('touch /tmp/routilux_pwned')",
        "().__class__.__bases__[0].__subclasses__()",
        "open('/etc/passwd').read()",
        "data.__class__.__init__.__globals__",
        "eval(\"__import__('os')\")",
        "[x for x in data]",
        "(lambda: 1)()",
        "p ** p ** p if False else __builtins__",
    ],
)
def test_hostile_condition_strings_are_refused(condition):
    with pytest.raises(UnsafeExpressionError):
        ConditionalRouter(routes=[("evil", condition)])
    router = ConditionalRouter()
    with pytest.raises(ConfigurationError):
        router.add_route("evil", condition)
    assert router.get_config("routes") == []
    assert not os.path.exists("/tmp/routilux_pwned")


def test_dos_condition_fails_fast(collect):
    router = ConditionalRouter(routes=[("boom", "p ** p ** p > 0")], strict_conditions=True)
    with pytest.raises(ExpressionEvaluationError, match="bits"):
        route(collect, router, {"p": 1000})
    router.set_config(strict_conditions=False)
    assert list(route(collect, router, {"p": 1000})) == ["output"]


@pytest.mark.parametrize(
    "routes", [["a"], [("a", "x", "y")], [(1, "x")], [("", "x")], "a", [("a", "x +")]]
)
def test_malformed_routes(routes):
    with pytest.raises(ConfigurationError):
        ConditionalRouter(routes=routes)


def test_a_condition_that_is_not_one_never_matches(collect, caplog):
    # 0.10 accepted None or numbers as conditions and never matched them
    router = ConditionalRouter(routes=[("a", 5), ("b", None)])
    with caplog.at_level("WARNING"):
        assert list(route(collect, router, {"p": 1})) == ["output"]
    assert "5 is not a condition" in caplog.text


def test_input_key_none_routes_whole_messages(collect):
    router = ConditionalRouter(routes=[("hot", "temp > 30")], input_key=None)
    got = collect(router)
    router.get_slot("input").receive({"temp": 35, "city": "x"})
    assert got["hot"] == [{"data": {"temp": 35, "city": "x"}, "route": "hot"}]


def test_configured_conditions_survive_cloudpickle(collect):
    threshold = 10
    router = ConditionalRouter(
        routes=[("fn", lambda d: d["p"] > threshold), ("expr", "p < 0"), ("eq", {"p": 5})],
        default_route="other",
    )
    copy = cloudpickle.loads(cloudpickle.dumps(router))
    assert list(route(collect, copy, {"p": 11})) == ["fn"]
    assert list(route(collect, copy, {"p": -1})) == ["expr"]
    assert list(route(collect, copy, {"p": 5})) == ["eq"]
    assert list(route(collect, copy, {"p": 6})) == ["other"]


def test_in_a_flow(flow_runner):
    router = ConditionalRouter(
        routes=[("high", "priority >= 5"), ("low", lambda d: d["priority"] < 5)],
        default_route="other",
    )
    run = flow_runner.run(router, {"data": {"priority": 7}}, events=("high", "low", "other"))
    assert run.events == {
        "high": [{"data": {"priority": 7}, "route": "high"}],
        "low": [],
        "other": [],
    }
    assert run.routine.stats() == {"route:high": 1}


def test_failing_condition_fails_the_job_only_when_strict(flow_runner):
    router = ConditionalRouter(routes=[("a", "missing > 1")], strict_conditions=True)
    run = flow_runner.run(router, {"data": {}}, events=("a",), expect="failed")
    assert "name 'missing' is not defined" in run.job.error
