"""Routine: a unit of work with input slots and output events."""

from __future__ import annotations

import logging
import warnings
import weakref
from collections.abc import Callable
from typing import Any

from routilux._context import ExecutionContext, current_step, hosting_step
from routilux.error_handler import ErrorHandler, ErrorStrategy
from routilux.event import Event
from routilux.exceptions import ConfigurationError, FlowStateError
from routilux.serialization import Unencodable, decode_value, encode_value
from routilux.slot import Slot

# routine -> the flow it was last added to, and every flow holding it (weakly, and
# outside the object: a routine is pickled into process routines and must not drag
# its flows along).
_last_flow: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_flows: weakref.WeakKeyDictionary[Any, weakref.WeakSet] = weakref.WeakKeyDictionary()


def added_to_flow(routine: Any, flow: Any) -> None:
    """Remember that ``routine`` was added to ``flow`` (for ``_current_flow`` and
    for re-planning routes when its links change)."""
    try:
        _last_flow[routine] = weakref.ref(flow)
        _flows.setdefault(routine, weakref.WeakSet()).add(flow)
    except TypeError:  # an unhashable routine: _current_flow outside steps is None
        pass


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{what} name must be a non-empty string, got {name!r}")


logger = logging.getLogger("routilux.routine")


def _check_declared(routine: Any, event: Any, data: dict[str, Any]) -> None:
    """Warn once per event when an emit carries keys the event does not declare
    (they are delivered all the same, as in 0.10)."""
    extra = sorted(set(data) - set(event.output_params))
    if extra:
        event.undeclared_warned = True
        logger.warning(
            "%s.emit(%r) sent %s, which event %r does not declare (declared: %s); "
            "delivered anyway. Add them to define_event(%r, [...]) to silence this.",
            type(routine).__name__,
            event.name,
            ", ".join(map(repr, extra)),
            event.name,
            ", ".join(map(repr, event.output_params)),
            event.name,
        )


def _is_flow(value: Any) -> bool:
    # A marker rather than isinstance: the model layer does not import flow.py.
    return getattr(type(value), "__routilux_flow__", False) is True


