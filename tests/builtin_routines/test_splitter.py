from __future__ import annotations

import pytest

from routilux.builtin_routines import Splitter


def split(collect, routine, message):
    got = collect(routine)
    routine.get_slot("input").receive(message)
    return got


def test_one_message_per_item_then_done(collect):
    got = split(collect, Splitter(), {"items": ["a", "b", "c"]})
    assert got["output"] == [
        {"item": "a", "index": 0, "total": 3},
        {"item": "b", "index": 1, "total": 3},
        {"item": "c", "index": 2, "total": 3},
    ]
    assert got["done"] == [{"total": 3}]


@pytest.mark.parametrize(
    "items", [(1, 2), range(1, 3), iter([1, 2]), (x for x in (1, 2)), {1: "a", 2: "b"}.keys()]
)
def test_other_collections(collect, items):
    got = split(collect, Splitter(), {"items": items})
    assert [m["item"] for m in got["output"]] == [1, 2]
    assert [m["total"] for m in got["output"]] == [2, 2]
    assert got["done"] == [{"total": 2}]


def test_empty_collection_only_says_done(collect):
    got = split(collect, Splitter(), {"items": []})
    assert got == {"output": [], "done": [{"total": 0}]}


def test_items_may_be_anything(collect):
    got = split(collect, Splitter(), {"items": [None, {"k": 1}, [2]]})
    assert [m["item"] for m in got["output"]] == [None, {"k": 1}, [2]]


@pytest.mark.parametrize(
    "bad, hint",
    [("abc", "wrap a single string"), (b"ab", "bytes"), ({"a": 1}, "dict"), (5, "int"),
     (None, "NoneType")],
)
def test_non_collections_are_a_type_error(collect, bad, hint):
    with pytest.raises(TypeError, match=f"Splitter needs a list.*{hint}"):
        split(collect, Splitter(), {"items": bad})


def test_missing_key_is_explained(collect):
    with pytest.raises(ValueError, match="reads the 'items' key"):
        split(collect, Splitter(), {"list": [1]})


def test_input_key(collect):
    got = split(collect, Splitter(input_key="rows"), {"rows": [7]})
    assert got["output"] == [{"item": 7, "index": 0, "total": 1}]


def test_in_a_flow(flow_runner):
    run = flow_runner.run(Splitter(), {"items": [1, 2]}, events=("output", "done"))
    assert run.events == {
        "output": [{"item": 1, "index": 0, "total": 2}, {"item": 2, "index": 1, "total": 2}],
        "done": [{"total": 2}],
    }
    assert run.routine.stats() == {"items": 2}
