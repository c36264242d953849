from __future__ import annotations

import cloudpickle
import pytest

from routilux.builtin_routines import DataTransformer
from routilux.exceptions import ConfigurationError


def transform(collect, routine, data):
    got = collect(routine)["output"]
    routine.get_slot("input").receive({"data": data})
    assert len(got) == 1
    assert set(got[0]) == {"transformed_data", "transformation_applied", "errors"}
    return got[0]


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("lowercase", "HeLLo", "hello"),
        ("uppercase", {"a": "x", "b": ["y", 1]}, {"a": "X", "b": ["Y", 1]}),
        ("strip_whitespace", ("  a ", " b"), ("a", "b")),
        ("to_string", {"n": 1, "f": 2.5, "none": None}, {"n": "1", "f": "2.5", "none": None}),
        ("to_int", {"a": "42", "b": " 7 ", "c": 3.0, "d": True}, {"a": 42, "b": 7, "c": 3,
                                                                 "d": 1}),
        ("to_float", ["1.5", 2, None], [1.5, 2.0, None]),
        ("remove_none", {"a": None, "b": [1, None, {"c": None}]}, {"b": [1, {}]}),
    ],
)
def test_builtin_transformations(collect, name, data, expected):
    out = transform(collect, DataTransformer(transformations=[name]), data)
    assert out["transformed_data"] == expected
    assert type(out["transformed_data"]) is type(expected)
    assert out["transformation_applied"] == [name]
    assert out["errors"] == []


def test_transformations_apply_in_order(collect):
    routine = DataTransformer(transformations=["strip_whitespace", "to_int"])
    out = transform(collect, routine, {"n": " 5 "})
    assert out["transformed_data"] == {"n": 5}
    assert out["transformation_applied"] == ["strip_whitespace", "to_int"]


def test_failed_conversion_keeps_the_value_and_reports_it(collect):
    out = transform(collect, DataTransformer(transformations=["to_int"]),
                    {"ok": "1", "bad": "one", "list": [2.5]})
    assert out["transformed_data"] == {"ok": 1, "bad": "one", "list": [2.5]}
    assert len(out["errors"]) == 2
    assert "to_int at /bad: cannot convert 'one' to int" in out["errors"]
    assert any("/list/0" in e and "not a whole number" in e for e in out["errors"])


def test_to_int_refuses_unconvertible_types(collect):
    out = transform(collect, DataTransformer(transformations=["to_int"]), [object])
    assert "cannot convert type to int" in out["errors"][0]


def test_fields_limit_the_transformation(collect):
    routine = DataTransformer(transformations=["uppercase"], fields=["a", "missing"])
    out = transform(collect, routine, {"a": "x", "b": "y"})
    assert out["transformed_data"] == {"a": "X", "b": "y"}
    assert out["errors"] == ["field 'missing' not found"]


def test_fields_need_dict_data(collect):
    with pytest.raises(TypeError, match="needs dict data, got list"):
        transform(collect, DataTransformer(transformations=["uppercase"], fields=["a"]), [1])


def test_callable_transformation(collect):
    routine = DataTransformer(transformations=[lambda d: {**d, "n": d["n"] * 10}])
    out = transform(collect, routine, {"n": 2})
    assert out["transformed_data"] == {"n": 20}
    assert out["transformation_applied"] == ["<lambda>"]


def test_failing_callable_is_reported_and_the_value_kept(collect):
    def explode(value):
        raise RuntimeError("nope")

    out = transform(collect, DataTransformer(transformations=[explode, "uppercase"]), "a")
    assert out["transformed_data"] == "A"
    assert out["errors"] == ["explode: RuntimeError: nope"]
    assert out["transformation_applied"] == ["explode", "uppercase"]


def test_register_transformation(collect):
    routine = DataTransformer()
    routine.register_transformation("double", lambda v: v * 2)
    routine.set_config(transformations=["double", "to_string"])
    out = transform(collect, routine, 21)
    assert out["transformed_data"] == "42"
    assert "double" in routine.transformation_names()


def test_unregistered_name_is_refused_until_registered():
    routine = DataTransformer()
    with pytest.raises(ConfigurationError, match="unknown transformation 'double'"):
        routine.set_config(transformations=["double"])


@pytest.mark.parametrize(
    "name, fn, match", [("lowercase", str.lower, "built-in"), ("", str, "non-empty"),
                        ("x", 3, "callable")],
)
def test_register_validation(name, fn, match):
    with pytest.raises(ConfigurationError, match=match):
        DataTransformer().register_transformation(name, fn)


def test_no_transformations_passes_data_through(collect):
    out = transform(collect, DataTransformer(), {"a": 1})
    assert out == {"transformed_data": {"a": 1}, "transformation_applied": [], "errors": []}


def test_input_is_not_modified(collect):
    data = {"a": "X", "b": None}
    transform(collect, DataTransformer(transformations=["lowercase", "remove_none"]), data)
    assert data == {"a": "X", "b": None}


def test_single_name_is_accepted_as_a_list():
    assert DataTransformer(transformations="lowercase").get_config("transformations") == [
        "lowercase"
    ]


def test_registered_and_configured_callables_survive_cloudpickle(collect):
    factor = 3
    routine = DataTransformer()
    routine.register_transformation("times", lambda v: v * factor)
    routine.set_config(transformations=["times", lambda v: v + 1])
    copy = cloudpickle.loads(cloudpickle.dumps(routine))
    assert transform(collect, copy, 2)["transformed_data"] == 7


def test_in_a_flow(flow_runner):
    routine = DataTransformer(transformations=["strip_whitespace", "lowercase"])
    run = flow_runner.run(routine, {"data": {"name": "  ANN "}})
    assert run.events["output"] == [
        {
            "transformed_data": {"name": "ann"},
            "transformation_applied": ["strip_whitespace", "lowercase"],
            "errors": [],
        }
    ]
