"""DataValidator: check data against per-field rules, as routilux 0.10 did."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from routilux.builtin_routines._base import AUTO, BuiltinRoutine, is_plain_callable
from routilux.exceptions import ConfigurationError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_number_010(v: Any) -> bool:
    return isinstance(v, (int, float))


def not_empty(v: Any) -> bool:
    """0.10 meaning: not None and not ``""`` (``"  "`` and ``[]`` pass)."""
    return v is not None and v != ""


def is_string(v: Any) -> bool:
    """True for a str."""
    return isinstance(v, str)


def is_int(v: Any) -> bool:
    """True for an int (not a bool)."""
    return isinstance(v, int)


def is_float(v: Any) -> bool:
    """True for a float."""
    return isinstance(v, float)


def is_dict(v: Any) -> bool:
    """True for a dict."""
    return isinstance(v, dict)


def is_list(v: Any) -> bool:
    """True for a list."""
    return isinstance(v, list)


def is_positive(v: Any) -> bool:
    """True for a number above zero."""
    return _is_number_010(v) and v > 0


def is_non_negative(v: Any) -> bool:
    """True for a number at or above zero."""
    return _is_number_010(v) and v >= 0


def _not_none(v: Any) -> bool:
    return v is not None


def _email(v: Any) -> bool:
    return isinstance(v, str) and bool(_EMAIL.match(v))


def _positive(v: Any) -> bool:
    return _is_number(v) and v > 0


def _non_negative(v: Any) -> bool:
    return _is_number(v) and v >= 0


def _boolean(v: Any) -> bool:
    return isinstance(v, bool)


def _mapping(v: Any) -> bool:
    return isinstance(v, Mapping)


#: Validators every DataValidator starts with: the 0.10 names with their 0.10
#: meaning (``bool`` counts as an int), then our own names (``bool`` is not an
#: integer or a number there).
BUILTIN_VALIDATORS: dict[str, Callable[[Any], bool]] = {
    "not_empty": not_empty,
    "is_string": is_string,
    "is_int": is_int,
    "is_float": is_float,
    "is_number": _is_number_010,
    "is_dict": is_dict,
    "is_list": is_list,
    "is_positive": is_positive,
    "is_non_negative": is_non_negative,
    "string": is_string,
    "str": is_string,
    "integer": _is_int,
    "int": _is_int,
    "float": is_float,
    "number": _is_number,
    "boolean": _boolean,
    "bool": _boolean,
    "list": is_list,
    "dict": _mapping,
    "not_none": _not_none,
    "positive": _positive,
    "non_negative": _non_negative,
    "email": _email,
}


class DataValidator(BuiltinRoutine):
    """Validates data against ``rules``, as routilux 0.10's DataValidator.

    A rule is a validator name (the 0.10 names ``not_empty is_string is_int is_float
    is_number is_dict is_list is_positive is_non_negative``, our names ``string``/
    ``str``, ``integer``/``int``, ``float``, ``number``, ``boolean``/``bool``,
    ``list``, ``dict``, ``not_none``, ``positive``, ``non_negative``, ``email``, or
    one added with ``register_validator``, which may also replace a built-in), a
    callable returning a bool or ``(ok, message)``, or a list of those (all must
    pass). Names are looked up when validating: an unknown name is an error entry,
    not a config error.

    A dict is checked field by field, errors as a flat list of str in this order:
    each missing ``required_fields`` name (``Required field 'f' is missing``), then
    each field of the data in its order, by its rule (``Field 'f' failed
    validation``, ``Unknown validator: name``, ``Validation error for field 'f':
    ...`` or the callable's message) or, with ``allow_extra_fields=False`` and no
    rule, ``Unexpected field 'f'``. ``strict_mode=True`` stops each of these two
    passes at its first error. A list or tuple is checked item by item with
    ``rules["items"]`` (field ``items[i]``); any other value with ``rules["value"]``.

    Config: ``rules`` (``{}``), ``strict_mode`` (False), ``required_fields``
    (``[]``), ``allow_extra_fields`` (True), ``input_key`` (``"auto"``: the 0.10
    input rule). A message key ``rules`` (non-empty) replaces the config rules for
    that message.

    Slot ``input`` (``input_slot``).
    Events ``valid(validated_data)`` (``valid_event``) and ``invalid(errors, data)``
    (``invalid_event``).
    """

    CONFIG_DEFAULTS = {
        "rules": {},
        "strict_mode": False,
        "required_fields": [],
        "allow_extra_fields": True,
        "input_key": AUTO,
    }
    OVERRIDE_KEYS = ("rules",)

    def __init__(self, **config: Any) -> None:
        self._validators: dict[str, Callable[[Any], Any]] = dict(BUILTIN_VALIDATORS)
        super().__init__(**config)

    def _setup(self) -> None:
        self.input_slot = self.define_slot("input", handler=self._on_input)
        self.valid_event = self.define_event("valid", ["validated_data"])
        self.invalid_event = self.define_event("invalid", ["errors", "data"])

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "rules" and not isinstance(value, Mapping):
            raise self._bad_config(key, "a dict of field -> validator", value)
        if key == "required_fields" and isinstance(value, str):
            return [value]
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def register_validator(self, name: str, fn: Callable[[Any], Any]) -> None:
        """Add or replace the validator ``name`` (built-ins included)."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"validator name must be a non-empty str, got {name!r}")
        if not is_plain_callable(fn):
            raise ConfigurationError(f"validator {name!r} must be callable, got {fn!r}")
        self._validators[name] = fn

    def validator_names(self) -> list[str]:
        """Every validator name known to this routine."""
        return sorted(self._validators)

    # -- validating ------------------------------------------------------------------
    def _check_field(self, field: str, value: Any, rule: Any) -> str | None:
        """None when ``value`` passes ``rule``, else the error message."""
        rules = rule if isinstance(rule, list) else [rule]
        for one in rules:
            problem = self._check_one(field, value, one)
            if problem is not None:
                return problem
        return None

    def _check_one(self, field: str, value: Any, rule: Any) -> str | None:
        if isinstance(rule, str):
            fn = self._validators.get(rule)
            if fn is None:
                return f"Unknown validator: {rule}"
        elif is_plain_callable(rule):
            fn = rule
        else:
            return f"Invalid validator for field '{field}'"
        try:
            result = fn(value)
            if isinstance(result, tuple) and len(result) == 2:
                ok, message = result
                if not ok:
                    return message
                return None
            ok = bool(result)
        except Exception as exc:
            return f"Validation error for field '{field}': {exc}"
        return None if ok else f"Field '{field}' failed validation"

    def validate(self, data: Any, rules: Mapping[Any, Any] | None = None) -> list[str]:
        """The errors for ``data`` (an empty list when it is valid)."""
        rules = rules or self._config.get("rules") or {}
        strict = bool(self._config.get("strict_mode"))
        errors: list[str] = []
        if isinstance(data, Mapping):
            for field in self._config.get("required_fields") or ():
                if field not in data:
                    errors.append(f"Required field '{field}' is missing")
                    if strict:
                        break
            extra_ok = self._config.get("allow_extra_fields", True)
            for field, value in data.items():
                if field in rules:
                    problem = self._check_field(field, value, rules[field])
                elif not extra_ok:
                    problem = f"Unexpected field '{field}'"
                else:
                    continue
                if problem is not None:
                    errors.append(problem)
                    if strict:
                        break
        elif isinstance(data, (list, tuple)):
            if "items" in rules:
                for index, item in enumerate(data):
                    problem = self._check_field(f"items[{index}]", item, rules["items"])
                    if problem is not None:
                        errors.append(problem)
                        if strict:
                            break
        elif "value" in rules:
            problem = self._check_field("value", data, rules["value"])
            if problem is not None:
                errors.append(problem)
        return errors

    def _on_input(self, /, **message: Any) -> None:
        data, overrides = self._split_message(message)
        errors = self.validate(data, overrides.get("rules"))
        if errors:
            self._count("invalid")
            self.emit("invalid", errors=errors, data=data)
        else:
            self._count("valid")
            self.emit("valid", validated_data=data)
