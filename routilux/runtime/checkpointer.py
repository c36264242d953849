"""The checkpointer: when a consistent cut of the flow is taken, and writing it.

Depends on the ledger only. A cut is requested (periodically, at a job's end, on
pause/cancel, by ``flow.checkpoint()`` or at shutdown); the supervisor then holds
dispatch and the cut is written once nothing is in flight. Rule *cuts never wait on
dispatch*: if a step in flight waits in emit() for room, the cut is skipped and
tried again soon. What a cut contains is :mod:`routilux.runtime.cut`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from routilux.exceptions import CheckpointError, CheckpointSkipped
from routilux.job_state import JobState
from routilux.runtime.bus import CHECKPOINT_WRITTEN
from routilux.runtime.cut import encode_cut, finished_record, job_summary
from routilux.runtime.dispatch import JobRun
from routilux.runtime.job_pickle import HistoryChunks, snapshot
from routilux.runtime.ledger import Ledger
from routilux.runtime.messages import TIMER, Delivery
from routilux.runtime.snapshot import delivery_record
from routilux.runtime.wire import describe_unpicklable

logger = logging.getLogger("routilux.supervisor")


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

    def job_ended(self, state: JobState) -> None:
        """A job finished: the next cut records it (at once if the flow went idle)."""
        if self.store is None:
            return
        self.finished_unsaved.append(state)
        if not self.ledger.jobs:
            self.request()  # idle: the outcome is durable before waiters wake
        else:
            self._job_end_soon()

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
        """Write one consistent cut (nothing is in flight)."""
        ledger = self.ledger
        ledger.holding = False
        error: BaseException | None = None
        started_at = time.monotonic()
        flow_id = ledger.flow_id
        try:
            ledger.sync_process_states()
            routines = {rid: entry.backend.record(entry) for rid, entry in ledger.entries.items()}
            live_jobs = ledger.live_jobs()
            jobs = [self.job_record(job) for job in live_jobs]
            key = self.store.key
            finished = []
            for st in self.finished_unsaved:
                try:
                    pickled = self._snapshot(st)
                    finished.append(finished_record(flow_id, st, key, pickled))
                except CheckpointError as exc:  # listed, not kept; other jobs unharmed
                    logger.error("%s", exc)
                    error = exc
            summary = [job_summary(job.state) for job in live_jobs]
            summary += [job_summary(st) for st in self.finished_unsaved]
            blob = encode_cut(flow_id, routines, jobs, key, summary)
            self.store.save(flow_id, blob, summary, finished, ledger.plan.keep_finished_jobs)
            self.finished_unsaved = []
            live = {job.job_id for job in live_jobs}
            for job_id in [j for j in self.histories if j not in live]:
                del self.histories[job_id]  # finished and written: never pickled again
            self.written += 1
            now = time.monotonic()
            ledger.bus.publish(
                CHECKPOINT_WRITTEN,
                flow_id,
                None,
                jobs=len(jobs),
                finished=len(finished),
                seconds=now - started_at,
            )
            self.last_at = now
        except Exception as exc:
            error = exc
            logger.error("checkpoint of flow %r failed: %s", flow_id, exc)
        self.last_error = error
        if self.parking:
            ledger.holding = True  # shutting down: nothing moves past the checkpoint
            self.parked = True
        self.release(error)

    def job_record(self, job: JobRun) -> dict[str, Any]:
        """One unfinished job as the cut holds it."""
        queued = list(self.ledger.dispatcher.queued(job)) + sorted(job.returned, key=dispatch_order)
        queued += [delivery for _, delivery in job.timers.values()]  # retries pending
        return {
            "state": self._snapshot(job.state),
            "slot_data": job.slot_data,
            "queue": [delivery_record(d) for d in queued],
            "timeout": job.timeout,
        }

    def _snapshot(self, state: JobState) -> Any:
        """``state`` pickled for this cut, its history chunks reused (job_pickle.py)."""
        history = self.histories.get(state.job_id)
        if history is None:
            history = self.histories[state.job_id] = HistoryChunks()
        try:
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
