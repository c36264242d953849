"""Slot: a named input of a routine, with a handler and a merge strategy."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routilux.exceptions import ConfigurationError
from routilux.serialization import decode_callable, encode_callable, is_plain_callable, jsonable

if TYPE_CHECKING:
    from routilux.connection import Connection
    from routilux.event import Event
    from routilux.routine import Routine

logger = logging.getLogger("routilux.slot")


_KWARGS, _DATA, _ONE, _MANY, _NONE, _POSITIONAL = range(6)


def _call_plan(handler: Callable[..., Any]) -> tuple[int, Any]:
    """Decide once how a handler is called, from its signature."""
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return _DATA, None  # builtins without a signature get the whole dict
    names = []
    positional_only = False
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            return _KWARGS, None
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            positional_only = True
            names.append(param.name)
        elif param.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        ):
            names.append(param.name)
    if not names:
        return _NONE, None
    if len(names) == 1:
        return (_DATA, None) if names[0] == "data" else (_ONE, names[0])
    if positional_only:  # e.g. builtins: pass the matching keys by position
        return _POSITIONAL, tuple(names)
    return _MANY, tuple(names)


def merge_data(
    strategy: Any, old: dict[str, Any], new: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply a merge strategy; returns ``(stored, handler_data)``."""
    if strategy == "override":
        return new, new
    if strategy == "append":
        stored = dict(old)
        handler_data = {}
        for key, value in new.items():
            previous = stored.get(key, [])
            # A stored non-list value is wrapped, as in 0.10 (never split: "ab" is
            # one value, not two characters).
            accumulated = list(previous) if isinstance(previous, list) else [previous]
            accumulated.append(value)
            stored[key] = accumulated
            handler_data[key] = list(accumulated)
        return stored, handler_data
    merged = strategy(dict(old), dict(new))
    if not isinstance(merged, dict):
        raise TypeError(
            f"merge strategy {getattr(strategy, '__name__', strategy)!r} returned "
            f"{type(merged).__name__}; it must return a dict"
        )
    return merged, merged


