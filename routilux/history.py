"""A job's execution history, kept as columns.

The supervisor records one entry per emit, so recording must cost little: an
append is four appends to columns (routine ids, event names, data, wall-clock
times in an ``array('d')``) and builds no object per record. The
:class:`~routilux.execution_record.ExecutionRecord` objects users see are built
only when ``JobState.execution_history`` is read, and cached. Checkpoints pickle
slices of the columns (``routilux/runtime/job_pickle.py``).
"""

from __future__ import annotations

import itertools
import threading
from array import array
from collections.abc import Iterable
from time import time
from typing import Any

from routilux.execution_record import ExecutionRecord, _seconds, build_records

DEFAULT_HISTORY_LIMIT = 10_000
# Process-wide, so a History that replaces another (a JobState loaded into an
# existing instance) never reuses the generation of the one it replaces.
_generations = itertools.count(1)


def as_times(values: Iterable[Any]) -> array:
    """Wall-clock seconds as an ``array('d')`` (values that are not numbers, as old
    pickles may hold, are converted one by one: datetimes, ISO strings, None)."""
    try:
        return array("d", values)
    except TypeError:
        return array("d", map(_seconds, values))


class History:
    """The records of one job, oldest first, as columns; at most ``limit`` kept.

    A record's *position* is ``dropped`` plus its index in the columns: trimming
    the front does not change it. ``generation`` changes whenever the records are
    replaced or renumbered rather than appended to or trimmed, so what was built
    from earlier records (the cached records, checkpoint chunks) starts over.

    Threads: one thread appends (the job's supervisor), without a lock; any thread
    may read. Trims, replacements and reads hold ``lock``. A trim deletes at the
    front of each column and an append adds at the end, so the two commute; and
    ``times`` is appended last, so ``len(times)`` counts complete records.
    """

    __slots__ = (
        "routine_ids",
        "event_names",
        "data",
        "times",
        "dropped",
        "generation",
        "lock",
        "_limit",
        "_trim_at",
        "_cache",
        "_cache_first",
        "_cache_generation",
    )

    def __init__(self, limit: int = DEFAULT_HISTORY_LIMIT, dropped: int = 0) -> None:
        self.routine_ids: list[str] = []
        self.event_names: list[str] = []
        self.data: list[dict[str, Any]] = []
        self.times = array("d")
        self.dropped = dropped  #: records dropped from the front so far
        self.generation = next(_generations)
        self.lock = threading.Lock()
        self.limit = limit
        self._cache: list[ExecutionRecord] = []  # records of positions _cache_first...
        self._cache_first = dropped
        self._cache_generation = self.generation

    @property
    def limit(self) -> int:
        """How many records are kept (the oldest beyond it are dropped)."""
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        self._limit = value
        self._trim_at = 2 * value  # appends trim past twice the limit: amortised O(1)

    def __len__(self) -> int:
        return len(self.times)

    def append(self, routine_id: str, event_name: str, data: dict[str, Any]) -> None:
        """Add one record, timed now (the hot path: no lock, no object)."""
        ids = self.routine_ids
        ids.append(routine_id)
        self.event_names.append(event_name)
        self.data.append(data)
        self.times.append(time())
        if len(ids) > self._trim_at:
            self.trim()

    def trim(self) -> None:
        """Drop the oldest records beyond ``limit``, counting them in ``dropped``."""
        with self.lock:
            self._trim()

    def _trim(self) -> int:
        """Trim (``lock`` held); the number of records kept, of those complete when
        it began (the appending thread may have added some since)."""
        count = len(self.times)
        excess = min(count - self._limit, count)
        if excess > 0:
            del self.routine_ids[:excess]
            del self.event_names[:excess]
            del self.data[:excess]
            del self.times[:excess]
            self.dropped += excess
            count -= excess
        return count

    def renumber(self, dropped: int) -> None:
        """Set ``dropped`` by hand (the records keep their order; positions change)."""
        with self.lock:
            self.dropped = dropped
            self.generation = next(_generations)

    def records(self) -> list[ExecutionRecord]:
        """The kept records as :class:`ExecutionRecord` objects, after trimming to
        ``limit``: a new list (changing it changes nothing here) of cached records
        (built once each, when first asked for)."""
        with self.lock:
            count = self._trim()  # records appended after it: seen by the next call
            cache = self._cache
            if self._cache_generation != self.generation:
                cache = self._cache = []
                self._cache_first, self._cache_generation = self.dropped, self.generation
            stale = self.dropped - self._cache_first
            if stale > 0:
                del cache[:stale]
                self._cache_first = self.dropped
            have = len(cache)
            if count > have:
                cache += build_records(*self.columns(have, count))
            return cache[:]

    def columns(self, start: int, stop: int) -> tuple[list, list, list, array]:
        """Slices ``[start:stop]`` of the four columns (indices, not positions);
        the caller holds ``lock``."""
        return (
            self.routine_ids[start:stop],
            self.event_names[start:stop],
            self.data[start:stop],
            self.times[start:stop],
        )

    def last(self, count: int) -> list[tuple[str, str, dict[str, Any], float]]:
        """The newest ``count`` records as ``(routine_id, event_name, data, time)``,
        without trimming (for monitors)."""
        with self.lock:
            end = len(self.times)
            columns = self.columns(max(end - count, 0), end)
        return [
            (rid, name, data if data is not None else {}, when)
            for rid, name, data, when in zip(*columns, strict=True)
        ]

    def set_columns(
        self, dropped: int, ids: list, names: list, data: list, times: Iterable[Any]
    ) -> None:
        """Replace the records by these columns (not trimmed); positions start at
        ``dropped``."""
        times = as_times(times)
        if not len(ids) == len(names) == len(data) == len(times):
            raise ValueError("history columns of different lengths: not a history")
        with self.lock:
            self.routine_ids, self.event_names, self.data, self.times = ids, names, data, times
            self.dropped = dropped
            self.generation = next(_generations)

    def load(self, records: Iterable[Any]) -> None:
        """Replace the records by ``records``: ExecutionRecord objects or
        ``(routine_id, event_name, data, time)`` tuples (what older pickles hold)."""
        rows = [r.to_tuple() if isinstance(r, ExecutionRecord) else tuple(r) for r in records]
        columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[], [], [], []]
        self.set_columns(self.dropped, *columns)

    def empty_copy(self) -> History:
        """A History with the same limit and dropped count and no records."""
        return History(self._limit, self.dropped)

    def __getstate__(self) -> tuple:
        with self.lock:
            count = len(self.times)
            return (self._limit, self.dropped, *self.columns(0, count))

    def __setstate__(self, state: tuple) -> None:
        limit, dropped, ids, names, data, times = state
        self.__init__(limit, dropped)
        self.set_columns(dropped, ids, names, data, times)

    def __repr__(self) -> str:
        return f"History({len(self)} records, dropped={self.dropped}, limit={self._limit})"
