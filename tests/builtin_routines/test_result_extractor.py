from __future__ import annotations

import time

import cloudpickle
import pytest

from routilux.builtin_routines import Extraction, ResultExtractor
from routilux.exceptions import ConfigurationError

KEYS = {"extracted_result", "format", "metadata", "confidence", "extraction_path"}

MIXED = (
    "Sure! <answer>42</answer>\n"
    "```json\n{\"a\": 1, \"b\": [1, 2]}\n```\n"
    "```python\nprint('hi')\n```\n"
)


def extract(collect, routine, text):
    got = collect(routine)["output"]
    routine.get_slot("input").receive({"text": text})
    assert len(got) == 1 and set(got[0]) == KEYS
    return got[0]


def test_fenced_json(collect):
    out = extract(collect, ResultExtractor(), 'Result:\n```json\n{"x": [1, 2]}\n```\nbye')
    assert out["extracted_result"] == {"x": [1, 2]}
    assert out["format"] == "json"
    assert out["confidence"] == pytest.approx(0.95)
    assert out["metadata"]["extractor"] == "json_block"
    assert out["metadata"]["position"] == 8
    assert out["extraction_path"][0] == "json_block"


def test_whole_text_json(collect):
    out = extract(collect, ResultExtractor(), '  [1, {"a": null}]  ')
    assert out["extracted_result"] == [1, {"a": None}]
    assert out["metadata"]["extractor"] == "json"


def test_embedded_json_object(collect):
    out = extract(collect, ResultExtractor(), 'The answer is {"ok": true} as shown.')
    assert out["extracted_result"] == {"ok": True}
    assert out["metadata"]["source"] == "embedded"


def test_invalid_json_fence_falls_back_to_code(collect):
    out = extract(collect, ResultExtractor(), "```json\n{not json}\n```")
    assert out["format"] == "code"
    assert out["extracted_result"] == "{not json}\n"
    assert out["metadata"]["language"] == "json"


def test_yaml_block(collect):
    pytest.importorskip("yaml")
    out = extract(collect, ResultExtractor(), "```yaml\nname: x\nitems:\n  - 1\n  - 2\n```")
    assert out["extracted_result"] == {"name": "x", "items": [1, 2]}
    assert out["format"] == "yaml"


def test_xml_tags_with_repeats(collect):
    out = extract(collect, ResultExtractor(), "<a>1</a> text <b> two </b><a>3</a>")
    assert out["extracted_result"] == {"a": ["1", "3"], "b": "two"}
    assert out["format"] == "xml"
    assert out["metadata"]["repeated"] == ["a"]


def test_interpreter_output(collect):
    text = ">>> x = 2\n>>> x * 21\n42\n>>> for i in range(2):\n...     print(i)\n0\n1\n"
    out = extract(collect, ResultExtractor(), text)
    assert out["format"] == "interpreter_output"
    assert out["extracted_result"] == [
        {"input": "x = 2", "output": ""},
        {"input": "x * 21", "output": "42"},
        {"input": "for i in range(2):\n    print(i)", "output": "0\n1"},
    ]
    assert out["metadata"]["has_traceback"] is False


def test_code_block(collect):
    out = extract(collect, ResultExtractor(), "```python\nprint(1)\n```")
    assert out == {
        "extracted_result": "print(1)\n",
        "format": "code",
        "metadata": {"source": "code_block", "language": "python", "extractor": "code_block",
                     "position": 0},
        "confidence": pytest.approx(0.6),
        "extraction_path": ["json_block", "yaml_block", "json", "xml", "interpreter",
                            "code_block"],
    }


def test_auto_prefers_the_most_confident(collect):
    out = extract(collect, ResultExtractor(strategy="auto"), MIXED)
    assert out["extracted_result"] == {"a": 1, "b": [1, 2]}


def test_first_match_prefers_the_earliest(collect):
    out = extract(collect, ResultExtractor(strategy="first_match"), MIXED)
    assert out["extracted_result"] == {"answer": "42"}
    assert out["format"] == "xml"


def test_priority_follows_the_configured_order_and_stops(collect):
    routine = ResultExtractor(strategy="priority", extractors=["code_block", "json_block"])
    out = extract(collect, routine, MIXED)
    assert out["format"] == "code"
    assert out["extraction_path"] == ["code_block"]
    assert out["extracted_result"] == '{"a": 1, "b": [1, 2]}\n'


def test_priority_skips_extractors_that_find_nothing(collect):
    routine = ResultExtractor(strategy="priority", extractors=["interpreter", "xml", "json"])
    out = extract(collect, routine, MIXED)
    assert out["extraction_path"] == ["interpreter", "xml"]
    assert out["format"] == "xml"


def test_all_returns_every_result_in_text_order_without_duplicates(collect):
    out = extract(collect, ResultExtractor(strategy="all"), MIXED)
    assert out["format"] == "multiple"
    assert out["extracted_result"] == [{"answer": "42"}, {"a": 1, "b": [1, 2]}, "print('hi')\n"]
    assert [r["extractor"] for r in out["metadata"]["results"]] == [
        "xml", "json_block", "code_block"
    ]
    assert out["metadata"]["count"] == 3
    assert out["confidence"] == pytest.approx(0.95)


