"""Filter: pass on the messages that satisfy a condition."""

from __future__ import annotations

from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine
from routilux.builtin_routines._conditions import Condition
from routilux.builtin_routines.stream._common import check_forwardable
from routilux.exceptions import ConfigurationError


class Filter(BuiltinRoutine):
    """Passes each message on unchanged if it satisfies ``condition``.

    ``condition`` is a callable ``f(value) -> bool``, a dict of field values that
    must all be equal, or a safe expression string (``data`` is the value, its
    fields are also names, ``config`` and ``stats`` are bound: ``"score >= 0.5"``,
    ``"data.get('score', 0) >= config.get('cutoff', 0.5)"``). ``value`` is the whole
    message, or its ``input_key`` field. Messages that fail go out of ``rejected``.

    Config: ``condition`` (required), ``input_key`` (None: the whole message).

    Slot ``input``.
    Events ``output`` (messages that pass) and ``rejected`` (messages that do not),
    both with the keys of the message.
    """

    CONFIG_DEFAULTS = {"condition": None, "input_key": None}

    def __init__(self, **config: Any) -> None:
        self._condition: Condition | None = None
        super().__init__(**config)

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
        self.define_event("output")
        self.define_event("rejected")

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "condition":
            if value is not None:
                Condition(value, "Filter condition")
            return value
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def _config_changed(self, keys: set[str]) -> None:
        if "condition" in keys:
            spec = self._config["condition"]
            self._condition = None if spec is None else Condition(spec, "Filter condition")

    def _on_input(self, /, **message: Any) -> None:
        if self._condition is None:
            raise ConfigurationError("Filter has no condition; set_config(condition=...)")
        check_forwardable("Filter", message)
        value = self._input_value(message)
        if self._condition.test(value, self._config, self._stats):
            self._count("passed")
            self.emit("output", **message)
        else:
            self._count("rejected")
            self.emit("rejected", **message)
