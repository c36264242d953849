"""The ledger: the supervisor's records of routines, replicas, live jobs and what is
in flight. Every collaborator of the supervisor reads and writes these records, and
only on the supervisor's thread (rule *threads own records*: a process actor's
reader thread and the timer thread post messages; they never write here).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from routilux.exceptions import FlowStateError
from routilux.runtime.backpressure import Gate
from routilux.runtime.bus import EventBus
from routilux.runtime.dispatch import JobRun
from routilux.runtime.mailbox import Mailbox
from routilux.runtime.messages import Delivery
from routilux.runtime.metrics import RoutineFigures
from routilux.runtime.plan import FlowPlan, RoutinePlan
from routilux.runtime.timers import Timers


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
        "backend",
        "actors",
        "queued",
        "credit",
        "figures",
        "crash_times",
        "waiting_jobs",
        "next_pick",
        "broken",
        "synced",
    )

    def __init__(self, plan: RoutinePlan, backend: Any) -> None:
        self.routine_id = plan.routine_id
        self.routine = plan.routine
        self.plan = plan
        self.backend = backend  # how its replicas run (routilux.runtime.backends)
        self.actors: list[ActorHandle] = []
        self.queued = 0
        self.credit: int = backend.credit
        self.figures = RoutineFigures()
        self.crash_times: list[float] = []
        self.waiting_jobs: set[JobRun] = set()  # sequential jobs waiting for a restart
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


class RuntimeEnv:
    """What routine actors share with the supervisor: read-mostly, set at plan time."""

    def __init__(self, mailbox: Mailbox, gate: Gate, timers: Timers) -> None:
        self.mailbox = mailbox
        self.gate = gate
        self.timers = timers
        self.flow_id = ""
        self.owner: Any = None  # the Flow, for handlers' execution context
        self.restart: Any = None  # the flow's RestartPolicy (process backends read it)
        self.targets: dict[tuple[str, str], tuple[str, ...]] = {}
        self.rid_by_object: dict[int, str] = {}
        self.kinds: dict[str, str] = {}  # routine id -> execution kind
        self.ray_address: str | None = None  # where ray routines run (ray backend)
        # A copy of Ledger.holding (a cut is waiting): replicas hand back the rest
        # of a batch instead of starting steps (rule *cuts never wait on dispatch*).
        self.holding = False

    def routine_id_of(self, routine: Any) -> str:
        """The flow's id for a routine object (for emits on behalf of another routine)."""
        try:
            return self.rid_by_object[id(routine)]
        except KeyError:
            raise FlowStateError(
                f"{routine!r} emitted inside a job of flow {self.flow_id!r} but is "
                "not one of its routines"
            ) from None


class Ledger:
    """The records (see the module docstring) and the counters kept in step with them."""

    def __init__(self, plan: FlowPlan, mailbox: Mailbox) -> None:
        self.plan = plan
        self.mailbox = mailbox
        self.timers = Timers(f"routilux-timers-{plan.flow_id}")
        self.gate = Gate(plan.max_queued_per_routine, mailbox.__len__)
        self.env = RuntimeEnv(mailbox, self.gate, self.timers)
        self.entries: dict[str, RoutineEntry] = {}
        self.jobs: dict[str, JobRun] = {}
        self.dispatcher: Any = None  # set by the supervisor (routilux.runtime.dispatch)
        self.outstanding_total = 0  # deliveries sent to actors and not yet back
        self.suspended_total = 0  # of those, steps waiting in emit() for room
        self.busy_actors = 0  # replicas with something outstanding
        self.seq = 0  # dispatch order, to put deliveries handed back in their place
        self._holding = False
        self.wall_offset = time.time() - time.perf_counter()

    @property
    def holding(self) -> bool:
        """Dispatch is held for a checkpoint (replicas see it too, see RuntimeEnv)."""
        return self._holding

    @holding.setter
    def holding(self, value: bool) -> None:
        self._holding = self.env.holding = value

    @property
    def bus(self) -> EventBus:
        """Where the flow's events go (the plan's bus)."""
        return self.plan.bus

    @property
    def flow_id(self) -> str:
        """The flow's id."""
        return self.plan.flow_id

    def live_jobs(self) -> list[JobRun]:
        """Jobs not yet completed, failed or cancelled."""
        return [job for job in self.jobs.values() if job.live]

    def release(self, actor: ActorHandle, count: int) -> RoutineEntry | None:
        """``count`` deliveries came back from ``actor`` (done or returned): free its
        credit and let work waiting for this routine go on."""
        actor.outstanding -= count
        self.outstanding_total -= count
        if actor.outstanding == 0:
            self.busy_actors -= 1
        self.dispatcher.routine_idle(actor.routine_id)
        entry = self.entries.get(actor.routine_id)
        if entry is not None and entry.waiting_jobs:
            self.wake_waiting(entry)
        return entry

    def lose(self, actor: ActorHandle, lost: list[Delivery]) -> None:
        """``actor`` died with ``lost`` deliveries outstanding: take them off its count."""
        self.outstanding_total -= len(lost)
        actor.outstanding -= len(lost)
        if actor.outstanding <= 0:
            if actor.outstanding + len(lost) > 0:
                self.busy_actors -= 1
            actor.outstanding = 0
        for delivery in lost:
            delivery.job.in_flight -= 1

    def wake_waiting(self, entry: RoutineEntry) -> None:
        """Jobs parked until ``entry`` had room (or a live replica) may go on."""
        for job in entry.waiting_jobs:
            self.dispatcher.mark(job)
        entry.waiting_jobs.clear()

    def sync_process_states(self) -> None:
        """Bring the caller's routine objects up to date with their replicas'
        reported states (only those that reported something new)."""
        for entry in self.entries.values():
            entry.backend.sync(entry)
