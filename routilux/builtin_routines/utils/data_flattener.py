"""DataFlattener: nested dicts/lists to a flat dict of joined keys, as routilux 0.10."""

from __future__ import annotations

import numbers
from typing import Any

from routilux.builtin_routines._base import AUTO, BuiltinRoutine, type_name

MAX_NESTING = 500  # deeper than this needs a max_depth below it (recursion bound)
CIRCULAR = "[Circular Reference]"


def _serializable(value: Any) -> bool:
    """A routilux object with ``serialize()`` (or a serilux ``Serializable``)."""
    serialize = getattr(type(value), "serialize", None)
    if not callable(serialize):
        return False
    return type(value).__module__.startswith("routilux.") or any(
        klass.__name__ == "Serializable" for klass in type(value).__mro__
    )


class DataFlattener(BuiltinRoutine):
    """Flattens nested data: ``{"a": {"b": 1}, "c": [2, 3]}`` becomes
    ``{"a.b": 1, "c.0": 2, "c.1": 3}``.

    Rules (routilux 0.10's): a dict's keys are joined to their parent's with
    ``separator`` (top-level keys stay as they are, an int key too); with
    ``preserve_lists=True`` (default) list indexes are keys (``"0"``, ``"1"`` at the
    top); with ``preserve_lists=False`` list items are flattened under the parent key
    itself, later items overwriting earlier ones (``{"a": [1, 2]}`` gives
    ``{"a": 2}``). At ``max_depth`` the value is kept as ``str(value)``. A dict or
    list that contains itself gives ``"[Circular Reference]"``. A routilux object
    with ``serialize()`` is flattened as its serialized dict. Anything else is a
    leaf; a top-level scalar gives ``{"value": x}``. Empty dicts and lists give no
    key; keys that collide overwrite silently.

    Config: ``separator`` (``"."``), ``preserve_lists`` (True), ``max_depth`` (100),
    ``input_key`` (``"auto"``: the 0.10 input rule).

    Slot ``input`` (``input_slot``).
    Event ``output(flattened_data, original_type, depth)`` (``output_event``):
    ``original_type`` is ``"dict"``, ``"list"`` or the scalar's type name, ``depth``
    the deepest level reached (a scalar 0, ``{"a": 1}`` 1).
    """

    CONFIG_DEFAULTS = {
        "separator": ".",
        "preserve_lists": True,
        "max_depth": 100,
        "input_key": AUTO,
    }

    def _setup(self) -> None:
        self.input_slot = self.define_slot("input", handler=self._on_input)
        self.output_event = self.define_event(
            "output", ["flattened_data", "original_type", "depth"]
        )

    def _check_config(self, key: str, value: Any) -> Any:
        # any separator joins through str(), as in 0.10; a max_depth must compare
        if key == "max_depth" and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
            raise self._bad_config(key, "a number", value)
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def flatten(self, data: Any) -> dict[Any, Any]:
        """The flat dict for ``data``."""
        return self.flatten_with_info(data)[0]

    def flatten_with_info(self, data: Any) -> tuple[dict[Any, Any], str, int]:
        """``(flattened_data, original_type, depth)`` for ``data``."""
        return self._flatten(data, "", 0, set())

    def _flatten(
        self, value: Any, key: Any, depth: int, visited: set[int]
    ) -> tuple[dict[Any, Any], str, int]:
        separator = self._config.get("separator", ".")
        if depth >= self._config.get("max_depth", 100):
            return {key or "value": str(value)}, type_name(value), depth
        if depth > MAX_NESTING:
            raise ValueError(
                f"DataFlattener: data nested more than {MAX_NESTING} levels; set max_depth "
                "lower to cut it off there"
            )
        if isinstance(value, (dict, list)):
            if id(value) in visited:
                return {key or "value": CIRCULAR}, type(value).__name__, depth
            visited.add(id(value))
            try:
                if isinstance(value, dict):
                    children = [(f"{key}{separator}{k}" if key else k, v) for k, v in value.items()]
                elif self._config.get("preserve_lists", True):
                    children = [
                        (f"{key}{separator}{i}" if key else str(i), v) for i, v in enumerate(value)
                    ]
                else:
                    children = [(key, v) for v in value]
                result: dict[Any, Any] = {}
                deepest = depth
                for child_key, child in children:
                    flat, _, child_depth = self._flatten(child, child_key, depth + 1, visited)
                    result.update(flat)
                    deepest = max(deepest, child_depth)
                return result, "dict" if isinstance(value, dict) else "list", deepest
            finally:
                visited.discard(id(value))
        if _serializable(value):
            return self._flatten(value.serialize(), key, depth + 1, visited)
        return {key or "value": value}, type_name(value), depth

    def _on_input(self, /, **message: Any) -> None:
        data = self._input_value(message)
        flat, original_type, depth = self.flatten_with_info(data)
        self.emit("output", flattened_data=flat, original_type=original_type, depth=depth)
