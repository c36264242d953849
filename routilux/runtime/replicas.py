"""What the caller's routine object shows of a process routine's replicas.

Each replica reports its ``_stats`` and its state after every step. The routine
object in the caller's process gets ``_stats`` merged from all replicas (numbers
summed, other values from the last report) and the attributes of the highest-index
replica that reported a state.
"""

from __future__ import annotations

import logging
from typing import Any

from routilux.runtime.snapshot import restore_state
from routilux.runtime.wire import loads

logger = logging.getLogger("routilux.supervisor")


def merge_stats(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum numeric values across replicas; other values come from the last report."""
    merged: dict[str, Any] = {}
    for report in reports:
        for key, value in report.items():
            previous = merged.get(key)
            if _is_number(value) and _is_number(previous):
                merged[key] = previous + value
            else:
                merged[key] = value
    return merged


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def publish_stats(routine: Any, stats: list[dict[str, Any] | None]) -> None:
    """Set ``routine._stats`` from the replicas' latest reports (if any)."""
    reports = [report for report in stats if report is not None]
    if reports:
        routine._stats = merge_stats(reports) if len(reports) > 1 else dict(reports[0])


def apply_replica_states(
    routine: Any,
    routine_id: str,
    states: list[bytes | None],
    stats: list[dict[str, Any] | None],
) -> None:
    """Copy the replicas' latest attributes and merged stats onto ``routine``."""

    for state in states:
        if state is None:
            continue
        try:
            attributes = loads(state)
        except Exception:  # a class that only exists in the child
            logger.warning("cannot load the state of routine %r here", routine_id)
            continue
        attributes.pop("_stats", None)
        restore_state(routine, attributes)
    publish_stats(routine, stats)
