"""DataValidator: check dict data against per-field rules."""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine, type_name
from routilux.exceptions import ConfigurationError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _not_empty(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, str):
        return bool(v.strip())
    try:
        return len(v) > 0
    except TypeError:
        return True


# name -> (check, what it expects, for the error message)
BUILTIN_VALIDATORS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "integer": (_is_int, "an integer"),
    "float": (lambda v: isinstance(v, float), "a float"),
    "number": (_is_number, "a number"),
    "boolean": (lambda v: isinstance(v, bool), "a boolean"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "dict": (lambda v: isinstance(v, Mapping), "a dict"),
    "not_none": (lambda v: v is not None, "a value (not None)"),
    "not_empty": (_not_empty, "a non-empty value"),
    "positive": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    "non_negative": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "email": (lambda v: isinstance(v, str) and bool(_EMAIL.match(v)), "an email address"),
}
ALIASES = {"str": "string", "int": "integer", "bool": "boolean"}


class DataValidator(BuiltinRoutine):
    """Validates dict data field by field.

    ``rules`` maps a field to a validator or a list of validators; a validator is a
    name (``string``/``str``, ``integer``/``int``, ``float``, ``number``,
    ``boolean``/``bool``, ``list``, ``dict``, ``not_none``, ``not_empty``,
    ``positive``, ``non_negative``, ``email``, or one added with
    ``register_validator``) or a callable ``f(value) -> bool`` (an exception it raises
    counts as a failure, with its message). ``bool`` is not accepted as an integer or
    number. Rules apply to the fields present; ``required_fields`` must be present.
    ``strict_mode=True`` also rejects fields that are neither in ``rules`` nor in
    ``required_fields``. Data that is not a dict is invalid (error under ``"<data>"``).

    Config: ``rules`` (dict, default ``{}``), ``required_fields`` (list, default
    ``[]``), ``strict_mode`` (default False), ``input_key`` (default ``"data"``; None:
    the whole message).

    Slot ``input``: a message with a ``data`` dict.
    Events ``valid(validated_data)`` and ``invalid(errors, data)``; ``errors`` maps each
    failing field to a list of messages.
    """

    CONFIG_DEFAULTS = {
        "rules": {},
        "required_fields": [],
        "strict_mode": False,
        "input_key": "data",
    }

    def __init__(self, **config: Any) -> None:
        self._custom: dict[str, Callable[[Any], bool]] = {}
        super().__init__(**config)

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
        self.define_event("valid", ["validated_data"])
        self.define_event("invalid", ["errors", "data"])

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "rules":
            if not isinstance(value, Mapping):
                raise self._bad_config(key, "a dict of field -> validator(s)", value)
            rules = {}
            for field, spec in value.items():
                specs = list(spec) if isinstance(spec, (list, tuple)) else [spec]
                for one in specs:
                    self._check_validator(field, one)
                rules[field] = specs
            return rules
        if key == "required_fields":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple, set)) or not all(
                isinstance(f, str) for f in value
            ):
                raise self._bad_config(key, "a list of field names", value)
            return list(value)
        if key == "strict_mode":
            return self._check_bool(key, value)
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def _check_validator(self, field: Any, spec: Any) -> None:
        if callable(spec):
            return
        if not isinstance(spec, str):
            raise ConfigurationError(
                f"DataValidator: config 'rules': the rule for field {field!r} must be a "
                "validator name or a "
                f"callable, got {type_name(spec)}"
            )
        if ALIASES.get(spec, spec) not in BUILTIN_VALIDATORS and spec not in self._custom:
            raise ConfigurationError(
                f"DataValidator: config 'rules': unknown validator {spec!r} for field "
                f"{field!r}; known: "
                f"{self.validator_names()}"
            )

    def register_validator(self, name: str, fn: Callable[[Any], bool]) -> None:
        """Add a named validator ``fn(value) -> bool`` (register before naming it in rules)."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"validator name must be a non-empty str, got {name!r}")
        if name in BUILTIN_VALIDATORS or name in ALIASES:
            raise ConfigurationError(f"{name!r} is a built-in validator")
        if not callable(fn):
            raise ConfigurationError(f"validator {name!r} must be callable")
        self._custom[name] = fn

    def validator_names(self) -> list[str]:
        """Every known validator name (aliases included)."""
        return sorted([*BUILTIN_VALIDATORS, *ALIASES, *self._custom])

    def _run_validator(self, spec: Any, value: Any) -> str | None:
        """None when ``value`` passes ``spec``, else the error message."""
        if isinstance(spec, str):
            name = ALIASES.get(spec, spec)
            if name in BUILTIN_VALIDATORS:
                check, expected = BUILTIN_VALIDATORS[name]
                if check(value):
                    return None
                return f"expected {expected}, got {type_name(value)} {_short(value)}"
            fn: Callable[[Any], Any] = self._custom[spec]
            label = spec
        else:
            fn, label = spec, getattr(spec, "__name__", repr(spec))
        try:
            ok = fn(value)
        except Exception as exc:
            return f"{label} raised {type(exc).__name__}: {exc}"
        return None if ok else f"failed {label} (value {_short(value)})"

    def validate(self, data: Any) -> dict[str, list[str]]:
        """The errors for ``data`` (an empty dict when it is valid)."""
        if not isinstance(data, Mapping):
            return {"<data>": [f"expected a dict, got {type_name(data)}"]}
        errors: dict[str, list[str]] = {}
        rules: dict[str, list[Any]] = self._config["rules"]
        for field in self._config["required_fields"]:
            if field not in data:
                errors.setdefault(field, []).append("required field is missing")
        for field, specs in rules.items():
            if field not in data:
                continue
            for spec in specs:
                problem = self._run_validator(spec, data[field])
                if problem is not None:
                    errors.setdefault(field, []).append(problem)
        if self._config["strict_mode"]:
            allowed = set(rules) | set(self._config["required_fields"])
            for field in data:
                if field not in allowed:
                    errors.setdefault(str(field), []).append("unexpected field (strict_mode)")
        return errors

    def _on_input(self, /, **message: Any) -> None:
        data = self._input_value(message)
        errors = self.validate(data)
        if errors:
            self._count("invalid")
            self.emit("invalid", errors=errors, data=data)
        else:
            self._count("valid")
            self.emit("valid", validated_data=dict(data))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
