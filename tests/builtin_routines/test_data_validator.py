from __future__ import annotations

import cloudpickle
import pytest

from routilux.builtin_routines import DataValidator
from routilux.exceptions import ConfigurationError


def validate(collect, routine, data):
    got = collect(routine, "valid", "invalid")
    routine.get_slot("input").receive({"data": data})
    assert len(got["valid"]) + len(got["invalid"]) == 1
    return got


def test_valid_data(collect):
    routine = DataValidator(
        rules={"name": "string", "age": ["integer", "non_negative"]}, required_fields=["name"]
    )
    got = validate(collect, routine, {"name": "Ann", "age": 3})
    assert got["valid"] == [{"validated_data": {"name": "Ann", "age": 3}}]
    assert got["invalid"] == []


def test_invalid_data_lists_every_problem(collect):
    routine = DataValidator(
        rules={"name": "string", "age": ["integer", "positive"]}, required_fields=["name", "email"]
    )
    data = {"name": 5, "age": -1}
    got = validate(collect, routine, data)
    assert got["valid"] == []
    [out] = got["invalid"]
    assert out["data"] == data
    assert out["errors"] == [
        "Required field 'email' is missing",
        "Field 'name' failed validation",
        "Field 'age' failed validation",
    ]


@pytest.mark.parametrize(
    "rule, good, bad",
    [
        ("str", "x", b"x"),
        ("int", 1, True),
        ("integer", 2, 2.0),
        ("float", 1.5, 1),
        ("number", 1.5, "1.5"),
        ("number", 3, False),
        ("bool", False, 0),
        ("list", [], ()),
        ("dict", {}, []),
        ("not_none", 0, None),
        ("not_empty", "   ", ""),  # 0.10 meaning: only None and "" fail
        ("not_empty", [], None),
        ("positive", 0.1, 0),
        ("non_negative", 0, -0.1),
        ("email", "a@b.io", "a@b"),
    ],
)
def test_builtin_validators(collect, rule, good, bad):
    routine = DataValidator(rules={"f": rule})
    assert validate(collect, routine, {"f": good})["valid"]
    assert validate(collect, routine, {"f": bad})["invalid"]


def test_optional_field_absent_is_fine(collect):
    got = validate(collect, DataValidator(rules={"f": "integer"}), {})
    assert got["valid"] == [{"validated_data": {}}]


def test_callable_validators(collect):
    def even(v):
        return v % 2 == 0

    routine = DataValidator(rules={"n": [even, lambda v: v < 10]})
    assert validate(collect, routine, {"n": 4})["valid"]
    [out] = validate(collect, routine, {"n": 3})["invalid"]
    assert out["errors"] == ["Field 'n' failed validation"]
    [out] = validate(collect, routine, {"n": 12})["invalid"]
    assert out["errors"] == ["Field 'n' failed validation"]
    routine = DataValidator(rules={"n": lambda v: (v > 0, f"n must be > 0, got {v}")})
    assert validate(collect, routine, {"n": 1})["valid"]
    [out] = validate(collect, routine, {"n": -2})["invalid"]
    assert out["errors"] == ["n must be > 0, got -2"]


def test_callable_that_raises_is_a_failure_with_its_message(collect):
    routine = DataValidator(rules={"n": lambda v: v > 0})
    [out] = validate(collect, routine, {"n": "x"})["invalid"]
    assert out["errors"][0].startswith("Validation error for field 'n': '>' not supported")


def test_allow_extra_fields_false_rejects_extra_fields_and_strict_stops_early(collect):
    routine = DataValidator(rules={"a": "integer"}, required_fields=["b"], allow_extra_fields=False)
    assert validate(collect, routine, {"a": 1, "b": 2})["invalid"]  # b has no rule
    [out] = validate(collect, routine, {"a": 1, "c": 3, "d": 4})["invalid"]
    assert out["errors"] == [
        "Required field 'b' is missing",
        "Unexpected field 'c'",
        "Unexpected field 'd'",
    ]
    # strict_mode stops each pass (required fields, then fields) at its first error
    routine.set_config(strict_mode=True, required_fields=["b", "e"])
    [out] = validate(collect, routine, {"a": "x", "c": 3})["invalid"]
    assert out["errors"] == ["Required field 'b' is missing", "Field 'a' failed validation"]


