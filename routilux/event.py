"""Event: a named output of a routine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routilux.exceptions import ConfigurationError

if TYPE_CHECKING:
    from routilux.connection import Connection
    from routilux.routine import Routine
    from routilux.slot import Slot


class Event:
    """A named output of a routine; connected to any number of slots."""

    def __init__(
        self,
        name: str,
        routine: Routine | None = None,
        output_params: list[str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"event name must be a non-empty string, got {name!r}")
        self.name = name
        self.routine = routine
        self.output_params = list(output_params or [])
        self.connections: list[Connection] = []

    @property
    def connected_slots(self) -> list[Slot]:
        """The slots this event feeds, in connection order."""
        return [c.target_slot for c in self.connections]

    def connect(self, slot: Slot, param_mapping: dict[str, str] | None = None) -> Connection:
        """Connect this event to ``slot`` (standalone wiring; flows use ``Flow.connect``)."""
        from routilux.connection import Connection

        return Connection(self, slot, param_mapping)

    def disconnect(self, slot: Slot) -> None:
        """Remove every connection from this event to ``slot``."""
        for connection in [c for c in self.connections if c.target_slot is slot]:
            connection.disconnect()

    def emit(self, flow: Any = None, **data: Any) -> None:
        """Emit through the owning routine (see :meth:`Routine.emit`)."""
        if self.routine is None:
            raise ConfigurationError(f"event {self.name!r} belongs to no routine")
        self.routine.emit(self.name, flow=flow, **data)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["connections"] = []  # wiring belongs to the flow, not to the pickle
        return state

    def __repr__(self) -> str:
        owner = getattr(self.routine, "_id", None)
        return f"Event({owner}.{self.name})" if owner else f"Event({self.name})"
