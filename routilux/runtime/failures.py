"""Failures: what a failed step does to its job (the error strategies).

Depends on the ledger and the job book. Resolution: the routine's ErrorHandler,
else the flow's, else STOP. :meth:`Failures.failed_step` records the failure and
either ends the job, lets it go on, or answers with a retry delay: retry timers
belong to routing, which puts the message back in its queue when they fire.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from routilux.error_handler import ErrorStrategy
from routilux.runtime.dispatch import JobRun
from routilux.runtime.jobs import JobBook
from routilux.runtime.ledger import Ledger, RoutineEntry
from routilux.runtime.messages import Delivery, ErrorInfo


class Failures:
    """Applies error strategies to failed steps."""

    def __init__(self, ledger: Ledger, jobs: JobBook) -> None:
        self.ledger = ledger
        self.jobs = jobs

    def failed_step(
        self,
        job: JobRun,
        entry: RoutineEntry,
        delivery: Delivery,
        error: ErrorInfo,
        state: dict | None,
        started: float | None,
    ) -> float | None:
        """Record a failed step and apply the strategy; returns the delay after
        which the message is to be retried, or None (handled)."""
        rid = entry.routine_id
        if state is None:
            state = job.state.routine_record(rid, time.perf_counter() + self.ledger.wall_offset)
        handler = entry.routine.get_error_handler() or self.ledger.plan.error_handler
        strategy = handler.strategy if handler is not None else ErrorStrategy.STOP
        entry.figures.failed += 1
        state["failed"] += 1
        state["last_error"] = error.summary()
        job.state.record_failure(
            rid,
            delivery.slot,
            error.type_name,
            error.message,
            error.traceback,
            delivery.attempt,
            strategy.value,
        )
        where = f"routine {rid!r} slot {delivery.slot!r}"
        state["error"] = error.message
        if strategy is ErrorStrategy.RETRY:
            if (
                handler.is_retryable(error.exception, error.type_name)
                and delivery.attempt < handler.max_retries
            ):
                if delivery.attempt == 0 and started is not None:
                    delivery.first_started = started
                delivery.attempt += 1
                handler.retry_count += 1  # informational (0.10): decisions are per message
                state["retry_count"] = state.get("retry_count", 0) + 1
                state["status"] = "retrying"
                return handler.delay_for(delivery.attempt)
            if handler.on_exhausted != "continue":  # 0.10: fails whatever is_critical says
                self._record_failure(job, state, rid, delivery, error)
                self.jobs.fail(
                    job, f"{where} failed after {delivery.attempt} retries: {error.summary()}"
                )
                return None
            self._record_continued(job, state, rid, delivery, error)
        elif strategy is ErrorStrategy.STOP:
            self._record_failure(job, state, rid, delivery, error)
            self.jobs.fail(job, f"{where} failed: {error.summary()}")
            return None
        elif strategy is ErrorStrategy.SKIP:
            state["status"] = "skipped"
            state["skipped"] = state.get("skipped", 0) + 1
        else:
            self._record_continued(job, state, rid, delivery, error)
        self.ledger.dispatcher.mark(job, rid)
        self.jobs.settle(job)
        return None

    def _record_failure(
        self, job: JobRun, state: dict, rid: str, delivery: Delivery, error: ErrorInfo
    ) -> None:
        """A step that fails the job: 0.10's ``failed`` state keys and ``error`` record."""
        state["status"] = "failed"
        state["error_time"] = datetime.now().isoformat()
        if job.history:
            job.state.record_execution(rid, "error", _error_record(delivery, error))

    def _record_continued(
        self, job: JobRun, state: dict, rid: str, delivery: Delivery, error: ErrorInfo
    ) -> None:
        """A step whose error the job goes on after (CONTINUE)."""
        state["status"] = "error_continued"
        if job.history:
            job.state.record_execution(rid, "error_continued", _error_record(delivery, error))


def _error_record(delivery: Delivery, error: ErrorInfo) -> dict[str, Any]:
    """The data of an ``error``/``error_continued`` history record."""
    return {"slot": delivery.slot, "error": error.message, "error_type": error.type_name}
