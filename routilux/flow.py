"""Flow: a graph of routines, and the control surface of its jobs."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from routilux._validate import (
    check_bool,
    check_choice,
    check_instance,
    check_int,
    check_number,
    check_store,
    check_str,
)
from routilux.connection import Connection
from routilux.error_handler import ErrorHandler
from routilux.exceptions import ConfigurationError, FlowStateError
from routilux.execution_tracker import ExecutionTracker
from routilux.flow_durability import DurabilityMixin
from routilux.flow_format import FlowFormatMixin
from routilux.flow_jobs import JobControlMixin, live_flows
from routilux.job_state import JobState
from routilux.routine import Routine, added_to_flow
from routilux.routine_options import routine_plan
from routilux.runtime import commands
from routilux.runtime.backends import backend_for
from routilux.runtime.bus import BusEvent, EventBus, Subscription
from routilux.runtime.mailbox import Mailbox
from routilux.runtime.plan import FlowPlan, RoutinePlan
from routilux.runtime.restart import RestartPolicy
from routilux.runtime.supervisor import FlowSupervisor
from routilux.wiring import find_connection, routes_of, routine_id_in

logger = logging.getLogger("routilux.flow")

STRATEGIES = ("sequential", "concurrent")


class _PlanSetting:
    """A Flow setting the runtime reads: changing it re-plans a running supervisor
    (the runtime sees settings only through the frozen FlowPlan)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_setting_" + name

    def __get__(self, flow: Any, owner: type | None = None) -> Any:
        if flow is None:
            return self
        return flow.__dict__[self.slot]

    def __set__(self, flow: Any, value: Any) -> None:
        flow.__dict__[self.slot] = value
        flow.__dict__["_graph_version"] = flow.__dict__.get("_graph_version", 0) + 1


