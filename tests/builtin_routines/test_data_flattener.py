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
    out = flatten(collect, DataFlattener(preserve_lists=True), NESTED)
    assert out["flattened_data"] == {"a.b": 1, "a.c.d": 2, "e": [3, {"f": 4}], "g": "x"}


def test_max_depth(collect):
    out = flatten(collect, DataFlattener(max_depth=1), NESTED)
    assert out["flattened_data"] == NESTED
    out = flatten(collect, DataFlattener(max_depth=2), NESTED)
    assert out["flattened_data"] == {"a.b": 1, "a.c": {"d": 2}, "e.0": 3, "e.1": {"f": 4},
                                     "g": "x"}
    assert out["depth"] == 3  # the depth of the original data, not of the output


def test_top_level_list(collect):
    out = flatten(collect, DataFlattener(preserve_lists=True), [{"a": 1}, 2])
    assert out == {"flattened_data": {"0.a": 1, "1": 2}, "original_type": "list", "depth": 2}


def test_empty_containers_are_kept(collect):
    out = flatten(collect, DataFlattener(), {"a": {}, "b": [], "c": {"d": {}}})
    assert out["flattened_data"] == {"a": {}, "b": [], "c.d": {}}


@pytest.mark.parametrize("data, depth", [({}, 1), ([], 1), ({"a": 1}, 1), ({"a": [[1]]}, 3)])
def test_empty_and_depth(collect, data, depth):
    out = flatten(collect, DataFlattener(), data)
    assert out["depth"] == depth


def test_empty_dict_gives_empty_result(collect):
    assert flatten(collect, DataFlattener(), {})["flattened_data"] == {}


def test_non_string_keys_become_strings(collect):
    out = flatten(collect, DataFlattener(), {1: {2: "x"}, None: 0})
    assert out["flattened_data"] == {"1.2": "x", "None": 0}


def test_colliding_keys_are_an_error_not_an_overwrite(collect):
    with pytest.raises(ValueError, match=r"flatten to the key 'a\.b'"):
        flatten(collect, DataFlattener(), {"a.b": 1, "a": {"b": 2}})


@pytest.mark.parametrize("bad", ["text", 3, None, 2.5])
def test_scalar_is_a_type_error(collect, bad):
    with pytest.raises(TypeError, match="DataFlattener needs a dict or a list"):
        flatten(collect, DataFlattener(), bad)


def test_circular_data_is_an_error(collect):
    loop: dict = {}
    loop["x"] = loop
    with pytest.raises(ValueError, match="circular"):
        flatten(collect, DataFlattener(), loop)


def test_input_does_not_change(collect):
    data = {"a": {"b": [1]}}
    flatten(collect, DataFlattener(), data)
    assert data == {"a": {"b": [1]}}


def test_in_a_flow(flow_runner):
    run = flow_runner.run(DataFlattener(separator="/"), {"data": {"x": {"y": [1, 2]}}})
    assert run.events["output"] == [
        {"flattened_data": {"x/y/0": 1, "x/y/1": 2}, "original_type": "dict", "depth": 3}
    ]
