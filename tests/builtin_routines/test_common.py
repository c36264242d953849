"""What every built-in shares: construction, config handling, exports, pickling."""

from __future__ import annotations

import importlib
import json

import cloudpickle
import pytest

import routilux.builtin_routines as builtins_pkg
from routilux import Flow, Routine
from routilux.builtin_routines import (
    Aggregator,
    Batcher,
    BuiltinRoutine,
    ConditionalRouter,
    DataFlattener,
    DataTransformer,
    DataValidator,
    Debouncer,
    Filter,
    Mapper,
    ResultExtractor,
    Splitter,
    TextClipper,
    TextRenderer,
    TimeProvider,
)
from routilux.exceptions import ConfigurationError

ROUTINES = {
    "text_processing": [TextClipper, TextRenderer, ResultExtractor],
    "data_processing": [DataFlattener, DataTransformer, DataValidator],
    "control_flow": [ConditionalRouter],
    "utils": [TimeProvider],
    "stream": [Batcher, Aggregator, Splitter, Filter, Mapper, Debouncer],
}
ALL = [cls for group in ROUTINES.values() for cls in group]

# one valid, non-default setting per routine
SAMPLE_CONFIG = {
    TextClipper: {"max_length": 7},
    TextRenderer: {"tag_format": "markdown"},
    ResultExtractor: {"strategy": "first_match"},
    DataFlattener: {"separator": "/"},
    DataTransformer: {"transformations": ["lowercase"]},
    DataValidator: {"required_fields": ["id"]},
    ConditionalRouter: {"routes": [("big", "data.get('value', 0) > 10")]},
    TimeProvider: {"format": "timestamp"},
    Batcher: {"batch_size": 3},
    Aggregator: {"count": 2},
    Splitter: {"input_key": "things"},
    Filter: {"condition": "x > 1"},
    Mapper: {"function": "x * 2", "output_key": "y"},
    Debouncer: {"wait": 2.0},
}


def test_issue_names_are_exported_from_the_package_and_sub_packages():
    # DataFlattener's 0.10 home is utils; data_processing keeps exporting it too
    from routilux.builtin_routines.utils import DataFlattener as from_utils

    assert from_utils is DataFlattener
    for package, classes in ROUTINES.items():
        sub = importlib.import_module(f"routilux.builtin_routines.{package}")
        for cls in classes:
            assert getattr(sub, cls.__name__) is cls
            assert getattr(builtins_pkg, cls.__name__) is cls
            assert cls.__name__ in builtins_pkg.__all__


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_constructs_without_arguments(cls):
    routine = cls()
    assert isinstance(routine, Routine) and isinstance(routine, BuiltinRoutine)
    assert routine.config() == cls.CONFIG_DEFAULTS
    assert cls.__doc__ and "Event" in cls.__doc__ and "Slot" in cls.__doc__


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_keywords_equal_set_config(cls):
    by_keyword = cls(**SAMPLE_CONFIG[cls])
    by_setter = cls()
    by_setter.set_config(**SAMPLE_CONFIG[cls])
    assert by_keyword.config() == by_setter.config()
    assert by_keyword.config() != cls().config()
    assert sorted(by_keyword._events) == sorted(by_setter._events)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_unknown_config_key_is_stored_as_in_0_10_unless_strict(cls):
    routine = cls()
    routine.set_config(bogus=1)
    assert routine.config()["bogus"] == 1 and routine.get_config("bogus") == 1
    assert cls(bogus=2).get_config("bogus") == 2
    strict = cls(strict_config=True)
    with pytest.raises(ConfigurationError, match=r"no config key\(s\) \['bogus'\].*known keys"):
        strict.set_config(bogus=1)
    with pytest.raises(ConfigurationError, match="bogus"):
        cls(strict_config=True, bogus=1)
    assert "bogus" not in strict.config()


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_configured_routine_round_trips_through_cloudpickle(cls):
    routine = cls(**SAMPLE_CONFIG[cls])
    copy = cloudpickle.loads(cloudpickle.dumps(routine))
    assert type(copy) is cls
    assert copy.config() == routine.config()
    assert sorted(copy._slots) == sorted(routine._slots)
    assert sorted(copy._events) == sorted(routine._events)
    # handlers are bound to the copy, not to the original
    for slot in copy._slots.values():
        assert slot.handler.__self__ is copy


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_serialized_flow_rebuilds_the_configured_routine(cls):
    flow = Flow(flow_id="serialize-me")
    flow.add_routine(cls(**SAMPLE_CONFIG[cls]), "r")
    rebuilt = Flow.deserialize(flow.serialize())
    assert type(rebuilt.routines["r"]) is cls
    original = flow.routines["r"].config()
    again = rebuilt.routines["r"].config()
    # JSON turns tuples into lists; compare after the same conversion
    assert _listify(again) == _listify(original)


