"""ResultExtractor: routilux 0.10's extractors, order, strategies and results."""

from __future__ import annotations

import random
import re

import cloudpickle
import pytest

from routilux.builtin_routines import ResultExtractor
from routilux.builtin_routines.text_processing.extractors import (
    code_blocks,
    embedded_json,
    python_session,
    xml_tags,
)
from routilux.exceptions import ConfigurationError

KEYS = {"extracted_result", "format", "metadata", "confidence", "extraction_path"}

MIXED = (
    "Sure! <answer>42</answer>\n"
    "```json\n{\"a\": 1, \"b\": [1, 2]}\n```\n"
    "```python\nprint('hi')\n```\n"
)
# 0.10's sums, in its order: 0.5 + 0.2 + 0.1 + 0.1 and 0.5 + 0.2 + 0.1
JSON_BLOCK_CONFIDENCE = 0.8999999999999999
JSON_STRING_CONFIDENCE = 0.7999999999999999


def extract(collect, routine, data, key="data"):
    got = collect(routine)["output"]
    routine.get_slot("input").receive({key: data})
    assert len(got) == 1 and set(got[0]) == KEYS
    return got[0]


def test_fenced_json(collect):
    out = extract(collect, ResultExtractor(), 'Result:\n```json\n{"x": [1, 2]}\n```\nbye')
    assert out == {
        "extracted_result": {"x": [1, 2]},
        "format": "json",
        "metadata": {
            "extraction_method": "json_code_block",
            "block_count": 1,
            "block_index": 0,
            "extractor": "json_code_block",
            "strategy": "auto",
        },
        "confidence": JSON_BLOCK_CONFIDENCE,
        "extraction_path": ["json_code_block"],
    }


def test_last_parsable_json_block_wins(collect):
    text = '```json\n{"a": 1}\n```\n```json\n{"a": 2}\n```\n```{json}\nnot json\n```'
    out = extract(collect, ResultExtractor(), text)
    assert out["extracted_result"] == {"a": 2}
    assert out["metadata"]["block_count"] == 3 and out["metadata"]["block_index"] == 1


def test_whole_text_json(collect):
    out = extract(collect, ResultExtractor(), '  [1, {"a": null}]  ')
    assert out["extracted_result"] == [1, {"a": None}]
    assert out["metadata"]["extractor"] == "json_string"
    assert out["confidence"] == JSON_STRING_CONFIDENCE


def test_embedded_json_is_not_found_by_default(collect):
    out = extract(collect, ResultExtractor(), 'The answer is {"ok": true} as shown.')
    assert out["format"] == "str" and out["confidence"] == 0.0


def test_invalid_json_fence_gives_the_original_text(collect):
    out = extract(collect, ResultExtractor(), "```json\n{not json}\n```")
    assert out["extracted_result"] == "```json\n{not json}\n```"
    assert out["format"] == "str"


def test_yaml_block_when_enabled(collect):
    pytest.importorskip("yaml")
    text = "```yaml\nname: x\nitems:\n  - 1\n  - 2\n```"
    # off by default: code_block finds the block and gives its text
    out = extract(collect, ResultExtractor(), text)
    assert out["extracted_result"] == "name: x\nitems:\n  - 1\n  - 2\n"
    assert out["metadata"]["extractor"] == "code_block"
    out = extract(collect, ResultExtractor(extract_yaml_blocks=True), text)
    assert out["extracted_result"] == {"name": "x", "items": [1, 2]}
    assert out["format"] == "yaml"


def test_interpreter_output_list(collect):
    outputs = [
        {"format": "output", "content": "line 1"},
        {"format": "code", "content": "print(1)"},
        "plain",
        "  ",
        {"format": "output", "content": ""},
    ]
    out = extract(collect, ResultExtractor(), outputs)
    assert out["extracted_result"] == "line 1\nplain"
    assert out["format"] == "interpreter_output"
    assert out["metadata"]["output_count"] == 2


def test_code_block(collect):
    out = extract(collect, ResultExtractor(), "```python\nprint(1)\n```")
    assert out == {
        "extracted_result": "print(1)\n",
        "format": "python",
        "metadata": {
            "extraction_method": "python_code_block",
            "block_count": 1,
            "extractor": "code_block",
            "strategy": "auto",
        },
        "confidence": pytest.approx(0.6),
        "extraction_path": ["code_block"],
    }


