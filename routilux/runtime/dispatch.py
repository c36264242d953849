"""Per-job queues and the two dispatch disciplines.

``sequential``: one step in flight per job; the job's messages form one FIFO queue,
so the job runs breadth-first with fan-out in connection order. The deliveries at
the head of the queue that go to the same routine (a *run*) are handed to one
replica together: it runs them one after the other, and whatever they emit joins
the queue behind them, so the order is exactly the one-at-a-time order with one
wake-up per run instead of one per step. A replica hands back the rest of a run
when a step fails or waits in ``emit()`` (then the job's other work may go on,
rule *ordering*).

``concurrent``: each job keeps one FIFO queue per routine; every routine actor gets
batches of its messages (a routine still runs one step at a time), and at most
``max_workers`` routine actors are busy at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routilux.job_state import JobState
    from routilux.runtime.messages import Delivery


class JobRun:
    """The supervisor's live record of one job."""

    __slots__ = (
        "state",
        "job_id",
        "slot_data",
        "in_flight",
        "suspended",
        "queued",
        "timers",
        "live",
        "running",
        "pausing",
        "timeout_handle",
        "queue",
        "queues",
        "resumes",
        "history",
        "timeout",
        "returned",
        "serial",
    )

    def __init__(self, state: JobState, record_history: bool = True, serial: bool = False) -> None:
        self.state = state
        self.job_id = state.job_id
        self.slot_data: dict[tuple[str, str], dict[str, Any]] = {}
        self.in_flight = 0  # deliveries sent to actors and not yet done or returned
        self.suspended = 0  # in-flight steps blocked by backpressure
        self.queued = 0  # deliveries held by the supervisor
        self.timers: dict[int, Any] = {}  # pending retry timers by delivery id
        self.live = True  # False once completed, failed or cancelled
        self.running = True  # False while paused (or pausing) or once over
        self.pausing = False
        self.timeout_handle: Any = None
        self.queue: deque[Delivery] = deque()  # sequential
        self.queues: dict[str, deque[Delivery]] = {}  # concurrent, per routine id
        self.resumes = 0
        self.history = record_history
        self.timeout: float | None = None
        self.returned: list[Delivery] = []  # handed back unrun while pausing
        # Sequential strategy (read by replicas: the rest of a run comes back when
        # a step fails or blocks, see SequentialDispatcher).
        self.serial = serial


def put_back(queue: deque[Delivery], delivery: Delivery) -> None:
    """Put a delivery that was dispatched before (redelivered after a crash, handed
    back unrun, or due for a retry) at the front, in its first dispatch order among
    the others put back: a crash and a hand-back racing each other cannot swap two
    messages (rule *ordering*)."""
    seq = delivery.seq
    index = 0
    if seq:
        for item in queue:
            if not item.seq or item.seq > seq:
                break
            index += 1
    queue.insert(index, delivery)


class Dispatcher:
    """What the supervisor asks of a dispatch discipline.

    The supervisor owns the counters (queued, in flight); a dispatcher owns the
    order in which a job's queued deliveries are handed to routine actors.
    """

    name = ""

    def push(self, job: JobRun, delivery: Delivery, front: bool = False) -> None:
        """Queue one delivery of ``job`` (at the front for redeliveries)."""
        raise NotImplementedError

    def push_front(self, job: JobRun, deliveries: list[Delivery]) -> None:
        """Put deliveries back at the front, keeping their order."""
        for delivery in reversed(deliveries):
            self.push(job, delivery, front=True)

    def mark(self, job: JobRun, routine_id: str | None = None) -> None:
        """Note that ``job`` (or its work for one routine) may be dispatchable."""
        raise NotImplementedError

    def resume(self, job: JobRun) -> None:
        """A paused job runs again: reconsider all of its queued work."""
        self.mark(job)

    def routine_idle(self, routine_id: str) -> None:
        """A replica of ``routine_id`` finished or returned a delivery."""

    def queued(self, job: JobRun) -> list[Delivery]:
        """The job's queued deliveries (a copy, for pending_tasks and checkpoints)."""
        raise NotImplementedError

    def drain(self, job: JobRun) -> list[Delivery]:
        """Remove and return every queued delivery of ``job``."""
        raise NotImplementedError

    def take_routine(self, job: JobRun, routine_id: str) -> list[Delivery]:
        """Remove and return the job's queued deliveries for one routine."""
        raise NotImplementedError

    def dispatch(self) -> None:
        """Hand whatever may run now to routine actors (nothing while ``holding``)."""
        raise NotImplementedError


