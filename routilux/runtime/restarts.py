"""Restarts: a replica died; restart it, redeliver, or take the routine out of service.

Depends on the ledger, the job book and routing (failures through routing). Rule
*restart*: a crash restarts the replica from its last reported state and delivers
the lost messages again (same ids, so downstream sees each emit once). More than
``max_restarts`` crashes within ``within`` seconds — the restart *intensity* over its
*period* — fail the lost messages with RoutineCrashedError instead. The same path
serves every backend.
"""

from __future__ import annotations

import logging
import time

from routilux.exceptions import RoutineCrashedError
from routilux.runtime.bus import ROUTINE_OUT_OF_SERVICE, ROUTINE_RESTARTED
from routilux.runtime.jobs import JobBook
from routilux.runtime.ledger import ActorHandle, Ledger, RoutineEntry
from routilux.runtime.messages import TIMER, Delivery, ErrorInfo
from routilux.runtime.routing import Router

logger = logging.getLogger("routilux.supervisor")


class Restarts:
    """Handles the death of replicas (see the module docstring)."""

    def __init__(self, ledger: Ledger, jobs: JobBook, router: Router) -> None:
        self.ledger = ledger
        self.jobs = jobs
        self.router = router

    def on_crashed(
        self, actor: ActorHandle, reason: str, returncode: int | None, lost: list[Delivery]
    ) -> None:
        """CRASHED: a replica died; redeliver or fail its messages, schedule a restart."""
        ledger = self.ledger
        entry = ledger.entries.get(actor.routine_id)
        if entry is None or actor not in entry.actors:
            return
        actor.alive = False
        ledger.lose(actor, lost)
        policy = ledger.plan.restart_policy(entry.plan)
        now = time.monotonic()
        entry.crash_times = [t for t in entry.crash_times if now - t < policy.within]
        entry.crash_times.append(now)
        crashes = len(entry.crash_times)
        exceeded = crashes > policy.max_restarts
        entry.figures.restarts += 1
        ledger.bus.publish(
            ROUTINE_RESTARTED,
            ledger.flow_id,
            None,
            routine=entry.routine_id,
            replica=actor.index,
            cause=reason,
            pid=actor.pid,
            returncode=returncode,
        )
        logger.warning(
            "routine %r replica %d (pid %s) crashed: %s; %s%s",
            entry.routine_id,
            actor.index,
            actor.pid,
            reason,
            policy.describe(crashes),
            "; failing its message" if exceeded and lost else "",
        )
        record = {
            "routine_id": entry.routine_id,
            "replica": actor.index,
            "pid": actor.pid,
            "reason": reason,
            "returncode": returncode,
            "restart": crashes,
            "timestamp": time.time(),
        }
        for job in {d.job for d in lost}:
            job.state.record_crash(record)
        for delivery in reversed(lost):  # front-requeued in reverse keeps their order
            job = delivery.job
            if not job.live:
                continue
            if exceeded:
                error = RoutineCrashedError(
                    f"routine {entry.routine_id!r} crashed ({reason}) {crashes} time(s) within "
                    f"{policy.within:g} s, more than its restart policy allows "
                    f"(max_restarts={policy.max_restarts})"
                )
                self.router.fail_step(
                    job, entry, delivery, ErrorInfo.from_exception(error), None, None
                )
            else:
                self.router.enqueue(job, delivery, front=True)
        for job in {d.job for d in lost}:
            self.jobs.settle(job)  # e.g. a job that was pausing while the step crashed
        delay = policy.backoff_max if exceeded else policy.delay(crashes)
        if delay <= 0:
            self._restart(entry, actor)  # a first crash: no timer round trip
            return
        post = ledger.mailbox.post
        ledger.timers.call_later(delay, lambda: post((TIMER, self._restart, entry, actor)))

    def _restart(self, entry: RoutineEntry, actor: ActorHandle) -> None:
        if self.ledger.entries.get(entry.routine_id) is not entry:
            return  # the routine left the flow meanwhile
        entry.backend.restart(entry, actor, self.ledger.env)

    def on_restarted(
        self, actor: ActorHandle, error: BaseException | None, pid: int | None
    ) -> None:
        """RESTARTED: a replacement replica runs (or could not be started)."""
        ledger = self.ledger
        entry = ledger.entries.get(actor.routine_id)
        if entry is None:
            return
        if error is not None:
            logger.error("routine %r could not be restarted: %s", entry.routine_id, error)
            policy = ledger.plan.restart_policy(entry.plan)
            now = time.monotonic()
            recent = [t for t in entry.crash_times if now - t < policy.within]
            if len(recent) >= policy.max_restarts and not any(a.alive for a in entry.actors):
                self.give_up_on(entry, f"its process cannot be started again ({error})")
                return
            self.on_crashed(actor, f"restart failed: {error}", None, [])
            return
        actor.alive = True
        actor.pid = pid
        actor.process = None
        ledger.wake_waiting(entry)
        ledger.dispatcher.routine_idle(entry.routine_id)

    def give_up_on(self, entry: RoutineEntry, reason: str) -> None:
        """A routine that cannot be restarted: fail its messages, now and later."""
        ledger = self.ledger
        entry.broken = reason
        ledger.bus.publish(
            ROUTINE_OUT_OF_SERVICE, ledger.flow_id, None, routine=entry.routine_id, reason=reason
        )
        logger.error("routine %r is out of service: %s", entry.routine_id, reason)
        for job in ledger.live_jobs():
            for delivery in ledger.dispatcher.take_routine(job, entry.routine_id):
                entry.queued -= 1
                job.queued -= 1
                self.router.fail_unroutable(job, entry, delivery)
        entry.waiting_jobs.clear()
