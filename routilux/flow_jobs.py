"""Flow, part two: running jobs (execute, pause, resume, cancel, wait, metrics, shutdown)."""

from __future__ import annotations

import atexit
import logging
import threading
import time
import warnings
import weakref
from typing import TYPE_CHECKING, Any

import pykka

from routilux._context import in_handler
from routilux._validate import (
    check_number,
    check_str,
)
from routilux.exceptions import CheckpointError, ConfigurationError, FlowStateError
from routilux.execution_tracker import ExecutionTracker
from routilux.job_state import JobState
from routilux.runtime import commands

if TYPE_CHECKING:
    from routilux.flow import Flow

logger = logging.getLogger("routilux.flow")


class JobControlMixin:
    """The job-control half of :class:`~routilux.flow.Flow` (one flow object, two modules)."""

    def execute(
        self,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None = None,
        execution_strategy: str | None = None,
        timeout: float | None = None,
        *,
        entry_slot: str = "trigger",
        wait: bool = True,
        job_id: str | None = None,
    ) -> JobState:
        """Start a job by delivering ``entry_params`` to the entry routine's slot.

        With ``wait=True`` (default) returns once the job is completed, failed,
        cancelled or paused; with ``wait=False`` returns at once. ``timeout`` (or the
        flow's ``execution_timeout``) fails the job when it runs longer. ``job_id``
        names the job (default: a new UUID); a name already running is refused.
        ``execution_strategy`` (0.10's per-call override) is accepted and ignored
        with a DeprecationWarning: use :meth:`set_execution_strategy`.
        """
        if execution_strategy is not None:
            warnings.warn(
                "execute(..., execution_strategy=...) is ignored; call "
                "flow.set_execution_strategy() between jobs instead",
                DeprecationWarning,
                stacklevel=2,
            )
        check_str("entry_routine_id", entry_routine_id)
        check_str("entry_slot", entry_slot)
        check_number("timeout", timeout, optional=True)
        routine = self._routine(entry_routine_id, "entry")
        if routine.get_slot(entry_slot) is None:
            raise ConfigurationError(
                f"entry routine {entry_routine_id!r} has no slot {entry_slot!r} (slots: "
                f"{sorted(routine._slots)}); 0.10 started such a job and failed it inside "
                "execute without running anything, this release refuses it: define a "
                f"{entry_slot!r} slot or pass entry_slot= naming one of its slots"
            )
        if entry_params is not None and not isinstance(entry_params, dict):
            raise ConfigurationError(
                f"entry_params must be a dict, got {type(entry_params).__name__}"
            )
        if timeout is None:
            timeout = self.execution_timeout
        if job_id is not None and (not isinstance(job_id, str) or not job_id):
            raise ConfigurationError(f"job_id must be a non-empty string, got {job_id!r}")
        if job_id is None:
            supervisor = self._ensure_supervisor()
            state = self._start_job(
                supervisor, entry_routine_id, entry_params, entry_slot, timeout, None
            )
        else:
            with self._lock:  # check and start atomically for named jobs
                supervisor = self._ensure_supervisor()
                if job_id in supervisor.ask(commands.GetJobIds()):
                    raise FlowStateError(f"a job named {job_id!r} is already running in this flow")
                state = self._start_job(
                    supervisor, entry_routine_id, entry_params, entry_slot, timeout, job_id
                )
        if wait:
            state.wait()
        return state

    def _start_job(
        self,
        supervisor: Any,
        entry_routine_id: str,
        entry_params: dict[str, Any] | None,
        entry_slot: str,
        timeout: float | None,
        job_id: str | None,
    ) -> JobState:
        state = JobState(self.flow_id, job_id)
        state.output_handler = self.output_handler
        state.execution_tracker = ExecutionTracker(state, flow=self)
        state.set_status("running")
        self.job_state = state
        self.execution_tracker = state.execution_tracker
        params = dict(entry_params or {})
        state.entry = {"routine": entry_routine_id, "slot": entry_slot, "params": dict(params)}
        if self.checkpoint_store is not None:
            self._claim_store()
            self._write_intent(state, entry_routine_id, entry_slot, params, timeout)
        supervisor.tell(commands.StartJob(state, entry_routine_id, entry_slot, params, timeout))
        return state

    def pause(
        self,
        job_state: JobState,
        reason: str = "",
        *,
        wait: bool = True,
        timeout: float | None = None,
        checkpoint: Any = None,
    ) -> JobState:
        """Pause one job: no new step starts; returns once its running steps ended
        and, with a checkpoint store, once the paused job is saved (unless
        ``wait=False``). ``checkpoint`` is accepted for 0.10 compatibility.

        Called from a handler (the 0.10 way to pause from a routine) it returns at
        once: waiting there would wait for the calling step itself. The pause point
        records ``reason`` and ``checkpoint`` (default ``{}``). A finished job is
        left as it is.
        """
        if self._finished(job_state):
            return job_state
        supervisor = self._require_supervisor(job_state)
        supervisor.ask(commands.PauseJob(job_state, reason, checkpoint))
        if in_handler():
            if self.checkpoint_store is not None:
                supervisor.ask(commands.TakeCheckpoint())  # written once the step returns
            return job_state
        if wait:
            job_state.wait(timeout)
            if self.checkpoint_store is not None and job_state.status == "paused":
                try:
                    self.checkpoint(timeout=timeout)
                except CheckpointError as exc:  # paused all the same; said loudly
                    logger.warning("job %s paused, but not checkpointed: %s", job_state.job_id, exc)
        return job_state

    def resume(self, job_state: JobState) -> JobState:
        """Resume a paused job (emitting its deferred events); returns at once.

        A finished job is returned unchanged. A paused JobState this flow does not
        run (e.g. deserialized on another host) continues from its
        ``pending_tasks`` and ``deferred_events``.
        """
        if self._finished(job_state):
            logger.info("resume: job %s is %s; nothing to do", job_state.job_id, job_state.status)
            return job_state
        if job_state.status == "paused":
            with self._lock:
                supervisor = self._ensure_supervisor()
                if job_state.job_id not in supervisor.ask(commands.GetJobIds()):
                    self._adopt_paused(supervisor, job_state)
        supervisor = self._require_supervisor(job_state)
        supervisor.ask(commands.ResumeJob(job_state))
        return job_state

    def _finished(self, job_state: JobState) -> bool:
        """Check ``job_state`` belongs here; True if it is completed, failed or cancelled."""
        self._check_job(job_state)
        return job_state.is_terminal

    def _adopt_paused(self, supervisor: Any, job_state: JobState) -> None:
        """Take over a paused job this supervisor never ran (moved between hosts)."""
        job_state.output_handler = self.output_handler
        job_state.execution_tracker = ExecutionTracker(job_state, flow=self)
        queue = [
            (t["id"], t["routine_id"], t["slot"], t.get("data") or {}, None, t.get("attempt", 0), 0)
            for t in job_state.pending_tasks
        ]
        supervisor.ask(commands.AdoptJobs([{"state": job_state, "slot_data": {}, "queue": queue}]))
        self.job_state = job_state
        self.execution_tracker = job_state.execution_tracker

    def cancel(self, job_state: JobState, reason: str = "") -> JobState:
        """Cancel one job: its queued messages are dropped, it ends as ``cancelled``."""
        if self._finished(job_state):
            return job_state
        supervisor = self._require_supervisor(job_state)
        supervisor.ask(commands.CancelJob(job_state, reason))
        if self.checkpoint_store is not None:
            if in_handler():
                supervisor.ask(commands.TakeCheckpoint())  # written once the step returns
            else:
                self.checkpoint()
        return job_state

    def wait_for_completion(
        self, timeout: float | None = None, job_state: JobState | None = None
    ) -> bool:
        """Wait until every job this flow is running (or only ``job_state``) has
        settled (0.10 compatibility). Returns False if ``timeout`` passed first.
        """
        if job_state is not None:
            return job_state.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        for state in list(self._active_jobs()):
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if not state.wait(remaining):
                return False
        return True

    def _active_jobs(self) -> list[JobState]:
        with self._lock:
            supervisor = self._supervisor
        if supervisor is None:
            return []
        return supervisor.ask(commands.GetLiveJobs())

    def _check_job(self, job_state: JobState) -> None:
        if not isinstance(job_state, JobState):
            raise ConfigurationError(f"expected a JobState, got {type(job_state).__name__}")
        if job_state.flow_id != self.flow_id:
            raise ConfigurationError(
                f"job {job_state.job_id} belongs to flow {job_state.flow_id!r}, "
                f"not {self.flow_id!r}"
            )

    def _require_supervisor(self, job_state: JobState) -> Any:
        self._check_job(job_state)
        with self._lock:
            if self._supervisor is None or not self._supervisor.is_alive():
                raise FlowStateError(
                    f"flow {self.flow_id!r} is not running; job {job_state.job_id} is "
                    f"{job_state.status}"
                )
            return self._supervisor

    def metrics(self) -> dict[str, dict[str, Any]]:
        """Per-routine runtime figures: processed, failed, queued, in_flight,
        restarts, mean_ms, p95_ms (zeros before the first job)."""
        with self._lock:
            supervisor = self._supervisor
        if supervisor is not None:
            return supervisor.ask(commands.GetMetrics())
        return {
            rid: {
                "processed": 0,
                "failed": 0,
                "queued": 0,
                "in_flight": 0,
                "restarts": 0,
                "mean_ms": 0.0,
                "p95_ms": 0.0,
                "execution": plan.execution,
                "workers": plan.workers,
            }
            for rid, plan in self._plans.items()
        }

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop the supervisor and every routine actor (``timeout`` default 10 s).

        Without a checkpoint store unfinished jobs are cancelled. With one, running
        steps finish (up to ``timeout``), unfinished jobs are checkpointed as they
        are and marked paused here; ``recover()`` in a new process continues them.
        Idempotent. A later ``execute`` starts the flow again. ``wait`` is accepted
        for 0.10 compatibility.
        """
        if timeout is None:
            timeout = 10.0
        with self._lock:
            supervisor, self._supervisor = self._supervisor, None
            # Parked jobs are in the store, not here: a later execute must recover first.
            self._claimed_store = None
        if supervisor is None:
            return
        deadline = time.monotonic() + timeout
        if self.checkpoint_store is not None:
            try:
                ticket = supervisor.ask(commands.Park(), timeout=timeout)
                if ticket.wait(max(deadline - time.monotonic(), 0.0)):
                    self._last_checkpoint_error = ticket.error
            except (pykka.ActorDeadError, pykka.Timeout):
                pass
        timeout = max(deadline - time.monotonic(), 0.5)

        thread = self._mailbox.thread if self._mailbox is not None else None
        try:
            supervisor.stop(block=True, timeout=timeout)
        except pykka.ActorDeadError:
            pass
        except pykka.Timeout as exc:
            raise FlowStateError(
                f"flow {self.flow_id!r} did not stop within {timeout} s (a handler is "
                "still running)"
            ) from exc
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> Flow:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()


live_flows: weakref.WeakSet[Flow] = weakref.WeakSet()  # for the exit hook


@atexit.register
def _shutdown_all_flows() -> None:
    for flow in list(live_flows):
        try:
            flow.shutdown(timeout=2.0)
        except Exception:
            pass
