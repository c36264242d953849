"""0.10 programs using the built-in routines (spec §1.0, §1.2 - §1.8).

Each program feeds a built-in from a 0.10-style entry routine and reads the results
from routine attributes, with the built-in in a thread and in a process routine.
"""

from __future__ import annotations

import importlib
from datetime import datetime

import pytest

import routilux
from routilux import Flow, JobState
from routilux.builtin_routines import (
    ConditionalRouter,
    DataFlattener,
    DataTransformer,
    DataValidator,
    ResultExtractor,
    TextClipper,
    TextRenderer,
    TimeProvider,
)
from routilux.error_handler import ErrorHandler
from tests.compat.conftest import Sink, Source

# -- §1.0 rules common to all built-ins ----------------------------------------------

ATTRIBUTES = {
    TextClipper: {"input_slot": "input", "output_event": "output"},
    TextRenderer: {"input_slot": "input", "output_event": "output"},
    ResultExtractor: {"input_slot": "input", "output_event": "output"},
    DataFlattener: {"input_slot": "input", "output_event": "output"},
    DataTransformer: {"input_slot": "input", "output_event": "output"},
    DataValidator: {"input_slot": "input", "valid_event": "valid", "invalid_event": "invalid"},
    ConditionalRouter: {"input_slot": "input", "default_output": "output"},
    TimeProvider: {"trigger_slot": "request", "output_event": "output"},
}

DEFAULTS = {
    ConditionalRouter: {"routes": [], "default_route": None, "route_priority": "first_match"},
    TextClipper: {
        "max_length": 1000,
        "preserve_tracebacks": True,
        "truncation_message": "...(省略了{remaining}行)",
    },
    TextRenderer: {"tag_format": "xml", "indent": "  ", "include_type_hints": False},
    ResultExtractor: {
        "strategy": "auto",
        "extractor_priority": [],
        "extract_json_blocks": True,
        "extract_code_blocks": True,
        "extract_yaml_blocks": False,
        "extract_xml_blocks": False,
        "code_block_languages": ["json", "python", "output", "yaml", "xml"],
        "format_interpreter_output": True,
        "parse_json_strings": True,
        "parse_yaml_strings": False,
        "detect_nested_structures": True,
        "continue_on_error": True,
        "return_original_on_failure": True,
        "log_errors": True,
    },
    TimeProvider: {
        "format": "iso",
        "custom_format": "%Y-%m-%d %H:%M:%S",
        "include_weekday": True,
        "locale": "zh_CN",
    },
    DataFlattener: {"separator": ".", "preserve_lists": True, "max_depth": 100},
    DataTransformer: {"transformations": [], "chain_transformations": True},
    DataValidator: {
        "rules": {},
        "strict_mode": False,
        "required_fields": [],
        "allow_extra_fields": True,
    },
}


@pytest.mark.parametrize("cls", list(ATTRIBUTES), ids=lambda c: c.__name__)
def test_attribute_names_and_0_10_config_defaults(cls):
    routine = cls()
    for attribute, name in ATTRIBUTES[cls].items():
        port = getattr(routine, attribute)
        assert port is (routine.get_slot(name) or routine.get_event(name)), attribute
    config = routine.config()
    assert {key: config[key] for key in DEFAULTS[cls]} == DEFAULTS[cls]
    if cls is DataTransformer:
        assert sorted(config["transformation_map"]) == sorted(
            "lowercase uppercase strip_whitespace to_string to_int to_float remove_none".split()
        )


@pytest.mark.parametrize(
    "module, names",
    [
        ("utils", ["TimeProvider", "DataFlattener"]),
        ("data_processing", ["DataTransformer", "DataValidator"]),
        ("text_processing", ["TextClipper", "TextRenderer", "ResultExtractor"]),
        ("control_flow", ["ConditionalRouter"]),
        ("utils.data_flattener", ["DataFlattener"]),
        ("utils.time_provider", ["TimeProvider"]),
        ("control_flow.conditional_router", ["ConditionalRouter"]),
    ],
)
def test_package_layout(module, names):
    package = importlib.import_module(f"routilux.builtin_routines.{module}")
    for name in names:
        assert getattr(package, name) is getattr(routilux, name)
        assert getattr(package, name) is getattr(routilux.builtin_routines, name)