def test_plain_text_falls_back_to_text(collect):
    out = extract(collect, ResultExtractor(), "  just words  ")
    assert out["extracted_result"] == "just words"
    assert out["format"] == "text"
    assert out["confidence"] == pytest.approx(0.1)
    assert out["extraction_path"][-1] == "text"


def test_fallback_can_be_turned_off(collect):
    out = extract(collect, ResultExtractor(fallback_to_text=False), "just words")
    assert out["extracted_result"] is None and out["format"] == "none"
    assert out["confidence"] == 0.0


@pytest.mark.parametrize("strategy", ["auto", "priority", "all", "first_match"])
def test_empty_text_gives_none(collect, strategy):
    out = extract(collect, ResultExtractor(strategy=strategy), "   ")
    assert out["extracted_result"] is None
    assert out["format"] == "none"
    assert out["confidence"] == 0.0


@pytest.mark.parametrize("bad", [None, 1, {"text": "x"}, b"```json\n{}\n```"])
def test_non_str_text_is_a_type_error(collect, bad):
    with pytest.raises(TypeError, match="ResultExtractor needs a str"):
        extract(collect, ResultExtractor(), bad)


@pytest.mark.parametrize(
    "text, fmt",
    [
        ("{" * 20000 + "[" * 20000, "text"),
        ("[" * 100000, "text"),  # json's recursion limit must not escape
        ("```json\n" + "[" * 100000 + "\n```", "code"),
        ("<a>" * 50000, "text"),  # unclosed tags: linear, not quadratic
        ("<a>" * 20000 + "</b>" * 20000 + "</a>" * 20000, "xml"),
        ("```" * 50000, "code"),
        ("<a x='" * 30000, "text"),
    ],
)
def test_hostile_text_is_handled_quickly(collect, text, fmt):
    started = time.perf_counter()
    out = extract(collect, ResultExtractor(), text)
    assert out["format"] == fmt
    assert time.perf_counter() - started < 2.0


def test_nested_tags_stay_inside_their_parent(collect):
    out = extract(collect, ResultExtractor(), "<r><a>1</a><br></r> and <s>2</s> </x>")
    assert out["extracted_result"] == {"r": "<a>1</a><br>", "s": "2"}


def test_inline_fence_without_newline(collect):
    out = extract(collect, ResultExtractor(), "run ```ls -l``` now")
    assert out["extracted_result"] == "ls -l"
    assert out["metadata"]["language"] is None


def test_register_extractor_plain_value(collect):
    routine = ResultExtractor()
    routine.register_extractor(
        "answer", lambda t: t.split("ANSWER:")[1].strip() if "ANSWER:" in t else None,
        confidence=0.99,
    )
    out = extract(collect, routine, "thinking... ANSWER: 7")
    assert out["extracted_result"] == "7"
    assert out["format"] == "answer"
    assert out["metadata"]["extractor"] == "answer"
    assert out["extraction_path"][0] == "answer"


def test_register_extractor_returning_extractions(collect):
    routine = ResultExtractor(strategy="all")
    routine.register_extractor(
        "numbers",
        lambda t: [Extraction(int(w), "int", 0.5, t.index(w), t.index(w) + len(w))
                   for w in t.split() if w.isdigit()] or None,
    )
    out = extract(collect, routine, "a 1 b 22")
    assert out["extracted_result"] == [1, 22]


def test_registered_extractor_can_be_named_in_config():
    routine = ResultExtractor()
    with pytest.raises(ConfigurationError, match="register custom extractors"):
        routine.set_config(extractors=["mine"])
    routine.register_extractor("mine", lambda t: None)
    routine.set_config(extractors=["mine", "json"])
    assert routine.get_config("extractors") == ["mine", "json"]


@pytest.mark.parametrize(
    "name, fn, kwargs, match",
    [
        ("json", lambda t: None, {}, "built-in"),
        ("", lambda t: None, {}, "non-empty"),
        ("x", "not callable", {}, "callable"),
        ("x", lambda t: None, {"confidence": 2}, "confidence"),
    ],
)
def test_register_extractor_validation(name, fn, kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        ResultExtractor().register_extractor(name, fn, **kwargs)


def test_failing_custom_extractor_raises(collect):
    routine = ResultExtractor()
    routine.register_extractor("boom", lambda t: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        extract(collect, routine, "x")


def test_registered_extractor_survives_cloudpickle(collect):
    routine = ResultExtractor()
    marker = "@@"
    routine.register_extractor("marked", lambda t: t.split(marker)[1] if marker in t else None)
    copy = cloudpickle.loads(cloudpickle.dumps(routine))
    out = extract(collect, copy, "x @@found@@ y")
    assert out["extracted_result"] == "found"


def test_in_a_flow_with_registered_extractor(flow_runner):
    routine = ResultExtractor()
    routine.register_extractor("upper", lambda t: t.upper() if t.startswith("!") else None)
    run = flow_runner.run(routine, {"text": "!shout"})
    assert run.events["output"][0]["extracted_result"] == "!SHOUT"


def test_in_a_flow(flow_runner):
    run = flow_runner.run(ResultExtractor(), {"text": 'x ```json\n{"k": 1}\n``` y'})
    [out] = run.events["output"]
    assert out["extracted_result"] == {"k": 1} and out["format"] == "json"
