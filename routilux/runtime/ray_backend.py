"""The Ray backend: each replica of a ray routine is a Ray actor, supervised by us.

Ray places the actor, carries the calls and tells us when it died; everything else
stays with the supervisor, as for process routines: restarts (``max_restarts=0`` and
``max_task_retries=0`` keep Ray's own restart path out of it), redelivery with the
same message ids, ordering, credits and checkpoints. The driver side of one replica
is a :class:`~routilux.runtime.ray_replica.Replica`.

Warm standby (``RestartPolicy(warm_spare=True)``, as for process routines): a new
Ray actor waits for Ray to start a worker process (about a second on a busy
machine), so such a ray routine keeps one spare actor with its routine loaded and
the same placement options, named
``{flow_id}:{routine_id}:standby-{n}``. A restart hands the dead replica's last state
to the spare (``adopt``), which then serves as that replica, and a new spare is
made. A spare is only made when the cluster has room for it at that moment, and
routines that ask for GPUs keep none (a GPU is too dear to hold idle).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

import ray

from routilux.runtime.backends import PROCESS_CREDIT, ProcessBackend
from routilux.runtime.messages import RESTARTED
from routilux.runtime.ray_actor import RoutineHost
from routilux.runtime.ray_replica import Replica
from routilux.runtime.restart import RestartPolicy
from routilux.runtime.wire import dumps_or_explain

logger = logging.getLogger("routilux.ray")

NAMESPACE = "routilux"
PENDING_TRIPWIRE = 16  # Ray's max_pending_calls: credits keep us far below it

Host = ray.remote(RoutineHost)
_connect_lock = threading.Lock()
_announced: list[bool] = []  # the "already initialised" line is logged once


def connect(address: str | None) -> str:
    """Make sure this process is connected to Ray; returns how (also logged)."""
    with _connect_lock:
        if ray.is_initialized():
            if not _announced:
                _announced.append(True)
                logger.info("routilux: ray routines run on the Ray this process initialised")
            return "already initialised"
        if address:
            how = f"the Ray cluster at {address} (ray_address)"
        elif os.environ.get("RAY_ADDRESS"):
            address = os.environ["RAY_ADDRESS"]
            how = f"the Ray cluster at {address} (RAY_ADDRESS)"
        else:
            how = "a new local Ray instance (no ray_address, no RAY_ADDRESS)"
        ray.init(address=address or None)
        _announced.append(True)
        logger.info("routilux: ray routines run on %s", how)
        return how


def _create(name: str, options: dict, args: tuple, wait: bool = True) -> Any:
    """Create the named actor; a name still held by a dead predecessor (a driver that
    just died) is retried for a few seconds."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            return Host.options(
                name=name,
                namespace=NAMESPACE,
                lifetime=None,  # not detached: it dies with this driver
                max_restarts=0,
                max_task_retries=0,
                max_pending_calls=PENDING_TRIPWIRE,
                **options,
            ).remote(*args)
        except ValueError as exc:
            if not wait or "already taken" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Spec:
    """What every actor of one routine is made from, and its warm spare."""

    def __init__(self, flow_id: str, entry: Any, warm_spare: bool) -> None:
        self.prefix = f"{flow_id}:{entry.routine_id}"
        self.warm_spare = warm_spare
        self.options = {"num_cpus": 1, **(entry.plan.ray_options or {})}
        routine_bytes = dumps_or_explain(entry.routine, f"routine {entry.routine_id!r}:")
        self.args = (entry.routine_id, routine_bytes, list(sys.path))
        self.spares = 0
        self.spare: tuple[Any, str] | None = None
        self.stopped = False

    def create(self, name: str, state_bytes: bytes | None, wait: bool = True) -> Any:
        """A new actor named ``name``; ``wait``: retry a name still held by a dead
        predecessor (a driver that just died) for a few seconds."""
        rid, routine_bytes, path = self.args
        return _create(name, self.options, (rid, routine_bytes, state_bytes, path), wait)

    def make_spare(self) -> None:
        """Start a spare in the background (not for GPU routines)."""
        if not self.warm_spare or self.stopped or self.options.get("num_gpus"):
            return
        if self.spare is not None:
            return
        if not self._room_for_spare():
            return  # a spare Ray cannot place would only wait (and warn) forever
        for _ in range(3):  # a name a dying actor still holds: take the next one
            self.spares += 1
            name = f"{self.prefix}:standby-{self.spares}"
            try:
                self.spare = (self.create(name, None, wait=False), name)
                return
            except ValueError as exc:
                if "already taken" not in str(exc):
                    break
            except Exception as exc:
                logger.warning("routine %s: no standby actor: %s", self.prefix, exc)
                return

    def _room_for_spare(self) -> bool:
        """Whether the cluster has the resources for one more replica right now."""
        need = {"CPU": self.options.get("num_cpus", 1), **self.options.get("resources", {})}
        if self.options.get("memory"):
            need["memory"] = self.options["memory"]
        try:
            free = ray.available_resources()
        except Exception:
            return False
        return all(free.get(name, 0) >= amount for name, amount in need.items() if amount)

    def take_spare(self) -> tuple[Any, str] | None:
        """The spare ``(actor, name)``, now no longer the spare (None: there is none)."""
        spare, self.spare = self.spare, None
        return spare

    def stop(self) -> None:
        """Make no more spares, and kill the one waiting."""
        self.stopped = True
        spare = self.take_spare()
        if spare is not None:
            _kill(spare[0])