def test_set_config_stores_any_key_for_users_and_their_conditions(program):
    renderer = TextRenderer()
    renderer.set_config(owner="team-a", retries=3)
    assert renderer.get_config("owner") == "team-a" and renderer.config()["retries"] == 3
    got, routine, _ = program.run(renderer, [{"data": {"a": 1}}])
    assert got["output"] == [{"rendered_text": "<a>1</a>", "original_type": "dict"}]
    assert routine.get_config("owner") == "team-a"


@pytest.mark.parametrize(
    "message, value",
    [
        ({"data": {"k": 1}, "extra": 2}, {"k": 1}),  # data wins
        ({"text": "hi"}, "hi"),  # a single key gives its value
        ({"name": "x"}, "x"),
        ({"data": None, "name": "x"}, "x"),  # a None data does not count
        ({"a": 1, "b": 2}, {"a": 1, "b": 2}),  # several keys give their dict
        ({}, {}),
    ],
)
def test_the_0_10_input_rule(program, message, value):
    got, _, _ = program.run(TextRenderer(), [message])
    [out] = got["output"]
    assert out["original_type"] == type(value).__name__
    assert out["rendered_text"] == TextRenderer().render(value)


def test_input_key_opt_in_reads_one_key(program):
    got, _, _ = program.run(TextRenderer(input_key="body"), [{"body": [1], "data": "ignored"}])
    assert got["output"][0]["rendered_text"] == "<item_0>1</item_0>"


def test_extract_input_data_helper():
    clipper = TextClipper()
    assert clipper._extract_input_data("direct", text="x") == "direct"
    assert clipper._extract_input_data(None, text="value") == "value"
    assert clipper._extract_input_data(None, a=1, b=2) == {"a": 1, "b": 2}
    assert clipper._extract_input_data() == {}


def test_a_builtin_error_in_a_flow_follows_the_error_strategy(make_flow, execution):
    clipper = TextClipper(max_length=2, truncation_message="{nope}")
    clipper.set_error_handler(ErrorHandler("continue"))
    flow = make_flow()
    flow.add_routine(Source(), "source")
    flow.add_routine(clipper, "clip", execution=execution)
    flow.connect("source", "output", "clip", "input")
    job = flow.execute("source", {"messages": [{"text": "abc\ndef"}]})
    assert JobState.wait_for_completion(flow, job, timeout=30)
    assert job.status == "completed"  # CONTINUE: the error is recorded, the job goes on
    assert [f["exception_type"] for f in job.failures] == ["KeyError"]


# -- §1.2 DataValidator --------------------------------------------------------------


@pytest.mark.parametrize(
    "name, passes, fails",
    [
        ("not_empty", ["  ", [], 0], [None, ""]),
        ("is_string", ["x"], [1]),
        ("is_int", [1, True], [1.0]),
        ("is_float", [1.5], [1]),
        ("is_number", [1, 2.5, True], ["1"]),
        ("is_dict", [{}], [[]]),
        ("is_list", [[]], [()]),
        ("is_positive", [0.1], [0, "5"]),
        ("is_non_negative", [0], [-1, None]),
    ],
)
def test_validator_names(program, name, passes, fails):
    validator = DataValidator()
    validator.set_config(rules={"f": name})
    messages = [{"data": {"f": v}} for v in passes + fails]
    got, _, _ = program.run(validator, messages, events=("valid", "invalid"))
    assert [m["validated_data"]["f"] for m in got["valid"]] == passes
    assert [m["data"]["f"] for m in got["invalid"]] == fails
    assert all(m["errors"] == ["Field 'f' failed validation"] for m in got["invalid"])


