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
    assert out["rendered_text"] == (
        "<name>Ann</name>\n"
        "<age>3</age>\n"
        "<tags>\n"
        "  <item>x</item>\n"
        "  <item>y</item>\n"
        "</tags>\n"
        "<address>\n"
        "  <city>Oslo</city>\n"
        "</address>"
    )


def test_markdown(collect):
    out = render(collect, TextRenderer(tag_format="markdown"), DATA)
    assert out["rendered_text"] == (
        "- **name**: Ann\n"
        "- **age**: 3\n"
        "- **tags**:\n"
        "  - x\n"
        "  - y\n"
        "- **address**:\n"
        "  - **city**: Oslo"
    )


def test_markdown_list_of_dicts(collect):
    out = render(collect, TextRenderer(tag_format="markdown"), [{"a": 1}, 2, []])
    assert out["original_type"] == "list"
    assert out["rendered_text"] == "- item 1:\n  - **a**: 1\n- 2\n- []"


def test_xml_top_level_list_and_empty_containers(collect):
    out = render(collect, TextRenderer(), [1, {"e": {}}, []])
    assert out["rendered_text"] == "<item>1</item>\n<item>\n  <e></e>\n</item>\n<item></item>"


def test_indent_setting(collect):
    out = render(collect, TextRenderer(indent=4), {"a": {"b": 1}})
    assert out["rendered_text"] == "<a>\n    <b>1</b>\n</a>"


@pytest.mark.parametrize("fmt", ["xml", "markdown"])
@pytest.mark.parametrize("value, expected", [({}, ""), ([], ""), ("plain", "plain"), (7, "7")])
def test_empty_and_scalar_values(collect, fmt, value, expected):
    out = render(collect, TextRenderer(tag_format=fmt), value)
    assert out["rendered_text"] == expected
    assert out["original_type"] == type(value).__name__


@pytest.mark.parametrize("key", ["has space", "a<b", "", "x/y"])
def test_key_that_cannot_be_a_tag_is_an_error(collect, key):
    with pytest.raises(ValueError, match="cannot be used as a tag name"):
        render(collect, TextRenderer(), {key: 1})


def test_circular_data_is_an_error_not_a_crash(collect):
    loop: dict = {}
    loop["self"] = loop
    for fmt in ("xml", "markdown"):
        with pytest.raises(ValueError, match="circular"):
            render(collect, TextRenderer(tag_format=fmt), loop)


def test_missing_data_key_is_explained(collect):
    with pytest.raises(ValueError, match="reads the 'data' key"):
        TextRenderer().get_slot("input").receive({"text": "x"})


def test_whole_message_with_input_key_none(collect):
    out = render(collect, TextRenderer(input_key=None), "ignored")
    assert out["rendered_text"] == "<data>ignored</data>"


def test_in_a_flow(flow_runner):
    run = flow_runner.run(TextRenderer(tag_format="xml"), {"data": {"a": [1]}})
    assert run.events["output"] == [
        {"rendered_text": "<a>\n  <item>1</item>\n</a>", "original_type": "dict"}
    ]
