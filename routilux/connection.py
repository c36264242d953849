"""Connection: a wire from one routine's event to another routine's slot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routilux.exceptions import ConfigurationError

if TYPE_CHECKING:
    from routilux.event import Event
    from routilux.slot import Slot


class Connection:
    """Links ``source_event`` to ``target_slot``, optionally renaming keys.

    ``param_mapping`` maps emitted keys to slot keys: with ``{"a": "x"}`` an emit of
    ``{"a": 1}`` arrives as ``{"x": 1, "a": 1}`` (mapped keys are passed through too;
    an emitted key that is a mapping *target* is dropped, as in 0.10). Both ends
    are optional; given both, the connection registers on them (replacing an
    earlier connection of the same pair) and :meth:`disconnect` undoes that.
    """

    __slots__ = (
        "source_event",
        "target_slot",
        "param_mapping",
        "_source_event_name",
        "_target_slot_name",
        "_source_routine_id",
        "_target_routine_id",
    )

    def __init__(
        self,
        source_event: Event | None = None,
        target_slot: Slot | None = None,
        param_mapping: dict[str, str] | None = None,
    ) -> None:
        if param_mapping is not None and not isinstance(param_mapping, dict):
            raise ConfigurationError(
                f"param_mapping must be a dict of emitted key -> slot key, got "
                f"{type(param_mapping).__name__}"
            )
        self.source_event = source_event
        self.target_slot = target_slot
        self.param_mapping: dict[str, str] = dict(param_mapping or {})
        self._source_event_name = getattr(source_event, "name", None)
        self._target_slot_name = getattr(target_slot, "name", None)
        self._source_routine_id = _routine_id(source_event)
        self._target_routine_id = _routine_id(target_slot)
        if source_event is not None and target_slot is not None:
            self._register()

    def _register(self) -> None:
        event, slot = self.source_event, self.target_slot
        for i, old in enumerate(event.connections):
            if old.target_slot is slot:  # one link per pair: the latest replaces it
                event.connections[i] = self
                if old in slot.connections:
                    slot.connections[slot.connections.index(old)] = self
                else:
                    slot.connections.append(self)
                break
        else:
            event.connections.append(self)
            slot.connections.append(self)
        notify_wiring_changed(event)

    def apply_mapping(self, data: dict[str, Any]) -> dict[str, Any]:
        """Return the data as the target slot receives it."""
        mapping = self.param_mapping
        if not mapping:
            return data
        mapped = {target: data[source] for source, target in mapping.items() if source in data}
        targets = set(mapping.values())
        for key, value in data.items():
            if key not in targets and key not in mapped:
                mapped[key] = value
        return mapped

    _apply_mapping = apply_mapping  # the 0.10 name

    def activate(self, data: dict[str, Any]) -> Any:
        """Deliver ``data`` (mapped) to the target slot now, as a standalone emit."""
        if self.target_slot is None:
            return None
        return self.target_slot.receive(self.apply_mapping(data))

    def disconnect(self) -> None:
        """Remove this connection from its event and slot (idempotent)."""
        event, slot = self.source_event, self.target_slot
        if event is not None and self in event.connections:
            event.connections.remove(self)
            notify_wiring_changed(event)
        if slot is not None and self in slot.connections:
            slot.connections.remove(self)

    # -- serialization ----------------------------------------------------------------
    def serialize(self) -> dict[str, Any]:
        """``{"_type": "Connection", "param_mapping", "_source_event_name",
        "_target_slot_name", "_source_routine_id", "_target_routine_id"}``."""
        return {
            "_type": "Connection",
            "param_mapping": dict(self.param_mapping),
            "_source_event_name": self._source_event_name,
            "_target_slot_name": self._target_slot_name,
            "_source_routine_id": self._source_routine_id,
            "_target_routine_id": self._target_routine_id,
        }

    def deserialize(self, data: dict[str, Any]) -> Connection:
        """Fill this connection (mapping, and the end names for re-binding)."""
        self.param_mapping = dict(data.get("param_mapping") or {})
        self._source_event_name = data.get("_source_event_name")
        self._target_slot_name = data.get("_target_slot_name")
        self._source_routine_id = data.get("_source_routine_id")
        self._target_routine_id = data.get("_target_routine_id")
        return self

    def __repr__(self) -> str:
        src = self.source_event
        dst = self.target_slot
        return (
            f"Connection({_owner_id(src)}.{getattr(src, 'name', self._source_event_name)} -> "
            f"{_owner_id(dst)}.{getattr(dst, 'name', self._target_slot_name)}"
            f"{', mapping=' + repr(self.param_mapping) if self.param_mapping else ''})"
        )


def _routine_id(end: Any) -> str | None:
    routine = getattr(end, "routine", None)
    return getattr(routine, "_id", None) if routine is not None else None


def _owner_id(end: Any) -> str:
    routine = getattr(end, "routine", None)
    return getattr(routine, "_id", "?") if routine is not None else "?"


def notify_wiring_changed(event: Any) -> None:
    """Tell the flow holding the event's routine that its links changed (a flow
    routes ``Event.connect`` links too)."""
    notify = getattr(getattr(event, "routine", None), "_wiring_changed", None)
    if notify is not None:
        notify()
