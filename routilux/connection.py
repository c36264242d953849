"""Connection: a wire from one routine's event to another routine's slot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routilux.event import Event
    from routilux.slot import Slot


class Connection:
    """Links ``source_event`` to ``target_slot``, optionally renaming keys.

    ``param_mapping`` maps emitted keys to slot keys: with ``{"a": "x"}`` an emit of
    ``{"a": 1}`` arrives as ``{"a": 1, "x": 1}`` (mapped keys are passed through too).
    Creating a connection registers it on both ends; :meth:`disconnect` undoes that.
    """

    __slots__ = ("source_event", "target_slot", "param_mapping")

    def __init__(
        self,
        source_event: Event,
        target_slot: Slot,
        param_mapping: dict[str, str] | None = None,
    ) -> None:
        if param_mapping is not None and not isinstance(param_mapping, dict):
            from routilux.exceptions import ConfigurationError

            raise ConfigurationError(
                f"param_mapping must be a dict of emitted key -> slot key, got "
                f"{type(param_mapping).__name__}"
            )
        self.source_event = source_event
        self.target_slot = target_slot
        self.param_mapping = dict(param_mapping) if param_mapping else None
        source_event.connections.append(self)
        target_slot.connections.append(self)

    def apply_mapping(self, data: dict[str, Any]) -> dict[str, Any]:
        """Return the data as the target slot receives it."""
        mapping = self.param_mapping
        if not mapping:
            return data
        mapped = dict(data)
        for source_key, target_key in mapping.items():
            if source_key in data:
                mapped[target_key] = data[source_key]
        return mapped

    def disconnect(self) -> None:
        """Remove this connection from its event and slot."""
        if self in self.source_event.connections:
            self.source_event.connections.remove(self)
        if self in self.target_slot.connections:
            self.target_slot.connections.remove(self)

    def __repr__(self) -> str:
        src = self.source_event
        dst = self.target_slot
        return (
            f"Connection({_owner_id(src)}.{src.name} -> {_owner_id(dst)}.{dst.name}"
            f"{', mapping=' + repr(self.param_mapping) if self.param_mapping else ''})"
        )


def _owner_id(end: Any) -> str:
    routine = getattr(end, "routine", None)
    return getattr(routine, "_id", "?") if routine is not None else "?"