class Flow(JobControlMixin, DurabilityMixin, FlowFormatMixin):
    """A graph of routines; runs jobs through a supervisor actor.

    ``execution_strategy``: ``"sequential"`` runs one step of a job at a time, in
    FIFO (breadth-first) order; ``"concurrent"`` lets up to ``max_workers`` routine
    actors work at once. Each routine always handles its own messages one at a time.
    ``max_queued_per_routine`` bounds what the supervisor holds for one routine
    before emitting steps wait (backpressure). ``record_history=False`` skips
    ``JobState.execution_history`` for the highest throughput.
    """

    __routilux_flow__ = True  # recognised by Routine.emit without an import

    execution_strategy = _PlanSetting()
    restart = _PlanSetting()
    checkpoint_interval = _PlanSetting()
    max_queued_per_routine = _PlanSetting()
    record_history = _PlanSetting()
    keep_finished_jobs = _PlanSetting()
    error_handler = _PlanSetting()
    ray_address = _PlanSetting()

    def __init__(
        self,
        flow_id: str | None = None,
        execution_strategy: str = "sequential",
        max_workers: int = 5,
        execution_timeout: float | None = None,
        *,
        restart: Any = None,
        checkpoint_store: Any = None,
        checkpoint_interval: float = 1.0,
        max_queued_per_routine: int = 10_000,
        record_history: bool = True,
        keep_finished_jobs: int = 100,
        ray_address: str | None = None,
    ) -> None:
        _check_strategy(execution_strategy, max_workers)
        check_str("flow_id", flow_id, optional=True)
        check_number("execution_timeout", execution_timeout, optional=True)
        check_instance("restart", restart, RestartPolicy)
        check_store("checkpoint_store", checkpoint_store)
        check_number("checkpoint_interval", checkpoint_interval)
        check_int("max_queued_per_routine", max_queued_per_routine, 1)
        check_bool("record_history", record_history)
        check_int("keep_finished_jobs", keep_finished_jobs, 0)
        check_str("ray_address", ray_address, optional=True)
        self._graph_version = 0
        self.flow_id: str = flow_id or str(uuid.uuid4())
        self._anonymous = flow_id is None  # a new id per process: not resumable
        self.execution_strategy = execution_strategy
        self._max_workers = int(max_workers)
        self.execution_timeout = execution_timeout
        self.restart = restart
        self._checkpoint_store = checkpoint_store
        self.checkpoint_interval = checkpoint_interval
        self.max_queued_per_routine = int(max_queued_per_routine)
        self.record_history = record_history
        self.keep_finished_jobs = keep_finished_jobs
        self.ray_address = ray_address
        self._last_checkpoint_error: BaseException | None = None
        self._claimed_store: Any = None  # the store this process may write (see _claim_store)
        self.routines: dict[str, Routine] = {}
        self.connections: list[Connection] = []
        self.error_handler: ErrorHandler | None = None
        self.output_handler: Any = None
        self.job_state: JobState | None = None  # the most recent job (0.10 compatibility)
        self.execution_tracker: ExecutionTracker | None = None
        self._plans: dict[str, RoutinePlan] = {}
        self._wiring: list[tuple[str, str, str, str, Connection]] = []
        self._supervisor: Any = None
        self._mailbox: Any = None
        self._supervisor_version = -1
        self._lock = threading.RLock()
        self._bus = EventBus()
        live_flows.add(self)

    @property
    def bus(self) -> EventBus:
        """The flow's event bus (see :meth:`subscribe`)."""
        return self._bus

    @bus.setter
    def bus(self, bus: EventBus) -> None:
        with self._lock:
            self._bus = bus  # e.g. a Runtime's, shared by the flows it hosts
            self._graph_version += 1

    def subscribe(
        self,
        target: Callable[[BusEvent], Any] | None = None,
        kinds: Iterable[str] | None = None,
        maxsize: int = 10_000,
    ) -> Subscription:
        """Watch the flow: job and routine events from its supervisor.

        ``target`` is called with each :class:`~routilux.runtime.bus.BusEvent` on a
        thread of its own; without it, read the returned subscription
        (``sub.get(timeout)``, or iterate). ``kinds`` limits the event kinds (default:
        all); ``maxsize`` bounds what is held for a slow reader, which then gets a
        ``"resync"`` event instead of what it missed. ``sub.close()`` stops it.
        """
        return self._bus.subscribe(target, kinds, maxsize)

    @property
    def last_checkpoint_error(self) -> BaseException | None:
        """Why the flow's last checkpoint failed (None: it was written). After
        ``shutdown()``, that of the final checkpoint it took."""
        with self._lock:
            supervisor = self._supervisor
        if supervisor is not None and supervisor.is_alive():
            return supervisor.ask(commands.GetCheckpointError())
        return self._last_checkpoint_error

    def fix_id(self, flow_id: str) -> None:
        """Give a flow built without ``flow_id`` a stable id before it first runs,
        so that its jobs can be recovered by a later process (``routilux run`` does
        this for such flows, deriving the id from where the flow is defined)."""
        check_str("flow_id", flow_id)
        with self._lock:
            if self._supervisor is not None:
                raise FlowStateError(
                    f"flow {self.flow_id!r} is running; its id can only be set before"
                )
            self.flow_id = flow_id
            self._anonymous = False
            self._graph_version += 1

    @property
    def has_fixed_id(self) -> bool:
        """False when the flow was built without ``flow_id``: its id is new in every
        process, so its jobs cannot be recovered by a later one."""
        return not self._anonymous

    @property
    def checkpoint_store(self) -> Any:
        """Where the flow's checkpoints go (None: not durable)."""
        return self._checkpoint_store

    @checkpoint_store.setter
    def checkpoint_store(self, store: Any) -> None:
        with self._lock:
            self._checkpoint_store = store
            self._graph_version += 1  # the running supervisor takes it with the plan

    @property
    def max_workers(self) -> int:
        """Steps of a job in flight at once: the configured number for
        ``concurrent``, 1 for ``sequential`` (as in 0.10)."""
        return self._max_workers if self.execution_strategy == "concurrent" else 1

    @max_workers.setter
    def max_workers(self, value: int) -> None:
        _check_strategy("concurrent", value)
        with self._lock:
            self._max_workers = int(value)
            self._graph_version += 1

    # ------------------------------------------------------------------ building
    def add_routine(
        self,
        routine: Routine,
        routine_id: str | None = None,
        *,
        execution: str = "thread",
        workers: int = 1,
        restart: Any = None,
        timeout: float | None = None,
        ray_options: dict[str, Any] | None = None,
    ) -> str:
        """Add ``routine`` under ``routine_id`` (default: ``routine._id``); returns the id.

        ``execution="thread"`` runs it on its own thread, ``"process"`` in its own OS
        process, ``"ray"`` as a Ray actor (extra ``routilux[ray]``; ``ray_options``
        places it: ``num_cpus`` (default 1), ``num_gpus``, ``memory``, ``resources``,
        ``scheduling_strategy``, ``runtime_env``); ``workers=N`` starts N replicas.
        ``timeout`` bounds one step (process and ray routines).
        """
        if not isinstance(routine, Routine):
            raise ConfigurationError(
                f"add_routine expects a Routine instance, got {type(routine).__name__}"
            )
        rid = routine_id if routine_id is not None else routine._id
        if not isinstance(rid, str) or not rid:
            raise ConfigurationError(f"routine_id must be a non-empty string, got {rid!r}")
        if rid in self.routines:
            raise ConfigurationError(
                f"flow {self.flow_id!r} already has a routine {rid!r}; routines: "
                f"{sorted(self.routines)}"
            )
        for other_id, other in self.routines.items():
            if other is routine:
                raise ConfigurationError(
                    f"this {type(routine).__name__} object is already in the flow as "
                    f"{other_id!r}; 0.10 ran one object under two ids, here each routine "
                    "object is one actor: add a second instance instead"
                )
        plan = routine_plan(rid, routine, execution, workers, restart, timeout, ray_options)
        with self._lock:
            self.routines[rid] = routine
            self._plans[rid] = plan
            self._graph_version += 1
        added_to_flow(routine, self)
        return rid

    def connect(
        self,
        source_routine_id: str,
        source_event: str,
        target_routine_id: str,
        target_slot: str,
        param_mapping: dict[str, str] | None = None,
    ) -> Connection:
        """Connect an event of one routine to a slot of another (or the same)."""
        source = self._routine(source_routine_id, "source")
        target = self._routine(target_routine_id, "target")
        event = source.get_event(source_event)
        if event is None:
            raise ConfigurationError(
                f"routine {source_routine_id!r} has no event {source_event!r}; "
                f"events: {sorted(source._events)}"
            )
        slot = target.get_slot(target_slot)
        if slot is None:
            raise ConfigurationError(
                f"routine {target_routine_id!r} has no slot {target_slot!r}; "
                f"slots: {sorted(target._slots)}"
            )
        connection = Connection(event, slot, param_mapping)
        with self._lock:
            self.connections.append(connection)
            self._wiring.append(
                (source_routine_id, source_event, target_routine_id, target_slot, connection)
            )
            self._graph_version += 1
        return connection

    def _routine(self, routine_id: str, role: str) -> Routine:
        routine = self.routines.get(routine_id)
        if routine is None:
            raise ConfigurationError(
                f"flow {self.flow_id!r} has no {role} routine {routine_id!r}; "
                f"routines: {sorted(self.routines)}"
            )
        return routine

    def get_routine(self, routine_id: str) -> Routine | None:
        """The routine added as ``routine_id``, or None."""
        return self.routines.get(routine_id)

    def _links_changed(self) -> None:
        """An event of one of our routines was linked or unlinked: the next job gets
        a routing plan that has it."""
        with self._lock:
            self._graph_version += 1

    def _get_routine_id(self, routine: Routine) -> str | None:
        """The id ``routine`` was added under, or None (0.10 helper)."""
        return routine_id_in(self, routine)

    def _find_connection(self, event: Any, slot: Any) -> Connection | None:
        """The ``Connection`` from ``event`` to ``slot`` in this flow, or None (0.10 helper)."""
        return find_connection(self, event, slot)

    def set_error_handler(self, error_handler: ErrorHandler | None) -> None:
        """The handler for routines that have none of their own."""
        self.error_handler = error_handler

    def get_error_handler(self) -> ErrorHandler | None:
        """The flow-wide error handler, or None (then STOP)."""
        return self.error_handler

    def set_output_handler(self, output_handler: Any) -> None:
        """Where ``send_output`` data of new jobs goes."""
        self.output_handler = output_handler

    def set_execution_strategy(self, strategy: str, max_workers: int | None = None) -> None:
        """Switch between ``"sequential"`` and ``"concurrent"`` (no job may be running)."""
        max_workers = self._max_workers if max_workers is None else max_workers
        _check_strategy(strategy, max_workers)
        with self._lock:
            if self._supervisor is not None and self._supervisor.ask(commands.GetLiveJobs()):
                raise FlowStateError(
                    "cannot change the execution strategy while jobs are running; "
                    "wait for them or cancel them first"
                )
            self.execution_strategy = strategy
            self.max_workers = max_workers

    # ------------------------------------------------------------------ running
    def _plan(self) -> FlowPlan:
        """Everything the runtime reads of this flow, frozen (see runtime/plan.py)."""
        return FlowPlan(
            flow_id=self.flow_id,
            owner=self,
            routines=dict(self._plans),
            routes=routes_of(self),
            bus=self._bus,
            store=self._checkpoint_store,
            error_handler=self.error_handler,
            restart=self.restart,
            execution_strategy=self.execution_strategy,
            max_workers=self._max_workers,
            max_queued_per_routine=self.max_queued_per_routine,
            record_history=self.record_history,
            checkpoint_interval=self.checkpoint_interval,
            keep_finished_jobs=self.keep_finished_jobs,
            ray_address=self.ray_address,
            replica_states=getattr(self, "_replica_states", {}),
        )

    def _ensure_supervisor(self) -> Any:
        with self._lock:
            if self._supervisor is not None and not self._supervisor.is_alive():
                # It failed its jobs on the way down (FlowSupervisor.on_failure).
                logger.error(
                    "flow %r: its supervisor had stopped; starting a new one", self.flow_id
                )
                self._supervisor = None
                self._claimed_store = None
            if self._supervisor is None:
                mailbox = Mailbox()
                ref = FlowSupervisor.start(self._plan(), mailbox)
                mailbox.ref = ref
                self._supervisor = ref
                self._mailbox = mailbox
                self._supervisor_version = -1
            if self._supervisor_version != self._graph_version:
                version = self._graph_version
                plan = self._plan()
                for kind in sorted({p.execution for p in plan.routines.values()}):
                    backend_for(kind).prepare(plan)  # on this thread, not the supervisor's
                self._supervisor.ask(commands.ApplyPlan(plan))
                self._supervisor_version = version
                self._replica_states = {}  # used once: a later start uses live state
            return self._supervisor

    def __repr__(self) -> str:
        return (
            f"Flow({self.flow_id!r}, {self.execution_strategy}, routines={len(self.routines)}, "
            f"connections={len(self.connections)})"
        )


def _check_strategy(strategy: str, max_workers: int) -> None:
    check_choice("execution_strategy", strategy, STRATEGIES)
    check_int("max_workers", max_workers, 1)
