"""FlowSupervisor: the per-flow actor. It supervises; its collaborators do the work.

The supervisor is a pykka actor with a shell of its own: it receives messages and
commands, starts and stops replicas through their backend, and hands everything
else to collaborators with one-way dependencies (each module has one job)::

    ledger        the records: routines, replicas, live jobs, in-flight counters
    checkpointer  when a cut is taken and writing it            (uses: ledger)
    jobs          settle / finish / fail / cancel / timeouts    (ledger, checkpointer)
    failures      error strategies for failed steps             (ledger, jobs)
    routing       emits -> deliveries -> replicas -> results    (ledger, jobs, failures)
    restarts      crashes, restart intensity/period, out of service (ledger, jobs, routing)

Every record is written on the supervisor's thread only; reader and timer threads
post messages (see :mod:`routilux.runtime`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from routilux.exceptions import FlowStateError
from routilux.runtime.backends import backend_for
from routilux.runtime.bus import METRICS
from routilux.runtime.checkpointer import Checkpointer, Ticket
from routilux.runtime.commands import (
    AdoptJobs,
    ApplyPlan,
    CancelJob,
    GetCheckpointError,
    GetJobIds,
    GetLiveJobs,
    GetMetrics,
    Park,
    PauseJob,
    ResumeJob,
    StartJob,
    TakeCheckpoint,
)
from routilux.runtime.control import JobControl
from routilux.runtime.dispatch import ConcurrentDispatcher, JobRun, SequentialDispatcher
from routilux.runtime.failures import Failures
from routilux.runtime.jobs import JobBook
from routilux.runtime.ledger import ActorHandle, Ledger, RoutineEntry
from routilux.runtime.mailbox import BELL, Mailbox, QuickActor
from routilux.runtime.messages import (
    CRASHED,
    DEFER,
    DONE,
    DONE_BATCH,
    EMIT,
    OUTPUT,
    REPORT,
    RESTARTED,
    RETURNED,
    SUSPEND,
    TIMER,
    UNSUSPEND,
    Delivery,
)
from routilux.runtime.plan import FlowPlan
from routilux.runtime.replicas import publish_stats
from routilux.runtime.restarts import Restarts
from routilux.runtime.routing import Router

logger = logging.getLogger("routilux.supervisor")

METRICS_INTERVAL = 0.25  # seconds between metrics snapshots on the event bus
_FLOOD = 8 * 64  # results read in one go before actors are fed again


class FlowSupervisor(QuickActor):
    """One per running flow; see the module docstring."""

    use_daemon_thread = True

    def __init__(self, plan: FlowPlan, mailbox: Mailbox) -> None:
        super().__init__()
        self.mailbox = mailbox
        self.ledger = ledger = Ledger(plan, mailbox)
        self.checkpointer = Checkpointer(ledger)
        self.jobs = JobBook(ledger, self.checkpointer)
        self.failures = Failures(ledger, self.jobs)
        self.router = Router(ledger, self.jobs, self.failures)
        self.restarts = Restarts(ledger, self.jobs, self.router)
        self.control = JobControl(ledger, self.jobs, self.router)
        ledger.dispatcher = self._make_dispatcher(plan)
        self._metrics_timer: Any = None
        self._handlers = {
            ApplyPlan: lambda c: self.apply_plan(c.plan),
            StartJob: self._start_job,
            AdoptJobs: lambda c: self.control.adopt(c.records),
            PauseJob: self.control.pause,
            ResumeJob: lambda c: self.control.resume(c.state),
            CancelJob: self.control.cancel,
            TakeCheckpoint: lambda c: self._checkpoint(),
            Park: lambda c: self.checkpointer.park(),
            GetMetrics: lambda c: self.metrics(),
            GetJobIds: lambda c: set(ledger.jobs),
            GetLiveJobs: lambda c: [job.state for job in ledger.live_jobs()],
            GetCheckpointError: lambda c: self.checkpointer.last_error,
        }

    # ------------------------------------------------------------------ lifecycle
    def on_start(self) -> None:
        self.mailbox.thread = threading.current_thread()

    def on_stop(self) -> None:
        ledger = self.ledger
        parked = self.checkpointer.parking
        for job in ledger.live_jobs():
            if parked:  # saved by the last checkpoint; recover() continues it
                job.live = job.running = False
                job.state.add_pause_point("the flow was shut down")
                job.state.set_status("paused")
            else:
                self.jobs.finish(job, "cancelled", "cancelled: the flow was shut down")
        self.checkpointer.close()  # cuts still being written are written first
        self.checkpointer.release(FlowStateError("the flow was shut down"))
        ledger.gate.close()
        ledger.timers.stop()
        self._stop_replicas(list(ledger.entries.values()))

    def on_failure(self, *exc_info: Any) -> None:
        """The supervisor itself stopped on an error (a bug): no job may hang."""
        error = exc_info[1]
        message = f"the flow's supervisor stopped: {type(error).__name__}: {error}"
        for job in self.ledger.live_jobs():
            job.live = job.running = False
            job.state.set_status("failed", message.splitlines()[0])
        self.ledger.gate.close()
        self.ledger.timers.stop()

    def _stop_replicas(self, entries: list[RoutineEntry]) -> None:
        for entry in entries:
            for actor in entry.actors:
                entry.backend.stop(actor)
        for entry in entries:
            for actor in entry.actors:
                entry.backend.join(actor, 10.0)

    def _make_dispatcher(self, plan: FlowPlan) -> Any:
        if plan.execution_strategy == "concurrent":
            return ConcurrentDispatcher(self.ledger, self.router.send_batch, plan.max_workers)
        return SequentialDispatcher(self.ledger, self.router.send_one, self.router.send_run)

    def apply_plan(self, plan: FlowPlan) -> None:
        """Install a plan: start replicas of new routines, swap routes and settings."""
        ledger = self.ledger
        old = ledger.plan
        if (plan.execution_strategy, plan.max_workers) != (
            old.execution_strategy,
            old.max_workers,
        ):
            if ledger.live_jobs():
                raise FlowStateError(
                    "cannot change the execution strategy while jobs are running; "
                    "wait for them or cancel them first"
                )
            ledger.plan = plan
            ledger.dispatcher = self._make_dispatcher(plan)
        entries = ledger.entries
        removed = [entries.pop(rid) for rid in list(entries) if rid not in plan.routines]
        if removed:
            self._stop_replicas(removed)
        started = []
        for rid, rplan in plan.routines.items():
            current = entries.get(rid)
            if (
                current is not None
                and current.routine is rplan.routine
                and current.plan.execution == rplan.execution
                and current.plan.workers == rplan.workers
                and rid not in plan.replica_states  # recovered: restart them
            ):
                current.plan = rplan
                continue
            if current is not None:
                self._stop_replicas([entries.pop(rid)])
            entry = RoutineEntry(rplan, backend_for(rplan.execution))
            saved = plan.replica_states.get(rid) or []
            for index in range(rplan.workers):
                handle = ActorHandle(rid, index)
                if index < len(saved):
                    handle.state_bytes = saved[index]  # recovered: start from it
                entry.actors.append(handle)
            entries[rid] = entry
            started.append(entry)
        ledger.plan = plan
        ledger.gate.limit = plan.max_queued_per_routine
        env = ledger.env
        env.flow_id = plan.flow_id
        env.owner = plan.owner
        env.restart = plan.restart
        env.targets = {key: tuple(r[0] for r in routes) for key, routes in plan.routes.items()}
        env.rid_by_object = {id(p.routine): rid for rid, p in plan.routines.items()}
        env.kinds = {rid: p.execution for rid, p in plan.routines.items()}
        env.ray_address = plan.ray_address
        try:
            self._start_replicas(started)
        finally:
            self.router.plan_changed()

    def _start_replicas(self, started: list[RoutineEntry]) -> None:
        """Start every new replica, then wait for the processes together (they boot
        in parallel: one interpreter start-up, not N)."""
        env = self.ledger.env
        spawning = []
        for entry in started:
            for handle in entry.actors:
                handle.alive = True
                handle.outstanding = 0
                handle.suspended = 0
                spawning.extend((handle, f) for f in entry.backend.start(entry, handle, env))
        errors = []
        for handle, future in spawning:
            try:
                handle.pid = future.get()
            except Exception as exc:
                errors.append(exc)
        if errors:
            self._stop_replicas(started)
            for entry in started:
                self.ledger.entries.pop(entry.routine_id, None)
            raise errors[0]

    # ------------------------------------------------------------------ messages
    def on_receive(self, message: Any) -> Any:
        result = None
        try:
            if message is BELL:
                self._drain()
            else:
                result = self._handlers[type(message)](message)
        finally:
            try:
                self.checkpointer.maybe_write()
                self.ledger.dispatcher.dispatch()
                if self._metrics_timer is None and METRICS in self.ledger.bus.wanted:
                    self._ensure_metrics_timer()  # someone may have subscribed since
            except Exception as exc:
                self._internal_error(None, exc)
            self.ledger.gate.notify()
        return result

    def _drain(self) -> None:
        items = self.mailbox.take_all()
        pop = items.popleft
        router = self.router
        on_emit = router.on_emit
        on_done = router.on_done
        on_done_batch = router.on_done_batch
        item = None
        budget = _FLOOD
        while items:
            try:  # free in CPython 3.11 until something raises
                while items:
                    item = pop()
                    tag = item[0]
                    if tag is EMIT:
                        on_emit(item[1], item[2], item[3], item[4], item[5])
                    elif tag is DONE_BATCH:
                        on_done_batch(item[1], item[2], item[3], item[4], item[5])
                    elif tag is DONE:
                        on_done(item[1], item[2], item[3], item[4], item[5])
                    elif tag is REPORT:
                        self._on_report(item[1], item[2], item[3])
                    elif tag is RETURNED:
                        router.on_returned(item[1], item[2])
                    elif tag is SUSPEND:
                        router.on_suspend(item[1], item[2], +1, item[3])
                    elif tag is UNSUSPEND:
                        router.on_suspend(item[1], item[2], -1, ())
                    elif tag is OUTPUT:
                        self.jobs.on_output(item[1], item[2], item[3], item[4])
                    elif tag is DEFER:
                        self.jobs.on_defer(item[1], item[2], item[3], item[4])
                    elif tag is TIMER:
                        item[1](*item[2:])
                    elif tag is CRASHED:
                        self.restarts.on_crashed(item[1], item[2], item[3], item[4])
                    elif tag is RESTARTED:
                        self.restarts.on_restarted(item[1], item[2], item[3])
                    budget -= 1
                    if not budget:
                        # Keep actors fed while a flood of results is being read
                        # (every _FLOOD messages, not after each one: batches).
                        budget = _FLOOD
                        self.ledger.dispatcher.dispatch()
                        self.ledger.gate.notify()
            except Exception as exc:
                self._internal_error(item, exc)

    def _on_report(self, actor: ActorHandle, stats: Any, state: Any) -> None:
        """A process replica's ``_stats`` and state after a step."""
        if state is not None:
            actor.state_bytes = state
        if stats is not None:
            actor.stats = stats
            entry = self.ledger.entries.get(actor.routine_id)
            if entry is not None:  # stats() stays current in the caller's process
                publish_stats(entry.routine, [a.stats for a in entry.actors])

    def _internal_error(self, item: Any, exc: Exception) -> None:
        """Rule *the supervisor never dies silently*: an error while handling one
        message fails the jobs it concerns (every live job when that cannot be told)
        with a one-line error, and the supervisor goes on serving the flow."""
        logger.error(
            "flow %r: internal error while handling %s",
            self.ledger.flow_id,
            item[0] if isinstance(item, tuple) else "dispatch",
            exc_info=exc,
        )
        jobs = _jobs_in(item) or self.ledger.live_jobs()
        summary = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        message = f"internal error in the flow's supervisor: {summary}"
        for job in jobs:
            if not job.live:
                continue
            try:
                self.jobs.fail(job, message)
            except Exception:
                logger.exception("flow %r: could not fail job %s", self.ledger.flow_id, job.job_id)
                job.live = job.running = False
                job.state.set_status("failed", message)

    # ------------------------------------------------------------------ commands
    def _start_job(self, command: StartJob) -> None:
        self.control.start(command)
        self._ensure_metrics_timer()

    def _checkpoint(self) -> Ticket:
        ticket = Ticket()
        self.checkpointer.request(ticket)
        return ticket

    def metrics(self) -> dict[str, dict[str, Any]]:
        """Per-routine runtime figures (``flow.metrics()``)."""
        result = {}
        for rid, entry in self.ledger.entries.items():
            figures = entry.figures.snapshot()
            figures["queued"] = entry.queued
            figures["in_flight"] = sum(a.outstanding for a in entry.actors)
            figures["execution"] = entry.plan.execution
            figures["workers"] = len(entry.actors)
            figures.update(entry.backend.figures(entry))
            result[rid] = figures
        return result

    def _ensure_metrics_timer(self) -> None:
        """Publish metrics snapshots a few times a second while someone wants them
        and jobs run (coalesced: one snapshot per tick, whatever happened)."""
        ledger = self.ledger
        if self._metrics_timer is not None or not ledger.bus.wants(METRICS):
            return
        if not ledger.jobs:
            return
        post = self.mailbox.post
        self._metrics_timer = ledger.timers.call_later(
            METRICS_INTERVAL, lambda: post((TIMER, self._metrics_due))
        )

    def _metrics_due(self) -> None:
        self._metrics_timer = None
        ledger = self.ledger
        if ledger.bus.wants(METRICS):
            ledger.bus.publish(METRICS, ledger.flow_id, None, routines=self.metrics())
            if ledger.live_jobs():
                self._ensure_metrics_timer()


def _jobs_in(item: Any) -> list[JobRun]:
    """The jobs a message to the supervisor concerns (found from its deliveries)."""
    jobs: dict[str, JobRun] = {}
    for part in item[1:] if isinstance(item, tuple) else ():
        for value in part if isinstance(part, list) else (part,):
            if isinstance(value, Delivery):
                jobs[value.job.job_id] = value.job
            elif isinstance(value, JobRun):
                jobs[value.job_id] = value
    return list(jobs.values())
