from __future__ import annotations

import pytest

from routilux.builtin_routines import DataFlattener

NESTED = {"a": {"b": 1, "c": {"d": 2}}, "e": [3, {"f": 4}], "g": "x"}


def flatten(collect, routine, data):
    got = collect(routine)["output"]
    routine.get_slot("input").receive({"data": data})
    assert len(got) == 1
    return got[0]


def test_flattens_dicts_and_lists(collect):
    out = flatten(collect, DataFlattener(), NESTED)
    assert out == {
        "flattened_data": {"a.b": 1, "a.c.d": 2, "e.0": 3, "e.1.f": 4, "g": "x"},
        "original_type": "dict",
        "depth": 3,
    }


def test_key_order_follows_the_data(collect):
    out = flatten(collect, DataFlattener(), NESTED)
    assert list(out["flattened_data"]) == ["a.b", "a.c.d", "e.0", "e.1.f", "g"]


def test_separator(collect):
    out = flatten(collect, DataFlattener(separator="__"), {"a": {"b": 1}})
    assert out["flattened_data"] == {"a__b": 1}


def test_preserve_lists(collect):
    # 0.10 meaning: True (the default) keys list items by index; False flattens them
    # under the parent key, later items overwriting earlier ones
    out = flatten(collect, DataFlattener(preserve_lists=True), NESTED)
    assert out["flattened_data"] == {"a.b": 1, "a.c.d": 2, "e.0": 3, "e.1.f": 4, "g": "x"}
    out = flatten(collect, DataFlattener(preserve_lists=False), NESTED)
    assert out["flattened_data"] == {"a.b": 1, "a.c.d": 2, "e": 3, "e.f": 4, "g": "x"}
    out = flatten(collect, DataFlattener(preserve_lists=False), {"a": [1, 2]})
    assert out["flattened_data"] == {"a": 2}


def test_max_depth(collect):
    # at max_depth a value is kept as its str (scalars too)
    out = flatten(collect, DataFlattener(max_depth=1), NESTED)
    assert out["flattened_data"] == {k: str(v) for k, v in NESTED.items()}
    out = flatten(collect, DataFlattener(max_depth=2), NESTED)
    assert out["flattened_data"] == {
        "a.b": "1",
        "a.c": "{'d': 2}",
        "e.0": "3",
        "e.1": "{'f': 4}",
        "g": "x",
    }
    assert out["depth"] == 2  # the deepest level reached


def test_top_level_list(collect):
    out = flatten(collect, DataFlattener(preserve_lists=True), [{"a": 1}, 2])
    assert out == {"flattened_data": {"0.a": 1, "1": 2}, "original_type": "list", "depth": 2}


def test_empty_containers_give_no_key(collect):
    out = flatten(collect, DataFlattener(), {"a": {}, "b": [], "c": {"d": {}}, "e": 1})
    assert out["flattened_data"] == {"e": 1}


@pytest.mark.parametrize(
    "data, depth",
    [
        ({}, 0),
        ([], 0),
        ({"a": 1}, 1),
        ({"e": []}, 1),
        ({"a": [[1]]}, 3),
        (5, 0),
        ({"a": {"c": [2, {"d": 3}]}}, 4),
    ],
)
def test_empty_and_depth(collect, data, depth):
    out = flatten(collect, DataFlattener(), data)
    assert out["depth"] == depth


def test_empty_dict_gives_empty_result(collect):
    assert flatten(collect, DataFlattener(), {})["flattened_data"] == {}


def test_non_string_keys_stay_at_the_top_and_join_below(collect):
    out = flatten(collect, DataFlattener(), {1: {2: "x"}, 3: 0})
    assert out["flattened_data"] == {"1.2": "x", 3: 0}


def test_colliding_keys_overwrite_as_in_0_10(collect):
    out = flatten(collect, DataFlattener(), {"a.b": 1, "a": {"b": 2}})
    assert out["flattened_data"] == {"a.b": 2}


@pytest.mark.parametrize("scalar", ["text", 3, 2.5, (1, 2)])
def test_scalar_is_a_value_leaf(collect, scalar):
    out = flatten(collect, DataFlattener(), scalar)
    assert out == {
        "flattened_data": {"value": scalar},
        "original_type": type(scalar).__name__,
        "depth": 0,
    }


def test_circular_data_is_marked(collect):
    loop: dict = {"a": 1}
    loop["x"] = loop
    out = flatten(collect, DataFlattener(), loop)
    assert out["flattened_data"] == {"a": 1, "x": "[Circular Reference]"}


def test_input_does_not_change(collect):
    data = {"a": {"b": [1]}}
    flatten(collect, DataFlattener(), data)
    assert data == {"a": {"b": [1]}}


def test_in_a_flow(flow_runner):
    run = flow_runner.run(DataFlattener(separator="/"), {"data": {"x": {"y": [1, 2]}}})
    assert run.events["output"] == [
        {"flattened_data": {"x/y/0": 1, "x/y/1": 2}, "original_type": "dict", "depth": 3}
    ]