def test_extra_fields_allowed_by_default(collect):
    assert validate(collect, DataValidator(rules={"a": "int"}), {"a": 1, "z": 0})["valid"]


@pytest.mark.parametrize("value", [[1], "text", 3])
def test_non_dict_data_is_checked_by_items_or_value_rules(collect, value):
    # without an "items"/"value" rule a non-dict is valid, as in 0.10
    assert validate(collect, DataValidator(), value)["valid"] == [{"validated_data": value}]
    routine = DataValidator(rules={"items": "is_dict", "value": "is_dict"})
    [out] = validate(collect, routine, value)["invalid"]
    field = "items[0]" if isinstance(value, list) else "value"
    assert out["errors"] == [f"Field '{field}' failed validation"]


def test_empty_dict_with_no_rules_is_valid(collect):
    assert validate(collect, DataValidator(), {})["valid"] == [{"validated_data": {}}]


def test_register_validator(collect):
    routine = DataValidator()
    routine.register_validator("short", lambda v: len(v) < 4)
    routine.set_config(rules={"code": "short"})
    assert validate(collect, routine, {"code": "abc"})["valid"]
    [out] = validate(collect, routine, {"code": "abcd"})["invalid"]
    assert out["errors"] == ["Field 'code' failed validation"]


@pytest.mark.parametrize("name", ["integer", "is_int"])
def test_register_may_replace_a_builtin_name(collect, name):
    routine = DataValidator(rules={"f": name})
    routine.register_validator(name, lambda v: v == "yes")
    assert validate(collect, routine, {"f": "yes"})["valid"]
    assert validate(collect, routine, {"f": 1})["invalid"]
    with pytest.raises(ConfigurationError):
        routine.register_validator("", bool)


def test_rule_of_wrong_type_or_unknown_name_is_an_error_entry(collect):
    routine = DataValidator(rules={"a": 5, "b": "no_such_validator"})
    [out] = validate(collect, routine, {"a": 1, "b": 2})["invalid"]
    assert out["errors"] == [
        "Invalid validator for field 'a'",
        "Unknown validator: no_such_validator",
    ]


def test_stats_count_outcomes(collect):
    routine = DataValidator(required_fields=["a"])
    collect(routine)
    routine.get_slot("input").receive({"data": {"a": 1}})
    routine.get_slot("input").receive({"data": {}})
    routine.get_slot("input").receive({"data": {}})
    assert routine.stats() == {"valid": 1, "invalid": 2}


def test_configured_callables_survive_cloudpickle(collect):
    limit = 5
    routine = DataValidator(rules={"n": lambda v: v < limit})
    routine.register_validator("odd", lambda v: v % 2 == 1)
    routine.set_config(rules={"n": [lambda v: v < limit, "odd"]})
    copy = cloudpickle.loads(cloudpickle.dumps(routine))
    assert validate(collect, copy, {"n": 3})["valid"]
    assert validate(collect, copy, {"n": 7})["invalid"]
    assert validate(collect, copy, {"n": 2})["invalid"]


def test_in_a_flow(flow_runner):
    routine = DataValidator(rules={"age": "integer"}, required_fields=["age"])
    run = flow_runner.run(routine, {"data": {"age": "3"}}, events=("valid", "invalid"))
    assert run.events["valid"] == []
    assert run.events["invalid"] == [
        {"errors": ["Field 'age' failed validation"], "data": {"age": "3"}}
    ]
    run = flow_runner.run(
        DataValidator(required_fields=["age"]), {"data": {"age": 3}}, events=("valid", "invalid")
    )
    assert run.events["valid"] == [{"validated_data": {"age": 3}}]
    assert run.routine.stats() == {"valid": 1}