@pytest.mark.parametrize(
    "text, bodies",
    [
        ("```python\na\n```", ["a\n"]),
        ("```PYTHON  \n\nb\n```", ["b\n"]),
        ("```{python}\nc\n```", ["c\n"]),
        ("```python3\nd\n```", []),  # the language must be followed by whitespace
        ("```python x\ne\n```", []),
        ("```python\nf``` ```python\ng\n```", ["f", "g\n"]),
    ],
)
def test_fence_rules(text, bodies):
    assert code_blocks(text, "python") == bodies


def test_fences_are_found_as_the_0_10_patterns_find_them():
    # the linear scanner must agree with re.findall of 0.10's two patterns
    pieces = ["```", "json", "JSON", "{json}", " ", "\t", "\n", "x", "`"]
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        expected = re.findall(r"```json\s*\n(.*?)```", text, re.DOTALL | re.IGNORECASE)
        expected += re.findall(r"```\{json\}\s*\n(.*?)```", text, re.DOTALL | re.IGNORECASE)
        assert code_blocks(text, "json") == expected, text


def test_auto_keeps_the_first_result(collect):
    out = extract(collect, ResultExtractor(strategy="auto"), MIXED)
    assert out["extracted_result"] == {"a": 1, "b": [1, 2]}


def test_priority_puts_named_extractors_first(collect):
    routine = ResultExtractor(strategy="priority", extractor_priority=["code_block"])
    out = extract(collect, routine, MIXED)
    assert out["format"] == "python"
    assert out["extraction_path"] == ["code_block"]
    assert out["extracted_result"] == "print('hi')\n"
    assert routine.extractor_names()[0] == "code_block"


def test_all_returns_every_result(collect):
    out = extract(collect, ResultExtractor(strategy="all"), MIXED)
    assert out["format"] == "multi"
    assert out["extracted_result"] == [{"a": 1, "b": [1, 2]}, "print('hi')\n"]
    assert out["extraction_path"] == ["json_code_block", "code_block"]
    assert out["metadata"]["count"] == 2 and out["metadata"]["errors"] == []
    assert [e["format"] for e in out["metadata"]["extractions"]] == ["json", "python"]
    assert out["confidence"] == JSON_BLOCK_CONFIDENCE


def test_any_other_strategy_keeps_the_most_confident(collect):
    routine = ResultExtractor(strategy="best", extractor_priority=["code_block"])
    out = extract(collect, routine, MIXED)
    assert out["format"] == "json"


def test_nothing_found_returns_the_original_data(collect):
    out = extract(collect, ResultExtractor(), "  just words  ")
    assert out == {
        "extracted_result": "  just words  ",
        "format": "str",
        "metadata": {"extraction_method": "none", "errors": [], "original_type": "str"},
        "confidence": 0.0,
        "extraction_path": [],
    }


def test_failure_can_raise_instead(collect):
    with pytest.raises(ValueError, match="All extractors failed"):
        extract(collect, ResultExtractor(return_original_on_failure=False), "just words")


@pytest.mark.parametrize("strategy", ["auto", "priority", "all", "first_match"])
def test_empty_message_is_an_empty_text(collect, strategy):
    routine = ResultExtractor(strategy=strategy)
    got = collect(routine)["output"]
    routine.get_slot("input").receive({})
    assert got[0]["extracted_result"] == "" and got[0]["format"] == "str"


@pytest.mark.parametrize(
    "value, fmt",
    [(1, "int"), ({"text": "x"}, "dict"), ([1], "list"), (b"```json\n{}\n```", "bytes")],
)
def test_any_type_of_input(collect, value, fmt):
    assert extract(collect, ResultExtractor(), value)["format"] == fmt


@pytest.mark.parametrize(
    "text",
    [
        "{" * 20000 + "[" * 20000,
        "[" * 100000,  # json's recursion limit must not escape
        "```json\n" + "[" * 100000 + "\n```",
        "```json" * 50000,  # many openings, no closing fence: linear, not quadratic
        "```json \n" + " " * 100000,
        "```" * 50000,
    ],
)
def test_hostile_text_is_handled_quickly(collect, text):
    # How long it takes is not asserted (that depends on how busy the machine is);
    # a quadratic regression shows as a run into the suite's timeout.
    out = extract(collect, ResultExtractor(), text)
    assert out["format"] == "str"


