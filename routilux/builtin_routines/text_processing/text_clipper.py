"""TextClipper: shorten text to a maximum length, by whole lines, as routilux 0.10."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from routilux.builtin_routines._base import AUTO, BuiltinRoutine

TRACEBACK_MARKER = "Traceback"
_TEXT_KEYS = ("text", "content", "message", "data")


def as_text(value: Any) -> str:
    """The text of an input value: a str as is; a dict's first str under ``text``,
    ``content``, ``message`` or ``data``, else its first str value, else ``str(d)``;
    anything else ``str(x)``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in _TEXT_KEYS:
            if isinstance(value.get(key), str):
                return value[key]
        for item in value.values():
            if isinstance(item, str):
                return item
    return str(value)


class TextClipper(BuiltinRoutine):
    """Clips text to ``max_length`` characters, keeping whole lines (routilux 0.10).

    Text longer than ``max_length`` keeps its first lines while the running total of
    their lengths plus one (the line break) stays below ``max_length``; then comes a
    line ``truncation_message.format(remaining=<lines left out>)``. If not even the
    first line fits, the result is the message alone after a line break. With
    ``preserve_tracebacks`` (default) text containing ``"Traceback"`` is never
    clipped: a cut traceback loses the line that matters.

    The input is the message's ``text`` (or ``data``) value, else the 0.10 input rule;
    a dict gives its first str under ``text``/``content``/``message``/``data`` (else
    its first str value, else ``str(dict)``), any other value ``str(value)``. A
    message key ``max_length`` (truthy) overrides the config for that message.

    Config: ``max_length`` (1000), ``preserve_tracebacks`` (True),
    ``truncation_message`` (``"...(省略了{remaining}行)"``), ``input_key``
    (``"auto"``).

    Slot ``input`` (``input_slot``).
    Event ``output(clipped_text, was_clipped, original_length)`` (``output_event``):
    ``original_length`` is the length of the text before clipping.
    """

    CONFIG_DEFAULTS = {
        "max_length": 1000,
        "preserve_tracebacks": True,
        "truncation_message": "...(省略了{remaining}行)",
        "input_key": AUTO,
    }
    OVERRIDE_KEYS = ("max_length",)
    INPUT_KEYS = ("text", "data")

    def _setup(self) -> None:
        self.input_slot = self.define_slot("input", handler=self._on_input)
        self.output_event = self.define_event(
            "output", ["clipped_text", "was_clipped", "original_length"]
        )

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "max_length" and not isinstance(value, numbers.Real):
            raise self._bad_config(key, "a number", value)
        if key == "truncation_message" and not isinstance(value, str):
            raise self._bad_config(key, "a str (with an optional {remaining} field)", value)
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def clip(self, text: Any, max_length: int | None = None) -> tuple[str, bool]:
        """``(clipped_text, was_clipped)`` for ``text`` under the current config."""
        text = as_text(text)
        limit = max_length or self._config.get("max_length", 1000)
        if self._config.get("preserve_tracebacks", True) and TRACEBACK_MARKER in text:
            return text, False
        if len(text) <= limit:
            return text, False
        lines = text.split("\n")
        kept: list[str] = []
        used = 0
        for line in lines:
            if used + len(line) + 1 >= limit:
                break
            kept.append(line)
            used += len(line) + 1
        message = self._config.get("truncation_message", "...(省略了{remaining}行)")
        return "\n".join(kept) + "\n" + message.format(remaining=len(lines) - len(kept)), True

    def _on_input(self, /, **message: Any) -> None:
        value, overrides = self._split_message(message)
        text = as_text(value)
        clipped, was_clipped = self.clip(text, overrides.get("max_length"))
        if was_clipped:
            self._count("clipped")
        self.emit(
            "output", clipped_text=clipped, was_clipped=was_clipped, original_length=len(text)
        )
