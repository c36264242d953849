"""Routing: emits become deliveries, deliveries go to replicas, results come back.

Depends on the ledger, the job book and failures. This is the hot path: an EMIT is
turned into one delivery per connected slot (rule *delivery*, in connection order,
with parameter mapping); queued deliveries are handed to replicas with room
(credit); a DONE frees the credit and settles the job. Backpressure (rule *bounded
memory*) is applied here: a routine whose queue reaches the limit is marked full.
"""

from __future__ import annotations

from typing import Any

from routilux.exceptions import FlowStateError, RoutineCrashedError
from routilux.runtime.bus import STEP_FINISHED, STEP_STARTED
from routilux.runtime.dispatch import JobRun
from routilux.runtime.failures import Failures
from routilux.runtime.ids import MASK, delivery_id
from routilux.runtime.jobs import JobBook
from routilux.runtime.ledger import ActorHandle, Ledger, RoutineEntry
from routilux.runtime.messages import TIMER, Delivery, ErrorInfo
from routilux.slot import merge_data


class Router:
    """Routes one flow's messages (see the module docstring)."""

    def __init__(self, ledger: Ledger, jobs: JobBook, failures: Failures) -> None:
        self.ledger = ledger
        self.jobs = jobs
        self.failures = failures
        # (routine id, event) -> ((entry, slot, connection), ...) in connection
        # order: the plan's routes with their routines' entries looked up once.
        self.targets: dict[tuple[str, str], tuple[tuple[RoutineEntry | None, str, Any], ...]] = {}

    def plan_changed(self) -> None:
        """The plan or the routine entries changed: look the routes up again."""
        entries = self.ledger.entries
        self.targets = {
            # None: a routine whose replicas could not start (routing to it raises)
            key: tuple((entries.get(dst), slot, connection) for dst, slot, connection in routes)
            for key, routes in self.ledger.plan.routes.items()
        }

    # -- emits -----------------------------------------------------------------------
    def on_emit(self, parent: Delivery, n: int, rid: str, event: str, data: dict) -> None:
        """EMIT: route one emit of a step (re-emits of a redelivered step are dropped)."""
        job = parent.job
        if not job.live or n < parent.emitted:
            return  # over, or a retried/redelivered step re-emitting what was routed
        parent.emitted = n + 1
        if job.history:
            # JobState.record_execution without its call: once a JobState was
            # pickled (its intent, a checkpoint), CPython 3.11 no longer specialises
            # method calls on it (its __dict__ was built), and this runs per emit.
            job.state._history_columns.append(rid, event, data)
        targets = self.targets.get((rid, event))
        if targets:
            # ids.emit_id(parent.id, n), inlined on this path
            self.route(job, hash((parent.id, n)) & MASK, targets, data)

    def route(self, job: JobRun, eid: int, targets: tuple, data: dict) -> None:
        """One delivery per target of an emit, in connection order (``targets`` as
        in :attr:`targets`); each is queued like :meth:`enqueue` does."""
        ledger = self.ledger
        gate = ledger.gate
        push = ledger.dispatcher.push
        k = 0
        for entry, slot, connection in targets:
            if entry is None:
                raise FlowStateError(
                    f"an emit to slot {slot!r} targets a routine whose replicas did not "
                    "start; fix the start error and execute again"
                )
            if connection.param_mapping:
                payload = connection.apply_mapping(data)
            else:
                payload = data if k == 0 else dict(data)
            delivery = Delivery(
                eid if k == 0 else delivery_id(eid, k), job, entry.routine_id, slot, payload
            )
            k += 1
            if entry.broken is not None:
                self.fail_unroutable(job, entry, delivery)
                continue
            entry.queued += 1
            job.queued += 1
            if entry.queued >= gate.limit:
                gate.mark_full(entry.routine_id)
                # A blocked cycle needs every replica of ``entry`` waiting in emit()
                # (see blocked_cycle): checked here first, as this runs for every
                # message while the routine is full.
                if entry.routine_id not in gate.escape and entry.all_suspended():
                    gate.open_escape(entry, self.ledger.entries)  # may close a cycle
            push(job, delivery)

    def enqueue(self, job: JobRun, delivery: Delivery, front: bool = False) -> None:
        """Queue a delivery for its routine (at the front for redeliveries)."""
        ledger = self.ledger
        entry = ledger.entries[delivery.routine_id]
        if entry.broken is not None:
            self.fail_unroutable(job, entry, delivery)
            return
        entry.queued += 1
        job.queued += 1
        gate = ledger.gate
        if entry.queued >= gate.limit:
            gate.mark_full(entry.routine_id)
            if entry.routine_id not in gate.escape:
                gate.open_escape(entry, self.ledger.entries)  # may close a blocked cycle
        ledger.dispatcher.push(job, delivery, front)

    # -- sending ---------------------------------------------------------------------
    def send_one(self, job: JobRun, delivery: Delivery) -> None:
        """Send one delivery to a replica with room, or park the job until one has it."""
        entry = self.ledger.entries[delivery.routine_id]
        if entry.broken is not None:
            self.fail_unroutable(job, entry, delivery)
            return
        actor = entry.pick_actor()
        if actor is None:
            # Every replica is full (other jobs' steps) or restarting: the job waits
            # for a DONE or RESTARTED of this routine rather than over-filling it.
            job.queue.appendleft(delivery)
            entry.waiting_jobs.add(job)
            return
        self.send_batch(job, actor, [delivery])

    def send_run(self, job: JobRun) -> None:
        """Sequential: send the head of the job's queue together with the deliveries
        right behind it that go to the same routine (a run, run in order by one
        replica), or park the job until a replica has room."""
        queue = job.queue
        head = queue[0]
        rid = head.routine_id
        entry = self.ledger.entries[rid]
        if entry.broken is not None:
            queue.popleft()
            entry.queued -= 1
            job.queued -= 1
            self.fail_unroutable(job, entry, head)
            return
        actor = entry.pick_actor()
        if actor is None:
            entry.waiting_jobs.add(job)  # see send_one
            return
        room = min(entry.backend.serial_run, entry.credit - actor.outstanding)
        if STEP_STARTED in self.ledger.bus.wanted:
            room = 1  # step events of a sequential job stay one started, one finished
        batch = [queue.popleft()]
        while queue and len(batch) < room and queue[0].routine_id == rid:
            batch.append(queue.popleft())
        self.send_batch(job, actor, batch)

    def send_batch(self, job: JobRun, actor: ActorHandle, batch: list[Delivery]) -> None:
        """Hand ``batch`` of ``job`` to ``actor``: merge slot data, count, send."""
        ledger = self.ledger
        entry = ledger.entries[actor.routine_id]
        count = len(batch)
        entry.queued -= count
        job.queued -= count
        if entry.queued < ledger.gate.limit and ledger.gate.full:
            ledger.gate.mark_room(entry.routine_id)
        ready = []
        seq = ledger.seq
        slot_named = entry.routine.get_slot
        slot_data = job.slot_data
        rid = entry.routine_id
        for delivery in batch:
            if delivery.call_data is None:  # first dispatch: apply the merge strategy
                name = delivery.slot
                if slot_named(name).merge_strategy == "override":
                    slot_data[(rid, name)] = delivery.call_data = delivery.data
                else:
                    ledger.seq = seq
                    if not self._prepare(job, entry, delivery):
                        continue
                    seq = ledger.seq
            seq += 1
            delivery.seq = seq  # dispatch order
            ready.append(delivery)
        ledger.seq = seq
        if not ready:
            return
        count = len(ready)
        job.in_flight += count
        if actor.outstanding == 0:
            ledger.busy_actors += 1
        actor.outstanding += count
        ledger.outstanding_total += count
        bus = ledger.bus
        if STEP_STARTED in bus.wanted:  # per step: only while someone takes them
            for delivery in ready:
                bus.publish(
                    STEP_STARTED,
                    ledger.flow_id,
                    job.job_id,
                    routine=actor.routine_id,
                    replica=actor.index,
                    message_id=delivery.id,
                )
        job.state.current_routine_id = actor.routine_id
        entry.backend.deliver(actor, ready)

    def _prepare(self, job: JobRun, entry: RoutineEntry, delivery: Delivery) -> bool:
        """Apply the slot's merge strategy; a failing merge fails the message."""
        slot = entry.routine.get_slot(delivery.slot)
        key = (entry.routine_id, delivery.slot)
        if slot.merge_strategy == "override":
            job.slot_data[key] = delivery.call_data = delivery.data
            return True
        try:
            stored, delivery.call_data = merge_data(
                slot.merge_strategy, job.slot_data.get(key, {}), delivery.data
            )
        except Exception as exc:
            self.fail_step(job, entry, delivery, ErrorInfo.from_exception(exc), None, None)
            return False
        job.slot_data[key] = stored
        return True

    # -- results ---------------------------------------------------------------------
    def on_done(
        self,
        actor: ActorHandle,
        delivery: Delivery,
        error: ErrorInfo | None,
        started: float,
        ended: float,
    ) -> None:
        """DONE: a step ended; record it, free the credit, settle or fail the step."""
        ledger = self.ledger
        entry = ledger.release(actor, 1)
        job = delivery.job
        job.in_flight -= 1
        if entry is None:
            return
        rid = entry.routine_id
        seconds = ended - started
        entry.figures.record(seconds)
        if STEP_FINISHED in ledger.bus.wanted:
            self._publish_finished(actor, delivery, rid, seconds, error)
        if not job.live:
            return
        state = job.state.routine_record(rid, started + ledger.wall_offset)
        state["last_end"] = ended + ledger.wall_offset
        state["total_seconds"] += seconds
        _record_step_times(state, seconds, seconds)
        if error is not None:
            self.fail_step(job, entry, delivery, error, state, started)
            return
        entry.figures.processed += 1
        state["processed"] += 1
        state["status"] = "completed"
        if delivery.attempt:  # 0.10's record of a success that needed retries
            first = delivery.first_started
            state["execution_time"] = ended - (started if first is None else first)
            if job.history:
                job.state.record_execution(
                    rid, "completed", {"execution_time": state["execution_time"], "retried": True}
                )
        else:
            state["execution_time"] = seconds
        ledger.dispatcher.mark(job, rid)
        if job.in_flight == 0 or job.pausing:
            # A pausing job settles once what is left in flight waits in emit()
            # (those steps continue after resume), not only when nothing is.
            self.jobs.settle(job)

    def on_done_batch(
        self,
        actor: ActorHandle,
        deliveries: list[Delivery],
        durations: list[float],
        first_started: float,
        last_ended: float,
    ) -> None:
        """DONE_BATCH: steps of one job that succeeded, in order; the same records
        as one DONE each, kept in one go."""
        ledger = self.ledger
        count = len(deliveries)
        entry = ledger.release(actor, count)
        job = deliveries[0].job
        job.in_flight -= count
        if entry is None:
            return
        rid = entry.routine_id
        figures = entry.figures
        figures.record_many(durations)
        if STEP_FINISHED in ledger.bus.wanted:
            for delivery, seconds in zip(deliveries, durations, strict=True):
                self._publish_finished(actor, delivery, rid, seconds, None)
        if not job.live:
            return
        offset = ledger.wall_offset
        state = job.state.routine_record(rid, first_started + offset)
        state["last_end"] = last_ended + offset
        state["total_seconds"] += sum(durations)
        _record_step_times(state, min(durations), max(durations))
        figures.processed += count
        state["processed"] += count
        state["status"] = "completed"
        state["execution_time"] = durations[-1]
        ledger.dispatcher.mark(job, rid)
        if job.in_flight == 0 or job.pausing:
            self.jobs.settle(job)

    def _publish_finished(
        self,
        actor: ActorHandle,
        delivery: Delivery,
        rid: str,
        seconds: float,
        error: ErrorInfo | None,
    ) -> None:
        """A step-finished event, for bus subscribers that asked for step events."""
        ledger = self.ledger
        ledger.bus.publish(
            STEP_FINISHED,
            ledger.flow_id,
            delivery.job.job_id,
            routine=rid,
            replica=actor.index,
            message_id=delivery.id,
            duration=seconds,
            error=None if error is None else error.summary(),
        )

    def fail_step(
        self,
        job: JobRun,
        entry: RoutineEntry,
        delivery: Delivery,
        error: ErrorInfo,
        state: dict | None,
        started: float | None,
    ) -> None:
        """A step failed: apply the error strategy; retries are timed from here."""
        delay = self.failures.failed_step(job, entry, delivery, error, state, started)
        if delay is None:
            return
        post = self.ledger.mailbox.post
        handle = self.ledger.timers.call_later(
            delay, lambda: post((TIMER, self._retry_due, job, delivery))
        )
        job.timers[delivery.id] = (handle, delivery)
        self.ledger.dispatcher.mark(job, entry.routine_id)  # its other messages go on
        self.jobs.settle(job)  # a pause waiting for this step can now complete

    def fail_unroutable(self, job: JobRun, entry: RoutineEntry, delivery: Delivery) -> None:
        """A message for a routine that is out of service fails (its strategy applies)."""
        error = RoutineCrashedError(
            f"routine {entry.routine_id!r} is out of service: {entry.broken}"
        )
        self.fail_step(job, entry, delivery, ErrorInfo.from_exception(error), None, None)

    def _retry_due(self, job: JobRun, delivery: Delivery) -> None:
        job.timers.pop(delivery.id, None)
        if job.live:
            self.enqueue(job, delivery, front=True)

    def on_returned(self, actor: ActorHandle, deliveries: list[Delivery]) -> None:
        """RETURNED: deliveries handed back unrun (the job paused or ended)."""
        count = len(deliveries)
        self.ledger.release(actor, count)
        job = deliveries[0].job
        job.in_flight -= count
        if not job.live:
            self.jobs.count_dropped(job, deliveries)
            return
        job.returned.extend(deliveries)
        if job.running or job.in_flight == 0:
            self.jobs.requeue_returned(job)
        self.jobs.settle(job)

    def on_suspend(
        self, actor: ActorHandle, delivery: Delivery, change: int, targets: tuple[str, ...]
    ) -> None:
        """SUSPEND/UNSUSPEND: a step started or stopped waiting in emit() for room."""
        ledger = self.ledger
        actor.suspended += change
        if change > 0:
            actor.waiting_on = targets
        ledger.suspended_total += change
        delivery.job.suspended += change
        ledger.dispatcher.mark(delivery.job)
        if change <= 0:
            if ledger.gate.escape:
                # The cycle moves again: its escape has done its job. Left open, it
                # would let the cycle take in without bound what its members are fed
                # from outside; should the cycle block again, it opens again.
                ledger.gate.close_escapes_through(actor.routine_id)
            return
        self.jobs.settle(delivery.job)  # a pausing job may be waiting for this step
        entry = ledger.entries.get(actor.routine_id)
        if entry is not None and entry.routine_id in ledger.gate.full:
            # Its last replica blocking may close a cycle.
            ledger.gate.open_escape(entry, ledger.entries)


def _record_step_times(state: dict[str, Any], shortest: float, longest: float) -> None:
    """Per-job shortest and longest step of a routine (for the tracker's 0.10 keys)."""
    low = state.get("min_seconds")
    if low is None or shortest < low:
        state["min_seconds"] = shortest
    high = state.get("max_seconds")
    if high is None or longest > high:
        state["max_seconds"] = longest
