"""TextRenderer: render dicts and lists as XML-like tags or Markdown."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine, type_name

_BAD_TAG = re.compile(r"[\s<>/&\"'=]")
_SEQUENCES = (list, tuple, set, frozenset)


class TextRenderer(BuiltinRoutine):
    """Renders structured data as text, for prompts, logs or reports.

    ``tag_format="xml"`` renders a dict as ``<key>value</key>`` lines (nested dicts
    and lists indented inside their tag; list items as ``<item>``); values are not
    escaped (the output is XML-like, meant to be read, not parsed), but a key that
    cannot be a tag name (whitespace, ``<``, ``>``, ``/``, ``&``, quotes, ``=`` or
    empty) raises ``ValueError``. ``tag_format="markdown"`` renders nested bullet
    lists with bold keys. A scalar (str, number, bool, None) renders as ``str()``.

    Config: ``tag_format`` (``"xml"`` or ``"markdown"``, default ``"xml"``),
    ``indent`` (spaces per level, default 2), ``input_key`` (default ``"data"``).

    Slot ``input``: a message with a ``data`` value.
    Event ``output(rendered_text, original_type)``; ``original_type`` is the type
    name of the rendered value (``"dict"``, ``"list"``, ...).
    """

    CONFIG_DEFAULTS = {"tag_format": "xml", "indent": 2, "input_key": "data"}
    MAX_DEPTH = 100

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
        self.define_event("output", ["rendered_text", "original_type"])

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "tag_format":
            return self._check_choice(key, value, ("xml", "markdown"))
        if key == "indent":
            return self._check_int(key, value, minimum=0)
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def render(self, value: Any) -> str:
        """Render ``value`` with the configured format."""
        if self._config["tag_format"] == "markdown":
            return "\n".join(self._markdown(value, 0))
        return "\n".join(self._xml(value, 0))

    # -- xml -------------------------------------------------------------------------
    def _tag(self, key: Any) -> str:
        tag = str(key)
        if not tag or _BAD_TAG.search(tag):
            raise ValueError(f"TextRenderer: key {key!r} cannot be used as a tag name")
        return tag

    def _xml(self, value: Any, level: int) -> list[str]:
        if level > self.MAX_DEPTH:
            raise ValueError(
                f"TextRenderer: data nested more than {self.MAX_DEPTH} levels "
                "(a circular reference?)"
            )
        pad = " " * (self._config["indent"] * level)
        if isinstance(value, Mapping):
            items: list[tuple[str, Any]] = [(self._tag(k), v) for k, v in value.items()]
        elif isinstance(value, _SEQUENCES):
            items = [("item", v) for v in value]
        else:
            return [pad + str(value)]
        lines: list[str] = []
        for tag, child in items:
            if isinstance(child, (Mapping, *_SEQUENCES)):
                if not child:
                    lines.append(f"{pad}<{tag}></{tag}>")
                    continue
                lines.append(f"{pad}<{tag}>")
                lines.extend(self._xml(child, level + 1))
                lines.append(f"{pad}</{tag}>")
            else:
                lines.append(f"{pad}<{tag}>{child}</{tag}>")
        return lines

    # -- markdown --------------------------------------------------------------------
    def _markdown(self, value: Any, level: int) -> list[str]:
        if level > self.MAX_DEPTH:
            raise ValueError(
                f"TextRenderer: data nested more than {self.MAX_DEPTH} levels "
                "(a circular reference?)"
            )
        pad = " " * (self._config["indent"] * level)
        lines: list[str] = []
        if isinstance(value, Mapping):
            for key, child in value.items():
                if isinstance(child, (Mapping, *_SEQUENCES)) and child:
                    lines.append(f"{pad}- **{key}**:")
                    lines.extend(self._markdown(child, level + 1))
                else:
                    shown = _scalar_md(child)
                    lines.append(f"{pad}- **{key}**: {shown}".rstrip())
            return lines
        if isinstance(value, _SEQUENCES):
            for index, child in enumerate(value, 1):
                if isinstance(child, (Mapping, *_SEQUENCES)) and child:
                    lines.append(f"{pad}- item {index}:")
                    lines.extend(self._markdown(child, level + 1))
                else:
                    lines.append(f"{pad}- {_scalar_md(child)}".rstrip())
            return lines
        return [pad + str(value)]

    def _on_input(self, /, **message: Any) -> None:
        value = self._input_value(message)
        self.emit("output", rendered_text=self.render(value), original_type=type_name(value))


def _scalar_md(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, _SEQUENCES):
        return "[]"
    return str(value)
