"""The published schema is valid JSON Schema, agrees with routilux's own checker,
and is the one the docs publish."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from routilux.flowfile import check_text, flow_file_schema, schema_text
from routilux.flowfile.positions import Document
from routilux.flowfile.schema_check import SchemaChecker

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = jsonschema.Draft202012Validator(flow_file_schema())
CHECKER = SchemaChecker(flow_file_schema())

GOOD = [
    {"routines": {"a": {"class": "Mapper"}}},
    {
        "$schema": "x",
        "version": 1,
        "flow_id": "f",
        "execution_strategy": "concurrent",
        "max_workers": 2,
        "execution_timeout": None,
        "restart": {"max_restarts": 0, "within": 1},
        "checkpoint": {"store": "s.sqlite3", "interval": 0.5},
        "error_handler": {"strategy": "retry", "retryable_exceptions": ["ValueError"]},
        "entry": {"routine": "a", "slot": "input"},
        "routines": {
            "a": {"class": "pkg.mod:Outer.Inner", "config": {"k": [1, {"x": None}]},
                  "execution": "ray", "workers": 3, "timeout": 1.5},
        },
        "connections": [
            {"from": "a.out", "to": {"routine": "a", "slot": "in"}, "param_mapping": {"x": "y"}},
        ],
    },
    {"routines": {"a.b": {"class": "Mapper"}}, "max_workers": 2.0},
]
BAD = [
    [],
    {},
    {"routines": {}},
    {"routines": {"": {"class": "Mapper"}}},
    {"routines": {"a": {}}},
    {"routines": {"a": {"class": "not a class"}}},
    {"routines": {"a": {"class": "Mapper", "workers": 0}}},
    {"routines": {"a": {"class": "Mapper", "workers": True}}},
    {"routines": {"a": {"class": "Mapper", "timeout": 0}}},
    {"routines": {"a": {"class": "Mapper", "execution": "gpu"}}},
    {"routines": {"a": {"class": "Mapper", "extra": 1}}},
    {"routines": {"a": {"class": "Mapper"}}, "version": 2},
    {"routines": {"a": {"class": "Mapper"}}, "max_workers": 1.5},
    {"routines": {"a": {"class": "Mapper"}}, "entry": "a"},
    {"routines": {"a": {"class": "Mapper"}}, "entry": {"routine": "a"}},
    {"routines": {"a": {"class": "Mapper"}}, "connections": [{"from": "a.x"}]},
    {"routines": {"a": {"class": "Mapper"}}, "connections": [{"from": "a.x", "to": "a.y",
                                                              "param_mapping": {"k": 1}}]},
    {"routines": {"a": {"class": "Mapper"}}, "error_handler": {"strategy": "STOP"}},
    {"routines": {"a": {"class": "Mapper"}}, "restart": {"within": 0}},
    {"routines": {"a": {"class": "Mapper"}}, "checkpoint": {"store": ""}},
]


def test_the_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(flow_file_schema())


@pytest.mark.parametrize("data", GOOD)
def test_good_documents_pass_both_validators(data):
    VALIDATOR.validate(data)
    assert CHECKER.check(Document("f.json", data)) == []


@pytest.mark.parametrize("data", BAD)
def test_bad_documents_fail_both_validators(data):
    assert list(VALIDATOR.iter_errors(data))
    assert CHECKER.check(Document("f.json", data))


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_the_example_flow_files_follow_the_schema(path):
    VALIDATOR.validate(yaml.safe_load(path.read_text()))


def test_routilux_schema_prints_what_the_docs_publish():
    published = ROOT / "docs" / "_static" / "flowfile.schema.json"
    assert published.read_text() == schema_text(), (
        "docs/_static/flowfile.schema.json is stale: regenerate it with "
        "`routilux schema > docs/_static/flowfile.schema.json`"
    )
    assert json.loads(schema_text()) == flow_file_schema()


def test_yaml_and_json_positions_point_at_keys_and_values():
    yaml_text = "routines:\n  a:\n    class: Mapper\n    workers: 0\nconnections:\n  - x\n"
    json_text = '{\n  "routines": {"a": {"class": "Mapper",\n    "workers": 0}},\n  "x": [1]\n}'
    for text, fmt, value_at, key_at in (
        (yaml_text, "yaml", (4, 14), (4, 5)),
        (json_text, "json", (3, 16), (3, 5)),
    ):
        checked = check_text(text, f"f.{fmt}", fmt)
        doc = checked.doc
        assert doc.where(("routines", "a", "workers")) == value_at
        assert doc.where(("routines", "a", "workers"), key=True) == key_at
        # Paths not in the file resolve to the nearest enclosing value.
        assert doc.where(("routines", "a", "nothing")) == doc.where(("routines", "a"))
        assert (checked.problems[0].line, checked.problems[0].column) == value_at


def test_an_alias_bomb_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("routines: {a: {class: Mapper, config: {bomb: *a8}}}")
    checked = check_text("\n".join(lines) + "\n", "bomb.yaml", "yaml")
    assert len(checked.problems) == 1
    assert "expands to more than" in checked.problems[0].message


def test_yaml_merge_keys_work():
    text = (
        "defaults: &d {class: Mapper, workers: 2}\n"
        "routines:\n  a:\n    <<: *d\n    workers: 3\n"
    )
    checked = check_text(text, "merge.yaml", "yaml")
    # The merged mapping is plain data; the top-level "defaults" key is a schema error.
    assert checked.doc.data["routines"]["a"] == {"class": "Mapper", "workers": 3}
    assert [p.message.split(";")[0] for p in checked.problems] == [
        "the top level: unknown key 'defaults'"
    ]
