from __future__ import annotations

import cloudpickle
import pytest

from routilux.builtin_routines import Mapper, UnsafeExpressionError
from routilux.exceptions import ConfigurationError


def run(collect, routine, *messages):
    got = collect(routine)["output"]
    for message in messages:
        routine.get_slot("input").receive(message)
    return got


def test_expression_with_output_key(collect):
    got = run(collect, Mapper(function="price * qty", output_key="total"), {"price": 2, "qty": 3})
    assert got == [{"total": 6}]


def test_callable_returning_a_dict(collect):
    got = run(collect, Mapper(function=lambda m: {"upper": m["s"].upper()}), {"s": "ab"})
    assert got == [{"upper": "AB"}]


def test_expression_returning_a_dict(collect):
    got = run(collect, Mapper(function="{'n': n + 1, 'even': n % 2 == 0}"), {"n": 2})
    assert got == [{"n": 3, "even": True}]


def test_merge_input(collect):
    routine = Mapper(function="a + b", output_key="sum", merge_input=True)
    assert run(collect, routine, {"a": 1, "b": 2}) == [{"a": 1, "b": 2, "sum": 3}]


def test_result_keys_win_over_input_keys(collect):
    routine = Mapper(function=lambda m: {"a": 0}, merge_input=True)
    assert run(collect, routine, {"a": 1, "b": 2}) == [{"a": 0, "b": 2}]


def test_input_key(collect):
    routine = Mapper(function=len, input_key="items", output_key="n")
    assert run(collect, routine, {"items": [1, 2, 3]}) == [{"n": 3}]


@pytest.mark.parametrize("result", [5, None, [1], "text"])
def test_non_dict_result_without_output_key_is_a_type_error(collect, result):
    with pytest.raises(TypeError, match="not a dict; set output_key"):
        run(collect, Mapper(function=lambda m: result), {"x": 1})


def test_no_function_is_a_configuration_error(collect):
    with pytest.raises(ConfigurationError, match="Mapper has no function"):
        run(collect, Mapper(), {"x": 1})


def test_unsafe_expression_is_refused():
    with pytest.raises(UnsafeExpressionError, match="Mapper function"):
        Mapper(function="__import__('os').getcwd()")


def test_result_with_reserved_key_is_refused(collect):
    with pytest.raises(ValueError, match="reserves them"):
        run(collect, Mapper(function=lambda m: {"event_name": 1}), {"x": 1})


def test_function_exception_propagates(collect):
    with pytest.raises(ZeroDivisionError):
        run(collect, Mapper(function=lambda m: 1 / 0, output_key="x"), {"x": 1})


def test_configured_function_survives_cloudpickle(collect):
    offset = 100
    for function in (lambda m: {"y": m["x"] + offset}, "{'y': x + 100}"):
        copy = cloudpickle.loads(cloudpickle.dumps(Mapper(function=function)))
        assert run(collect, copy, {"x": 1}) == [{"y": 101}]


def test_in_a_flow(flow_runner):
    run_ = flow_runner.run(
        Mapper(function="x * 10", output_key="y", merge_input=True), [{"x": 1}, {"x": 2}]
    )
    assert run_.events["output"] == [{"x": 1, "y": 10}, {"x": 2, "y": 20}]
