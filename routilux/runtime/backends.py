"""Backends: how the replicas of a routine run. The supervisor talks to every kind
through this one interface and never branches on the kind.

A backend implements:

``credit``
    How many deliveries one replica may hold at once (a batch for a thread; for a
    process, about 5 ms of its recent steps, see ``process_actor``).
``serial_run``
    How many consecutive deliveries of a *sequential* job one replica may be
    handed at once (default 1). More than one only for a kind whose replica runs
    them in order, hands back the rest of the run unrun (RETURNED, before the
    DONE) when a step fails, and hands it back before SUSPEND when a step waits
    in emit() (see ``thread_actor``).
``prepare(plan)``
    Called on the caller's thread (not the supervisor's) before a plan that has
    routines of this kind is applied.
``start(entry, handle, env) -> list``
    Start the replica ``handle`` of ``entry``; return futures to wait for (process
    starts are waited for together, so N replicas cost one start-up, not N).
``deliver(handle, batch)``
    Hand a batch of deliveries to the replica. Called on the supervisor's thread;
    must not block. Results come back as messages (``messages.py``): EMIT, DONE
    (or DONE_BATCH), RETURNED, OUTPUT, DEFER, SUSPEND/UNSUSPEND, REPORT.
``restart(entry, handle, env)``
    Start a replacement for a replica that died, from ``handle.state_bytes`` (its
    last reported state) where the kind has one; report RESTARTED when done.
``stop(handle)`` / ``join(handle, timeout)``
    Ask a replica to stop (without waiting), then wait for it.
``sync(entry)``
    Bring the caller's routine object up to date with what the replicas reported.
``record(entry) -> dict``
    The routine's state for a checkpoint (raises CheckpointError naming what
    cannot be pickled).
``figures(entry) -> dict``
    Extra per-routine figures for ``metrics()`` (pids, CPU, RSS for processes).

Death notice: a replica that dies posts CRASHED with the deliveries it lost; the
supervisor's restart logic (``restarts.py``) does the rest, the same for every kind.
The third backend, Ray (``ray_backend.py``, loaded on first use), is written
against this interface alone.
"""

from __future__ import annotations

import importlib
from typing import Any

import psutil
import pykka

from routilux.exceptions import ConfigurationError
from routilux.runtime.mailbox import Mailbox
from routilux.runtime.messages import RESTARTED
from routilux.runtime.process_actor import ProcessRoutineActor
from routilux.runtime.replicas import apply_replica_states
from routilux.runtime.restart import RestartPolicy
from routilux.runtime.snapshot import check_process_state, pickle_state
from routilux.runtime.thread_actor import ThreadRoutineActor
from routilux.runtime.wire import dumps_or_explain

THREAD_BATCH = 64  # deliveries handed to a thread actor at once (concurrent mode)
PROCESS_CREDIT = 2  # per process replica to begin with; then about 5 ms of its steps