def _listify(value):
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_listify(v) for v in value]
    return value


@pytest.mark.parametrize(
    "cls, key, value",
    [
        # 0.10 accepted these and gave them a meaning: they must keep working
        (TextClipper, "max_length", 0),
        (TextClipper, "max_length", True),
        (TextRenderer, "tag_format", "html"),  # any format but xml renders markdown
        (ResultExtractor, "strategy", "best"),  # collects, keeps the most confident
        (DataFlattener, "separator", ""),
        (DataFlattener, "separator", 1),  # joins as "a1b"
        (DataFlattener, "max_depth", 0),
        (DataFlattener, "max_depth", -1),
        (DataTransformer, "transformations", ["capitalize"]),  # an error entry at run time
        (DataValidator, "rules", {"a": "nonsense"}),  # an error entry at run time
        (DataValidator, "strict_mode", "yes"),  # truthy
        (ConditionalRouter, "route_priority", "any"),  # all matching routes
        (TimeProvider, "format", "rfc"),  # iso
    ],
)
def test_values_0_10_accepted_are_stored(cls, key, value):
    routine = cls()
    routine.set_config(**{key: value})
    assert routine.get_config(key) == value


@pytest.mark.parametrize(
    "cls, key, bad",
    [
        (TextClipper, "max_length", "10"),
        (TextClipper, "truncation_message", None),
        (TextRenderer, "indent", [2]),
        (ResultExtractor, "extractor_priority", "json_string"),
        (DataFlattener, "max_depth", None),
        (DataFlattener, "max_depth", "3"),
        (DataTransformer, "transformation_map", ["lowercase"]),
        (DataValidator, "rules", ["a"]),
        (ConditionalRouter, "routes", [("a",)]),
        (ConditionalRouter, "routes", [("a", "data.pop()")]),
        (TimeProvider, "custom_format", 5),
        (TimeProvider, "timezone", "Mars/Olympus"),
        (Batcher, "batch_size", -1),
        (Batcher, "max_wait", 0),
        (Batcher, "clock", "now"),
        (Aggregator, "expected_sources", "ab"),
        (Aggregator, "on_conflict", "merge"),
        (Splitter, "input_key", 3),
        (Filter, "condition", 3),
        (Filter, "condition", "__import__('os')"),
        (Mapper, "function", 3),
        (Debouncer, "wait", -1),
    ],
)
def test_bad_config_values_raise_a_clear_configuration_error(cls, key, bad):
    routine = cls()
    before = routine.config()
    with pytest.raises(ConfigurationError, match=key if key not in ("routes",) else "route"):
        routine.set_config(**{key: bad})
    assert routine.config() == before


@pytest.mark.parametrize(
    "routine",
    [
        Filter(condition=lambda m: True),
        Mapper(function=lambda m: m),
        ConditionalRouter(routes=[("a", lambda d: True)]),
        DataValidator(rules={"a": lambda v: True}),
        DataTransformer(),  # transformation_map holds the built-in functions
        Batcher(batch_size=1, clock=lambda: 0.0),
        TimeProvider(clock=lambda: 0.0),
    ],
    ids=lambda r: type(r).__name__,
)
def test_callables_survive_json_serialization(routine):
    """Flow.serialize writes callables in config as function references or lambda
    expressions (0.10's forms, restored without eval); rebuilt, they are callables
    again. A value with no such form would be listed under unserialized_config."""
    flow = Flow(flow_id="callables")
    flow.add_routine(routine, "r")
    data = json.loads(json.dumps(flow.serialize()))
    spec = data["routines"]["r"]
    assert spec["unserialized_config"] == []
    assert set(spec["config"]) == set(routine.config())
    rebuilt = Flow.deserialize(data)
    for key, value in routine.config().items():
        if callable(value):
            assert callable(rebuilt.routines["r"].get_config(key))
