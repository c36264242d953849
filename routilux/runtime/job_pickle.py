"""Pickling for checkpoints: fast, and a JobState's history pickled once.

A job's execution history is by far the largest part of its state (up to
``history_limit`` records, 10,000 by default) and it only grows at the end and
shrinks at the front. A cut therefore pickles each record once: the records
appended since the previous cut become one new *chunk* of pickled bytes, and the
chunks of earlier cuts are reused as they are. The rest of the JobState (status,
routine states, shared data, ...) is small and pickled anew at every cut; the
entry parameters, which never change, are pickled once.

A finished job's record holds its chunks (a :class:`JobSnapshot`, which unpickles
into a plain :class:`~routilux.job_state.JobState`). A cut of a store that keeps
*parts* (both built-in stores) holds a :class:`JobParts` instead: the chunks are
named by their SHA-256 and written to the store once, as parts, and later cuts
refer to them without writing them again. The cut's signed header lists the parts
it needs; the store keeps them while it keeps the cut. :func:`resolve_jobs` puts
the JobStates back together when the cut is loaded, checking each part against its
digest before unpickling it.

A chunk is the pickle of one tuple of four columns, the records of positions
``start`` to ``start + count - 1`` (kept beside it as ``(start, count, chunk)``):
``(routine_ids: list[str], event_names: list[str], data: list[dict],
times: array('d'))``, times in ``time.time()`` seconds. Chunks cut by earlier
versions hold the times as a list of floats (any value ``ExecutionRecord``
accepts as a timestamp); they load too. A :class:`JobSnapshot` pickles as
``restore_job_state(head, entry, first, [(start, count, chunk), ...])``: ``head``
is the pickled ``(JobState fields without the history, tracker fields)``,
``first`` the position of the job's oldest kept record.
"""

from __future__ import annotations

import hashlib
import pickle
from array import array
from typing import Any

from cloudpickle import cloudpickle as _cloudpickle

from routilux.exceptions import CheckpointError
from routilux.history import as_times
from routilux.job_state import JobState
from routilux.runtime import wire
from routilux.runtime.wire import loads