def test_validator_errors_in_0_10_order_and_strict_mode(program):
    validator = DataValidator()
    validator.register_validator("is_int", lambda v: isinstance(v, int) and v < 100)
    validator.set_config(
        rules={
            "a": "is_int",
            "b": "nope",
            "c": 3,
            "d": lambda v: (False, "d is wrong"),
            "e": lambda v: 1 / 0,
        },
        required_fields=["x", "y"],
        allow_extra_fields=False,
    )
    data = {"a": 500, "b": 1, "c": 1, "d": 1, "e": 1, "z": 1}
    got, _, _ = program.run(validator, [{"data": data}], events=("valid", "invalid"))
    assert got["invalid"] == [
        {
            "errors": [
                "Required field 'x' is missing",
                "Required field 'y' is missing",
                "Field 'a' failed validation",
                "Unknown validator: nope",
                "Invalid validator for field 'c'",
                "d is wrong",
                "Validation error for field 'e': division by zero",
                "Unexpected field 'z'",
            ],
            "data": data,
        }
    ]
    validator.set_config(strict_mode=True)
    got, _, _ = program.run(validator, [{"data": data}], events=("invalid",))
    assert got["invalid"][0]["errors"] == [
        "Required field 'x' is missing",
        "Field 'a' failed validation",
    ]


def test_validator_other_shapes_and_message_rules(program):
    validator = DataValidator()
    validator.set_config(rules={"items": "is_int", "value": "is_string"}, required_fields=["k"])
    messages = [
        {"data": [1, "a", 2, "b"]},
        {"data": 5},
        {"data": "ok"},
        {"data": {"k": 1}, "rules": {"k": "is_string"}},
        {"name": "x"},  # rule 3 of the input rule: the string "x" is validated
    ]
    got, _, _ = program.run(validator, messages, events=("valid", "invalid"))
    assert [(m["data"], m["errors"]) for m in got["invalid"]] == [
        (
            [1, "a", 2, "b"],
            ["Field 'items[1]' failed validation", "Field 'items[3]' failed validation"],
        ),
        (5, ["Field 'value' failed validation"]),
        ({"k": 1}, ["Field 'k' failed validation"]),
    ]
    assert got["valid"] == [{"validated_data": "ok"}, {"validated_data": "x"}]


# -- §1.3 DataTransformer ------------------------------------------------------------


def test_transformer_builtins_apply_to_the_whole_value(program):
    transformer = DataTransformer()
    transformer.set_config(transformations=["to_int"])
    messages = [
        {"data": 3.7},
        {"data": " 12 "},
        {"data": {"a": "1"}},
        {"data": "  Mixed ", "transformations": ["strip_whitespace", "lowercase"]},
        {"data": {"a": None, "b": {"c": None}}, "transformations": ["remove_none", "to_string"]},
        {"data": ["A", None], "transformations": ["lowercase", "remove_none"]},
    ]
    got, _, _ = program.run(transformer, messages)
    assert [
        (m["transformed_data"], m["transformation_applied"], m["errors"]) for m in got["output"]
    ] == [
        (3, ["to_int"], None),
        (12, ["to_int"], None),
        ({"a": "1"}, ["to_int"], None),
        ("mixed", ["strip_whitespace", "lowercase"], None),
        ("{'b': {'c': None}}", ["remove_none", "to_string"], None),
        (["A", None], ["lowercase", "remove_none"], None),
    ]


def test_transformer_names_map_and_errors(program):
    transformer = DataTransformer()
    transformer.register_transformation("double", lambda x: x * 2)
    transformer.register_transformation("uppercase", lambda x: "overridden")
    transformer.set_config(transformations=["double", "missing", 7, "to_int", "uppercase", abs])
    got, _, _ = program.run(transformer, [{"data": "ab"}])
    assert got["output"] == [
        {
            "transformed_data": "overridden",
            "transformation_applied": ["double", "uppercase"],
            "errors": [
                "Unknown transformation: missing",
                "Invalid transformation: 7",
                "Error applying to_int: invalid literal for int() with base 10: 'abab'",
                "Error applying <built-in function abs>: bad operand type for abs(): 'str'",
            ],
        }
    ]
    transformer.set_config(transformation_map={"only": str.title}, transformations=["only"])
    got, _, _ = program.run(transformer, [{"data": "ab cd"}])
    assert got["output"][0]["transformed_data"] == "Ab Cd"


# -- §1.4 DataFlattener --------------------------------------------------------------


