"""Event: a named output of a routine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routilux.connection import Connection, notify_wiring_changed
from routilux.exceptions import ConfigurationError

if TYPE_CHECKING:
    from routilux.routine import Routine
    from routilux.slot import Slot


class Event:
    """A named output of a routine; connected to any number of slots.

    An event without a routine (``Event("name")``) delivers its emits to the
    connected slots synchronously.
    """

    def __init__(
        self,
        name: str = "",
        routine: Routine | None = None,
        output_params: list[str] | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise ConfigurationError(f"event name must be a string, got {name!r}")
        self.name = name
        self.routine = routine
        self.output_params = output_params  # type: ignore[assignment]
        self.undeclared_warned = False  # emits with keys it does not declare: warned once
        self.connections: list[Connection] = []

    @property
    def output_params(self) -> list[str]:
        """The data keys this event declares (0.10: informational; others warn once)."""
        return self._output_params

    @output_params.setter
    def output_params(self, params: list[str] | None) -> None:
        self._output_params = list(params or [])
        self.declared = frozenset(self._output_params)  # for the per-emit subset check

    @property
    def connected_slots(self) -> list[Slot]:
        """The slots this event feeds, in connection order."""
        return [c.target_slot for c in self.connections]

    def connect(self, slot: Slot, param_mapping: dict[str, str] | None = None) -> Connection:
        """Link this event to ``slot`` and return the link.

        Connecting the same slot again returns the existing link (a mapping given
        again replaces its mapping): a slot never receives an emit twice. Inside a
        flow such links are routed like ``Flow.connect`` ones.
        """
        for connection in self.connections:
            if connection.target_slot is slot:
                if param_mapping is not None:
                    connection.param_mapping = _checked_mapping(param_mapping)
                    notify_wiring_changed(self)
                return connection
        return Connection(self, slot, param_mapping)

    def disconnect(self, slot: Slot) -> None:
        """Remove the link from this event to ``slot`` (harmless if there is none)."""
        for connection in [c for c in self.connections if c.target_slot is slot]:
            connection.disconnect()

    def emit(self, flow: Any = None, **data: Any) -> None:
        """Emit through the owning routine (see :meth:`Routine.emit`); without a
        routine, call the connected slots' handlers now."""
        if self.routine is not None:
            self.routine.emit(self.name, flow=flow, **data)
            return
        for connection in list(self.connections):
            connection.activate(data)

    # -- serialization ----------------------------------------------------------------
    def serialize(self) -> dict[str, Any]:
        """``{"_type": "Event", "name", "output_params"}``."""
        return {"_type": "Event", "name": self.name, "output_params": list(self.output_params)}

    def deserialize(self, data: dict[str, Any]) -> Event:
        """Fill this event from :meth:`serialize` output; returns it."""
        self.name = data.get("name", self.name)
        self.output_params = data.get("output_params")
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["connections"] = []  # wiring belongs to the flow, not to the pickle
        return state

    def __repr__(self) -> str:
        owner = getattr(self.routine, "_id", None)
        return f"Event({owner}.{self.name})" if owner else f"Event({self.name})"


def _checked_mapping(param_mapping: Any) -> dict[str, str]:
    if not isinstance(param_mapping, dict):
        raise ConfigurationError(
            f"param_mapping must be a dict of emitted key -> slot key, got "
            f"{type(param_mapping).__name__}"
        )
    return dict(param_mapping)