class RoutineBackend:
    """The interface every backend implements (see the module docstring)."""

    credit: int  #: deliveries one replica may hold at once
    serial_run = 1  #: deliveries of a sequential job handed over at once

    def prepare(self, plan: Any) -> None:
        """Called on the caller's thread before a plan with routines of this kind
        is applied (the Ray backend connects to Ray there)."""

    def start(self, entry: Any, handle: Any, env: Any) -> list[Any]:
        """Start replica ``handle`` of ``entry``; futures to wait for (their results
        are the replicas' pids)."""
        raise NotImplementedError

    def deliver(self, handle: Any, batch: list[Any]) -> None:
        """Hand ``batch`` to the replica; never blocks (supervisor thread)."""
        raise NotImplementedError

    def restart(self, entry: Any, handle: Any, env: Any) -> None:
        """Replace a dead replica from its last reported state; post RESTARTED."""
        raise NotImplementedError

    def stop(self, handle: Any) -> None:
        """Ask the replica to stop, without waiting."""
        try:
            handle.ref.stop(block=False)
        except pykka.ActorDeadError:
            pass

    def join(self, handle: Any, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for a stopped replica to end."""
        if handle.thread is not None:
            handle.thread.join(timeout)

    def sync(self, entry: Any) -> None:
        """Bring the caller's routine object up to date with its replicas."""

    def record(self, entry: Any) -> dict[str, Any]:
        """The routine's state for a checkpoint."""
        raise NotImplementedError

    def figures(self, entry: Any) -> dict[str, Any]:
        """Extra figures for ``metrics()``."""
        return {}


class ThreadBackend(RoutineBackend):
    """Replicas are pykka threads hosting the routine object itself."""

    credit = THREAD_BATCH
    serial_run = THREAD_BATCH

    def start(self, entry: Any, handle: Any, env: Any) -> list[Any]:
        inbox = Mailbox()
        handle.ref = ThreadRoutineActor.start(handle, entry.routine, entry.routine_id, env, inbox)
        inbox.ref = handle.ref
        handle.inbox = inbox
        return []

    def deliver(self, handle: Any, batch: list[Any]) -> None:
        handle.inbox.post(batch)

    def restart(self, entry: Any, handle: Any, env: Any) -> None:
        handle.outstanding = 0  # the dead thread's deliveries came back as lost
        handle.suspended = 0
        self.start(entry, handle, env)
        env.mailbox.post((RESTARTED, handle, None, None))  # no pid: a thread

    def record(self, entry: Any) -> dict[str, Any]:
        return {"state": pickle_state(entry.routine_id, entry.routine)}


class ProcessBackend(RoutineBackend):
    """Replicas are child processes, each hosting a cloudpickled copy of the routine."""

    credit = PROCESS_CREDIT

    def start(self, entry: Any, handle: Any, env: Any) -> list[Any]:
        rid = entry.routine_id
        routine_bytes = dumps_or_explain(entry.routine, f"routine {rid!r}:")
        policy = entry.plan.restart or env.restart or RestartPolicy()
        handle.ref = ProcessRoutineActor.start(
            handle, rid, routine_bytes, env, entry.plan.timeout, policy.warm_spare
        )
        handle.direct.entry = entry  # it adapts the routine's credit to its step times
        return [handle.ref.ask(("spawn", handle.state_bytes), block=False)]

    def deliver(self, handle: Any, batch: list[Any]) -> None:
        handle.direct.submit(batch)

    def restart(self, entry: Any, handle: Any, env: Any) -> None:
        handle.ref.tell(("respawn", handle.state_bytes))

    def sync(self, entry: Any) -> None:
        states = [a.state_bytes for a in entry.actors]
        if entry.synced is not None and all(
            new is old for new, old in zip(states, entry.synced, strict=True)
        ):
            return  # nothing new reported since the last time
        entry.synced = states
        apply_replica_states(
            entry.routine, entry.routine_id, states, [a.stats for a in entry.actors]
        )

    def record(self, entry: Any) -> dict[str, Any]:
        for actor in entry.actors:
            check_process_state(entry.routine_id, actor.state_bytes)
        return {
            "replicas": [a.state_bytes for a in entry.actors],
            "stats": [a.stats for a in entry.actors],
        }

    def figures(self, entry: Any) -> dict[str, Any]:
        """pids, summed CPU % and RSS of the replicas (psutil)."""
        pids, cpu, rss = [], 0.0, 0
        for actor in entry.actors:
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


BACKENDS: dict[str, Any] = {"thread": ThreadBackend(), "process": ProcessBackend()}
RAY_MISSING = (
    "execution='ray' needs the ray package, which is not installed: pip install 'routilux[ray]'"
)


def backend_for(execution: str) -> Any:
    """The backend of an ``execution=`` kind (the Ray one is loaded on first use:
    ``import routilux`` never imports ray)."""
    backend = BACKENDS.get(execution)
    if backend is None and execution == "ray":
        try:
            module = importlib.import_module("routilux.runtime.ray_backend")
        except ModuleNotFoundError as exc:
            if exc.name != "ray":
                raise
            raise ConfigurationError(RAY_MISSING) from None
        backend = BACKENDS["ray"] = module.RayBackend()
    return backend