def test_flattener(program):
    messages = [
        {"data": {"a": {"c": [2, {"d": 3}]}, "e": [], "f": {}}},
        {"data": [1, {"x": 2}]},
        {"data": 5},
        {"data": {1: "int key", "t": (1, 2), "s": None}},
        {"data": {"a.b": 1, "a": {"b": 2}}},
    ]
    got, _, _ = program.run(DataFlattener(), messages)
    assert [(m["flattened_data"], m["original_type"], m["depth"]) for m in got["output"]] == [
        ({"a.c.0": 2, "a.c.1.d": 3}, "dict", 4),
        ({"0": 1, "1.x": 2}, "list", 2),
        ({"value": 5}, "int", 0),
        ({1: "int key", "t": (1, 2), "s": None}, "dict", 1),
        ({"a.b": 2}, "dict", 2),
    ]


def test_flattener_options_circular_data_and_routilux_objects(program):
    flattener = DataFlattener()
    flattener.set_config(preserve_lists=False, max_depth=2, separator="/")
    loop: dict = {"x": 1}
    loop["self"] = loop
    messages = [{"data": {"a": [1, 2], "b": {"c": {"d": 1}}}}]
    got, _, _ = program.run(flattener, messages)
    assert got["output"][0]["flattened_data"] == {"a": "2", "b/c": "{'d': 1}"}
    out = DataFlattener().flatten(loop)
    assert out == {"x": 1, "self": "[Circular Reference]"}
    # an object with serialize() (0.10: a serilux Serializable) flattens as its dict
    flat = DataFlattener().flatten_with_info({"p": Point()})
    assert flat == ({"p.x": 1, "p.y.z": 2}, "dict", 4)  # one level deeper


class Serializable:
    """Stands for serilux's base class, which 0.10 objects derive from."""


class Point(Serializable):
    def serialize(self) -> dict:
        return {"x": 1, "y": {"z": 2}}


# -- §1.5 TextClipper ----------------------------------------------------------------


def test_clipper(program):
    clipper = TextClipper()
    clipper.set_config(max_length=6)
    messages = [
        {"text": "abcd\nef\ngh"},
        {"text": "abcd\nef", "max_length": 3},
        {"text": "Traceback here\n" * 3},
        {"text": {"content": "0123456789"}},
        {"data": 12345678},
        {"text": "short"},
    ]
    got, _, _ = program.run(clipper, messages)
    assert [(m["clipped_text"], m["was_clipped"], m["original_length"]) for m in got["output"]] == [
        ("abcd\n...(省略了2行)", True, 10),
        ("\n...(省略了2行)", True, 7),
        ("Traceback here\n" * 3, False, 45),
        ("\n...(省略了1行)", True, 10),
        ("\n...(省略了1行)", True, 8),
        ("short", False, 5),
    ]
    clipper.set_config(truncation_message="[{remaining} lines cut]")
    got, _, _ = program.run(clipper, [{"text": "abcd\nef\ngh"}])
    assert got["output"][0]["clipped_text"] == "abcd\n[2 lines cut]"


# -- §1.6 TextRenderer ---------------------------------------------------------------


def test_renderer(program):
    loop: list = [1]
    loop.append(loop)
    messages = [
        {"data": {"a": 1, "b": {"c": 2}}},
        {"data": {"l": [1, 2], "e": {}, "t": (1, 2), "n": None, "bad key<": 0}},
    ]
    got, _, _ = program.run(TextRenderer(), messages)
    assert [m["rendered_text"] for m in got["output"]] == [
        "<a>1</a>\n<b>  <c>2</c></b>",
        "<l>  <item_0>1</item_0>\n  <item_1>2</item_1></l>\n<e></e>\n<t>(1, 2)</t>\n"
        "<n>None</n>\n<bad key<>0</bad key<>",
    ]
    markdown = TextRenderer()
    markdown.set_config(tag_format="markdown", indent="  ")
    got, _, _ = program.run(markdown, [{"data": {"l": [1, 2]}}])
    assert got["output"] == [{"rendered_text": "**l**:   - 1\n  - 2", "original_type": "dict"}]
    assert (
        TextRenderer().render(loop) == "<item_0>1</item_0>\n<item_1>[Circular Reference]</item_1>"
    )


