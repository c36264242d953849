from __future__ import annotations

import cloudpickle
import pytest

from routilux.builtin_routines import ExpressionEvaluationError, Filter
from routilux.exceptions import ConfigurationError

MESSAGES = [{"n": 1, "tag": "a"}, {"n": 5, "tag": "b"}, {"n": 9, "tag": "a"}]


def run(collect, routine, messages=MESSAGES):
    got = collect(routine)
    for message in messages:
        routine.get_slot("input").receive(message)
    return got


@pytest.mark.parametrize(
    "condition",
    ["n > 3", lambda m: m["n"] > 3, "n > 3 and tag in ('a', 'b')"],
    ids=["expression", "callable", "expression-and"],
)
def test_passes_matching_messages_unchanged(collect, condition):
    got = run(collect, Filter(condition=condition))
    assert got["output"] == MESSAGES[1:]
    assert got["rejected"] == MESSAGES[:1]


def test_field_condition(collect):
    got = run(collect, Filter(condition={"tag": "a"}))
    assert got["output"] == [MESSAGES[0], MESSAGES[2]]


def test_input_key_tests_one_field_but_passes_the_whole_message(collect):
    got = run(collect, Filter(condition="value % 2 == 1 and value > 1", input_key="n"))
    assert got["output"] == [MESSAGES[1], MESSAGES[2]]


def test_counts(collect):
    routine = Filter(condition="n > 3")
    run(collect, routine)
    assert routine.stats() == {"passed": 2, "rejected": 1}


def test_no_condition_is_a_configuration_error(collect):
    with pytest.raises(ConfigurationError, match="Filter has no condition"):
        run(collect, Filter())


def test_condition_error_is_not_swallowed(collect):
    with pytest.raises(ExpressionEvaluationError, match="'missing' is not defined"):
        run(collect, Filter(condition="missing"))


def test_reserved_keys_cannot_be_forwarded(collect):
    with pytest.raises(ValueError, match=r"key\(s\) \['flow'\]"):
        run(collect, Filter(condition="True"), [{"flow": 1}])


def test_empty_message(collect):
    got = run(collect, Filter(condition="len(data) == 0"), [{}])
    assert got["output"] == [{}]


def test_lambda_condition_survives_cloudpickle(collect):
    limit = 4
    copy = cloudpickle.loads(cloudpickle.dumps(Filter(condition=lambda m: m["n"] > limit)))
    assert run(collect, copy)["output"] == MESSAGES[1:]


def test_in_a_flow(flow_runner):
    run_ = flow_runner.run(Filter(condition="n > 3"), MESSAGES, events=("output", "rejected"))
    assert run_.events == {"output": MESSAGES[1:], "rejected": MESSAGES[:1]}