class Slot:
    """A named input of a routine.

    The handler is called with the received data according to its signature:
    ``**kwargs`` gets the dict as keywords; a single parameter named ``data`` gets the
    whole dict; a single other parameter ``p`` gets ``data[p]`` if present, else the
    whole dict; several parameters get the matching keys.
    """

    def __init__(
        self,
        name: str = "",
        routine: Routine | None = None,
        handler: Callable[..., Any] | None = None,
        merge_strategy: Any = "override",
    ) -> None:
        if not isinstance(name, str):
            raise ConfigurationError(f"slot name must be a string, got {name!r}")
        if not (merge_strategy in ("override", "append") or is_plain_callable(merge_strategy)):
            raise ConfigurationError(
                f"slot {name!r}: unknown merge_strategy {merge_strategy!r}; 0.10 silently "
                "used 'override' for it, this release refuses it: write 'override', "
                "'append' or a callable f(old, new) -> dict"
            )
        if handler is not None and not is_plain_callable(handler):
            raise ConfigurationError(
                f"slot {name!r}: handler must be callable, got {type(handler).__name__}"
            )
        self.name = name
        self.routine = routine
        self.handler = handler
        self.merge_strategy = merge_strategy
        self.connections: list[Connection] = []
        self._data: dict[str, Any] = {}
        self._plan: tuple[int, Any] | None = None

    # -- standalone use -------------------------------------------------------------
    def receive(self, data: dict[str, Any], job_state: Any = None, flow: Any = None) -> Any:
        """Merge ``data`` into this slot's standalone state and call the handler
        (its exceptions propagate)."""
        return self._call(self._merge_data(data))

    def call_handler(self, data: dict[str, Any], propagate_exceptions: bool = False) -> Any:
        """0.10's call: merge ``data`` like :meth:`receive` and call the handler.

        With ``propagate_exceptions=False`` (the 0.10 default) a handler exception is
        logged and swallowed, as the caller asked.
        """
        merged = self._merge_data(data)
        try:
            return self._call(merged)
        except Exception:
            if propagate_exceptions:
                raise
            logger.exception("handler of %r failed", self)
            return None

    def _merge_data(self, new: dict[str, Any]) -> dict[str, Any]:
        """Merge ``new`` into the standalone ``_data`` by the merge strategy; returns
        what the handler gets."""
        self._data, handler_data = merge_data(self.merge_strategy, self._data, new)
        return handler_data

    @property
    def data(self) -> dict[str, Any]:
        """Data accumulated by standalone :meth:`receive` calls."""
        return self._data

    def clear(self) -> None:
        """Forget accumulated standalone data."""
        self._data = {}

    def accepted_keys(self) -> tuple[str, ...] | None:
        """The data keys the handler takes by name (others are not passed to it), or
        None when it takes any keys (``**kwargs``, ``data``, a single parameter)."""
        if self.handler is None:
            return None
        kind, arg = _call_plan(self.handler)
        if kind in (_MANY, _POSITIONAL):
            return tuple(arg)
        return () if kind == _NONE else None

    # -- wiring (standalone) ----------------------------------------------------------
    @property
    def connected_events(self) -> list[Event]:
        """The events feeding this slot, without duplicates, in connection order."""
        events: list[Event] = []
        for connection in self.connections:
            event = connection.source_event
            if event is not None and all(e is not event for e in events):
                events.append(event)
        return events

    def connect(self, event: Event, param_mapping: dict[str, str] | None = None) -> Connection:
        """Link ``event`` to this slot (same as ``event.connect(self, param_mapping)``)."""
        return event.connect(self, param_mapping)

    def disconnect(self, event: Event) -> None:
        """Remove the link from ``event`` (harmless if there is none)."""
        event.disconnect(self)

    # -- used by the runtime ----------------------------------------------------------
    def _call(self, data: dict[str, Any]) -> Any:
        """Call the handler with ``data`` following the signature rules (no merge)."""
        handler = self.handler
        if handler is None:
            return None
        plan = self._plan
        if plan is None:
            plan = self._plan = _call_plan(handler)
        kind, arg = plan
        if kind == _KWARGS:
            return handler(**data)
        if kind == _DATA:
            return handler(data)
        if kind == _ONE:
            return handler(data[arg]) if arg in data else handler(data)
        if kind == _MANY:
            matched = {k: data[k] for k in arg if k in data}
            # No parameter matches a key: the whole dict goes first (as 0.10).
            return handler(**matched) if matched else handler(data)
        if kind == _POSITIONAL:
            return handler(*(data[k] for k in arg if k in data))
        return handler()

    # -- serialization ----------------------------------------------------------------
    def serialize(self) -> dict[str, Any]:
        """``{"_type": "Slot", "name", "_data", "handler", "merge_strategy"}``; the
        handler and a callable strategy as references (None if they have none)."""
        strategy = self.merge_strategy
        if strategy not in ("override", "append"):
            strategy = encode_callable(strategy, self.routine)
        return {
            "_type": "Slot",
            "name": self.name,
            "_data": jsonable(self._data),
            "handler": encode_callable(self.handler, self.routine)
            if self.handler is not None
            else None,
            "merge_strategy": strategy,
        }

    def deserialize(self, data: dict[str, Any]) -> Slot:
        """Fill this slot from :meth:`serialize` output; returns it.

        A handler already set (by the routine's ``__init__``) is kept when the data
        has none or one that cannot be restored here.
        """
        self.name = data.get("name", self.name)
        self._data = dict(data.get("_data") or {})
        handler = data.get("handler")
        if isinstance(handler, dict) and not (
            handler.get("callable_type") == "method" and self.routine is None
        ):  # a method reference needs the routine being filled; else keep ours
            self.handler = decode_callable(handler, self.routine)
            self._plan = None
        strategy = data.get("merge_strategy")
        if strategy in ("override", "append"):
            self.merge_strategy = strategy
        elif isinstance(strategy, dict):
            self.merge_strategy = decode_callable(strategy, self.routine)
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_plan"] = None  # recomputed lazily; keeps pickles small and portable
        # Wiring belongs to the flow: pickling a routine must not drag its
        # neighbours (and whatever they hold) along.
        state["connections"] = []
        return state

    def __repr__(self) -> str:
        owner = getattr(self.routine, "_id", None)
        return f"Slot({owner}.{self.name})" if owner else f"Slot({self.name})"
