"""The content of a checkpoint: what one consistent cut of a flow writes, and the
thread that writes it.

The supervisor decides *when* a cut is taken (nothing in flight); this module says
*what* it holds: every routine's state, every unfinished job (JobState, slot data,
undelivered messages), and the jobs that finished since the previous cut, each
signed once as its own record (:class:`~routilux.checkpoint.store.FinishedJob`) and
never rewritten by later cuts.

A cut is pickled on the supervisor's thread while nothing moves (rule *consistent
cuts*); from then on it is bytes. Signing and the store write need no more of the
flow, so they can happen on a :class:`CutWriter` thread while dispatch goes on.
Cuts are written one at a time, in the order they were taken.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from routilux.checkpoint.format import encode
from routilux.checkpoint.store import FinishedJob
from routilux.exceptions import CheckpointError
from routilux.runtime.job_pickle import dumps
from routilux.runtime.wire import describe_unpicklable

logger = logging.getLogger("routilux.supervisor")


def job_summary(state: Any) -> dict[str, Any]:
    """The listing row of a job (``routilux jobs``), stored beside the checkpoint."""
    row = {"job_id": state.job_id, "status": state.status, "error": state.error}
    row["created_at"] = state.created_at.timestamp()
    if state.finished_at is not None:
        row["updated_at"] = state.finished_at.timestamp()  # retention counts from here
        row["finished_at"] = row["updated_at"]
    return row


def pickle_finished(state: Any, pickled: Any = None) -> bytes:
    """Pickle a finished job's JobState (``pickled``: the state as
    :func:`~routilux.runtime.job_pickle.snapshot` took it, if it was)."""
    try:
        return dumps(state if pickled is None else pickled)
    except Exception as exc:
        # What is pickled: the state without what __getstate__ leaves out (its
        # output handler, its wake-up event), so the culprit named is a real one.
        what = (
            describe_unpicklable(state.__getstate__(), "its state")
            if pickled is None
            else "its state"
        )
        raise CheckpointError(
            f"cannot checkpoint finished job {state.job_id}: {what} cannot be pickled "
            f"({type(exc).__name__}: {exc})"
        ) from None


def finished_record(flow_id: str, state: Any, key: bytes, pickled: Any = None) -> FinishedJob:
    """Sign a finished job's JobState as its own record."""
    blob = encode(flow_id, pickle_finished(state, pickled), key, [job_summary(state)])
    return FinishedJob(state.job_id, state.finished_at.timestamp(), blob)


def pickle_cut(flow_id: str, routines: dict[str, Any], jobs: list[dict[str, Any]]) -> bytes:
    """Pickle one cut: routine states and unfinished job records."""
    payload = {"flow_id": flow_id, "routines": routines, "jobs": jobs}
    try:
        return dumps(payload)
    except Exception as exc:
        raise CheckpointError(
            f"cannot checkpoint flow {flow_id!r}: "
            f"{describe_unpicklable(payload, 'its state')} cannot be pickled "
            f"({type(exc).__name__}: {exc})"
        ) from None


def encode_cut(
    flow_id: str, routines: dict[str, Any], jobs: list[dict[str, Any]], key: bytes, summary: list
) -> bytes:
    """Pickle and sign one cut: routine states and unfinished job records."""
    return encode(flow_id, pickle_cut(flow_id, routines, jobs), key, summary)


@dataclass
class Cut:
    """One cut, pickled and waiting to be signed and written."""

    flow_id: str
    payload: bytes  #: the pickled routines and unfinished jobs
    summary: list[dict[str, Any]]  #: listing rows of every job it covers
    finished_states: list[Any]  #: JobStates of the jobs that ended since the last cut
    finished: list[tuple[Any, bytes]]  #: (state, pickle) of those that could be pickled
    live_jobs: int
    tickets: list[Any]  #: woken once the cut is written (or failed)
    started_at: float
    error: BaseException | None = None  #: set when a finished job could not be pickled
    parts: dict[str, bytes] = field(default_factory=dict)  #: new parts, by digest
    refs: list[str] = field(default_factory=list)  #: every part the cut refers to
    intents_upto: int | None = None  #: the store's intent mark when it was taken
    store: Any = None  #: where it was written
    written: bool = False
    done: bool = False

    def write(self, store: Any, keep_finished: int | None) -> None:
        """Sign and store the cut (any thread); the error, if any, is kept."""
        try:
            key = store.key
            records = [
                FinishedJob(
                    st.job_id,
                    st.finished_at.timestamp(),
                    encode(self.flow_id, data, key, [job_summary(st)]),
                )
                for st, data in self.finished
            ]
            blob = encode(self.flow_id, self.payload, key, self.summary, self.refs)
            self.store = store
            extra: dict[str, Any] = {}  # only what the store takes (older subclasses)
            if self.parts:
                extra["parts"] = self.parts
            if self.intents_upto is not None:
                extra["intents_upto"] = self.intents_upto
            store.save(self.flow_id, blob, self.summary, records, keep_finished, **extra)
            self.written = True
        except Exception as exc:
            self.error = exc
            logger.error("checkpoint of flow %r failed: %s", self.flow_id, exc)

    def wake(self) -> None:
        """Wake whoever waits for this cut, written or not (as they would without a
        store): the jobs' outcome is durable if it was."""
        for state in self.finished_states:
            state.wake_waiters()
        for ticket in self.tickets:
            ticket.error = self.error
            ticket.set()


@dataclass
class CutWriter:
    """The thread that signs and writes cuts, in order (started on first use)."""

    name: str
    queue: deque = field(default_factory=deque)
    lock: threading.Condition = field(default_factory=threading.Condition)
    thread: threading.Thread | None = None
    closed: bool = False

    def submit(self, cut: Cut, store: Any, keep_finished: int | None, then: Any) -> None:
        """Write ``cut`` after those submitted before it; ``then(cut)`` afterwards."""
        with self.lock:
            self.queue.append((cut, store, keep_finished, then))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self.thread.start()
            self.lock.notify()

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.queue and not self.closed:
                    self.lock.wait()
                if not self.queue:
                    return
                cut, store, keep_finished, then = self.queue[0]
            cut.write(store, keep_finished)
            then(cut)  # told first: what waiters ask next sees the outcome
            cut.wake()
            with self.lock:
                self.queue.popleft()
                self.lock.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every submitted cut is written; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            while self.queue:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self.lock.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread."""
        self.flush(timeout)
        with self.lock:
            self.closed = True
            self.lock.notify_all()
