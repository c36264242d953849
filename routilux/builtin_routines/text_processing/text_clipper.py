"""TextClipper: shorten text to a maximum length, by whole lines."""

from __future__ import annotations

from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine, type_name

TRACEBACK_MARKER = "Traceback (most recent call last):"


class TextClipper(BuiltinRoutine):
    """Clips text to ``max_length`` characters, keeping whole lines.

    Lines are kept from the start while they fit in ``max_length`` characters (line
    breaks count); a note on its own line tells how many lines were left out. If even
    the first line does not fit it is cut at ``max_length`` characters and the note
    says so. Text containing a Python traceback is never clipped (with the default
    ``preserve_tracebacks=True``): a cut traceback loses the line that matters.
    The note is added on top of ``max_length``.

    Config: ``max_length`` (int >= 1, default 1000), ``input_key`` (default
    ``"text"``), ``preserve_tracebacks`` (default True).

    Slot ``input``: a message with a ``text`` str.
    Event ``output(clipped_text, was_clipped, original_length)``.
    """

    CONFIG_DEFAULTS = {"max_length": 1000, "input_key": "text", "preserve_tracebacks": True}

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
        self.define_event("output", ["clipped_text", "was_clipped", "original_length"])

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "max_length":
            return self._check_int(key, value, minimum=1)
        if key == "input_key":
            return self._check_str(key, value)
        if key == "preserve_tracebacks":
            return self._check_bool(key, value)
        return value

    def clip(self, text: str) -> tuple[str, bool]:
        """``(clipped_text, was_clipped)`` for ``text`` under the current config."""
        if not isinstance(text, str):
            raise TypeError(f"TextClipper needs a str to clip, got {type_name(text)}")
        max_length = self._config["max_length"]
        if len(text) <= max_length:
            return text, False
        if self._config["preserve_tracebacks"] and TRACEBACK_MARKER in text:
            return text, False
        lines = text.splitlines(keepends=True)
        kept: list[str] = []
        used = 0
        for line in lines:
            if used + len(line) > max_length:
                break
            kept.append(line)
            used += len(line)
        if kept:
            omitted = len(lines) - len(kept)
            body = "".join(kept)
            note = f"...[{omitted} more line{'s' if omitted != 1 else ''} clipped]"
        else:
            omitted = len(lines) - 1
            body = lines[0][:max_length]
            note = (
                f"...[line 1 cut at {max_length} characters; {omitted} more "
                f"line{'s' if omitted != 1 else ''} clipped]"
            )
        if not body.endswith(("\n", "\r")):
            body += "\n"
        return body + note, True

    def _on_input(self, /, **message: Any) -> None:
        text = self._input_value(message)
        clipped, was_clipped = self.clip(text)
        if was_clipped:
            self._count("clipped")
        self.emit(
            "output", clipped_text=clipped, was_clipped=was_clipped, original_length=len(text)
        )
