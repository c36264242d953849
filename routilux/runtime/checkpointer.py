"""The checkpointer: when a consistent cut of the flow is taken, and writing it.

Depends on the ledger only. A cut is requested (periodically, at a job's end, on
pause/cancel, by ``flow.checkpoint()`` or at shutdown); the supervisor then holds
dispatch and the cut is pickled once nothing is in flight. Dispatch goes on at once;
a writer thread signs and stores the cut (the supervisor itself when the flow is
idle), one cut at a time. Rule *cuts never wait on dispatch*: if a step in flight
waits in emit() for room, the cut is skipped and tried again soon. What a cut
contains is :mod:`routilux.runtime.cut`; a job's history is pickled once, chunk by
chunk, and stored once as parts (:mod:`routilux.runtime.job_pickle`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from routilux.exceptions import CheckpointError, CheckpointSkipped
from routilux.job_state import JobState
from routilux.runtime.bus import CHECKPOINT_WRITTEN
from routilux.runtime.cut import Cut, CutWriter, job_summary, pickle_cut, pickle_finished
from routilux.runtime.dispatch import JobRun
from routilux.runtime.job_pickle import HistoryChunks, JobParts, snapshot, snapshot_parts
from routilux.runtime.ledger import Ledger
from routilux.runtime.messages import TIMER, Delivery
from routilux.runtime.queue_pickle import QueueChunks
from routilux.runtime.snapshot import delivery_record
from routilux.runtime.wire import describe_unpicklable

logger = logging.getLogger("routilux.supervisor")

# Up to this many history records, pickling a JobState whole beats pickling its
# history as chunks (measured: 2 records 13 vs 26 us, 64 records 35 vs 46 us).
SMALL_HISTORY = 64


class Ticket(threading.Event):
    """Handed to whoever waits for a checkpoint; ``error`` is set if it failed."""

    def __init__(self) -> None:
        super().__init__()
        self.error: BaseException | None = None


class Checkpointer:
    """Schedules and writes checkpoints of one flow (see the module docstring)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.tickets: list[Ticket] = []
        self.periodic: Any = None
        self.job_end_pending = False
        self.last_at = 0.0
        self.written = 0
        self.last_error: BaseException | None = None
        # Jobs that ended since the last cut: the next one writes each as its own
        # record (once; later cuts never rewrite it) and settles its intent.
        self.finished_unsaved: list[JobState] = []
        self.parking = False  # shutting down with a store: checkpoint, then hold
        # Per job id: its history pickled chunk by chunk, so a cut pickles only the
        # records appended since the previous one (see runtime/job_pickle.py).
        self.histories: dict[str, HistoryChunks] = {}
        # Per job id: its queued messages pickled chunk by chunk (queue_pickle.py).
        self.queues: dict[str, QueueChunks] = {}
        self.pending: list[Cut] = []  # taken, not yet written (oldest first)
        self.after_pending = False  # a cut was asked for while one was being written
        # History chunks go to the store once, as parts (if it keeps parts): these
        # are in it (referred to by its newest cut), and the store they are in.
        self.stored_parts: set[str] = set()
        self.parts_store: Any = None
        self.new_parts: dict[str, bytes] | None = None  # while a cut is taken
        self.skip_parts: set[str] = set()
        self.writer: CutWriter | None = None
        self.parked = False

    @property
    def store(self) -> Any:
        """The plan's store (None: the flow is not durable)."""
        return self.ledger.plan.store

    def _post_later(self, delay: float, callback: Any) -> Any:
        post = self.ledger.mailbox.post
        return self.ledger.timers.call_later(delay, lambda: post((TIMER, callback)))

    # -- when ------------------------------------------------------------------------
    def ensure_periodic(self) -> None:
        """Keep a periodic cut scheduled while the flow has jobs."""
        if self.store is None or self.periodic is not None:
            return
        self.periodic = self._post_later(self.ledger.plan.checkpoint_interval, self._periodic_due)

    def _periodic_due(self) -> None:
        self.periodic = None
        if self.ledger.jobs:
            self.request()
            self.ensure_periodic()

    def job_ended(self, state: JobState) -> bool:
        """A job finished: the next cut records it (at once if the flow went idle).

        Returns True if that cut is being written now: its waiters then wake once
        it is (the outcome is durable before they do).
        """
        if self.store is None:
            return False
        self.finished_unsaved.append(state)
        if self.ledger.jobs:
            self._job_end_soon()
            return False
        self.request()  # idle: the outcome is durable before waiters wake
        return any(st is state for cut in self.pending for st in cut.finished_states)

    def _job_end_soon(self) -> None:
        """Job ends while other jobs run share one cut, a few per interval at most."""
        if self.job_end_pending:
            return
        self.job_end_pending = True
        gap = self.ledger.plan.checkpoint_interval / 4
        delay = max(0.0, self.last_at + gap - time.monotonic())
        self._post_later(delay, self._job_end_due)

    def _job_end_due(self) -> None:
        self.job_end_pending = False
        self.request()

    def request(self, ticket: Ticket | None = None) -> None:
        """Hold dispatch; the cut is written once nothing is in flight."""
        if self.store is None:
            if ticket is not None:
                ticket.set()
            return
        if ticket is not None:
            self.tickets.append(ticket)
        if self.pending and self.ledger.jobs and not self.parking:
            # One cut at a time in the writer while jobs run: a slow store delays
            # the next cut instead of piling cuts up in memory.
            self.after_pending = True
            return
        self.ledger.holding = True
        self.maybe_write()

    def park(self) -> Ticket:
        """Cut every live job as it is and hold for good (the flow shuts down)."""
        ticket = Ticket()
        self.parking = True
        self.request(ticket)
        return ticket

    def maybe_write(self) -> None:
        """Write the requested cut if nothing is in flight (called after every message)."""
        ledger = self.ledger
        if not ledger.holding or self.parked:
            return
        if ledger.outstanding_total == 0:
            self.write()
        elif ledger.suspended_total:
            # Rule *cuts never wait on dispatch*: a step waits in emit() for room
            # that only dispatch can make (and deliveries batched behind it wait for
            # that step). Let the work move and cut later.
            ledger.holding = False
            self.release(CheckpointSkipped("checkpoint skipped: a step is blocked by backpressure"))
            if self.finished_unsaved:
                self._job_end_soon()

    def release(self, error: BaseException | None) -> None:
        """Wake everyone waiting for the cut (with its error, if it failed)."""
        tickets, self.tickets = self.tickets, []
        for ticket in tickets:
            ticket.error = error
            ticket.set()

    # -- what ------------------------------------------------------------------------
    def write(self) -> None:
        """Take one consistent cut (nothing is in flight) and have it written.

        The cut is pickled here, while nothing moves; dispatch goes on as soon as it
        is. Signing and the store write happen on the writer thread while jobs run,
        and here when the flow is idle (the writer would only add a hand-over).
        """
        ledger = self.ledger
        ledger.holding = False
        self.after_pending = False  # this cut is the one asked for
        tickets, self.tickets = self.tickets, []
        try:
            cut = self._capture(tickets)
        except Exception as exc:
            logger.error("checkpoint of flow %r failed: %s", ledger.flow_id, exc)
            self.last_error = exc
            self._hold_if_parking()
            for ticket in tickets:
                ticket.error = exc
                ticket.set()
            return
        self._hold_if_parking()
        self.pending.append(cut)
        keep = ledger.plan.keep_finished_jobs
        if ledger.jobs or len(self.pending) > 1:
            if self.writer is None:
                self.writer = CutWriter(f"routilux-checkpoint-{ledger.flow_id}")
            post = ledger.mailbox.post
            self.writer.submit(cut, self.store, keep, lambda c: post((TIMER, self._finish, c)))
        else:
            cut.write(self.store, keep)
            self._finish(cut)
            cut.wake()

    def _hold_if_parking(self) -> None:
        if self.parking:
            self.ledger.holding = True  # shutting down: nothing moves past the checkpoint
            self.parked = True

    def _capture(self, tickets: list[Ticket]) -> Cut:
        """Pickle the flow as it is now: routine states, unfinished jobs, and the jobs
        that finished since the last cut."""
        ledger = self.ledger
        flow_id = ledger.flow_id
        started_at = time.monotonic()
        ledger.sync_process_states()
        routines = {rid: entry.backend.record(entry) for rid, entry in ledger.entries.items()}
        live_jobs = ledger.live_jobs()
        # Every intent of a job this cut names was written before now (execute
        # writes it before the job reaches the supervisor).
        mark = self.store.intent_mark() if hasattr(self.store, "intent_mark") else None
        if self.parts_store is not self.store:  # a new store has none of our parts
            self.parts_store, self.stored_parts = self.store, set()
        parts = {} if getattr(self.store, "keeps_parts", False) else None
        self.new_parts = parts
        # Parts the store will hold when this cut is saved: those the cut before it
        # names (if that one fails, so does this one, and the next sends them all).
        self.skip_parts = set(self.pending[-1].refs) if self.pending else self.stored_parts
        try:
            jobs = [self.job_record(job) for job in live_jobs]
        finally:
            self.new_parts = None
        live_ids = {job.job_id for job in live_jobs}
        for job_id in [j for j in self.queues if j not in live_ids]:
            del self.queues[job_id]  # ended: its queued messages are gone
        refs = sorted(
            {ref[2] for r in jobs if isinstance(r["state"], JobParts) for ref in r["state"].refs}
        )
        payload = pickle_cut(flow_id, routines, jobs)
        error: BaseException | None = None
        finished = []
        for st in self.finished_unsaved:
            try:
                finished.append((st, pickle_finished(st, self._finished_snapshot(st))))
            except CheckpointError as exc:  # listed, not kept; other jobs unharmed
                logger.error("%s", exc)
                error = exc
        summary = [job_summary(job.state) for job in live_jobs]
        summary += [job_summary(st) for st in self.finished_unsaved]
        now = time.time()
        for row in summary:
            # As of this cut, not of its (later) write: a job that ends meanwhile
            # must not look as if it were still running after its end.
            row.setdefault("updated_at", now)
        states, self.finished_unsaved = self.finished_unsaved, []
        return Cut(
            flow_id,
            payload,
            summary,
            states,
            finished,
            len(jobs),
            tickets,
            started_at,
            error,
            parts=parts or {},
            refs=refs,
            intents_upto=mark,
        )

    def _finish(self, cut: Cut) -> None:
        """A cut was written (or failed): the records that follow from it."""
        if cut.done:
            return
        cut.done = True
        self.pending.remove(cut)
        self.last_error = cut.error
        if cut.written:
            self._written(cut)
        else:
            self.stored_parts = set()  # who knows what the store holds now
            # Retried by the next cut; until then they are listed as running.
            self.finished_unsaved[:0] = cut.finished_states
        if self.after_pending and not self.pending:
            self.request()  # the cut asked for meanwhile

    def _written(self, cut: Cut) -> None:
        self.written += 1
        if cut.store is self.parts_store:
            self.stored_parts = set(cut.refs)  # in the store while its newest cut needs them
        keep = set(self.ledger.jobs) | {st.job_id for st in self.finished_unsaved}
        for other in self.pending:
            keep.update(st.job_id for st in other.finished_states)
        for job_id in [j for j in self.histories if j not in keep]:
            del self.histories[job_id]  # finished and written once: never pickled again
        now = time.monotonic()
        self.ledger.bus.publish(
            CHECKPOINT_WRITTEN,
            cut.flow_id,
            None,
            jobs=cut.live_jobs,
            finished=len(cut.finished),
            seconds=now - cut.started_at,
        )
        self.last_at = now

    def close(self) -> None:
        """Write the cuts still queued (the flow stops)."""
        self.after_pending = False  # no new cut now
        if self.writer is not None:
            self.writer.close()
        for cut in list(self.pending):
            self._finish(cut)  # its message to the supervisor will not be read now
            cut.wake()

    def job_record(self, job: JobRun) -> dict[str, Any]:
        """One unfinished job as the cut holds it."""
        chunks = self.queues.get(job.job_id)
        if chunks is None:
            chunks = self.queues[job.job_id] = QueueChunks()
        # The job's queues (one per routine, or the one sequential queue), each in
        # order; queued messages are pickled once, in chunks (queue_pickle.py).
        queue = chunks.records([("", job.queue), *job.queues.items()], self.ledger.flow_id)
        handed_back = sorted(job.returned, key=dispatch_order)
        handed_back += [delivery for _, delivery in job.timers.values()]  # retries pending
        queue += [delivery_record(d) for d in handed_back]
        return {
            "state": self._snapshot(job.state, self.new_parts),
            "slot_data": job.slot_data,
            "queue": queue,
            "timeout": job.timeout,
        }

    def _finished_snapshot(self, state: JobState) -> Any:
        """What a finished job's record pickles: the JobState itself when its history
        is short and no cut pickled any of it (one pickling instead of four: most of
        a tiny job's checkpoint), else its snapshot with the chunks cut before."""
        if state.job_id not in self.histories and len(state._history_columns) <= SMALL_HISTORY:
            return None
        return self._snapshot(state)

    def _snapshot(self, state: JobState, parts: dict[str, bytes] | None = None) -> Any:
        """``state`` pickled for this cut, its history chunks reused (job_pickle.py);
        with ``parts``, the chunks are stored parts (new ones are added to it)."""
        history = self.histories.get(state.job_id)
        if history is None:
            history = self.histories[state.job_id] = HistoryChunks()
        try:
            if parts is not None:
                return snapshot_parts(state, history, parts, self.skip_parts)
            return snapshot(state, history)
        except Exception as exc:
            self.histories.pop(state.job_id, None)
            what = describe_unpicklable(state, f"job {state.job_id}")
            raise CheckpointError(
                f"cannot checkpoint flow {self.ledger.flow_id!r}: {what} cannot be pickled "
                f"({type(exc).__name__}: {exc})"
            ) from None


def dispatch_order(delivery: Delivery) -> int:
    """Sort key: the order deliveries were handed to actors."""
    return delivery.seq
