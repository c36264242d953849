from __future__ import annotations

import pytest

from routilux.builtin_routines import TextRenderer

DATA = {"name": "Ann", "age": 3, "tags": ["x", "y"], "address": {"city": "Oslo"}}


def render(collect, routine, value):
    got = collect(routine)["output"]
    routine.get_slot("input").receive({"data": value})
    assert len(got) == 1
    return got[0]


def test_xml_tags(collect):
    out = render(collect, TextRenderer(), DATA)
    assert out["original_type"] == "dict"
    # 0.10 layout: the child's text sits inline between its tags
    assert out["rendered_text"] == (
        "<name>Ann</name>\n"
        "<age>3</age>\n"
        "<tags>  <item_0>x</item_0>\n"
        "  <item_1>y</item_1></tags>\n"
        "<address>  <city>Oslo</city></address>"
    )


def test_markdown(collect):
    out = render(collect, TextRenderer(tag_format="markdown"), DATA)
    assert out["rendered_text"] == (
        "**name**: Ann\n"
        "**age**: 3\n"
        "**tags**:   - x\n"
        "  - y\n"
        "**address**:   **city**: Oslo"
    )


def test_markdown_list_of_dicts(collect):
    out = render(collect, TextRenderer(tag_format="markdown"), [{"a": 1}, 2, []])
    assert out["original_type"] == "list"
    assert out["rendered_text"] == "-   **a**: 1\n- 2\n- "


def test_any_format_but_xml_is_markdown(collect):
    out = render(collect, TextRenderer(tag_format="html"), {"a": 1})
    assert out["rendered_text"] == "**a**: 1"


def test_xml_top_level_list_and_empty_containers(collect):
    out = render(collect, TextRenderer(), [1, {"e": {}}, []])
    assert out["rendered_text"] == (
        "<item_0>1</item_0>\n<item_1>  <e></e></item_1>\n<item_2></item_2>"
    )


def test_indent_setting(collect):
    out = render(collect, TextRenderer(indent="\t"), {"a": {"b": 1}})
    assert out["rendered_text"] == "<a>\t<b>1</b></a>"
    out = render(collect, TextRenderer(indent=4), {"a": {"b": 1}})  # an int: spaces
    assert out["rendered_text"] == "<a>    <b>1</b></a>"


@pytest.mark.parametrize("fmt", ["xml", "markdown"])
@pytest.mark.parametrize(
    "value, expected",
    [({}, ""), ([], ""), ("plain", "plain"), (7, "7"), ((1, 2), "(1, 2)")],
)
def test_empty_and_scalar_values(collect, fmt, value, expected):
    out = render(collect, TextRenderer(tag_format=fmt), value)
    assert out["rendered_text"] == expected
    assert out["original_type"] == type(value).__name__


@pytest.mark.parametrize("key", ["has space", "a<b", "", "x/y", 3])
def test_keys_are_used_as_they_are(collect, key):
    out = render(collect, TextRenderer(), {key: 1})
    assert out["rendered_text"] == f"<{key}>1</{key}>"


def test_circular_data_is_marked_not_a_crash(collect):
    loop: dict = {"a": 1}
    loop["self"] = loop
    out = render(collect, TextRenderer(), loop)
    assert out["rendered_text"] == "<a>1</a>\n<self>[Circular Reference]</self>"
    out = render(collect, TextRenderer(tag_format="markdown"), loop)
    assert out["rendered_text"] == "**a**: 1\n**self**: [Circular Reference]"


def test_input_rule_without_a_data_key(collect):
    renderer = TextRenderer()
    got = collect(renderer)["output"]
    renderer.get_slot("input").receive({"text": "x"})
    renderer.get_slot("input").receive({"a": 1, "b": 2})
    assert [m["rendered_text"] for m in got] == ["x", "<a>1</a>\n<b>2</b>"]


def test_whole_message_with_input_key_none(collect):
    out = render(collect, TextRenderer(input_key=None), "ignored")
    assert out["rendered_text"] == "<data>ignored</data>"


def test_in_a_flow(flow_runner):
    run = flow_runner.run(TextRenderer(tag_format="xml"), {"data": {"a": [1]}})
    assert run.events["output"] == [
        {"rendered_text": "<a>  <item_0>1</item_0></a>", "original_type": "dict"}
    ]
