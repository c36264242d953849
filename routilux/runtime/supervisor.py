"""FlowSupervisor: the per-flow actor that routes every message of every job.

It owns the connection table, each job's queue, every JobState, the ledger of
in-flight deliveries, error handling and the runtime figures. Routine actors only
run steps and report back through the supervisor's :class:`Mailbox`.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pykka

from routilux.error_handler import ErrorStrategy
from routilux.exceptions import (
    CheckpointError,
    FlowStateError,
    JobTimeoutError,
    RoutineCrashedError,
)
from routilux.output_handler import deliver_output
from routilux.runtime.backpressure import Gate
from routilux.runtime.bus import (
    CHECKPOINT_WRITTEN,
    JOB_FINISHED,
    JOB_PAUSED,
    JOB_RESUMED,
    JOB_SUBMITTED,
    METRICS,
    ROUTINE_OUT_OF_SERVICE,
    ROUTINE_RESTARTED,
    STEP_FINISHED,
    STEP_STARTED,
    EventBus,
)
from routilux.runtime.cut import encode_cut, finished_record, job_summary
from routilux.runtime.dispatch import ConcurrentDispatcher, JobRun, SequentialDispatcher
from routilux.runtime.ids import delivery_id, emit_id, root_id
from routilux.runtime.mailbox import BELL, Mailbox
from routilux.runtime.messages import (
    CRASHED,
    DEFER,
    DONE,
    EMIT,
    OUTPUT,
    RESTARTED,
    RETURNED,
    SUSPEND,
    TIMER,
    UNSUSPEND,
    Delivery,
    ErrorInfo,
)
from routilux.runtime.metrics import RoutineFigures
from routilux.runtime.replicas import apply_replica_states, publish_stats
from routilux.runtime.restart import RestartPolicy
from routilux.slot import merge_data

if TYPE_CHECKING:
    from routilux.flow import Flow, RoutinePlan
    from routilux.job_state import JobState

logger = logging.getLogger("routilux.supervisor")

THREAD_BATCH = 64  # deliveries handed to a thread actor at once (concurrent mode)
PROCESS_CREDIT = 2  # per process replica: one step running, one waiting in the pipe
_MAX_DROPPED_DESCRIBED = 100
METRICS_INTERVAL = 0.25  # seconds between metrics snapshots on the event bus


class Ticket(threading.Event):
    """Handed to whoever waits for a checkpoint; ``error`` is set if it failed."""

    def __init__(self) -> None:
        super().__init__()
        self.error: BaseException | None = None


class ActorHandle:
    """The supervisor's view of one routine actor (one replica)."""

    __slots__ = (
        "routine_id",
        "index",
        "ref",
        "outstanding",
        "suspended",
        "thread",
        "alive",
        "pid",
        "process",
        "stats",
        "state_bytes",
        "direct",
        "inbox",
        "waiting_on",
    )

    def __init__(self, routine_id: str, index: int) -> None:
        self.routine_id = routine_id
        self.index = index
        self.ref: Any = None
        self.outstanding = 0  # deliveries sent and not yet done/returned
        self.suspended = 0
        self.thread: threading.Thread | None = None
        self.alive = True
        # process replicas only:
        self.pid: int | None = None
        self.process: Any = None  # psutil.Process, created on first metrics()
        self.stats: dict[str, Any] | None = None  # the child's _stats after its last step
        self.state_bytes: bytes | None = None  # the child's state after its last step
        self.direct: Any = None  # the process actor object: steps are written directly
        self.inbox: Mailbox | None = None  # a thread actor's batches (same doorbell)
        self.waiting_on: tuple[str, ...] = ()  # targets its suspended step waits on

    def __repr__(self) -> str:
        return f"<actor {self.routine_id}#{self.index}>"


class RoutineEntry:
    """Everything the supervisor tracks about one routine of the flow."""

    __slots__ = (
        "routine_id",
        "routine",
        "plan",
        "actors",
        "queued",
        "credit",
        "figures",
        "crash_times",
        "waiting_jobs",
        "is_process",
        "next_pick",
        "broken",
        "synced",
    )

    def __init__(self, plan: RoutinePlan, credit: int) -> None:
        self.routine_id = plan.routine_id
        self.routine = plan.routine
        self.plan = plan
        self.actors: list[ActorHandle] = []
        self.queued = 0
        self.credit = credit
        self.figures = RoutineFigures()
        self.crash_times: list[float] = []
        self.waiting_jobs: set[JobRun] = set()  # sequential jobs waiting for a restart
        self.is_process = plan.execution == "process"
        self.next_pick = 0
        self.broken: str | None = None  # why the routine cannot run any more
        self.synced: list[bytes | None] | None = None  # replica states last applied

    def pick_actor(self) -> ActorHandle | None:
        """The live replica with the fewest outstanding deliveries, if it has room."""
        actors = self.actors
        if len(actors) == 1:
            best = actors[0]
            if not best.alive:
                return None
        else:
            # Least loaded live replica; ties go round-robin so work spreads out.
            count = len(actors)
            start = self.next_pick
            best = None
            for offset in range(count):
                actor = actors[(start + offset) % count]
                if actor.alive and (best is None or actor.outstanding < best.outstanding):
                    best = actor
            if best is None:
                return None
            self.next_pick = (best.index + 1) % count
        return best if best.outstanding < self.credit else None

    def all_suspended(self) -> bool:
        """True when every replica's step waits in emit()."""
        return all(a.suspended for a in self.actors)


def _outstanding(actor: ActorHandle) -> int:
    return actor.outstanding


def _dispatch_order(delivery: Delivery) -> int:
    return delivery.seq


class RuntimeEnv:
    """Read-mostly state shared by the supervisor and its routine actors."""

    def __init__(self, flow: Flow, mailbox: Mailbox, gate: Gate) -> None:
        self.flow = flow
        self.mailbox = mailbox
        self.gate = gate
        self.targets: dict[tuple[str, str], tuple[str, ...]] = {}
        self.rid_by_object: dict[int, str] = {}
        self.entries: dict[str, RoutineEntry] = {}

    def publish_stats(self, routine_id: str) -> None:
        """Refresh a process routine's ``_stats`` here from its replicas' reports."""
        entry = self.entries.get(routine_id)
        if entry is not None:
            publish_stats(entry.routine, [a.stats for a in entry.actors])

    def routine_id_of(self, routine: Any) -> str:
        """The flow's id for a routine object (for emits on behalf of another routine)."""
        try:
            return self.rid_by_object[id(routine)]
        except KeyError:
            raise FlowStateError(
                f"{routine!r} emitted inside a job of flow {self.flow.flow_id!r} but is "
                "not one of its routines"
            ) from None