_MAIN = b"__main__"


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` for a checkpoint: as cloudpickle would, several times faster.

    The C pickler does it when it can: cloudpickle calls back into Python for
    nearly every object. Both pickle importable classes and functions by
    reference; only cloudpickle can pickle what lives in ``__main__`` (by value),
    lambdas, local classes and modules registered to go by value. So anything the
    C pickler refuses, any pickle that names ``__main__``, and every pickle while
    some module is registered by value go through cloudpickle.
    """
    if not _cloudpickle._PICKLE_BY_VALUE_MODULES:
        try:
            data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            pass
        else:
            if _MAIN not in data:
                return data
    return wire.dumps(obj)


# A job's chunks are merged into one once there are more than this many.
MAX_CHUNKS = 16


class HistoryChunks:
    """The pickled history of one job, chunk by chunk (see the module docstring).

    A record is known by its absolute position: ``history_dropped`` plus its index
    in the columns, which trimming the front of the history does not change. The
    chunks continue the history only while its generation is the one they were
    cut from (a replaced or renumbered history has a new one).
    """

    __slots__ = ("chunks", "end", "generation", "entry", "entry_bytes")

    def __init__(self) -> None:
        # (first position, count, pickle, SHA-256 of the pickle or "" until needed)
        self.chunks: list[tuple[int, int, bytes, str]] = []
        self.end = 0  # position after the last pickled record
        self.generation = 0  # of the history the chunks were cut from (0: none yet)
        self.entry: Any = None
        self.entry_bytes = b""

    def update(self, state: JobState) -> tuple[int, list[tuple[int, int, bytes, str]]]:
        """Pickle what was appended since the last call; ``(first position, chunks)``."""
        history = state._history_columns
        with history.lock:  # slices only: the pickling is done outside
            first = history.dropped
            end = first + len(history)
            if history.generation != self.generation or end < self.end:
                self.chunks, self.end, self.generation = [], first, history.generation
            chunks = [c for c in self.chunks if c[0] + c[1] > first]  # not trimmed away
            start = max(self.end, first)
            if end > start and len(chunks) >= MAX_CHUNKS:
                # Merged into one, so a job that lives through thousands of cuts
                # does not carry thousands of small chunks.
                chunks, start = [], first
            columns = history.columns(start - first, end - first) if end > start else None
        if columns is not None:
            # Slices of the columns (C-level copies; the times stay an array) pickle
            # with no Python work per record.
            chunks.append((start, end - start, dumps(columns), ""))  # digest: as a part
        self.chunks, self.end = chunks, end
        return first, chunks

    def entry_pickle(self, entry: Any) -> bytes:
        """The job's entry (routine, slot, params), pickled once."""
        if entry is not self.entry or not self.entry_bytes:
            self.entry, self.entry_bytes = entry, dumps(entry)
        return self.entry_bytes


class JobSnapshot:
    """A JobState as a cut holds it; it unpickles into the JobState itself."""

    __slots__ = ("head", "entry", "first", "chunks")

    def __init__(self, head: bytes, entry: bytes, first: int, chunks: list) -> None:
        self.head = head
        self.entry = entry
        self.first = first
        self.chunks = chunks

    def __reduce__(self) -> tuple:
        chunks = [(start, count, data) for start, count, data, _ in self.chunks]
        return restore_job_state, (self.head, self.entry, self.first, chunks)


class JobParts:
    """A JobState in a cut whose history chunks are stored parts, named by digest."""

    __slots__ = ("job_id", "head", "entry", "first", "refs")

    def __init__(self, job_id: str, head: bytes, entry: bytes, first: int, refs: list) -> None:
        self.job_id = job_id
        self.head = head
        self.entry = entry
        self.first = first
        self.refs = refs  #: (first position, count, digest) per chunk

    def __reduce__(self) -> tuple:
        return JobParts, (self.job_id, self.head, self.entry, self.first, self.refs)


def snapshot(state: JobState, history: HistoryChunks) -> JobSnapshot:
    """Pickle ``state`` with its history chunks (reused from earlier cuts)."""
    first, chunks = history.update(state)
    return JobSnapshot(*_head(state, history), first, list(chunks))


def snapshot_parts(
    state: JobState, history: HistoryChunks, parts: dict[str, bytes], stored: set[str]
) -> JobParts:
    """Pickle ``state`` with its history as parts; adds to ``parts`` the chunks
    that are not in ``stored`` (the parts the store already has)."""
    first, chunks = history.update(state)
    for index, (start, count, data, digest) in enumerate(chunks):
        if not digest:  # the cache's own list: computed once per chunk
            digest = hashlib.sha256(data).hexdigest()
            chunks[index] = (start, count, data, digest)
        if digest not in stored:
            parts[digest] = data
    refs = [(start, count, digest) for start, count, _, digest in chunks]
    return JobParts(state.job_id, *_head(state, history), first, refs)


def _head(state: JobState, history: HistoryChunks) -> tuple[bytes, bytes]:
    """The JobState without its history, and its entry (pickled once per job)."""
    fields = state.__getstate__(with_history=False)
    entry = fields.pop("entry", None)
    tracker = fields.pop("execution_tracker", None)
    tracker_fields = None
    if getattr(tracker, "job_state", None) is state:
        # The tracker points back at the job: pickled with it, that would pickle the
        # whole JobState (history and all) a second time.
        tracker_fields = (type(tracker), {**tracker.__getstate__(), "job_state": None})
    elif tracker is not None:
        fields["execution_tracker"] = tracker
    return dumps((fields, tracker_fields)), history.entry_pickle(entry)


def resolve_jobs(records: list[dict[str, Any]], store: Any, flow_id: str, where: str) -> None:
    """Turn the :class:`JobParts` of loaded cut records into JobStates, in place.

    Every part is checked against its digest (named in the verified cut) before it
    is unpickled; a missing or altered part raises CheckpointError.
    """
    jobs = [r["state"] for r in records if isinstance(r["state"], JobParts)]
    wanted = {digest for job in jobs for _, _, digest in job.refs}
    if not wanted:
        return
    found = store.load_parts(flow_id, sorted(wanted))
    for digest in wanted:
        data = found.get(digest)
        if data is None:
            raise CheckpointError(f"{where}: stored part {digest[:16]} of a job history is missing")
        if hashlib.sha256(data).hexdigest() != digest:
            raise CheckpointError(
                f"{where}: stored part {digest[:16]} failed its integrity check "
                "(corrupted or tampered with); it was not loaded"
            )
    for record in records:
        job = record["state"]
        if isinstance(job, JobParts):
            chunks = [(start, count, found[digest]) for start, count, digest in job.refs]
            record["state"] = restore_job_state(job.head, job.entry, job.first, chunks)


def restore_job_state(head: bytes, entry: bytes, first: int, chunks: list) -> JobState:
    """The JobState a :class:`JobSnapshot` was taken of (called by ``pickle.loads``)."""
    fields, tracker_fields = loads(head)
    state = JobState.__new__(JobState)
    state.__setstate__({**fields, "entry": loads(entry)})
    ids: list = []
    names: list = []
    data: list = []
    times = array("d")
    for start, _count, blob in chunks:
        columns = loads(blob)  # (routine ids, event names, data, times)
        skip = max(first - start, 0)  # records trimmed away since the chunk was cut
        if skip:
            columns = [column[skip:] for column in columns]
        ids += columns[0]
        names += columns[1]
        data += columns[2]
        times += as_times(columns[3])  # a list of floats in older chunks
    state._history_columns.set_columns(first, ids, names, data, times)
    if tracker_fields is not None:
        cls, tracker_state = tracker_fields
        tracker = cls.__new__(cls)
        tracker.__setstate__(tracker_state)
        tracker.job_state = state
        state.execution_tracker = tracker
    return state
