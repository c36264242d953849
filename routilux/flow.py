"""Flow: a graph of routines, and the control surface of its jobs."""

from __future__ import annotations

import atexit
import importlib
import logging
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from routilux._context import current_step
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
from routilux.exceptions import CheckpointError, ConfigurationError, FlowStateError
from routilux.execution_tracker import ExecutionTracker
from routilux.job_state import JobState
from routilux.routine import Routine, added_to_flow
from routilux.runtime.bus import BusEvent, EventBus, Subscription
from routilux.runtime.restart import RestartPolicy
from routilux.serialization import dual_method
from routilux.wiring import find_connection, routes_of, routine_id_in

logger = logging.getLogger("routilux.flow")

STRATEGIES = ("sequential", "concurrent")
EXECUTIONS = ("thread", "process")


@dataclass
class RoutinePlan:
    """How one routine of a flow runs."""

    routine_id: str
    routine: Routine
    execution: str = "thread"
    workers: int = 1
    restart: Any = None
    timeout: float | None = None


class Flow:
    """A graph of routines; runs jobs through a supervisor actor.

    ``execution_strategy``: ``"sequential"`` runs one step of a job at a time, in
    FIFO (breadth-first) order; ``"concurrent"`` lets up to ``max_workers`` routine
    actors work at once. Each routine always handles its own messages one at a time.
    ``max_queued_per_routine`` bounds what the supervisor holds for one routine
    before emitting steps wait (backpressure). ``record_history=False`` skips
    ``JobState.execution_history`` for the highest throughput.
    """

    __routilux_flow__ = True  # recognised by Routine.emit without an import

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
        self._graph_version = 0
        self._supervisor: Any = None
        self._mailbox: Any = None
        self._supervisor_version = -1
        self._lock = threading.RLock()
        self._bus = EventBus()
        _live_flows.add(self)

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
        self._max_workers = int(value)

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
    ) -> str:
        """Add ``routine`` under ``routine_id`` (default: ``routine._id``); returns the id.

        ``execution="thread"`` runs it on its own thread, ``"process"`` in its own OS
        process; ``workers=N`` starts N replicas. ``timeout`` bounds one step.
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
        check_choice("execution", execution, EXECUTIONS)
        check_int("workers", workers, 1)
        check_instance("restart", restart, RestartPolicy)
        check_number("timeout", timeout, optional=True)
        if execution == "process":
            from routilux.runtime.wire import dumps_or_explain

            dumps_or_explain(routine, f"routine {rid!r}:")  # fail now, not in a child
        elif timeout is not None:
            raise ConfigurationError(
                f"routine {rid!r}: timeout needs execution='process' (a thread cannot be "
                "interrupted; a process is killed and restarted)"
            )
        with self._lock:
            self.routines[rid] = routine
            self._plans[rid] = RoutinePlan(rid, routine, execution, workers, restart, timeout)
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
            if self._supervisor is not None:
                self._supervisor.ask(("strategy", strategy, max_workers))
            self.execution_strategy = strategy
            self._max_workers = max_workers

    # ------------------------------------------------------------------ running
    def _plan(self) -> dict[str, Any]:
        return {
            "routines": dict(self._plans),
            "routes": routes_of(self),
            "replica_states": getattr(self, "_replica_states", {}),
            "store": self.checkpoint_store,
            "bus": self.bus,
        }

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
                from routilux.runtime.mailbox import Mailbox
                from routilux.runtime.supervisor import FlowSupervisor

                mailbox = Mailbox()
                ref = FlowSupervisor.start(self, mailbox)
                mailbox.ref = ref
                self._supervisor = ref
                self._mailbox = mailbox
                self._supervisor_version = -1
            if self._supervisor_version != self._graph_version:
                plan = self._plan()
                self._supervisor.ask(("plan", plan))
                self._supervisor_version = self._graph_version
                self._replica_states = {}  # used once: a later start uses live state
            return self._supervisor

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
                if job_id in supervisor.ask(("job_ids",)):
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
        state._set_status("running")
        self.job_state = state
        self.execution_tracker = state.execution_tracker
        params = dict(entry_params or {})
        if self.checkpoint_store is not None:
            self._claim_store()
            self._write_intent(state, entry_routine_id, entry_slot, params, timeout)
        supervisor.tell(("start", state, entry_routine_id, entry_slot, params, timeout))
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
        supervisor.ask(("pause", job_state, reason, checkpoint))
        if _in_handler():
            if self.checkpoint_store is not None:
                supervisor.ask(("checkpoint",))  # written once the step returns
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
                if job_state.job_id not in supervisor.ask(("job_ids",)):
                    self._adopt_paused(supervisor, job_state)
        supervisor = self._require_supervisor(job_state)
        supervisor.ask(("resume", job_state))
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
        supervisor.ask(("adopt", [{"state": job_state, "slot_data": {}, "queue": queue}]))
        self.job_state = job_state
        self.execution_tracker = job_state.execution_tracker

    def cancel(self, job_state: JobState, reason: str = "") -> JobState:
        """Cancel one job: its queued messages are dropped, it ends as ``cancelled``."""
        if self._finished(job_state):
            return job_state
        supervisor = self._require_supervisor(job_state)
        supervisor.ask(("cancel", job_state, reason))
        if self.checkpoint_store is not None:
            if _in_handler():
                supervisor.ask(("checkpoint",))  # written once the step returns
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
        return supervisor.ask(("job_states",))

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

    # ------------------------------------------------------------------ durability
    def checkpoint(self, timeout: float | None = None) -> None:
        """Take a checkpoint now and wait for it (needs ``checkpoint_store``).

        Raises CheckpointError if it could not be written.
        """
        if self.checkpoint_store is None:
            raise ConfigurationError(f"flow {self.flow_id!r} has no checkpoint_store")
        if _in_handler():
            raise FlowStateError(
                "checkpoint() cannot be waited for inside a handler: a checkpoint waits "
                "for every running step, this one included"
            )
        with self._lock:
            supervisor = self._supervisor
        if supervisor is None:
            return
        self._claim_store()
        ticket = supervisor.ask(("checkpoint",))
        if not ticket.wait(timeout):
            raise CheckpointError(
                f"checkpoint of flow {self.flow_id!r} did not finish in {timeout} s"
            )
        if ticket.error is not None:
            if isinstance(ticket.error, FlowStateError):  # the flow shut down meanwhile
                raise CheckpointError(f"no checkpoint taken: {ticket.error}")
            raise ticket.error

    def _claim_store(self) -> None:
        """Durability rule *store ownership*: this process writes the flow's
        checkpoints only while it holds every unfinished job of the flow that the
        store knows of (a new cut would otherwise prune the checkpoint holding them).
        """
        store = self.checkpoint_store
        if self._claimed_store is store:
            return
        store.check_key()
        unfinished = store.unfinished_jobs(self.flow_id)
        if unfinished:
            shown = ", ".join(unfinished[:3]) + (" ..." if len(unfinished) > 3 else "")
            raise FlowStateError(
                f"flow {self.flow_id!r} has {len(unfinished)} unfinished job(s) in "
                f"{store.location} that this process has not recovered ({shown}); call "
                "flow.recover() (or `routilux resume JOB_ID`) before starting new jobs, "
                "so that they are not lost"
            )
        self._claimed_store = store

    def _write_intent(
        self, state: JobState, routine_id: str, slot: str, params: dict, timeout: float | None
    ) -> None:
        from routilux.checkpoint.format import encode
        from routilux.runtime.ids import root_id
        from routilux.runtime.wire import describe_unpicklable, dumps

        record = {
            "state": state,
            "slot_data": {},
            "timeout": timeout,
            "queue": [(root_id(state.job_id), routine_id, slot, params, None, 0, 0)],
        }
        try:
            payload = dumps(record)
        except Exception as exc:
            raise CheckpointError(
                f"cannot make job durable: {describe_unpicklable(params, 'entry_params')} "
                f"cannot be pickled ({type(exc).__name__}: {exc})"
            ) from None
        store = self.checkpoint_store
        blob = encode(
            self.flow_id, payload, store.key, [{"job_id": state.job_id, "status": "running"}]
        )
        store.add_intent(self.flow_id, state.job_id, blob)

    def recover(self, store: Any = None) -> list[JobState]:
        """Load this flow's latest checkpoint and continue every unfinished job.

        Call it in a fresh process on a flow built by the same code. Routine objects
        in ``flow.routines`` get their saved state; running jobs continue, paused
        ones stay paused (``resume()`` them), finished ones come back as they were.
        Every message is handled at least once; the flow's own state (routine state,
        stats, slot data, JobState) counts each exactly once. Returns every job.
        """
        from routilux.checkpoint.format import decode
        from routilux.runtime.replicas import apply_replica_states
        from routilux.runtime.snapshot import restore_state
        from routilux.runtime.wire import loads

        store = check_store("store", store) if store is not None else self.checkpoint_store
        if store is None:
            raise ConfigurationError(
                f"flow {self.flow_id!r} has no checkpoint_store; pass recover(store=...)"
            )
        with self._lock:
            if self._supervisor is not None and self._supervisor.ask(("live_jobs",)):
                raise FlowStateError("recover() needs a flow with no running jobs")
        self.checkpoint_store = store
        where = f"{store.location} (flow {self.flow_id!r})"
        blob = store.load_latest(self.flow_id)
        records: list[dict[str, Any]] = []
        finished: list[JobState] = []
        replica_states: dict[str, list] = {}
        if blob is not None:
            _, payload = decode(blob, store.key, self.flow_id, where)
            for rid, saved in payload["routines"].items():
                routine = self.routines.get(rid)
                if routine is None:
                    continue  # the flow no longer has this routine
                if "state" in saved:
                    restore_state(routine, loads(saved["state"]))
                else:
                    replica_states[rid] = saved["replicas"]
                    apply_replica_states(routine, rid, saved["replicas"], saved["stats"])
            records = payload["jobs"]
            # Checkpoints of 0.11.0 carried finished jobs inline.
            finished = [loads(data) for data in payload.get("finished", ())]
        for data in store.load_finished(self.flow_id, self.keep_finished_jobs):
            _, state = decode(data, store.key, self.flow_id, f"{where} finished job")
            finished = [st for st in finished if st.job_id != state.job_id]
            finished.append(state)
        live_ids = {r["state"].job_id for r in records}
        finished_at = {st.job_id: st.finished_at for st in finished}
        for intent in store.intents(self.flow_id):
            _, record = decode(intent, store.key, self.flow_id, f"{where} job intent")
            state = record["state"]
            if state.job_id in live_ids:
                continue  # the checkpoint already has it
            ended = finished_at.get(state.job_id)
            if ended is not None and ended >= state.created_at:
                continue  # that very submission finished before the checkpoint
            if ended is not None:  # the id was used again after a finished job
                finished = [st for st in finished if st.job_id != state.job_id]
            records.append(record)
            live_ids.add(state.job_id)
        for record in records:
            record["state"].output_handler = self.output_handler
            record["state"].execution_tracker = ExecutionTracker(record["state"], flow=self)
        self._replica_states = replica_states
        store.check_key()
        self._claimed_store = store  # every unfinished job is now held here
        if replica_states:
            self._graph_version += 1  # the supervisor must take the recovered states
        if records:
            supervisor = self._ensure_supervisor()
            supervisor.ask(("adopt", records))
        jobs = [st for st in finished] + [r["state"] for r in records]
        if records:
            self.job_state = records[-1]["state"]
        return jobs

    def metrics(self) -> dict[str, dict[str, Any]]:
        """Per-routine runtime figures: processed, failed, queued, in_flight,
        restarts, mean_ms, p95_ms (zeros before the first job)."""
        with self._lock:
            supervisor = self._supervisor
        if supervisor is not None:
            return supervisor.ask(("metrics",))
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
        import pykka

        deadline = time.monotonic() + timeout
        if self.checkpoint_store is not None:
            try:
                ticket = supervisor.ask(("park",), timeout=timeout)
                ticket.wait(max(deadline - time.monotonic(), 0.0))
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

    # ------------------------------------------------------------------ serialization
    def serialize(self) -> dict[str, Any]:
        """The graph as a JSON-compatible dict (routine ids on every connection).

        Routines are recorded by class path, config and error handler; handlers are
        code and come back from the class when :meth:`deserialize` builds new
        instances. Callables in config are written as function or method
        references or lambda expressions (see :mod:`routilux.serialization`);
        values with no JSON form are left out and their keys listed under
        ``unserialized_config``: set them again after deserializing. Links made
        with ``Event.connect`` are not included (as in 0.10).
        """
        return {
            "_type": "Flow",
            "format": "routilux.flow/1",
            "flow_id": self.flow_id,
            "execution_strategy": self.execution_strategy,
            "max_workers": self._max_workers,
            "execution_timeout": self.execution_timeout,
            "routines": {rid: _routine_spec(p) for rid, p in self._plans.items()},
            "connections": [
                {
                    "source_routine_id": src,
                    "source_event": event,
                    "target_routine_id": dst,
                    "target_slot": slot,
                    "param_mapping": connection.param_mapping or None,
                }
                for src, event, dst, slot, connection in self._wiring
                if connection in connection.source_event.connections  # still linked
            ],
            "error_handler": self.error_handler.serialize() if self.error_handler else None,
        }

    @dual_method
    def deserialize(cls, data: dict[str, Any]) -> Flow:
        """Build a flow from :meth:`serialize` output (routine classes are imported).

        ``Flow.deserialize(d)`` returns a new flow; ``flow.deserialize(d)`` (the 0.10
        way) replaces that flow's routines and connections and returns it (it must
        run no job). Only load trusted data: it names classes and functions to import.
        """
        if not isinstance(data, dict) or data.get("format") != "routilux.flow/1":
            raise ConfigurationError(
                "not a serialized flow (expected format 'routilux.flow/1'); 0.10's flow "
                "format does not load: rebuild the flow in code, then serialize() it again"
            )
        flow = cls(
            data.get("flow_id"),
            data.get("execution_strategy", "sequential"),
            data.get("max_workers", 5),
            data.get("execution_timeout"),
        )
        for rid, spec in data["routines"].items():
            routine = _import_class(spec["class"])()
            routine._deserialize_config(spec.get("config", {}))
            if spec.get("error_handler"):
                routine.set_error_handler(ErrorHandler().deserialize(spec["error_handler"]))
            flow.add_routine(
                routine,
                rid,
                execution=spec.get("execution", "thread"),
                workers=spec.get("workers", 1),
                timeout=spec.get("timeout"),
            )
        for c in data["connections"]:
            flow.connect(
                c["source_routine_id"],
                c["source_event"],
                c["target_routine_id"],
                c["target_slot"],
                c.get("param_mapping"),
            )
        handler = data.get("error_handler")
        if handler:
            flow.error_handler = ErrorHandler().deserialize(handler)
        return flow

    @deserialize.instance
    def _deserialize_into(self, data: dict[str, Any]) -> Flow:
        loaded = type(self).deserialize(data)
        with self._lock:
            if self._supervisor is not None and self._supervisor.ask(("live_jobs",)):
                raise FlowStateError(
                    f"flow {self.flow_id!r} runs jobs; deserialize into an idle flow"
                )
        self.shutdown()
        _live_flows.discard(loaded)
        self.__dict__.update(loaded.__dict__)
        for routine in self.routines.values():
            added_to_flow(routine, self)
        return self

    def __repr__(self) -> str:
        return (
            f"Flow({self.flow_id!r}, {self.execution_strategy}, routines={len(self.routines)}, "
            f"connections={len(self.connections)})"
        )

    # ------------------------------------------------------------------ flow files
    #: The entry routine and slot a flow file named (set by :meth:`from_file`).
    entry: tuple[str, str] | None = None

    @classmethod
    def from_file(cls, path: str, allowed_modules: Iterable[str] = ()) -> Flow:
        """Build a flow from a YAML or JSON flow file ``path`` (a str or path object;
        see the "Flow files" docs page).

        Routine classes are imported only from modules in ``allowed_modules``
        (``"package.module"``, or ``"package.*"`` for a package and everything below
        it); built-in routines are always allowed. Nothing is imported before the
        file passed its syntax, schema and allow-list checks. Raises
        :class:`~routilux.exceptions.FlowFileError` listing every problem found.
        """
        from routilux.flowfile import load_file  # PyYAML loads on first use only

        return load_file(path, allowed_modules, cls)

    def to_file(self, path: str) -> None:
        """Write this flow as a flow file (YAML, or JSON for a ``.json`` path) that
        :meth:`from_file` loads back to an equal graph."""
        from routilux.flowfile import dump_file  # PyYAML loads on first use only

        dump_file(self, path)


def _in_handler() -> bool:
    """True when called from a step (a handler run by some flow's actor)."""
    return current_step() is not None


def _routine_spec(plan: RoutinePlan) -> dict[str, Any]:
    routine = plan.routine
    config = routine._serialize_config(strict=False)
    handler = routine.get_error_handler()
    return {
        "class": f"{type(routine).__module__}:{type(routine).__qualname__}",
        "config": config,
        "unserialized_config": sorted(set(routine._config) - set(config)),
        "error_handler": handler.serialize() if handler is not None else None,
        "execution": plan.execution,
        "workers": plan.workers,
        "timeout": plan.timeout,
    }


def _check_strategy(strategy: str, max_workers: int) -> None:
    check_choice("execution_strategy", strategy, STRATEGIES)
    check_int("max_workers", max_workers, 1)


def _import_class(path: str) -> type:
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot import routine class {path!r}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Routine)):
        raise ConfigurationError(f"{path!r} is not a Routine class")
    return obj


_live_flows: weakref.WeakSet[Flow] = weakref.WeakSet()


@atexit.register
def _shutdown_all_flows() -> None:
    for flow in list(_live_flows):
        try:
            flow.shutdown(timeout=2.0)
        except Exception:
            pass
