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
    routine = DataValidator(rules={"name": "string", "age": ["integer", "non_negative"]},
                            required_fields=["name"])
    got = validate(collect, routine, {"name": "Ann", "age": 3})
    assert got["valid"] == [{"validated_data": {"name": "Ann", "age": 3}}]
    assert got["invalid"] == []


def test_invalid_data_lists_every_problem(collect):
    routine = DataValidator(rules={"name": "string", "age": ["integer", "positive"]},
                            required_fields=["name", "email"])
    data = {"name": 5, "age": -1}
    got = validate(collect, routine, data)
    assert got["valid"] == []
    [out] = got["invalid"]
    assert out["data"] == data
    assert out["errors"] == {
        "email": ["required field is missing"],
        "name": ["expected a string, got int 5"],
        "age": ["expected a number > 0, got int -1"],
    }


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
        ("not_empty", "a", "   "),
        ("not_empty", [0], []),
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
    assert out["errors"] == {"n": ["failed even (value 3)"]}
    [out] = validate(collect, routine, {"n": 12})["invalid"]
    assert out["errors"] == {"n": ["failed <lambda> (value 12)"]}


def test_callable_that_raises_is_a_failure_with_its_message(collect):
    routine = DataValidator(rules={"n": lambda v: v > 0})
    [out] = validate(collect, routine, {"n": "x"})["invalid"]
    assert out["errors"]["n"][0].startswith("<lambda> raised TypeError:")


def test_strict_mode_rejects_extra_fields(collect):
    routine = DataValidator(rules={"a": "integer"}, required_fields=["b"], strict_mode=True)
    assert validate(collect, routine, {"a": 1, "b": 2})["valid"]
    [out] = validate(collect, routine, {"a": 1, "b": 2, "c": 3})["invalid"]
    assert out["errors"] == {"c": ["unexpected field (strict_mode)"]}


def test_extra_fields_allowed_by_default(collect):
    assert validate(collect, DataValidator(rules={"a": "int"}), {"a": 1, "z": 0})["valid"]


@pytest.mark.parametrize("bad", [[1], "text", None, 3])
def test_non_dict_data_is_invalid_not_a_crash(collect, bad):
    [out] = validate(collect, DataValidator(), bad)["invalid"]
    assert out["errors"] == {"<data>": [f"expected a dict, got {type(bad).__name__}"]}


def test_empty_dict_with_no_rules_is_valid(collect):
    assert validate(collect, DataValidator(), {})["valid"] == [{"validated_data": {}}]


def test_register_validator(collect):
    routine = DataValidator()
    routine.register_validator("short", lambda v: len(v) < 4)
    routine.set_config(rules={"code": "short"})
    assert validate(collect, routine, {"code": "abc"})["valid"]
    [out] = validate(collect, routine, {"code": "abcd"})["invalid"]
    assert out["errors"] == {"code": ["failed short (value 'abcd')"]}


@pytest.mark.parametrize("name", ["integer", "int", ""])
def test_register_refuses_builtin_or_empty_names(name):
    with pytest.raises(ConfigurationError):
        DataValidator().register_validator(name, bool)


def test_rule_of_wrong_type_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="must be a validator name or a callable"):
        DataValidator(rules={"a": 5})


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
        {"errors": {"age": ["expected an integer, got str '3'"]}, "data": {"age": "3"}}
    ]
    run = flow_runner.run(DataValidator(required_fields=["age"]), {"data": {"age": 3}},
                          events=("valid", "invalid"))
    assert run.events["valid"] == [{"validated_data": {"age": 3}}]
    assert run.routine.stats() == {"valid": 1}