class SequentialDispatcher(Dispatcher):
    """One step in flight per job, in FIFO order (runs, see the module docstring)."""

    name = "sequential"

    def __init__(
        self,
        ledger: Any,
        send_one: Callable[[JobRun, Delivery], None],
        send_run: Callable[[JobRun], None],
    ) -> None:
        self.ledger = ledger
        self.send = send_one
        self.send_run = send_run
        self.ready: set[JobRun] = set()

    def push(self, job: JobRun, delivery: Delivery, front: bool = False) -> None:
        if front:
            put_back(job.queue, delivery)
        else:
            job.queue.append(delivery)
        self.ready.add(job)

    def mark(self, job: JobRun, routine_id: str | None = None) -> None:
        self.ready.add(job)

    def queued(self, job: JobRun) -> list[Delivery]:
        return list(job.queue)

    def drain(self, job: JobRun) -> list[Delivery]:
        items = list(job.queue)
        job.queue.clear()
        self.ready.discard(job)
        return items

    def take_routine(self, job: JobRun, routine_id: str) -> list[Delivery]:
        taken = [d for d in job.queue if d.routine_id == routine_id]
        if taken:
            kept = [d for d in job.queue if d.routine_id != routine_id]
            job.queue.clear()
            job.queue.extend(kept)
        return taken

    def dispatch(self) -> None:
        if not self.ready or self.ledger.holding:
            return
        jobs, self.ready = self.ready, set()
        for job in jobs:
            if job.running and job.in_flight == job.suspended and job.queue:
                if job.suspended:
                    delivery = self._runnable(job)
                    if delivery is not None:
                        self.send(job, delivery)
                else:
                    self.send_run(job)

    def _runnable(self, job: JobRun) -> Delivery | None:
        """While a step of the job waits in ``emit()`` (backpressure), the next
        message to start is the first one whose routine has an idle replica: a
        message for the waiting routine itself could not start, and taking the
        job's slot with it would deadlock the queue that has to drain."""
        entries = self.ledger.entries
        for index, delivery in enumerate(job.queue):
            if any(a.alive and a.outstanding == 0 for a in entries[delivery.routine_id].actors):
                del job.queue[index]
                return delivery
        return None


class ConcurrentDispatcher(Dispatcher):
    """Batches per routine actor, at most ``max_workers`` busy actors."""

    name = "concurrent"

    def __init__(
        self,
        ledger: Any,
        send_batch: Callable[[JobRun, Any, list[Delivery]], None],
        max_workers: int,
    ) -> None:
        self.ledger = ledger
        self.send_batch = send_batch
        self.max_workers = max_workers
        self.work: dict[str, deque[JobRun]] = {}  # routine id -> jobs with work for it
        self.dirty: set[str] = set()
        self.starved: set[str] = set()

    def push(self, job: JobRun, delivery: Delivery, front: bool = False) -> None:
        rid = delivery.routine_id
        q = job.queues.get(rid)
        if q is None:
            q = job.queues[rid] = deque()
        if not q:
            jobs = self.work.get(rid)
            if jobs is None:
                jobs = self.work[rid] = deque()
            jobs.append(job)
        if front:
            put_back(q, delivery)
        else:
            q.append(delivery)
        self.dirty.add(rid)

    def mark(self, job: JobRun, routine_id: str | None = None) -> None:
        if routine_id is not None:
            self.dirty.add(routine_id)
        else:
            self.dirty.update(rid for rid, q in job.queues.items() if q)

    def routine_idle(self, routine_id: str) -> None:
        self.dirty.add(routine_id)
        if self.starved:
            self.dirty |= self.starved
            self.starved.clear()

    def queued(self, job: JobRun) -> list[Delivery]:
        return [d for q in job.queues.values() for d in q]

    def take_routine(self, job: JobRun, routine_id: str) -> list[Delivery]:
        q = job.queues.get(routine_id)
        if not q:
            return []
        taken = list(q)
        q.clear()
        jobs = self.work.get(routine_id)
        if jobs and job in jobs:
            jobs.remove(job)
        return taken

    def drain(self, job: JobRun) -> list[Delivery]:
        return [d for rid in list(job.queues) for d in self.take_routine(job, rid)]

    def dispatch(self) -> None:
        ledger = self.ledger
        if not self.dirty or ledger.holding:
            return
        dirty, self.dirty = self.dirty, set()
        for rid in dirty:
            jobs = self.work.get(rid)
            if not jobs:
                continue
            entry = ledger.entries[rid]
            while jobs:
                actor = entry.pick_actor()
                if actor is None:
                    break  # every replica has a full batch; its DONE re-marks us
                # Steps waiting in emit() (backpressure) do not count as busy workers:
                # the consumers they wait for must be able to start.
                if (
                    actor.outstanding == 0
                    and ledger.busy_actors - ledger.suspended_total >= self.max_workers
                ):
                    self.starved.add(rid)
                    break
                job = jobs[0]
                q = job.queues[rid]
                if not job.running or not q:
                    jobs.popleft()  # paused jobs come back through resume()
                    continue
                take = min(entry.credit - actor.outstanding, len(q))
                replicas = len(entry.actors)
                if replicas > 1:  # share a burst between replicas
                    take = min(take, -(-len(q) // replicas))
                batch = [q.popleft() for _ in range(take)]
                if q:
                    jobs.rotate(-1)  # round-robin between jobs
                else:
                    jobs.popleft()
                self.send_batch(job, actor, batch)

    def resume(self, job: JobRun) -> None:
        for rid, q in job.queues.items():
            if q:
                jobs = self.work.setdefault(rid, deque())
                if job not in jobs:
                    jobs.append(job)
                self.dirty.add(rid)
