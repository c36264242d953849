"""TextRenderer: render dicts and lists as XML-like tags or Markdown, as routilux 0.10."""

from __future__ import annotations

import numbers
from typing import Any

from routilux.builtin_routines._base import AUTO, BuiltinRoutine, type_name

CIRCULAR = "[Circular Reference]"
MAX_NESTING = 500  # recursion bound


class TextRenderer(BuiltinRoutine):
    """Renders structured data as text, for prompts, logs or reports (routilux 0.10).

    With ``pad = indent * level``: a dict gives one line per entry, joined by line
    breaks: ``{pad}<key>{child}</key>`` for ``tag_format="xml"``, ``{pad}**key**:
    {child}`` for any other format (markdown); a list ``{pad}<item_i>{child}</item_i>``
    or ``{pad}- {child}``. The child's text (rendered one level deeper) sits inline:
    ``{"a": 1, "b": {"c": 2}}`` renders as ``"<a>1</a>\\n<b>  <c>2</c></b>"``. An
    empty dict or list renders as ``""``, anything else (tuples, sets, None too) as
    ``str(value)``; a dict or list that contains itself as ``[Circular Reference]``.
    Keys go through ``str()`` and are not escaped: the output is meant to be read,
    not parsed.

    Config: ``tag_format`` (``"xml"``), ``indent`` (a str, ``"  "``; an int means
    that many spaces), ``include_type_hints`` (False; no effect, as in 0.10),
    ``input_key`` (``"auto"``: the 0.10 input rule).

    Slot ``input`` (``input_slot``).
    Event ``output(rendered_text, original_type)`` (``output_event``):
    ``original_type`` is the type name of the input (``"dict"``, ``"list"``, ...).
    """

    CONFIG_DEFAULTS = {
        "tag_format": "xml",
        "indent": "  ",
        "include_type_hints": False,
        "input_key": AUTO,
    }

    def _setup(self) -> None:
        self.input_slot = self.define_slot("input", handler=self._on_input)
        self.output_event = self.define_event("output", ["rendered_text", "original_type"])

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "indent" and not (
            isinstance(value, str) or (isinstance(value, numbers.Integral) and value >= 0)
        ):
            raise self._bad_config(key, "a str (or a number of spaces)", value)
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def render(self, value: Any) -> str:
        """Render ``value`` with the configured format."""
        indent = self._config.get("indent", "  ")
        unit = " " * int(indent) if not isinstance(indent, str) else indent
        xml = self._config.get("tag_format", "xml") == "xml"
        return self._render(value, 0, unit, xml, set())

    def _render(self, value: Any, level: int, unit: str, xml: bool, path: set[int]) -> str:
        if not isinstance(value, (dict, list)):
            return str(value)
        if id(value) in path:
            return CIRCULAR
        if level > MAX_NESTING:
            raise ValueError(f"TextRenderer: data nested more than {MAX_NESTING} levels")
        path.add(id(value))
        try:
            pad = unit * level
            lines = []
            if isinstance(value, dict):
                for key, child in value.items():
                    text = self._render(child, level + 1, unit, xml, path)
                    lines.append(
                        f"{pad}<{key}>{text}</{key}>" if xml else f"{pad}**{key}**: {text}"
                    )
            else:
                for index, child in enumerate(value):
                    text = self._render(child, level + 1, unit, xml, path)
                    tag = f"item_{index}"
                    lines.append(f"{pad}<{tag}>{text}</{tag}>" if xml else f"{pad}- {text}")
            return "\n".join(lines)
        finally:
            path.discard(id(value))

    def _on_input(self, /, **message: Any) -> None:
        value = self._input_value(message)
        self.emit("output", rendered_text=self.render(value), original_type=type_name(value))
