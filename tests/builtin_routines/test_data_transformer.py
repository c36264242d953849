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
        # 0.10: each built-in applies to the whole value
        ("lowercase", "HeLLo", "hello"),
        ("uppercase", {"a": "x", "b": ["y", 1]}, {"a": "x", "b": ["y", 1]}),
        ("strip_whitespace", ("  a ", " b"), ("  a ", " b")),
        ("to_string", {"n": 1}, "{'n': 1}"),
        ("to_string", 5, "5"),
        ("to_int", " 7 ", 7),
        ("to_int", 3.7, 3),
        ("to_int", True, 1),
        ("to_float", 2, 2.0),
        ("to_float", ["1.5"], ["1.5"]),
        ("remove_none", {"a": None, "b": [1, None, {"c": None}]}, {"b": [1, None, {"c": None}]}),
    ],
)
def test_builtin_transformations(collect, name, data, expected):
    out = transform(collect, DataTransformer(transformations=[name]), data)
    assert out["transformed_data"] == expected
    assert type(out["transformed_data"]) is type(expected)
    assert out["transformation_applied"] == [name]
    assert out["errors"] is None


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("uppercase", {"a": "x", "b": ["y", 1]}, {"a": "X", "b": ["Y", 1]}),
        ("strip_whitespace", ("  a ", " b"), ("a", "b")),
        ("to_float", ["1.5", 2, None], [1.5, 2.0, None]),
    ],
)
def test_leafwise_option_applies_to_every_leaf(collect, name, data, expected):
    out = transform(collect, DataTransformer(transformations=[name], leafwise=True), data)
    assert out["transformed_data"] == expected
    assert type(out["transformed_data"]) is type(expected)


def test_transformations_apply_in_order(collect):
    routine = DataTransformer(transformations=["strip_whitespace", "to_int"], leafwise=True)
    out = transform(collect, routine, {"n": " 5 "})
    assert out["transformed_data"] == {"n": 5}
    assert out["transformation_applied"] == ["strip_whitespace", "to_int"]


def test_failed_conversion_keeps_the_value_and_reports_it(collect):
    out = transform(collect, DataTransformer(transformations=["to_int", "uppercase"]), "one")
    assert out["transformed_data"] == "ONE"
    assert out["errors"] == ["Error applying to_int: invalid literal for int() with base 10: 'one'"]
    assert out["transformation_applied"] == ["uppercase"]


def test_to_int_leaves_unconvertible_types_unchanged(collect):
    out = transform(collect, DataTransformer(transformations=["to_int"]), [object])
    assert out["transformed_data"] == [object] and out["errors"] is None


def test_fields_limit_the_transformation(collect):
    routine = DataTransformer(transformations=["uppercase"], fields=["a", "missing"])
    out = transform(collect, routine, {"a": "x", "b": "y"})
    assert out["transformed_data"] == {"a": "X", "b": "y"}
    assert out["errors"] == ["Field not found: missing"]


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
    [error] = out["errors"]
    assert error.startswith("Error applying <function ") and error.endswith(": nope")
    assert "explode" in error
    assert out["transformation_applied"] == ["uppercase"]


def test_register_transformation(collect):
    routine = DataTransformer()
    routine.register_transformation("double", lambda v: v * 2)
    routine.set_config(transformations=["double", "to_string"])
    out = transform(collect, routine, 21)
    assert out["transformed_data"] == "42"
    assert "double" in routine.transformation_names()


def test_unregistered_name_is_an_error_entry_until_registered(collect):
    routine = DataTransformer()
    routine.set_config(transformations=["double"])
    out = transform(collect, routine, 2)
    assert out["errors"] == ["Unknown transformation: double"]
    routine.register_transformation("double", lambda v: v * 2)
    assert transform(collect, routine, 2)["transformed_data"] == 4


def test_register_may_replace_a_builtin_and_set_config_replaces_the_map(collect):
    routine = DataTransformer(transformations=["lowercase"])
    routine.register_transformation("lowercase", lambda v: "replaced")
    assert transform(collect, routine, "X")["transformed_data"] == "replaced"
    routine.set_config(transformation_map={"only": str.title})
    assert routine.transformation_names() == ["only"]
    assert transform(collect, routine, "x")["errors"] == ["Unknown transformation: lowercase"]


@pytest.mark.parametrize("name, fn, match", [("", str, "non-empty"), ("x", 3, "callable")])
def test_register_validation(name, fn, match):
    with pytest.raises(ConfigurationError, match=match):
        DataTransformer().register_transformation(name, fn)


def test_no_transformations_passes_data_through(collect):
    out = transform(collect, DataTransformer(), {"a": 1})
    assert out == {"transformed_data": {"a": 1}, "transformation_applied": [], "errors": None}


def test_message_transformations_override_the_config(collect):
    routine = DataTransformer(transformations=["uppercase"])
    got = collect(routine)["output"]
    routine.get_slot("input").receive({"data": "Ab", "transformations": ["lowercase"]})
    routine.get_slot("input").receive({"data": "Ab", "transformations": []})
    assert [m["transformed_data"] for m in got] == ["ab", "AB"]


def test_input_is_not_modified(collect):
    data = {"a": "X", "b": None}
    transform(collect, DataTransformer(transformations=["lowercase", "remove_none"]), data)
    assert data == {"a": "X", "b": None}


def test_single_name_is_accepted_as_a_list(collect):
    routine = DataTransformer(transformations="lowercase")
    assert transform(collect, routine, "AB")["transformation_applied"] == ["lowercase"]


def test_registered_and_configured_callables_survive_cloudpickle(collect):
    factor = 3
    routine = DataTransformer()
    routine.register_transformation("times", lambda v: v * factor)
    routine.set_config(transformations=["times", lambda v: v + 1])
    copy = cloudpickle.loads(cloudpickle.dumps(routine))
    assert transform(collect, copy, 2)["transformed_data"] == 7


def test_in_a_flow(flow_runner):
    routine = DataTransformer(transformations=["strip_whitespace", "lowercase"])
    run = flow_runner.run(routine, {"data": "  ANN "})
    assert run.events["output"] == [
        {
            "transformed_data": "ann",
            "transformation_applied": ["strip_whitespace", "lowercase"],
            "errors": None,
        }
    ]