# -- §1.7 ResultExtractor ------------------------------------------------------------


def test_extractor(program):
    extractor = ResultExtractor()
    messages = [
        {"data": 'Answer:\n```json\n{"a": 1}\n```'},
        {"data": "[1, 2]"},
        {"data": "```python\nprint(1)\n```"},
        {"data": [{"format": "output", "content": "42"}]},
        {"data": {"k": "v"}},
        {"data": "nothing to see"},
        {},
    ]
    got, _, _ = program.run(extractor, messages)
    assert [
        (m["extracted_result"], m["format"], m["confidence"], m["extraction_path"])
        for m in got["output"]
    ] == [
        ({"a": 1}, "json", 0.8999999999999999, ["json_code_block"]),
        ([1, 2], "json", 0.7999999999999999, ["json_string"]),
        ("print(1)\n", "python", 0.6, ["code_block"]),
        ("42", "interpreter_output", 0.5, ["interpreter_output"]),
        ({"k": "v"}, "dict", 0.7, ["dict_extractor"]),
        ("nothing to see", "str", 0.0, []),
        ("", "str", 0.0, []),
    ]
    assert got["output"][0]["metadata"] == {
        "extraction_method": "json_code_block",
        "block_count": 1,
        "block_index": 0,
        "extractor": "json_code_block",
        "strategy": "auto",
    }


def test_extractor_strategies_priority_and_custom_extractors(program):
    def prefix(data, config):
        if isinstance(data, str) and data.startswith("CUSTOM:"):
            return data[7:], "custom", {"method": "prefix"}
        return None

    extractor = ResultExtractor()
    extractor.register_extractor("custom_prefix", prefix)
    extractor.register_extractor("broken", lambda data, config: 1 / 0)
    extractor.set_config(strategy="all", log_errors=False)
    text = 'CUSTOM:x\n```json\n{"a": 1}\n```'
    got, _, _ = program.run(extractor, [{"data": text}])
    [out] = got["output"]
    assert out["format"] == "multi"
    assert out["extraction_path"] == ["json_code_block", "custom_prefix"]
    assert out["extracted_result"] == [{"a": 1}, 'x\n```json\n{"a": 1}\n```']
    assert out["metadata"]["errors"] == [
        {"extractor": "broken", "error": "Extractor 'broken' failed: division by zero"}
    ]
    extractor.set_config(strategy="first_match", extractor_priority=["custom_prefix"])
    got, _, _ = program.run(extractor, [{"data": text}])
    assert got["output"][0]["format"] == "custom"


# -- §1.8 TimeProvider ---------------------------------------------------------------


def test_time_provider(make_flow, execution):
    clock = TimeProvider()
    clock.set_config(format="formatted", include_weekday=False)
    flow: Flow = make_flow()
    flow.add_routine(Source(), "source")
    flow.add_routine(clock, "clock", execution=execution)
    sink = Sink()
    flow.add_routine(sink, "sink")
    flow.connect("source", "output", "clock", "request")
    flow.connect("clock", "output", "sink", "input")
    before = datetime.now()
    job = flow.execute(
        "source",
        {
            "messages": [
                {},
                {"format": "iso"},
                {"data": {"format": "timestamp"}},
                {"format": "custom"},
                {"format": "nonsense"},
            ]
        },
    )
    assert JobState.wait_for_completion(flow, job, timeout=30)
    after = datetime.now()
    formatted, iso, stamp, custom, fallback = sink.results
    assert datetime.strptime(formatted["time_string"], "%Y-%m-%d %H:%M:%S")
    for out in (iso, fallback):
        moment = datetime.fromisoformat(out["time_string"])
        assert moment.tzinfo is None and before <= moment <= after
    assert float(stamp["time_string"]) == pytest.approx(stamp["timestamp"], abs=1.0)
    assert custom["time_string"] == custom["formatted"]
    for out in sink.results:
        assert isinstance(out["timestamp"], float) and isinstance(out["datetime"], str)
        assert datetime.fromisoformat(out["datetime"]).tzinfo is None
