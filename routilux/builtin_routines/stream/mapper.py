"""Mapper: transform each message with a function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine, type_name
from routilux.builtin_routines._conditions import ExpressionFunction, compile_function
from routilux.builtin_routines.stream._common import check_forwardable
from routilux.exceptions import ConfigurationError


class Mapper(BuiltinRoutine):
    """Applies ``function`` to each message and emits the result.

    ``function`` is a callable ``f(value)`` or a safe expression string (``data`` is
    the value, its fields are also names, ``config`` and ``stats`` are bound:
    ``"price * quantity"``); ``value`` is the whole message or its
    ``input_key`` field. With ``output_key`` the result is emitted as
    ``{output_key: result}``; without it the result must be a dict, emitted as the
    message keys (anything else raises ``TypeError``). ``merge_input=True`` emits the
    input message's keys too (the result's keys win).

    Config: ``function`` (required), ``input_key`` (None: the whole message),
    ``output_key`` (None), ``merge_input`` (default False).

    Slot ``input``.
    Event ``output``: ``output_key``, or the keys of the dict returned (plus the input
    keys with ``merge_input``).
    """

    CONFIG_DEFAULTS = {
        "function": None,
        "input_key": None,
        "output_key": None,
        "merge_input": False,
    }

    def __init__(self, **config: Any) -> None:
        self._function: Any = None
        super().__init__(**config)

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
        self.define_event("output")

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "function":
            if value is not None:
                compile_function(value, "Mapper function")
            return value
        if key in ("input_key", "output_key"):
            return self._check_str(key, value, allow_none=True)
        if key == "merge_input":
            return self._check_bool(key, value)
        return value

    def _config_changed(self, keys: set[str]) -> None:
        if "function" in keys:
            spec = self._config["function"]
            self._function = None if spec is None else compile_function(spec, "Mapper function")

    def _on_input(self, /, **message: Any) -> None:
        if self._function is None:
            raise ConfigurationError("Mapper has no function; set_config(function=...)")
        value = self._input_value(message)
        if isinstance(self._function, ExpressionFunction):
            result = self._function(value, self._config, self._stats)
        else:
            result = self._function(value)
        output_key = self._config["output_key"]
        if output_key is not None:
            out = {output_key: result}
        elif isinstance(result, Mapping):
            out = dict(result)
        else:
            raise TypeError(
                f"Mapper function returned {type_name(result)}, not a dict; set "
                "output_key to emit it under a key"
            )
        if self._config["merge_input"]:
            out = {**message, **out}
        check_forwardable("Mapper", out)
        self.emit("output", **out)
