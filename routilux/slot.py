"""Slot: a named input of a routine, with a handler and a merge strategy."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routilux.exceptions import ConfigurationError

if TYPE_CHECKING:
    from routilux.connection import Connection
    from routilux.routine import Routine


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
            accumulated = list(stored.get(key, ()))
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
        name: str,
        routine: Routine | None = None,
        handler: Callable[..., Any] | None = None,
        merge_strategy: Any = "override",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"slot name must be a non-empty string, got {name!r}")
        if not (merge_strategy in ("override", "append") or callable(merge_strategy)):
            raise ConfigurationError(
                f"slot {name!r}: merge_strategy must be 'override', 'append' or a "
                f"callable f(old, new) -> dict, got {merge_strategy!r}"
            )
        if handler is not None and not callable(handler):
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
        """Merge ``data`` into this slot's standalone state and call the handler."""
        self._data, handler_data = merge_data(self.merge_strategy, self._data, data)
        return self.call_handler(handler_data)

    @property
    def data(self) -> dict[str, Any]:
        """Data accumulated by standalone :meth:`receive` calls."""
        return self._data

    def clear(self) -> None:
        """Forget accumulated standalone data."""
        self._data = {}

    # -- used by the runtime ----------------------------------------------------------
    def call_handler(self, data: dict[str, Any]) -> Any:
        """Call the handler with ``data`` following the signature rules."""
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
            return handler(**{k: data[k] for k in arg if k in data})
        if kind == _POSITIONAL:
            return handler(*(data[k] for k in arg if k in data))
        return handler()

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