@pytest.mark.parametrize(
    "text",
    ["<a>" * 50000, "<a>" * 20000 + "</b>" * 20000 + "</a>" * 20000, "<a x='" * 30000,
     "{" * 50000, ">>> x\n" * 50000],
)
def test_opt_in_extractors_are_linear_on_hostile_text(text):
    # No time bound (see test_hostile_text_is_handled_quickly): each returns, and
    # none raises (no recursion error, no runaway regex).
    for extractor in (embedded_json, xml_tags, python_session):
        extractor(text, {})


def test_opt_in_extractors(collect):
    routine = ResultExtractor(extractor_priority=["tags", "embedded", "session"])
    routine.register_extractor("tags", xml_tags)
    routine.register_extractor("embedded", embedded_json)
    routine.register_extractor("session", python_session)
    out = extract(collect, routine, "<r><a>1</a><br></r> and <s>2</s> <s>3</s> </x>")
    assert out["extracted_result"] == {"r": "<a>1</a><br>", "s": ["2", "3"]}
    out = extract(collect, routine, 'The answer is {"ok": true} as shown.')
    assert out["extracted_result"] == {"ok": True} and out["format"] == "json"
    out = extract(collect, routine, ">>> 2 * 21\n42\n>>> for i in range(2):\n...     i\n0\n1\n")
    assert out["extracted_result"] == [
        {"input": "2 * 21", "output": "42"},
        {"input": "for i in range(2):\n    i", "output": "0\n1"},
    ]


def test_register_extractor_0_10_form(collect):
    routine = ResultExtractor()

    def answer(data, config):
        if isinstance(data, str) and "ANSWER:" in data:
            return data.split("ANSWER:")[1].strip(), "answer", {"method": "marker"}
        return None

    routine.register_extractor("answer", answer)
    assert routine.extractor_names()[-1] == "answer"  # custom ones come last
    out = extract(collect, routine, "thinking... ANSWER: 7")
    assert out["extracted_result"] == "7"
    assert out["format"] == "answer"
    assert out["metadata"] == {"method": "marker", "extractor": "answer", "strategy": "auto"}
    assert out["extraction_path"] == ["answer"]


def test_register_may_replace_a_builtin_in_place(collect):
    routine = ResultExtractor()
    before = routine.extractor_names()
    routine.register_extractor("json_string", lambda data, config: ("mine", "x", {}))
    assert routine.extractor_names() == before
    assert extract(collect, routine, "[1]")["extracted_result"] == "mine"


@pytest.mark.parametrize("name, fn, match", [("", lambda d, c: None, "non-empty"),
                                             ("x", "not callable", "callable")])
def test_register_extractor_validation(name, fn, match):
    with pytest.raises(ConfigurationError, match=match):
        ResultExtractor().register_extractor(name, fn)


def test_failing_extractor_is_listed_and_the_others_go_on(collect, caplog):
    routine = ResultExtractor()
    routine.register_extractor("boom", lambda data, config: 1 / 0)
    with caplog.at_level("WARNING"):
        out = extract(collect, routine, "x")
    assert out["metadata"]["errors"] == [
        {"extractor": "boom", "error": "Extractor 'boom' failed: division by zero"}
    ]
    assert "Extractor 'boom' failed" in caplog.text
    routine.set_config(extractor_priority=["boom"], continue_on_error=False)
    out = extract(collect, routine, "[1]")  # json_string would have found it
    assert out["format"] == "str" and len(out["metadata"]["errors"]) == 1


def test_registered_extractor_survives_cloudpickle(collect):
    routine = ResultExtractor()
    marker = "@@"
    routine.register_extractor(
        "marked", lambda d, c: (d.split(marker)[1], "marked", {}) if marker in d else None
    )
    copy = cloudpickle.loads(cloudpickle.dumps(routine))
    out = extract(collect, copy, "x @@found@@ y")
    assert out["extracted_result"] == "found"


def test_in_a_flow_with_registered_extractor(flow_runner):
    routine = ResultExtractor()
    routine.register_extractor(
        "upper", lambda d, c: (d.upper(), "upper", {}) if d.startswith("!") else None
    )
    run = flow_runner.run(routine, {"text": "!shout"})
    assert run.events["output"][0]["extracted_result"] == "!SHOUT"


def test_in_a_flow(flow_runner):
    run = flow_runner.run(ResultExtractor(), {"data": 'x ```json\n{"k": 1}\n``` y'})
    [out] = run.events["output"]
    assert out["extracted_result"] == {"k": 1} and out["format"] == "json"
