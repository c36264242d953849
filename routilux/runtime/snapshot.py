"""What goes into a checkpoint, and how a flow is put back from one.

A checkpoint is a consistent cut: the supervisor takes it while no step is in
flight, so routine states, slot data, JobStates and queued messages all describe the
same moment. Routine state is the routine's attributes minus its graph (slots and
events stay with the code that rebuilds the flow); a routine can shape it with
``__getstate__`` / ``__setstate__``.
"""

from __future__ import annotations

from typing import Any

from routilux.event import Event
from routilux.exceptions import CheckpointError
from routilux.runtime.job_pickle import dumps
from routilux.runtime.messages import Delivery
from routilux.runtime.wire import describe_unpicklable, loads
from routilux.slot import Slot

GRAPH_ATTRIBUTES = ("_slots", "_events", "_id")


def _is_graph(key: str, value: Any) -> bool:
    # 0.10-style routines keep their slots and events in attributes too
    # (``self.input_slot = self.define_slot(...)``): those are graph, not state.
    return key in GRAPH_ATTRIBUTES or isinstance(value, (Slot, Event))


def capture_state(routine: Any) -> dict[str, Any]:
    """The routine's saveable state (its own ``__getstate__`` if it defines one)."""
    custom = getattr(type(routine), "__getstate__", None)
    if custom is not None and custom is not object.__getstate__:
        state = routine.__getstate__()
        if isinstance(state, dict):
            return {k: v for k, v in state.items() if not _is_graph(k, v)}
        return {"__state__": state}
    return {k: v for k, v in vars(routine).items() if not _is_graph(k, v)}


def restore_state(routine: Any, state: dict[str, Any]) -> None:
    """Put captured state back onto an existing routine object (graph untouched)."""
    if "__unpicklable__" in state:
        state = {k: v for k, v in state.items() if k != "__unpicklable__"}
    custom = getattr(type(routine), "__setstate__", None)
    if custom is not None and custom is not getattr(object, "__setstate__", None):
        graph = {k: v for k, v in vars(routine).items() if _is_graph(k, v)}
        routine.__setstate__(state.get("__state__", state))
        vars(routine).update(graph)
    else:
        vars(routine).update(state)


def pickle_state(routine_id: str, routine: Any) -> bytes:
    """Pickle a routine's state, or raise CheckpointError naming what cannot be."""
    state = capture_state(routine)
    try:
        return dumps(state)
    except Exception as exc:
        raise CheckpointError(
            f"cannot checkpoint routine {routine_id!r}: "
            f"{describe_unpicklable(state, 'its state')} cannot be pickled "
            f"({type(exc).__name__}: {exc}). Remove it, or leave it out with "
            "__getstate__/__setstate__."
        ) from None


def delivery_record(delivery: Any) -> tuple:
    """A queued delivery as plain data for a checkpoint."""
    return (
        delivery.id,
        delivery.routine_id,
        delivery.slot,
        delivery.data,
        delivery.call_data,
        delivery.attempt,
        delivery.emitted,
    )


def delivery_from_record(record: tuple, job: Any) -> Any:
    """Rebuild a delivery of ``job`` from :func:`delivery_record` data."""
    msg_id, routine_id, slot, data, call_data, attempt, emitted = record
    delivery = Delivery(msg_id, job, routine_id, slot, data)
    delivery.call_data = call_data
    delivery.attempt = attempt
    delivery.emitted = emitted
    return delivery


def check_process_state(routine_id: str, state_bytes: bytes | None) -> None:
    """Refuse to checkpoint a process routine whose state lost unpicklable attributes."""
    if state_bytes is None:
        return
    dropped = loads(state_bytes).get("__unpicklable__")
    if dropped:
        details = ", ".join(f"attribute {name!r} (a {kind})" for name, kind in dropped)
        raise CheckpointError(
            f"cannot checkpoint routine {routine_id!r}: {details} cannot be pickled. "
            "Remove it, or leave it out with __getstate__/__setstate__."
        )
