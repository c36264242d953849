"""Splitter: one message per item of a collection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine, type_name


class Splitter(BuiltinRoutine):
    """Emits one ``output`` message per item of a list (or tuple, set, range, ...),
    then one ``done`` message.

    A str, bytes or dict is refused with ``TypeError`` (splitting them item by item
    - characters, bytes, keys - is almost never what was meant; pass
    ``list(d.items())`` for the pairs of a dict).

    Config: ``input_key`` (default ``"items"``; None: the whole message, which is a
    dict and so refused - use a key).

    Slot ``input``: a message with an ``items`` collection.
    Events ``output(item, index, total)`` per item and ``done(total)`` after the last
    item (also for an empty collection).
    """

    CONFIG_DEFAULTS = {"input_key": "items"}

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
        self.define_event("output", ["item", "index", "total"])
        self.define_event("done", ["total"])

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def _on_input(self, /, **message: Any) -> None:
        items = self._input_value(message)
        if isinstance(items, (str, bytes, bytearray, Mapping)) or not isinstance(items, Iterable):
            raise TypeError(
                f"Splitter needs a list, tuple or other collection of items, got "
                f"{type_name(items)}"
                + (" (wrap a single string in a list)" if isinstance(items, str) else "")
            )
        items = list(items)
        total = len(items)
        for index, item in enumerate(items):
            self.emit("output", item=item, index=index, total=total)
        self._count("items", total)
        self.emit("done", total=total)