class Routine:
    """Base class of every routine.

    Subclass it, define slots and events in ``__init__`` and emit from handlers::

        class Doubler(Routine):
            def __init__(self):
                super().__init__()
                self.define_slot("input", handler=self.double)
                self.define_event("output", ["value"])

            def double(self, value):
                self.emit("output", value=value * 2)

    In a flow each routine runs as an actor: one handler call (a *step*) at a time.
    """

    __routilux_routine__ = True  # callable (0.10's deprecated call) but not a function

    def __init__(self) -> None:
        self._id: str = hex(id(self))
        self._slots: dict[str, Slot] = {}
        self._events: dict[str, Event] = {}
        self._config: dict[str, Any] = {}
        self._stats: dict[str, Any] = {}
        self._error_handler: ErrorHandler | None = None

    # -- graph ------------------------------------------------------------------------
    def define_slot(
        self,
        name: str,
        handler: Callable[..., Any] | None = None,
        merge_strategy: Any = "override",
    ) -> Slot:
        """Add an input slot; a duplicate name raises ``ValueError``."""
        _check_name(name, "slot")
        if name in self._slots:
            raise ConfigurationError(
                f"{type(self).__name__} already has a slot named {name!r}; "
                f"slots: {sorted(self._slots)}"
            )
        slot = Slot(name, self, handler, merge_strategy)
        self._slots[name] = slot
        return slot

    def define_event(self, name: str, output_params: list[str] | None = None) -> Event:
        """Add an output event; a duplicate name raises ``ValueError``."""
        _check_name(name, "event")
        if name in self._events:
            raise ConfigurationError(
                f"{type(self).__name__} already has an event named {name!r}; "
                f"events: {sorted(self._events)}"
            )
        event = Event(name, self, output_params)
        self._events[name] = event
        return event

    def get_slot(self, name: str) -> Slot | None:
        """The slot called ``name``, or None."""
        return self._slots.get(name)

    def get_event(self, name: str) -> Event | None:
        """The event called ``name``, or None."""
        return self._events.get(name)

    # -- emitting ---------------------------------------------------------------------
    def emit(self, event_name: str, flow: Any = None, **data: Any) -> None:
        """Send ``data`` out of the event ``event_name``.

        Inside a handler run by a flow this is a non-blocking send through the job's
        supervisor (it blocks only while the supervisor is full, see backpressure).
        Outside any flow the connected slots' handlers are called synchronously.
        ``flow`` is accepted for compatibility and not needed.
        """
        event = self._events.get(event_name)
        if event is None:
            raise ConfigurationError(
                f"{type(self).__name__} has no event named {event_name!r}; "
                f"events: {sorted(self._events)}"
            )
        if flow is not None and not _is_flow(flow):
            data["flow"] = flow  # a data key named "flow", not the 0.10 flow argument
        declared = event.declared
        if declared and not data.keys() <= declared and not event.undeclared_warned:
            _check_declared(self, event, data)
        step = current_step()
        if step is None:
            try:
                step = hosting_step(self)  # a thread started by a handler of ours
            except LookupError:
                raise FlowStateError(
                    f"{type(self).__name__}.emit({event_name!r}) from a thread a handler "
                    "started is ambiguous while several of its replicas run handlers; "
                    "emit from the handler itself"
                ) from None
            if step is not None and not step.active:
                raise FlowStateError(
                    f"{type(self).__name__}.emit({event_name!r}) was called while none of "
                    "its handlers runs, but the routine is hosted by a running flow. Emit "
                    "from a handler (join helper threads before it returns), start work "
                    "with flow.execute(), or shut the flow down to use the routine standalone"
                )
        if step is not None:
            step.emit(self, event_name, data)
            return
        for connection in list(event.connections):
            connection.target_slot.receive(connection.apply_mapping(data))

    def emit_deferred_event(self, event_name: str, **data: Any) -> None:
        """Record an emit to be sent when the current job is next resumed.

        Outside a flow the event is emitted at once.
        """
        if event_name not in self._events:
            raise ConfigurationError(
                f"{type(self).__name__} has no event named {event_name!r}; "
                f"events: {sorted(self._events)}"
            )
        step = current_step()
        if step is None:
            self.emit(event_name, **data)
        else:
            step.defer(self, event_name, data)

    def send_output(self, output_type: str, **data: Any) -> None:
        """Send data to the job's output handler (and its ``output_log``).

        Outside a flow there is no job and the call does nothing.
        """
        step = current_step()
        if step is not None:
            step.send_output(self, output_type, data)

    def get_execution_context(self) -> ExecutionContext | None:
        """``(flow, job_state, routine_id)`` while a handler runs in a flow, else None."""
        step = current_step()
        if step is None:
            return None
        return step.context(self)

    # -- configuration ----------------------------------------------------------------
    def set_config(self, **kwargs: Any) -> None:
        """Set configuration values."""
        self._config.update(kwargs)

    def get_config(self, key: str, default: Any = None) -> Any:
        """A configuration value, or ``default``."""
        return self._config.get(key, default)

    def config(self) -> dict[str, Any]:
        """A copy of the whole configuration."""
        return dict(self._config)

    # -- stats ------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """A copy of ``_stats``, the routine's user-maintained statistics."""
        return dict(self._stats)

    def reset_stats(self) -> None:
        """Clear ``_stats``."""
        self._stats.clear()

    # -- errors -----------------------------------------------------------------------
    def set_error_handler(self, error_handler: ErrorHandler | None) -> None:
        """Set this routine's error handler (None: use the flow's)."""
        self._error_handler = error_handler

    def get_error_handler(self) -> ErrorHandler | None:
        """This routine's error handler, or None."""
        return self._error_handler

    def set_as_optional(self, strategy: ErrorStrategy | str | None = None) -> None:
        """Errors in this routine never fail the job (default strategy CONTINUE)."""
        self._error_handler = ErrorHandler(
            strategy=strategy or ErrorStrategy.CONTINUE, is_critical=False
        )

    def set_as_critical(
        self, max_retries: int = 3, retry_delay: float = 1.0, retry_backoff: float = 2.0
    ) -> None:
        """Retry this routine's failures; when retries run out the job fails."""
        self._error_handler = ErrorHandler(
            strategy=ErrorStrategy.RETRY,
            max_retries=max_retries,
            retry_delay=retry_delay,
            retry_backoff=retry_backoff,
            is_critical=True,
        )

    # -- 0.10 compatibility -----------------------------------------------------------
    def __call__(self, **kwargs: Any) -> None:
        """Deprecated in 0.10 and a no-op: routines run through their slots."""
        warnings.warn(
            f"calling a routine ({type(self).__name__}(**kwargs)) does nothing; deliver "
            "data to a slot (flow.execute, slot.receive) instead",
            DeprecationWarning,
            stacklevel=2,
        )

    def _extract_input_data(self, data: Any = None, **kwargs: Any) -> Any:
        """0.10's helper for handlers ``(self, data=None, **kwargs)``: ``data`` if not
        None, else the value of a single keyword, else the dict of the keywords
        (``{}`` when there are none)."""
        if data is not None:
            return data
        if len(kwargs) == 1:
            return next(iter(kwargs.values()))
        return dict(kwargs)

    @property
    def _current_flow(self) -> Any:
        """The flow running the current step; outside a step the flow this routine
        was last added to (None if it is gone, or inside a process routine)."""
        step = current_step()
        if step is not None:
            env = getattr(step, "env", None)
            return env.owner if env is not None else None
        try:
            ref = _last_flow.get(self)
        except TypeError:
            return None
        return ref() if ref is not None else None

    def _wiring_changed(self) -> None:
        """A link of one of our events changed: the flows holding us re-plan routes."""
        try:
            flows = list(_flows.get(self, ()))
        except TypeError:
            return
        for flow in flows:
            flow._links_changed()

    # -- serialization ----------------------------------------------------------------
    def serialize(self) -> dict[str, Any]:
        """A JSON-compatible dict: ``_type`` (the class name), ``_id``, ``_config``
        (callables as references or lambda expressions), ``_slots``, ``_events``,
        ``_error_handler``. Raises ``ValueError`` naming a config value that has no
        JSON form."""
        handler = self._error_handler
        return {
            "_type": type(self).__name__,
            "_id": self._id,
            "_config": self._serialize_config(),
            "_slots": {name: slot.serialize() for name, slot in self._slots.items()},
            "_events": {name: event.serialize() for name, event in self._events.items()},
            "_error_handler": handler.serialize() if handler is not None else None,
        }

    def deserialize(self, data: dict[str, Any]) -> Routine:
        """Fill this routine from :meth:`serialize` output; returns it.

        Sets ``_id``, the config, the error handler and slot data, and adds slots
        and events this instance lacks. Handlers set by ``__init__`` stay. Data
        holding function references imports their modules: load trusted data only.
        """
        if not isinstance(data, dict):
            raise ConfigurationError(
                f"{type(self).__name__}.deserialize expects a dict, got {type(data).__name__}"
            )
        self._id = data.get("_id", self._id)
        self._deserialize_config(data.get("_config") or {})
        handler = data.get("_error_handler")
        self._error_handler = ErrorHandler().deserialize(handler) if handler else None
        for name, slot_data in (data.get("_slots") or {}).items():
            slot = self._slots.get(name)
            if slot is None:
                slot = self.define_slot(name)
            slot.deserialize(slot_data)
        for name, event_data in (data.get("_events") or {}).items():
            if name not in self._events:
                self.define_event(name).deserialize(event_data)
        return self

    def _serialize_config(self, strict: bool = True) -> dict[str, Any]:
        """The config as JSON data (built-ins may leave out what their constructor
        sets again). A value with no JSON form raises ``ValueError`` naming it, or
        with ``strict=False`` its key is left out."""
        encoded = {}
        for key, value in self._config.items():
            try:
                encoded[key] = encode_value(value, self, f"{type(self).__name__} config[{key!r}]")
            except Unencodable:
                if strict:
                    raise
        return encoded

    def _deserialize_config(self, config: dict[str, Any]) -> None:
        """Apply serialized config (through ``set_config``, so built-ins check it)."""
        self.set_config(**decode_value(config, self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}[{self._id}]"
