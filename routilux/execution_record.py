"""ExecutionRecord: one entry of a job's execution history."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from routilux.serialization import jsonable as _jsonable


class ExecutionRecord:
    """One history record: which routine, which event, the data, and when.

    ``timestamp`` is a :class:`datetime`; the wall-clock seconds are kept in
    ``wall_time`` (cheap to pickle in checkpoints).
    """

    __slots__ = ("routine_id", "event_name", "data", "wall_time")

    def __init__(
        self,
        routine_id: str = "",
        event_name: str = "",
        data: dict[str, Any] | None = None,
        timestamp: datetime | float | str | None = None,
    ) -> None:
        self.routine_id = routine_id
        self.event_name = event_name
        self.data = data if data is not None else {}
        # now, unless given (one record per emit: kept cheap)
        self.wall_time = time.time() if timestamp is None else _seconds(timestamp)

    @property
    def timestamp(self) -> datetime:
        """When the record was made (local time, as in 0.10)."""
        return datetime.fromtimestamp(self.wall_time)

    @timestamp.setter
    def timestamp(self, value: datetime | float | str | None) -> None:
        self.wall_time = _seconds(value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (data values JSON cannot hold become their repr)."""
        return {
            "_type": "ExecutionRecord",
            "routine_id": self.routine_id,
            "event_name": self.event_name,
            "data": _jsonable(self.data),
            "timestamp": self.timestamp.isoformat(),
        }

    serialize = to_dict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecutionRecord:
        """Rebuild a record from :meth:`to_dict` output (ours or 0.10's)."""
        return cls().deserialize(data)

    def deserialize(self, data: dict[str, Any]) -> ExecutionRecord:
        """Fill this record from :meth:`serialize` output; returns it."""
        self.routine_id = data.get("routine_id", "")
        self.event_name = data.get("event_name", "")
        self.data = dict(data.get("data") or {})
        self.wall_time = _seconds(data.get("timestamp"))
        return self

    def __eq__(self, other: object) -> bool:
        # Timestamps compare as datetimes (to the microsecond, what an ISO string
        # keeps), so a record read back from ``serialize()`` equals the original.
        return isinstance(other, ExecutionRecord) and (
            self.routine_id,
            self.event_name,
            self.data,
            self.timestamp,
        ) == (other.routine_id, other.event_name, other.data, other.timestamp)

    def to_tuple(self) -> tuple:
        """``(routine_id, event_name, data, wall_time)``."""
        return (self.routine_id, self.event_name, self.data, self.wall_time)

    def __getstate__(self) -> tuple:
        return self.to_tuple()

    def __setstate__(self, state: tuple) -> None:
        self.routine_id, self.event_name, self.data, self.wall_time = state

    def __repr__(self) -> str:
        return f"ExecutionRecord({self.routine_id!r}, {self.event_name!r}, {self.data!r})"


def build_records(
    ids: Iterable[str], names: Iterable[str], data: Iterable[Any], times: Iterable[float]
) -> list[ExecutionRecord]:
    """Records from history columns (``times``: wall-clock seconds), without the
    constructor's call and argument checks per record."""
    new = ExecutionRecord.__new__
    records = []
    add = records.append
    for routine_id, event_name, values, wall_time in zip(ids, names, data, times, strict=True):
        record = new(ExecutionRecord)
        record.routine_id = routine_id
        record.event_name = event_name
        record.data = values if values is not None else {}
        record.wall_time = wall_time
        add(record)
    return records


def _seconds(value: datetime | float | str | None) -> float:
    """Wall-clock seconds from a datetime, an ISO string, seconds, or None (now)."""
    if value is None:
        return time.time()  # per history record: kept cheap
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        return datetime.fromisoformat(value).timestamp()
    return float(value)
