"""DataFlattener: nested dicts/lists to a flat dict of joined keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine, type_name

MAX_NESTING = 500


class DataFlattener(BuiltinRoutine):
    """Flattens nested data: ``{"a": {"b": 1}, "c": [2, 3]}`` becomes
    ``{"a.b": 1, "c.0": 2, "c.1": 3}``.

    The top-level value must be a dict or a list (a list's items are keyed by index).
    Nested lists are flattened by index unless ``preserve_lists`` is True (then they
    are kept as values). ``max_depth`` limits how many levels are flattened (1: only
    the top level; deeper values are kept as they are). Empty nested dicts and lists
    are kept as values, so no key is lost. Two paths that join to the same key (e.g.
    ``{"a.b": 1, "a": {"b": 2}}``) raise ``ValueError`` rather than overwrite.

    Config: ``separator`` (non-empty str, default ``"."``), ``preserve_lists``
    (default False), ``max_depth`` (int >= 1 or None), ``input_key`` (default
    ``"data"``; None: the whole message).

    Slot ``input``: a message with a ``data`` dict or list.
    Event ``output(flattened_data, original_type, depth)``: ``depth`` is the nesting
    depth of the original data (``{"a": 1}`` is 1, ``{"a": {"b": 1}}`` is 2).
    """

    CONFIG_DEFAULTS = {
        "separator": ".",
        "preserve_lists": False,
        "max_depth": None,
        "input_key": "data",
    }

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
        self.define_event("output", ["flattened_data", "original_type", "depth"])

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "separator":
            return self._check_str(key, value)
        if key == "preserve_lists":
            return self._check_bool(key, value)
        if key == "max_depth":
            return self._check_int(key, value, minimum=1, allow_none=True)
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def flatten(self, data: Any) -> dict[str, Any]:
        """The flat dict for ``data``."""
        if not isinstance(data, (Mapping, list, tuple)):
            raise TypeError(f"DataFlattener needs a dict or a list, got {type_name(data)}")
        separator = self._config["separator"]
        preserve_lists = self._config["preserve_lists"]
        max_depth = self._config["max_depth"]
        out: dict[str, Any] = {}
        stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
        while stack:
            node, path = stack.pop()
            level = len(path)
            if level > MAX_NESTING:
                raise ValueError(
                    f"DataFlattener: data nested more than {MAX_NESTING} levels "
                    "(a circular reference?)"
                )
            expandable = isinstance(node, Mapping) or (
                isinstance(node, (list, tuple)) and (level == 0 or not preserve_lists)
            )
            if expandable and (level == 0 or (node and (max_depth is None or level < max_depth))):
                items = node.items() if isinstance(node, Mapping) else enumerate(node)
                # reversed so that the stack yields items in their original order
                for key, child in reversed(list(items)):
                    stack.append((child, (*path, str(key))))
                continue
            key = separator.join(path)
            if key in out:
                raise ValueError(
                    f"DataFlattener: two values flatten to the key {key!r}; use another separator"
                )
            out[key] = node
        return out

    def _on_input(self, /, **message: Any) -> None:
        data = self._input_value(message)
        flat = self.flatten(data)
        self.emit(
            "output", flattened_data=flat, original_type=type_name(data), depth=nesting_depth(data)
        )


def nesting_depth(value: Any) -> int:
    """How deeply dicts and lists nest in ``value`` (a scalar is 0, ``{}`` is 1)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (Mapping, list, tuple)):
            level += 1
            if level > MAX_NESTING:
                raise ValueError(f"data nested more than {MAX_NESTING} levels")
            deepest = max(deepest, level)
            children = node.values() if isinstance(node, Mapping) else node
            stack.extend((child, level) for child in children)
    return deepest