class _Ready:
    """What ``start`` returns: ``get()`` waits for the actor, returns its pid."""

    def __init__(self, replica: Replica, ready_ref: Any, then: Any) -> None:
        self.replica = replica
        self.ready_ref = ready_ref
        self.then = then

    def get(self) -> int:
        """Wait until the actor runs; start the spare if due; its pid."""
        pid = self.replica.wait_ready(self.ready_ref)
        self.then()
        return pid


class RayBackend(ProcessBackend):
    """Replicas are Ray actors (state reports, sync and checkpoints as for processes)."""

    credit = PROCESS_CREDIT

    def __init__(self) -> None:
        self.spec_of: dict[int, Spec] = {}  # by id() of a replica's handle (while it runs)

    def prepare(self, plan: Any) -> None:
        """Connect to Ray on the caller's thread: Ray started from another thread
        leaves its agent processes behind when it shuts down."""
        connect(plan.ray_address)

    def start(self, entry: Any, handle: Any, env: Any) -> list[Any]:
        connect(env.ray_address)  # already done by prepare(), unless called directly
        first = entry.actors[0]
        spec = self.spec_of.get(id(first)) if handle is not first else None
        if spec is None:
            policy = entry.plan.restart or env.restart or RestartPolicy()
            spec = Spec(env.flow_id, entry, policy.warm_spare)
        self.spec_of[id(handle)] = spec
        name = f"{spec.prefix}:{handle.index}"
        handle.direct = Replica(entry, handle, env, spec.create(name, handle.state_bytes), name)
        last = handle.index == len(entry.actors) - 1
        then = spec.make_spare if last else (lambda: None)
        return [_Ready(handle.direct, handle.direct.actor.ready.remote(), then)]

    def deliver(self, handle: Any, batch: list[Any]) -> None:
        handle.direct.submit(batch)

    def restart(self, entry: Any, handle: Any, env: Any) -> None:
        threading.Thread(
            target=self._respawn,
            args=(entry, handle, env),
            daemon=True,
            name=f"routilux-ray-restart-{entry.routine_id}",
        ).start()

    def _respawn(self, entry: Any, handle: Any, env: Any) -> None:
        """Restart on a thread of its own: the spare adopts the last state, or a
        new actor starts from it."""
        old = handle.direct
        spec = self.spec_of.get(id(handle))
        if spec is None or spec.stopped:
            return
        spare = spec.take_spare()
        replica = pid = None
        if spare is not None:
            replica = Replica(entry, handle, env, spare[0], spare[1])
            try:
                pid = replica.wait_ready(spare[0].adopt.remote(handle.state_bytes))
            except Exception:  # the spare died too (e.g. on the same node)
                _kill(spare[0])
                replica = None
        try:
            if replica is None:
                name = f"{spec.prefix}:{handle.index}"
                replica = Replica(entry, handle, env, spec.create(name, handle.state_bytes), name)
                pid = replica.wait_ready(replica.actor.ready.remote())
        except Exception as exc:
            env.mailbox.post((RESTARTED, handle, exc, None))
            return
        replica.last_death = old.last_death
        handle.direct = replica
        if old.stopping or spec.stopped:  # the flow stopped while we were starting it
            replica.stop()
            return
        spec.make_spare()
        env.mailbox.post((RESTARTED, handle, None, pid))

    def stop(self, handle: Any) -> None:
        if handle.direct is not None:
            handle.direct.stop()
        spec = self.spec_of.pop(id(handle), None)
        if spec is not None:
            spec.stop()  # the routine's spare goes with its first replica stopped

    def join(self, handle: Any, timeout: float) -> None:
        replica = handle.direct
        if replica is None:
            return
        deadline = time.monotonic() + timeout
        if replica.reader.is_alive():
            replica.reader.join(timeout)
        replica.wait_gone(max(0.0, deadline - time.monotonic()))

    def figures(self, entry: Any) -> dict[str, Any]:
        """pids and names of the actors, and the last death cause Ray reported."""
        live = [a for a in entry.actors if a.alive and a.direct is not None]
        causes = [a.direct.last_death for a in entry.actors if a.direct is not None]
        causes = [c for c in causes if c]
        return {
            "pids": [a.pid for a in live],
            "ray_actors": [a.direct.name for a in live],
            "last_crash": causes[-1] if causes else None,
        }


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # already gone, or Ray itself is shut down
        pass