class FlowSupervisor(pykka.ThreadingActor):
    """One per running flow; see the module docstring."""

    use_daemon_thread = True

    def __init__(self, flow: Flow, mailbox: Mailbox) -> None:
        super().__init__()
        self.flow = flow
        self.mailbox = mailbox
        self.gate = Gate(flow.max_queued_per_routine, mailbox.__len__)
        self.env = RuntimeEnv(flow, mailbox, self.gate)
        self.entries: dict[str, RoutineEntry] = self.env.entries
        self.routes: dict[tuple[str, str], list[tuple[str, str, Any]]] = {}
        self.jobs: dict[str, JobRun] = {}
        self.busy_actors = 0
        self._has_process_routines = False
        self.outstanding_total = 0  # deliveries sent to actors and not yet back
        self.suspended_total = 0
        self.holding = False  # dispatch held for a checkpoint
        self._seq = 0
        self.store = flow.checkpoint_store
        self.bus: EventBus = flow.bus
        self._metrics_timer: Any = None
        self._tickets: list[Ticket] = []
        self._periodic: Any = None
        self.checkpoints_written = 0
        self._job_end_pending = False
        self._last_checkpoint_at = 0.0
        # Jobs that ended since the last checkpoint: the next one writes each as its
        # own record (once; later cuts never rewrite it) and settles its intent.
        self._finished_unsaved: list[JobState] = []
        self._parking = False  # shutting down with a store: checkpoint, then hold
        self._parked = False
        self.dispatcher: Any = self._make_dispatcher(flow.execution_strategy, flow.max_workers)
        from routilux.runtime.timers import Timers

        self.timers = Timers(f"routilux-timers-{flow.flow_id}")
        self.env.timers = self.timers
        self._wall_offset = time.time() - time.perf_counter()
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def on_start(self) -> None:
        self.thread = self.mailbox.thread = threading.current_thread()

    def on_stop(self) -> None:
        parked = self._parking
        for job in list(self.jobs.values()):
            if not job.live:
                continue
            if parked:  # saved by the last checkpoint; recover() continues it
                job.live = job.running = False
                job.state.pause_points.append(
                    {
                        "timestamp": datetime.now().isoformat(),
                        "reason": "the flow was shut down",
                        "current_routine_id": job.state.current_routine_id,
                        "checkpoint": {},
                    }
                )
                job.state._set_status("paused")
            else:
                self._finish(job, "cancelled", "cancelled: the flow was shut down")
        self._release_tickets(FlowStateError("the flow was shut down"))
        self.gate.close()
        self.timers.stop()
        self._stop_actors(list(self.entries.values()))

    def _stop_actors(self, entries: list[RoutineEntry]) -> None:
        for entry in entries:
            for actor in entry.actors:
                try:
                    actor.ref.stop(block=False)
                except pykka.ActorDeadError:
                    pass
        for entry in entries:
            for actor in entry.actors:
                if actor.thread is not None:
                    actor.thread.join(10.0)

    def _make_dispatcher(self, strategy: str, max_workers: int) -> Any:
        if strategy == "concurrent":
            return ConcurrentDispatcher(self, max_workers)
        return SequentialDispatcher(self)

    def apply_plan(self, plan: dict[str, Any]) -> None:
        """Install a graph snapshot: start actors of new routines, rebuild routes."""
        routines: dict[str, RoutinePlan] = plan["routines"]
        removed = [self.entries.pop(rid) for rid in list(self.entries) if rid not in routines]
        if removed:
            self._stop_actors(removed)
        started = []
        for rid, rplan in routines.items():
            current = self.entries.get(rid)
            if (
                current is not None
                and current.routine is rplan.routine
                and current.plan.execution == rplan.execution
                and current.plan.workers == rplan.workers
                and rid not in plan.get("replica_states", {})  # recovered: restart them
            ):
                current.plan = rplan
                continue
            if current is not None:
                self._stop_actors([self.entries.pop(rid)])
            entry = RoutineEntry(
                rplan, PROCESS_CREDIT if rplan.execution == "process" else THREAD_BATCH
            )
            saved = plan.get("replica_states", {}).get(rid) or []
            for index in range(rplan.workers):
                handle = ActorHandle(rid, index)
                if index < len(saved):
                    handle.state_bytes = saved[index]  # recovered: start from it
                entry.actors.append(handle)
            self.entries[rid] = entry
            started.append(entry)
        self.routes = plan["routes"]
        self.store = plan["store"]
        self.bus = plan["bus"]
        self._has_process_routines = any(e.is_process for e in self.entries.values())
        self.env.targets = {key: tuple(r[0] for r in routes) for key, routes in self.routes.items()}
        self.env.rid_by_object = {id(p.routine): rid for rid, p in routines.items()}
        # Start every new actor, then wait for the processes together (they boot in
        # parallel: one interpreter start-up, not N).
        spawning = []
        for entry in started:
            for handle in entry.actors:
                spawning.extend(self._start_actor(entry, handle))
        errors = []
        for future in spawning:
            try:
                future.get()
            except Exception as exc:
                errors.append(exc)
        if errors:
            self._stop_actors(started)
            for entry in started:
                self.entries.pop(entry.routine_id, None)
            raise errors[0]

    def _start_actor(self, entry: RoutineEntry, handle: ActorHandle) -> list[Any]:
        """Start one replica's actor; returns futures to wait for (process start-up)."""
        rid = entry.routine_id
        handle.alive = True
        handle.outstanding = 0
        handle.suspended = 0
        if entry.is_process:
            from routilux.runtime.process_actor import ProcessRoutineActor
            from routilux.runtime.wire import dumps_or_explain

            routine_bytes = dumps_or_explain(entry.routine, f"routine {rid!r}:")
            handle.ref = ProcessRoutineActor.start(
                handle, rid, routine_bytes, self.env, entry.plan.timeout
            )
            return [handle.ref.ask(("spawn", handle.state_bytes), block=False)]
        from routilux.runtime.thread_actor import ThreadRoutineActor

        inbox = Mailbox()
        handle.ref = ThreadRoutineActor.start(handle, entry.routine, rid, self.env, inbox)
        inbox.ref = handle.ref
        handle.inbox = inbox
        return []

    # ------------------------------------------------------------------ messages
    def on_receive(self, message: Any) -> Any:
        result = None
        try:
            if message is BELL:
                self._drain()
            else:
                result = getattr(self, "_cmd_" + message[0])(*message[1:])
        finally:
            try:
                if self.holding and not self._parked:
                    self._maybe_checkpoint()
                self.dispatcher.dispatch()
            except Exception as exc:
                self._internal_error(None, exc)
            self.gate.notify()
        return result

    def on_failure(self, *exc_info: Any) -> None:
        """The supervisor itself stopped on an error (a bug): no job may hang."""
        error = exc_info[1]
        message = f"the flow's supervisor stopped: {type(error).__name__}: {error}"
        for job in list(self.jobs.values()):
            if job.live:
                job.live = job.running = False
                job.state._set_status("failed", message.splitlines()[0])
        self.gate.close()
        self.timers.stop()

    def _internal_error(self, item: Any, exc: Exception) -> None:
        """Rule *the supervisor never dies silently*: an error while handling one
        message fails the jobs it concerns (every live job when that cannot be told)
        with a one-line error, and the supervisor goes on serving the flow."""
        logger.error(
            "flow %r: internal error while handling %s",
            self.flow.flow_id,
            item[0] if isinstance(item, tuple) else "dispatch",
            exc_info=exc,
        )
        jobs = _jobs_in(item) or [job for job in self.jobs.values() if job.live]
        summary = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        for job in jobs:
            if not job.live:
                continue
            try:
                self._fail(job, f"internal error in the flow's supervisor: {summary}")
            except Exception:
                logger.exception("flow %r: could not fail job %s", self.flow.flow_id, job.job_id)
                job.live = job.running = False
                job.state._set_status(
                    "failed", f"internal error in the flow's supervisor: {summary}"
                )

    def _drain(self) -> None:
        items = self.mailbox.take_all()
        pop = items.popleft
        on_emit = self._on_emit
        on_done = self._on_done
        item = None
        while items:
            try:  # free in CPython 3.11 until something raises
                while items:
                    item = pop()
                    tag = item[0]
                    if tag is EMIT:
                        on_emit(item[1], item[2], item[3], item[4], item[5])
                    elif tag is DONE:
                        on_done(item[1], item[2], item[3], item[4], item[5])
                    elif tag is RETURNED:
                        self._on_returned(item[1], item[2])
                    elif tag is SUSPEND:
                        self._on_suspend(item[1], item[2], +1, item[3])
                    elif tag is UNSUSPEND:
                        self._on_suspend(item[1], item[2], -1, ())
                    elif tag is OUTPUT:
                        self._on_output(*item[1:])
                    elif tag is DEFER:
                        self._on_defer(*item[1:])
                    elif tag is TIMER:
                        item[1](*item[2:])
                    elif tag is CRASHED:
                        self._on_crashed(*item[1:])
                    elif tag is RESTARTED:
                        self._on_restarted(*item[1:])
                    if len(items) > 8 * THREAD_BATCH:
                        # Keep actors fed while a flood of results is being read.
                        self.dispatcher.dispatch()
            except Exception as exc:
                self._internal_error(item, exc)

    # ------------------------------------------------------------------ routing
    def _on_emit(self, parent: Delivery, n: int, rid: str, event: str, data: dict) -> None:
        job = parent.job
        if not job.live:
            return
        if n < parent.emitted:
            return  # a retried or redelivered step re-emitting what was already routed
        parent.emitted = n + 1
        if job.history:
            job.state.record_execution(rid, event, data)
        routes = self.routes.get((rid, event))
        if routes:
            self._route(job, emit_id(parent.id, n), routes, data)

    def _route(self, job: JobRun, eid: int, routes: list, data: dict) -> None:
        enqueue = self._enqueue
        for k, (dst, slot, connection) in enumerate(routes):
            if connection.param_mapping:
                payload = connection.apply_mapping(data)
            else:
                payload = data if k == 0 else dict(data)
            enqueue(job, Delivery(eid if k == 0 else delivery_id(eid, k), job, dst, slot, payload))

    def _enqueue(self, job: JobRun, delivery: Delivery, front: bool = False) -> None:
        entry = self.entries[delivery.routine_id]
        if entry.broken is not None:
            self._fail_unroutable(job, entry, delivery)
            return
        entry.queued += 1
        job.queued += 1
        if entry.queued >= self.gate.limit:
            self.gate.mark_full(entry.routine_id)
            if entry.routine_id not in self.gate.escape and entry.all_suspended():
                # Filling the queue of a blocked routine may close a blocked cycle.
                cycle = self._blocked_cycle(entry)
                if cycle:
                    self.gate.escape[entry.routine_id] = cycle
        self.dispatcher.push(job, delivery, front)

    # ------------------------------------------------------------------ sending
    def send_one(self, job: JobRun, delivery: Delivery) -> None:
        """Send one delivery to a replica with room, or park the job until one has it."""
        entry = self.entries[delivery.routine_id]
        if entry.broken is not None:
            self._fail_unroutable(job, entry, delivery)
            return
        actor = entry.pick_actor()
        if actor is None:
            # Every replica is full (other jobs' steps) or restarting: the job waits
            # for a DONE or RESTARTED of this routine rather than over-filling it.
            job.queue.appendleft(delivery)
            entry.waiting_jobs.add(job)
            return
        self.send_batch(job, actor, [delivery])

    def send_batch(self, job: JobRun, actor: ActorHandle, batch: list[Delivery]) -> None:
        """Hand ``batch`` of ``job`` to ``actor``: merge slot data, count, send."""
        entry = self.entries[actor.routine_id]
        count = len(batch)
        entry.queued -= count
        job.queued -= count
        if entry.queued < self.gate.limit and self.gate.full:
            self.gate.mark_room(entry.routine_id)
        ready = []
        for delivery in batch:
            if delivery.call_data is None and not self._prepare(job, entry, delivery):
                continue
            ready.append(delivery)
        if not ready:
            return
        job.in_flight += len(ready)
        if actor.outstanding == 0:
            self.busy_actors += 1
        actor.outstanding += len(ready)
        self.outstanding_total += len(ready)
        seq = self._seq
        for delivery in ready:
            seq += 1
            delivery.seq = seq
        self._seq = seq
        if self.bus.active:
            publish = self.bus.publish
            flow_id = self.flow.flow_id
            for delivery in ready:
                publish(
                    STEP_STARTED,
                    flow_id,
                    job.job_id,
                    routine=actor.routine_id,
                    replica=actor.index,
                    message_id=delivery.id,
                )
        job.state.current_routine_id = actor.routine_id
        if actor.direct is not None:
            actor.direct.submit(ready)
        else:
            actor.inbox.post(ready)

    def _prepare(self, job: JobRun, entry: RoutineEntry, delivery: Delivery) -> bool:
        """Apply the slot's merge strategy; a failing merge fails the message."""
        slot = entry.routine._slots[delivery.slot]
        key = (entry.routine_id, delivery.slot)
        if slot.merge_strategy == "override":
            job.slot_data[key] = delivery.call_data = delivery.data
            return True
        try:
            stored, delivery.call_data = merge_data(
                slot.merge_strategy, job.slot_data.get(key, {}), delivery.data
            )
        except Exception as exc:
            self._failed_step(job, entry, delivery, ErrorInfo.from_exception(exc), None, None)
            return False
        job.slot_data[key] = stored
        return True

    # ------------------------------------------------------------------ results
    def _on_done(
        self,
        actor: ActorHandle,
        delivery: Delivery,
        error: ErrorInfo | None,
        started: float,
        ended: float,
    ) -> None:
        entry = self._release(actor, 1)
        job = delivery.job
        job.in_flight -= 1
        if entry is None:
            return
        rid = entry.routine_id
        entry.figures.record(ended - started)
        if self.bus.active:
            self.bus.publish(
                STEP_FINISHED,
                self.flow.flow_id,
                job.job_id,
                routine=rid,
                replica=actor.index,
                message_id=delivery.id,
                duration=ended - started,
                error=None if error is None else error.summary(),
            )
        if not job.live:
            return
        state = job.state.routine_states.get(rid)
        if state is None:
            state = job.state.routine_states[rid] = _new_routine_state(started + self._wall_offset)
        state["last_end"] = ended + self._wall_offset
        seconds = ended - started
        state["total_seconds"] += seconds
        _record_step_time(state, seconds)
        if error is None:
            entry.figures.processed += 1
            state["processed"] += 1
            state["status"] = "completed"
            if delivery.attempt:  # 0.10's record of a success that needed retries
                first = delivery.first_started
                state["execution_time"] = ended - (started if first is None else first)
                if job.history:
                    job.state.record_execution(
                        rid,
                        "completed",
                        {"execution_time": state["execution_time"], "retried": True},
                    )
            else:
                state["execution_time"] = seconds
            self.dispatcher.mark(job, rid)
            if job.in_flight == 0:
                self._settle(job)
        else:
            self._failed_step(job, entry, delivery, error, state, started)

    def _release(self, actor: ActorHandle, count: int) -> RoutineEntry | None:
        """``count`` deliveries came back from ``actor`` (done or returned): free its
        credit and let work waiting for this routine go on."""
        actor.outstanding -= count
        self.outstanding_total -= count
        if actor.outstanding == 0:
            self.busy_actors -= 1
        self.dispatcher.routine_idle(actor.routine_id)
        entry = self.entries.get(actor.routine_id)
        if entry is not None and entry.waiting_jobs:
            self._wake_waiting(entry)
        return entry

    def _on_returned(self, actor: ActorHandle, deliveries: list[Delivery]) -> None:
        count = len(deliveries)
        self._release(actor, count)
        job = deliveries[0].job
        job.in_flight -= count
        if not job.live:
            self._count_dropped(job, deliveries)
            return
        job.returned.extend(deliveries)
        if job.running or job.in_flight == 0:
            self._requeue_returned(job)
        self._settle(job)

    def _requeue_returned(self, job: JobRun) -> None:
        """Put deliveries handed back unrun at the front, in their dispatch order."""
        returned = sorted(job.returned, key=_dispatch_order)
        job.returned = []
        for delivery in returned:
            self.entries[delivery.routine_id].queued += 1
        job.queued += len(returned)
        self.dispatcher.push_front(job, returned)

    def _on_suspend(
        self, actor: ActorHandle, delivery: Delivery, change: int, targets: tuple[str, ...]
    ) -> None:
        actor.suspended += change
        if change > 0:
            actor.waiting_on = targets
        self.suspended_total += change
        delivery.job.suspended += change
        self.dispatcher.mark(delivery.job)
        if change > 0:
            self._settle(delivery.job)  # a pausing job may be waiting for this step
        entry = self.entries.get(actor.routine_id)
        if entry is not None and change > 0 and entry.routine_id in self.gate.full:
            cycle = self._blocked_cycle(entry)
            if cycle:
                self.gate.escape[entry.routine_id] = cycle

    def _blocked_cycle(self, entry: RoutineEntry) -> frozenset[str]:
        """Rule *bounded memory*, its one escape: when every replica of ``entry``
        waits in emit() on a full routine that (through routines equally blocked)
        waits on ``entry`` itself — a routine feeding itself, or a cycle of routines
        each feeding the next — nobody could drain those queues. Returns the
        routines of that cycle, whose emits into ``entry`` are let through instead
        of deadlocking; emits from outside the cycle still wait. Empty when there
        is no such cycle (a relay between a fast producer and a slow consumer is
        not one, and stays bounded)."""
        if not entry.all_suspended():
            return frozenset()
        start = entry.routine_id
        full = self.gate.full
        stack, seen = [entry], {start}
        found = False
        while stack:
            for actor in stack.pop().actors:
                for target in actor.waiting_on:
                    if target == start:
                        found = True
                    if target in seen or target not in full:
                        continue
                    seen.add(target)
                    blocked = self.entries.get(target)
                    if blocked is not None and blocked.all_suspended():
                        stack.append(blocked)
        return frozenset(seen) if found else frozenset()
        start = entry.routine_id
        full = self.gate.full
        stack, seen = [entry], {start}
        while stack:
            for actor in stack.pop().actors:
                for target in actor.waiting_on:
                    if target == start:
                        return True
                    if target in seen or target not in full:
                        continue
                    seen.add(target)
                    blocked = self.entries.get(target)
                    if blocked is not None and blocked.all_suspended():
                        stack.append(blocked)
        return False

    def _on_output(self, delivery: Delivery, rid: str, output_type: str, data: dict) -> None:
        job = delivery.job
        state = job.state
        now = datetime.now()
        state.output_log.append(
            {
                "routine_id": rid,
                "output_type": output_type,
                "data": data,
                "timestamp": now.isoformat(),
            }
        )
        handler = state.output_handler
        if handler is not None:
            try:
                deliver_output(handler, state.job_id, rid, output_type, data, now)
            except Exception:
                logger.exception("output handler %r failed for job %s", handler, state.job_id)

    def _on_defer(self, delivery: Delivery, rid: str, event: str, data: dict) -> None:
        delivery.job.state.deferred_events.append(
            {
                "routine_id": rid,
                "event_name": event,
                "data": data,
                "timestamp": datetime.now().isoformat(),
            }
        )

    # ------------------------------------------------------------------ errors
    def _failed_step(
        self,
        job: JobRun,
        entry: RoutineEntry,
        delivery: Delivery,
        error: ErrorInfo,
        state: dict | None,
        started: float | None,
    ) -> None:
        rid = entry.routine_id
        if state is None:
            state = job.state.routine_states.setdefault(
                rid, _new_routine_state(time.perf_counter() + self._wall_offset)
            )
        handler = entry.routine.get_error_handler() or self.flow.error_handler
        strategy = handler.strategy if handler is not None else ErrorStrategy.STOP
        entry.figures.failed += 1
        state["failed"] += 1
        state["last_error"] = error.summary()
        job.state.failures.append(
            {
                "routine_id": rid,
                "slot": delivery.slot,
                "exception_type": error.type_name,
                "message": error.message,
                "traceback": error.traceback,
                "attempt": delivery.attempt,
                "strategy": strategy.value,
                "timestamp": time.time(),
            }
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
                self._schedule_retry(job, delivery, handler.delay_for(delivery.attempt))
                self.dispatcher.mark(job, rid)  # the job's other messages go on meanwhile
                self._settle(job)  # a pause waiting for this step can now complete
                return
            if handler.on_exhausted != "continue":  # 0.10: fails whatever is_critical says
                self._record_failure(job, state, rid, delivery, error)
                self._fail(
                    job, f"{where} failed after {delivery.attempt} retries: {error.summary()}"
                )
                return
            self._record_continued(job, state, rid, delivery, error)
        elif strategy is ErrorStrategy.STOP:
            self._record_failure(job, state, rid, delivery, error)
            self._fail(job, f"{where} failed: {error.summary()}")
            return
        elif strategy is ErrorStrategy.SKIP:
            state["status"] = "skipped"
            state["skipped"] = state.get("skipped", 0) + 1
        else:
            self._record_continued(job, state, rid, delivery, error)
        self.dispatcher.mark(job, rid)
        self._settle(job)

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

    def _schedule_retry(self, job: JobRun, delivery: Delivery, delay: float) -> None:
        post = self.mailbox.post
        handle = self.timers.call_later(
            delay, lambda: post((TIMER, self._retry_due, job, delivery))
        )
        job.timers[delivery.id] = (handle, delivery)

    def _retry_due(self, job: JobRun, delivery: Delivery) -> None:
        job.timers.pop(delivery.id, None)
        if job.live:
            self._enqueue(job, delivery, front=True)

    # ------------------------------------------------------------------ crashes
    def _on_crashed(
        self, actor: ActorHandle, reason: str, returncode: int | None, lost: list[Delivery]
    ) -> None:
        entry = self.entries.get(actor.routine_id)
        if entry is None or actor not in entry.actors:
            return
        actor.alive = False
        self.outstanding_total -= len(lost)
        actor.outstanding -= len(lost)
        if actor.outstanding <= 0:
            if actor.outstanding + len(lost) > 0:
                self.busy_actors -= 1
            actor.outstanding = 0
        for delivery in lost:
            delivery.job.in_flight -= 1
        policy: RestartPolicy = entry.plan.restart or self.flow.restart or RestartPolicy()
        now = time.monotonic()
        entry.crash_times = [t for t in entry.crash_times if now - t < policy.within]
        entry.crash_times.append(now)
        crashes = len(entry.crash_times)
        exceeded = crashes > policy.max_restarts
        entry.figures.restarts += 1
        self.bus.publish(
            ROUTINE_RESTARTED,
            self.flow.flow_id,
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
            job.state.crashes.append(dict(record))
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
                self._failed_step(job, entry, delivery, ErrorInfo.from_exception(error), None, None)
            else:
                self._enqueue(job, delivery, front=True)
        for job in {d.job for d in lost}:
            self._settle(job)  # e.g. a job that was pausing while the step crashed
        delay = policy.backoff_max if exceeded else policy.delay(crashes)
        post = self.mailbox.post
        self.timers.call_later(delay, lambda: post((TIMER, self._restart, entry, actor)))

    def _restart(self, entry: RoutineEntry, actor: ActorHandle) -> None:
        if self.entries.get(entry.routine_id) is not entry:
            return
        if entry.is_process:
            actor.ref.tell(("respawn", actor.state_bytes))
        else:
            self._start_actor(entry, actor)
            self._on_restarted(actor, None)

    def _on_restarted(self, actor: ActorHandle, error: BaseException | None) -> None:
        entry = self.entries.get(actor.routine_id)
        if entry is None:
            return
        if error is not None:
            logger.error("routine %r could not be restarted: %s", entry.routine_id, error)
            policy: RestartPolicy = entry.plan.restart or self.flow.restart or RestartPolicy()
            now = time.monotonic()
            recent = [t for t in entry.crash_times if now - t < policy.within]
            if len(recent) >= policy.max_restarts and not any(a.alive for a in entry.actors):
                self._give_up_on(entry, f"its process cannot be started again ({error})")
                return
            self._on_crashed(actor, f"restart failed: {error}", None, [])
            return
        actor.alive = True
        actor.process = None
        self._wake_waiting(entry)
        self.dispatcher.routine_idle(entry.routine_id)

    def _wake_waiting(self, entry: RoutineEntry) -> None:
        for job in entry.waiting_jobs:
            self.dispatcher.mark(job)
        entry.waiting_jobs.clear()

    def _give_up_on(self, entry: RoutineEntry, reason: str) -> None:
        """A routine that cannot be restarted: fail its messages, now and later."""
        entry.broken = reason
        self.bus.publish(
            ROUTINE_OUT_OF_SERVICE, self.flow.flow_id, None, routine=entry.routine_id, reason=reason
        )
        logger.error("routine %r is out of service: %s", entry.routine_id, reason)
        for job in list(self.jobs.values()):
            if not job.live:
                continue
            for delivery in self.dispatcher.take_routine(job, entry.routine_id):
                entry.queued -= 1
                job.queued -= 1
                self._fail_unroutable(job, entry, delivery)
        entry.waiting_jobs.clear()

    def _fail_unroutable(self, job: JobRun, entry: RoutineEntry, delivery: Delivery) -> None:
        error = RoutineCrashedError(
            f"routine {entry.routine_id!r} is out of service: {entry.broken}"
        )
        self._failed_step(job, entry, delivery, ErrorInfo.from_exception(error), None, None)

    # ------------------------------------------------------------------ job ends
    def _settle(self, job: JobRun) -> None:
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
                    self._requeue_returned(job)
                pending = list(self.dispatcher.queued(job)) + list(job.returned)
                pending += [delivery for _, delivery in job.timers.values()]
                job.state.pending_tasks = [d.describe() for d in pending]
                job.state._set_status("paused")
                reason = job.state.pause_points[-1]["reason"] if job.state.pause_points else ""
                self.bus.publish(JOB_PAUSED, self.flow.flow_id, job.job_id, reason=reason)
        elif not job.in_flight and job.running and job.queued == 0 and not job.timers:
            self._finish(job, "completed")

    def _fail(self, job: JobRun, message: str) -> None:
        if job.state.failures:
            job.state.failures[-1].setdefault("dropped", [])
        self._count_dropped(job, self._drop_queued(job))
        self._finish(job, "failed", message)

    def _count_dropped(self, job: JobRun, dropped: list[Delivery]) -> None:
        """Record messages of a failed or cancelled job that will never run."""
        job.state.dropped_messages += len(dropped)
        failures = job.state.failures
        if job.state.status != "cancelled" and failures and "dropped" in failures[-1]:
            described = failures[-1]["dropped"]
            room = _MAX_DROPPED_DESCRIBED - len(described)
            described.extend(d.describe() for d in dropped[: max(room, 0)])

    def _drop_queued(self, job: JobRun) -> list[Delivery]:
        dropped = self.dispatcher.drain(job)
        for delivery in dropped:
            entry = self.entries.get(delivery.routine_id)
            if entry is not None:
                entry.queued -= 1
                if entry.queued < self.gate.limit:
                    self.gate.mark_room(delivery.routine_id)
        job.queued = 0
        for handle, _ in job.timers.values():
            handle.cancel()
        job.timers.clear()
        return dropped

    def _sync_process_states(self) -> None:
        """Bring the caller's routine objects up to date with their processes
        (only those whose replicas reported a new state since the last time)."""
        for entry in self.entries.values():
            if not entry.is_process:
                continue
            states = [a.state_bytes for a in entry.actors]
            if entry.synced is not None and all(
                new is old for new, old in zip(states, entry.synced, strict=True)
            ):
                continue
            entry.synced = states
            apply_replica_states(
                entry.routine, entry.routine_id, states, [a.stats for a in entry.actors]
            )

    def _finish(self, job: JobRun, status: str, error: str | None = None) -> None:
        if self._has_process_routines:
            self._sync_process_states()
        job.live = False
        job.running = False
        job.pausing = False
        if job.timeout_handle is not None:
            job.timeout_handle.cancel()
        if status != "completed":
            self._drop_queued(job)
        self.jobs.pop(job.job_id, None)
        if self.store is not None:
            self._finished_unsaved.append(job.state)
        if error is not None and "\n" in error:
            lines = error.strip().splitlines()
            error = lines[0] + (" [...]" if len(lines) > 1 else "")
        job.state._set_status(status, error, notify=False)
        if self.store is not None:
            if not self.jobs:
                # The flow went idle: make the outcome durable before waking waiters.
                self._request_checkpoint()
            else:
                self._job_end_checkpoint_soon()
        job.state._set_status(status, error)
        self.bus.publish(
            JOB_FINISHED, self.flow.flow_id, job.job_id, status=status, error=job.state.error
        )

    def _on_timeout(self, job: JobRun, timeout: float) -> None:
        if not job.live:
            return
        message = f"job {job.job_id} exceeded its timeout of {timeout:g} s"
        job.state.failures.append(
            {
                "routine_id": job.state.current_routine_id,
                "slot": None,
                "exception_type": JobTimeoutError.__name__,
                "message": message,
                "traceback": "",
                "attempt": 0,
                "strategy": "stop",
                "timestamp": time.time(),
            }
        )
        self._fail(job, f"JobTimeoutError: {message}")

    # ------------------------------------------------------------------ checkpoints
    def _ensure_periodic(self) -> None:
        if self.store is None or self._periodic is not None:
            return
        post = self.mailbox.post
        interval = self.flow.checkpoint_interval

        def due() -> None:
            post((TIMER, self._periodic_due))

        self._periodic = self.timers.call_later(interval, due)

    def _job_end_checkpoint_soon(self) -> None:
        """Checkpoint a job's end while other jobs run, at most a few times per
        checkpoint interval (job ends that come close together share one)."""
        if self._job_end_pending:
            return
        self._job_end_pending = True
        gap = self.flow.checkpoint_interval / 4
        delay = max(0.0, self._last_checkpoint_at + gap - time.monotonic())
        post = self.mailbox.post

        def due() -> None:
            post((TIMER, self._job_end_due))

        self.timers.call_later(delay, due)

    def _job_end_due(self) -> None:
        self._job_end_pending = False
        self._request_checkpoint()

    def _periodic_due(self) -> None:
        self._periodic = None
        if self.jobs:
            self._request_checkpoint()
            self._ensure_periodic()

    def _request_checkpoint(self, ticket: Ticket | None = None) -> None:
        """Hold dispatch; the checkpoint is written once nothing is in flight."""
        if self.store is None:
            if ticket is not None:
                ticket.set()
            return
        if ticket is not None:
            self._tickets.append(ticket)
        self.holding = True
        self._maybe_checkpoint()

    def _maybe_checkpoint(self) -> None:
        if self.outstanding_total == 0:
            self._write_checkpoint()
        elif self.suspended_total:
            # Rule *cuts never wait on dispatch*: a step waits in emit() for queue
            # room that only dispatch can make (and deliveries batched behind it wait
            # for that step), so holding dispatch for a cut could wait forever. Let
            # the work move and cut later; finished jobs stay listed until then.
            self.holding = False
            self._release_tickets(
                CheckpointSkipped("checkpoint skipped: a step is blocked by backpressure")
            )
            if self._finished_unsaved:
                self._job_end_checkpoint_soon()

    def _release_tickets(self, error: BaseException | None) -> None:
        tickets, self._tickets = self._tickets, []
        for ticket in tickets:
            ticket.error = error
            ticket.set()

    def _write_checkpoint(self) -> None:
        from routilux.runtime.snapshot import check_process_state, pickle_state

        self.holding = False
        error: BaseException | None = None
        started_at = time.monotonic()
        try:
            if self._has_process_routines:
                self._sync_process_states()
            routines: dict[str, Any] = {}
            for rid, entry in self.entries.items():
                if entry.is_process:
                    for actor in entry.actors:
                        check_process_state(rid, actor.state_bytes)
                    routines[rid] = {
                        "replicas": [a.state_bytes for a in entry.actors],
                        "stats": [a.stats for a in entry.actors],
                    }
                else:
                    routines[rid] = {"state": pickle_state(rid, entry.routine)}
            jobs = [self._job_record(job) for job in self.jobs.values() if job.live]
            key = self.store.key
            flow_id = self.flow.flow_id
            finished = []
            for st in self._finished_unsaved:
                try:
                    finished.append(finished_record(flow_id, st, key))
                except CheckpointError as exc:  # listed, not kept; other jobs unharmed
                    logger.error("%s", exc)
                    error = exc
            summary = [job_summary(r["state"]) for r in jobs]
            summary += [job_summary(st) for st in self._finished_unsaved]
            blob = encode_cut(flow_id, routines, jobs, key, summary)
            self.store.save(flow_id, blob, summary, finished, self.flow.keep_finished_jobs)
            self._finished_unsaved = []
            self.checkpoints_written += 1
            now = time.monotonic()
            self.bus.publish(
                CHECKPOINT_WRITTEN,
                flow_id,
                None,
                jobs=len(jobs),
                finished=len(finished),
                seconds=now - started_at,
            )
            self._last_checkpoint_at = now
        except Exception as exc:
            error = exc
            logger.error("checkpoint of flow %r failed: %s", self.flow.flow_id, exc)
        self.flow._last_checkpoint_error = error
        if self._parking:
            self.holding = True  # shutting down: nothing moves past the checkpoint
            self._parked = True
        self._release_tickets(error)

    def _job_record(self, job: JobRun) -> dict[str, Any]:
        from routilux.runtime.snapshot import delivery_record

        queued = list(self.dispatcher.queued(job)) + sorted(job.returned, key=_dispatch_order)
        queued += [delivery for _, delivery in job.timers.values()]  # retries pending
        return {
            "state": job.state,
            "slot_data": job.slot_data,
            "queue": [delivery_record(d) for d in queued],
            "timeout": job.timeout,
        }

    def _cmd_checkpoint(self) -> Ticket:
        ticket = Ticket()
        self._request_checkpoint(ticket)
        return ticket

    def _cmd_park(self) -> Ticket:
        """Checkpoint every live job as it is, then take them off this supervisor
        (the flow is shutting down; ``recover()`` continues them later)."""
        ticket = Ticket()
        self._parking = True
        self._request_checkpoint(ticket)
        return ticket

    def _cmd_adopt(self, records: list[dict[str, Any]]) -> None:
        """Take over jobs restored from a checkpoint (or job intents)."""
        from routilux.runtime.snapshot import delivery_from_record

        for record in records:
            state = record["state"]
            job = JobRun(state, self.flow.record_history)
            job.slot_data = record.get("slot_data") or {}
            job.timeout = record.get("timeout")
            self.jobs[job.job_id] = job
            paused = state.status == "paused"
            if paused:
                job.running = False
            else:
                state._set_status("running")
            for item in record["queue"]:
                self._enqueue(job, delivery_from_record(item, job))
            if job.timeout is not None and not paused:
                job.timeout_handle = self.timers.call_later(
                    job.timeout,
                    lambda job=job: self.mailbox.post((TIMER, self._on_timeout, job, job.timeout)),
                )
            self._settle(job)
        self._ensure_periodic()

    # ------------------------------------------------------------------ commands
    def _cmd_start(
        self, state: Any, routine_id: str, slot: str, params: dict, timeout: float | None
    ) -> None:
        job = JobRun(state, self.flow.record_history)
        job.timeout = timeout
        self.jobs[job.job_id] = job
        self._ensure_periodic()
        if timeout is not None:
            post = self.mailbox.post
            job.timeout_handle = self.timers.call_later(
                timeout, lambda: post((TIMER, self._on_timeout, job, timeout))
            )
        self.bus.publish(
            JOB_SUBMITTED, self.flow.flow_id, job.job_id, routine=routine_id, slot=slot
        )
        self._ensure_metrics_timer()
        if job.history:
            state.record_execution(routine_id, "start", params)  # 0.10's first record
        self._enqueue(job, Delivery(root_id(job.job_id), job, routine_id, slot, params))

    def _ensure_metrics_timer(self) -> None:
        """Publish metrics snapshots a few times a second while someone wants them
        and jobs run (coalesced: one snapshot per tick, whatever happened)."""
        if self._metrics_timer is not None or not self.bus.wants(METRICS):
            return
        post = self.mailbox.post
        self._metrics_timer = self.timers.call_later(
            METRICS_INTERVAL, lambda: post((TIMER, self._metrics_due))
        )

    def _metrics_due(self) -> None:
        self._metrics_timer = None
        if self.bus.wants(METRICS):
            self.bus.publish(METRICS, self.flow.flow_id, None, routines=self._cmd_metrics())
            if any(job.live for job in self.jobs.values()):
                self._ensure_metrics_timer()

    def _job(self, state: Any) -> JobRun | None:
        return self.jobs.get(state.job_id)

    def _cmd_pause(self, state: Any, reason: str, checkpoint: Any = None) -> None:
        job = self._job(state)
        if job is None or not job.running:
            return
        job.running = False
        job.pausing = True
        state.pause_points.append(
            {
                "timestamp": datetime.now().isoformat(),
                "reason": reason,
                "current_routine_id": state.current_routine_id,
                "checkpoint": checkpoint if checkpoint is not None else {},
                "queued": job.queued,
                "in_flight": job.in_flight,
            }
        )
        self._settle(job)

    def _cmd_resume(self, state: Any) -> None:
        job = self._job(state)
        if job is None:
            raise FlowStateError(
                f"job {state.job_id} is {state.status} and not known to this flow's "
                "supervisor; only a paused job can be resumed"
            )
        if job.running:
            return
        job.running = True
        job.pausing = False
        job.resumes += 1
        if job.returned:  # handed back while pausing: they go first, in order
            self._requeue_returned(job)
        state.pending_tasks = []
        state._set_status("running")
        self.bus.publish(JOB_RESUMED, self.flow.flow_id, job.job_id)
        deferred, state.deferred_events = state.deferred_events, []
        for i, event in enumerate(deferred):
            rid, name, data = event["routine_id"], event["event_name"], event["data"]
            if job.history:
                state.record_execution(rid, name, data)
            routes = self.routes.get((rid, name))
            if routes:
                self._route(job, root_id(job.job_id, f"deferred/{job.resumes}/{i}"), routes, data)
        self.dispatcher.resume(job)
        self._settle(job)

    def _cmd_cancel(self, state: Any, reason: str) -> None:
        job = self._job(state)
        if job is None or not job.live:
            return
        self._count_dropped(job, self._drop_queued(job))
        if reason:
            state.routine_states["_cancellation"] = {"reason": reason}  # as 0.10
        self._finish(job, "cancelled", f"cancelled: {reason}" if reason else "cancelled")

    def _cmd_metrics(self) -> dict[str, dict[str, Any]]:
        result = {}
        for rid, entry in self.entries.items():
            figures = entry.figures.snapshot()
            figures["queued"] = entry.queued
            figures["in_flight"] = sum(a.outstanding for a in entry.actors)
            figures["execution"] = entry.plan.execution
            figures["workers"] = len(entry.actors)
            if entry.is_process:
                figures.update(process_figures(entry.actors))
            result[rid] = figures
        return result

    def _cmd_plan(self, plan: dict[str, Any]) -> None:
        self.apply_plan(plan)

    def _cmd_strategy(self, strategy: str, max_workers: int) -> None:
        if any(job.live for job in self.jobs.values()):
            raise FlowStateError(
                "cannot change the execution strategy while jobs are running; "
                "wait for them or cancel them first"
            )
        self.dispatcher = self._make_dispatcher(strategy, max_workers)

    def _cmd_job_ids(self) -> set[str]:
        return set(self.jobs)

    def _cmd_job_states(self) -> list[Any]:
        return [job.state for job in self.jobs.values() if job.live]

    def _cmd_live_jobs(self) -> int:
        return sum(1 for job in self.jobs.values() if job.live)


class CheckpointSkipped(CheckpointError):
    """No consistent cut was possible (all in-flight steps wait on backpressure)."""


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


def process_figures(actors: list[ActorHandle]) -> dict[str, Any]:
    """pids, summed CPU % and RSS of a process routine's replicas (psutil)."""
    import psutil

    pids, cpu, rss = [], 0.0, 0
    for actor in actors:
        if actor.pid is None or not actor.alive:
            continue
        pids.append(actor.pid)
        try:
            if actor.process is None or actor.process.pid != actor.pid:
                actor.process = psutil.Process(actor.pid)
                actor.process.cpu_percent(None)  # primes the counter
            cpu += actor.process.cpu_percent(None)
            rss += actor.process.memory_info().rss
        except psutil.Error:
            continue
    return {"pids": pids, "cpu_percent": round(cpu, 1), "rss_bytes": rss}


def _new_routine_state(first_start: float) -> dict[str, Any]:
    return {
        "status": "running",
        "processed": 0,
        "failed": 0,
        "first_start": first_start,
        "last_end": None,
        "total_seconds": 0.0,
        "min_seconds": None,
        "max_seconds": None,
        "last_error": None,
        "retry_count": 0,
    }


def _record_step_time(state: dict[str, Any], seconds: float) -> None:
    """Per-job shortest and longest step of a routine (for the tracker's 0.10 keys)."""
    low = state.get("min_seconds")
    if low is None or seconds < low:
        state["min_seconds"] = seconds
    high = state.get("max_seconds")
    if high is None or seconds > high:
        state["max_seconds"] = seconds


def _error_record(delivery: Delivery, error: ErrorInfo) -> dict[str, Any]:
    """The data of an ``error``/``error_continued`` history record."""
    return {"slot": delivery.slot, "error": error.message, "error_type": error.type_name}
