"""The routing table of a flow, read from the links of its routines' events.

``Flow.connect`` and the standalone ``Event.connect``/``Slot.connect`` create the
same :class:`~routilux.connection.Connection` objects, registered on the event; a
flow routes every link between two of its routines, whichever way it was made, and
at most one per event/slot pair (a later connect replaces the earlier link).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routilux.connection import Connection
    from routilux.flow import Flow

logger = logging.getLogger("routilux.flow")

Routes = dict[tuple[str, str], list[tuple[str, str, "Connection"]]]
_warned: set[tuple[str, int]] = set()


def routes_of(flow: Flow) -> Routes:
    """``{(source id, event): [(target id, slot, connection), ...]}`` in link order.

    Links to routines that are not in the flow are not routed (warned once).
    """
    rid_of = {id(routine): rid for rid, routine in flow.routines.items()}
    routes: Routes = {}
    for rid, routine in flow.routines.items():
        for name, event in routine._events.items():
            for connection in event.connections:
                slot = connection.target_slot
                owner = getattr(slot, "routine", None)
                dst = rid_of.get(id(owner))
                if dst is None or owner._slots.get(slot.name) is not slot:
                    _warn_outside(flow, rid, name, connection)
                    continue
                routes.setdefault((rid, name), []).append((dst, slot.name, connection))
    return routes


def routine_id_in(flow: Flow, routine: Any) -> str | None:
    """The id ``routine`` (the object) was added under, or None."""
    for rid, candidate in flow.routines.items():
        if candidate is routine:
            return rid
    return None


def find_connection(flow: Flow, event: Any, slot: Any) -> Connection | None:
    """The link from ``event`` to ``slot`` if both belong to routines of ``flow``."""
    if routine_id_in(flow, getattr(event, "routine", None)) is None:
        return None
    if routine_id_in(flow, getattr(slot, "routine", None)) is None:
        return None
    for connection in event.connections:
        if connection.target_slot is slot:
            return connection
    return None


def _warn_outside(flow: Flow, rid: str, event: str, connection: Connection) -> None:
    key = (flow.flow_id, id(connection))
    if key in _warned:
        return
    _warned.add(key)
    logger.warning(
        "flow %r: routine %r event %r is linked to %r, which is not in the flow; "
        "that link is not routed (add the routine to the flow)",
        flow.flow_id,
        rid,
        event,
        connection.target_slot,
    )
