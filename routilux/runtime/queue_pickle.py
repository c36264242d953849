"""Queued messages in checkpoints: each one pickled once while it waits.

A cut holds every message an unfinished job has queued (rule *consistent cuts*).
When work piles up behind a slow routine, most of a cut's queued messages were
queued, and pickled, at the cut before. So a job's queued deliveries are pickled
in *chunks*: at each cut,
the deliveries of one routine queue that no earlier chunk holds become one new
chunk, and the deliveries still queued from an earlier chunk are written as a
:class:`QueuedRun` — that chunk's bytes and the range of its records still queued.
A chunk pickles the fields of its deliveries as one list per field.

Reuse is safe because a delivery that has never been dispatched does not change
while it waits: dispatch gives it a ``seq`` (>= 1), and everything that changes a
delivery (the slot's merge, a retry's attempt count, its emit count) happens after
that. A delivery handed back after dispatch (paused, redelivered, retried) has a
``seq`` and is pickled afresh at every cut. A chunk is reused only for a run of
the very same delivery objects, in the same order, none of them dispatched since;
anything else is pickled afresh too. A chunk of which less than half is still
queued is not reused (its queued part is pickled afresh), so a cut never carries
more than twice the bytes its queued messages need.

In a stored cut, a job record's ``queue`` is a list whose items are delivery
records (tuples, :func:`~routilux.runtime.snapshot.delivery_record`) or
:class:`QueuedRun` objects; :func:`expand_queue` turns it back into records.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from routilux.exceptions import CheckpointError
from routilux.runtime.job_pickle import dumps
from routilux.runtime.snapshot import delivery_record
from routilux.runtime.wire import describe_unpicklable, loads

_SEQ = attrgetter("seq")


class QueuedRun:
    """Records ``start`` to ``stop`` of a pickled chunk of delivery records."""

    __slots__ = ("data", "start", "stop")

    def __init__(self, data: bytes, start: int, stop: int) -> None:
        self.data = data  #: the chunk: a pickled list of delivery records
        self.start = start  #: index of the first record still queued
        self.stop = stop  #: index after the last one

    def __reduce__(self) -> tuple:
        return QueuedRun, (self.data, self.start, self.stop)


class _Chunk:
    __slots__ = ("items", "data")

    def __init__(self, items: list[Any], data: bytes) -> None:
        self.items = items  # the delivery objects, in order (never changed)
        self.data = data


class QueueChunks:
    """One job's queued deliveries, pickled chunk by chunk across cuts."""

    __slots__ = ("chunks",)

    def __init__(self) -> None:
        # Per queue (routine id; "" for the sequential queue): the chunks the last
        # cut wrote for it, in queue order.
        self.chunks: dict[str, list[_Chunk]] = {}

    def records(self, queues: Iterable[tuple[str, Iterable[Any]]], flow_id: str) -> list[Any]:
        """The ``queue`` of a job's cut record for these (name, queue) pairs."""
        out: list[Any] = []
        chunks: dict[str, list[_Chunk]] = {}
        for name, queue in queues:
            if queue:
                chunks[name] = self._queue(list(queue), self.chunks.get(name, ()), out, flow_id)
        self.chunks = chunks  # the chunks no queue refers to any more are let go
        return out

    def _queue(self, items: list[Any], previous, out: list[Any], flow_id: str) -> list[_Chunk]:
        """Append ``items`` to ``out`` as runs of ``previous`` chunks and new chunks;
        returns the chunks used, in order.

        A FIFO queue holds, in order: deliveries handed back after dispatch (they
        have a ``seq``), what is left of the previous cut's chunks, then what was
        queued since. Anything that does not fit that shape is pickled afresh.
        """
        used: list[_Chunk] = []
        n = len(items)
        i = 0
        while i < n and items[i].seq:
            i += 1  # handed back after dispatch: pickled as it is now
        fresh_from = 0
        for chunk in previous:
            if i >= n or items[i].seq:
                break  # the rest is pickled afresh
            try:
                k = chunk.items.index(items[i])  # identity, in C
            except ValueError:
                continue  # all of it dispatched since
            run = _same_run(items, i, chunk.items, k)
            if 2 * run < len(chunk.items):  # mostly consumed: pickle its rest afresh
                i += run
                continue
            if fresh_from < i:
                used.append(self._new_chunk(items[fresh_from:i], out, flow_id))
            out.append(QueuedRun(chunk.data, k, k + run))
            used.append(chunk)
            i += run
            fresh_from = i
        if fresh_from < n:
            used.append(self._new_chunk(items[fresh_from:], out, flow_id))
        return used

    def _new_chunk(self, items: list[Any], out: list[Any], flow_id: str) -> _Chunk:
        try:
            data = dumps(_columns(items))
        except Exception as exc:
            records = [delivery_record(d) for d in items]
            raise CheckpointError(
                f"cannot checkpoint flow {flow_id!r}: "
                f"{describe_unpicklable(records, 'a queued message')} cannot be pickled "
                f"({type(exc).__name__}: {exc})"
            ) from None
        out.append(QueuedRun(data, 0, len(items)))
        return _Chunk(items, data)


def _columns(items: list[Any]) -> tuple[list, ...]:
    """The fields of :func:`~routilux.runtime.snapshot.delivery_record`, one list
    each: pickles in about three quarters of the time of a list of records (no
    memo of thousands of tuples; tests/benchmarks/pickling.py)."""
    return (
        [d.id for d in items],
        [d.routine_id for d in items],
        [d.slot for d in items],
        [d.data for d in items],
        [d.call_data for d in items],
        [d.attempt for d in items],
        [d.emitted for d in items],
    )


def _same_run(items: list[Any], i: int, chunk_items: list[Any], k: int) -> int:
    """How many of ``items[i:]`` are ``chunk_items[k:]``, one for one and never
    dispatched (``items[i]`` is ``chunk_items[k]`` and undispatched)."""
    m = min(len(chunk_items) - k, len(items) - i)
    mine = items[i : i + m]
    # The common case in C: the whole rest of the chunk is still queued, untouched
    # (list equality compares Delivery objects by identity).
    if mine == chunk_items[k : k + m] and not any(map(_SEQ, mine)):
        return m
    run = 1
    while run < m and mine[run] is chunk_items[k + run] and not mine[run].seq:
        run += 1
    return run


def expand_queue(queue: list[Any]) -> list[tuple]:
    """The delivery records of a cut record's ``queue`` (see the module docstring)."""
    records: list[tuple] = []
    loaded: dict[int, list[tuple]] = {}
    for item in queue:
        if isinstance(item, QueuedRun):
            chunk = loaded.get(id(item.data))
            if chunk is None:
                chunk = loaded[id(item.data)] = list(zip(*loads(item.data), strict=True))
            records.extend(chunk[item.start : item.stop])
        else:
            records.append(item)
    return records
