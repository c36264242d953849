"""Job bookkeeping: a job settles, completes, fails, is cancelled or paused.

Depends on the ledger and the checkpointer. Rule *completion*: a job is complete
when its queue is empty, no step of it is in flight and no retry of it is pending;
:meth:`JobBook.settle` is the one place that decides it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from routilux.exceptions import JobTimeoutError
from routilux.job_state import JobState
from routilux.output_handler import deliver_output
from routilux.runtime.bus import JOB_FINISHED, JOB_PAUSED, JOB_SUBMITTED
from routilux.runtime.checkpointer import Checkpointer, dispatch_order
from routilux.runtime.dispatch import JobRun
from routilux.runtime.ledger import Ledger
from routilux.runtime.messages import TIMER, Delivery

logger = logging.getLogger("routilux.supervisor")

_MAX_DROPPED_DESCRIBED = 100


class JobBook:
    """Starts, settles and ends the jobs in the ledger."""

    def __init__(self, ledger: Ledger, checkpointer: Checkpointer) -> None:
        self.ledger = ledger
        self.checkpointer = checkpointer

    def open(self, state: JobState, timeout: float | None, paused: bool = False) -> JobRun:
        """Register a job (new, or adopted from a checkpoint) and arm its timeout."""
        ledger = self.ledger
        serial = ledger.plan.execution_strategy != "concurrent"
        job = JobRun(state, ledger.plan.record_history, serial)
        job.timeout = timeout
        ledger.jobs[job.job_id] = job
        if paused:
            job.running = False
        if timeout is not None and not paused:
            post = ledger.mailbox.post
            job.timeout_handle = ledger.timers.call_later(
                timeout, lambda: post((TIMER, self.on_timeout, job, timeout))
            )
        self.checkpointer.ensure_periodic()
        return job

    def submitted(self, job: JobRun, routine_id: str, slot: str) -> None:
        """Tell the bus a job was submitted."""
        self.ledger.bus.publish(
            JOB_SUBMITTED, self.ledger.flow_id, job.job_id, routine=routine_id, slot=slot
        )

    def settle(self, job: JobRun) -> None:
        """Complete or finish pausing ``job`` if nothing of it is left in flight.

        A pausing job is paused once every step of it still in flight is waiting in
        ``emit()`` for queue room (those continue after ``resume``).
        """
        if not job.live:
            return
        if job.pausing:
            if job.in_flight == job.suspended:
                job.pausing = False
                if job.in_flight == 0 and job.returned:
                    self.requeue_returned(job)
                pending = list(self.ledger.dispatcher.queued(job)) + list(job.returned)
                pending += [delivery for _, delivery in job.timers.values()]
                job.state.pending_tasks = [d.describe() for d in pending]
                job.state.set_status("paused")
                reason = job.state.pause_points[-1]["reason"] if job.state.pause_points else ""
                self.ledger.bus.publish(JOB_PAUSED, self.ledger.flow_id, job.job_id, reason=reason)
        elif not job.in_flight and job.running and job.queued == 0 and not job.timers:
            self.finish(job, "completed")

    def requeue_returned(self, job: JobRun) -> None:
        """Put deliveries handed back unrun at the front, in their dispatch order."""
        returned = sorted(job.returned, key=dispatch_order)
        job.returned = []
        for delivery in returned:
            self.ledger.entries[delivery.routine_id].queued += 1
        job.queued += len(returned)
        self.ledger.dispatcher.push_front(job, returned)

    def fail(self, job: JobRun, message: str) -> None:
        """End ``job`` as failed; its queued messages are dropped (and described)."""
        if job.state.failures:
            job.state.failures[-1].setdefault("dropped", [])
        self.count_dropped(job, self.drop_queued(job))
        self.finish(job, "failed", message)

    def cancel(self, job: JobRun, reason: str) -> None:
        """End ``job`` as cancelled."""
        self.count_dropped(job, self.drop_queued(job))
        if reason:
            job.state.record_cancellation(reason)
        self.finish(job, "cancelled", f"cancelled: {reason}" if reason else "cancelled")

    def count_dropped(self, job: JobRun, dropped: list[Delivery]) -> None:
        """Record messages of a failed or cancelled job that will never run."""
        job.state.dropped_messages += len(dropped)
        failures = job.state.failures
        if job.state.status != "cancelled" and failures and "dropped" in failures[-1]:
            described = failures[-1]["dropped"]
            room = _MAX_DROPPED_DESCRIBED - len(described)
            described.extend(d.describe() for d in dropped[: max(room, 0)])

    def drop_queued(self, job: JobRun) -> list[Delivery]:
        """Take every queued delivery and pending retry of ``job`` off the books."""
        ledger = self.ledger
        dropped = ledger.dispatcher.drain(job)
        for delivery in dropped:
            entry = ledger.entries.get(delivery.routine_id)
            if entry is not None:
                entry.queued -= 1
                if entry.queued < ledger.gate.limit:
                    ledger.gate.mark_room(delivery.routine_id)
        job.queued = 0
        for handle, _ in job.timers.values():
            handle.cancel()
        job.timers.clear()
        return dropped

    def finish(self, job: JobRun, status: str, error: str | None = None) -> None:
        """The one way a job ends: records, durability, then waiters and the bus."""
        ledger = self.ledger
        ledger.sync_process_states()
        job.live = False
        job.running = False
        job.pausing = False
        if job.timeout_handle is not None:
            job.timeout_handle.cancel()
        if status != "completed":
            self.drop_queued(job)
        ledger.jobs.pop(job.job_id, None)
        if error is not None and "\n" in error:
            lines = error.strip().splitlines()
            error = lines[0] + (" [...]" if len(lines) > 1 else "")
        job.state.set_status(status, error, notify=False)
        if not self.checkpointer.job_ended(job.state):  # else: woken once it is written
            job.state.set_status(status, error)
        ledger.bus.publish(
            JOB_FINISHED, ledger.flow_id, job.job_id, status=status, error=job.state.error
        )

    def on_timeout(self, job: JobRun, timeout: float) -> None:
        """A job ran past its timeout (timer message)."""
        if not job.live:
            return
        message = f"job {job.job_id} exceeded its timeout of {timeout:g} s"
        job.state.record_failure(
            job.state.current_routine_id, None, JobTimeoutError.__name__, message
        )
        self.fail(job, f"JobTimeoutError: {message}")

    def find(self, state: Any) -> JobRun | None:
        """The live record of a JobState, if this supervisor runs it."""
        return self.ledger.jobs.get(state.job_id)

    def on_output(self, delivery: Delivery, rid: str, output_type: str, data: dict) -> None:
        """OUTPUT: a step's ``send_output``, to the job's log and output handler."""
        state = delivery.job.state
        now = datetime.now()
        state.record_output(rid, output_type, data, now)
        handler = state.output_handler
        if handler is not None:
            try:
                deliver_output(handler, state.job_id, rid, output_type, data, now)
            except Exception:
                logger.exception("output handler %r failed for job %s", handler, state.job_id)

    def on_defer(self, delivery: Delivery, rid: str, event: str, data: dict) -> None:
        """DEFER: a step's ``emit_deferred_event``, sent when the job is resumed."""
        delivery.job.state.record_deferred(rid, event, data)
