"""The driver side of one ray replica: steps out, results back in order, death noticed.

The supervisor's thread submits steps (``Replica.submit``, never blocking); a reader
thread takes their results *in the order they were sent* — the reorder step: Ray runs
one submitter's calls in order, but their completions may surface out of order — and
turns their frames into supervisor messages, as a process replica's reader does. An
actor's death surfaces as ``RayActorError`` on the oldest step in flight: the reader
reports every step in flight as lost (CRASHED) and the restart logic does the rest.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

from routilux.exceptions import RoutineCrashedError, SerializationError
from routilux.runtime.messages import (
    CRASHED,
    DEFER,
    DONE,
    EMIT,
    OUTPUT,
    REPORT,
    RETURNED,
    SUSPEND,
    UNSUSPEND,
    ErrorInfo,
)
from routilux.runtime.ray_actor import Spilled, SpilledRef
from routilux.runtime.step import error_info
from routilux.runtime.wire import dumps, dumps_or_explain, loads

START_TIMEOUT = 60.0  # seconds for an actor to be placed and load its routine


class RayValue:
    """A large emitted value left in Ray's object store (in a delivery's data).

    Ray routines fetch it from the store; pickled anywhere else (a checkpoint, a
    process routine's step) it becomes the value itself.
    """

    __slots__ = ("ref", "index")

    def __init__(self, ref: Any, index: int) -> None:
        self.ref = ref
        self.index = index

    def value(self) -> Any:
        """The value (fetched from the object store)."""
        return ray.get(self.ref)[self.index]

    def __reduce__(self) -> tuple:
        return (_itself, (self.value(),))

    def __repr__(self) -> str:
        return f"<RayValue {self.ref.hex()[:12]}[{self.index}]>"


def _itself(value: Any) -> Any:
    return value


def _wire(data: dict) -> dict:
    """A step's data as sent to a Ray actor: RayValues become references."""
    out = None
    for key, value in data.items():
        if isinstance(value, RayValue):
            wired: Any = SpilledRef(value.ref, value.index)
        elif isinstance(value, list) and any(isinstance(v, RayValue) for v in value):
            wired = [SpilledRef(v.ref, v.index) if isinstance(v, RayValue) else v for v in value]
        else:
            continue
        if out is None:
            out = dict(data)
        out[key] = wired
    return data if out is None else out


def death_cause(error: BaseException) -> str:
    """One line on why Ray says an actor died: ``Ray actor died|killed|out of memory|
    node lost: <Ray's reason> (<worker exit type>: <first sentence of its detail>)``."""
    text = " ".join(str(error).split())
    because = re.search(r"The actor is dead because (.+?\.)(?: |$)", text)
    exit_type = re.search(r"Worker exit type: (\w+)", text)
    detail = re.search(r"Worker exit detail: (.+?\.)(?: |$)", text)
    reason = because.group(1) if because else (text.split(". ")[0][:160] or type(error).__name__)
    lowered = (reason + " " + (exit_type.group(1) if exit_type else "")).lower()
    if "out_of_memory" in lowered or "memory" in lowered:
        kind = "out of memory"
    elif "node" in lowered:
        kind = "node lost"
    elif "ray.kill" in lowered:
        kind = "actor killed"
    else:
        kind = "actor died"
    line = f"Ray {kind}: {reason}"
    if exit_type or detail:
        parts = [m.group(1) for m in (exit_type, detail) if m]
        line += f" ({': '.join(parts)})"
    return line[:300]


class Replica:
    """The driver side of one Ray actor (see the module docstring)."""

    def __init__(self, entry: Any, handle: Any, env: Any, actor: Any, name: str) -> None:
        self.handle = handle
        self.env = env
        self.routine_id = entry.routine_id
        self.timeout: float | None = entry.plan.timeout
        self.name = name
        self.actor = actor
        self.inflight: dict[int, Any] = {}
        self.sent_at: dict[int, float] = {}
        self.last_done = time.monotonic()
        self.seq = 0
        self.dead = False
        self.stopping = False
        self.timed_out = False
        self.last_death: str | None = None  # why Ray said this replica died (metrics)
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        self.reader = threading.Thread(
            target=self._read, daemon=True, name=f"routilux-ray-{self.name}"
        )

    def wait_ready(self, ready_ref: Any) -> int:
        """The actor's pid once it runs (``ready_ref``: its ready() or adopt() call);
        RoutineCrashedError if it cannot start. Starts the reader."""
        try:
            pid = ray.get(ready_ref, timeout=START_TIMEOUT)
        except GetTimeoutError:
            ray.kill(self.actor, no_restart=True)
            raise RoutineCrashedError(
                f"routine {self.routine_id!r}: its Ray actor {self.name!r} was not placed "
                f"within {START_TIMEOUT:g} s; does the cluster have the resources its "
                "ray_options ask for?"
            ) from None
        except Exception as exc:
            raise RoutineCrashedError(
                f"routine {self.routine_id!r}: its Ray actor {self.name!r} could not "
                f"start: {' '.join(str(exc).split())[:300]}"
            ) from None
        self.reader.start()
        return pid

    # -- steps (supervisor thread) ---------------------------------------------------
    def submit(self, batch: list[Any]) -> None:
        """Send steps to the actor; never blocks."""
        post = self.env.mailbox.post
        for delivery in batch:
            if not delivery.job.running or self.dead:
                post((RETURNED, self.handle, [delivery]))
                continue
            seq = self.seq = self.seq + 1
            try:
                refs = self.actor.step.remote(
                    seq, delivery.slot, _wire(delivery.call_data), delivery.job.job_id
                )
            except Exception as exc:
                post((DONE, self.handle, delivery, self._unsendable(delivery, exc), 0.0, 0.0))
                continue
            self.inflight[seq] = delivery
            self.sent_at[seq] = time.monotonic()
            self.results.put((seq, refs[0], refs[1]))
            if self.timeout is not None:
                self._watch(seq, self.timeout)
            if self.dead and self.inflight.pop(seq, None) is not None:
                post((RETURNED, self.handle, [delivery]))  # the reader reported before us

    def _unsendable(self, delivery: Any, exc: Exception) -> ErrorInfo:
        what = f"data for routine {self.routine_id!r} slot {delivery.slot!r}:"
        try:
            dumps_or_explain(delivery.call_data, what, delivery.call_data)
        except SerializationError as explained:
            return ErrorInfo.from_exception(explained)
        return ErrorInfo.from_exception(SerializationError(f"cannot send {what} {exc}"))

    def _watch(self, seq: int, delay: float) -> None:
        """Kill the actor if step ``seq`` runs past the routine's timeout (a step
        starts when it is sent or when the one before it ended, whichever is later)."""

        def check() -> None:
            sent = self.sent_at.get(seq)
            if sent is None or self.dead:
                return
            earlier = [s for s in list(self.inflight) if s < seq]
            now = time.monotonic()
            started = max(sent, self.last_done) if not earlier else None
            if started is not None and now - started >= self.timeout:
                self.timed_out = True
                ray.kill(self.actor, no_restart=True)
            else:
                left = self.timeout - (now - started) if started is not None else self.timeout
                self.env.timers.call_later(left, check)

        self.env.timers.call_later(delay, check)

    def stop(self) -> None:
        """Kill the actor and let the reader end (no restart)."""
        self.stopping = True
        self.results.put(None)
        try:
            ray.kill(self.actor, no_restart=True)
        except Exception:  # already gone, or Ray itself is shut down
            pass

    def wait_gone(self, timeout: float) -> None:
        """After :meth:`stop`: wait, at most ``timeout`` seconds, until Ray has marked
        the actor dead. Its name is free from then on, so a flow of the same id
        started right after this one can take it."""
        deadline = time.monotonic() + timeout
        # ray.kill() is asynchronous: an actor may still answer a call or two before
        # the kill reaches it, so ask until a call fails (each is a round trip).
        while (left := deadline - time.monotonic()) > 0:
            try:
                ray.get(self.actor.__ray_ready__.remote(), timeout=left)
            except Exception:  # dead (what we wait for), the deadline, or Ray shut down
                return

    # -- results (reader thread) -----------------------------------------------------
    def _read(self) -> None:
        while True:
            item = self.results.get()
            if item is None or self.stopping:
                return
            seq, ref, large_ref = item
            try:
                frames = ray.get(ref)
            except (RayActorError, ActorUnavailableError) as exc:
                if not self.stopping:
                    self._died(exc)
                return
            except Exception as exc:  # our step code itself failed: the step failed
                frames = [_done_frame(seq, exc)]
            self._post(frames, large_ref)

    def _died(self, error: BaseException) -> None:
        self.dead = True
        try:
            ray.kill(self.actor, no_restart=True)  # unavailable is not dead: make it so
        except Exception:
            pass
        if self.timed_out:
            reason = f"step exceeded its timeout of {self.timeout:g} s"
        else:
            reason = death_cause(error)
        self.last_death = reason
        # sorted() copies the keys in one go; submit() may add one meanwhile, and
        # whoever pops a step first reports it (here as lost, there as returned).
        lost = [self.inflight.pop(s, None) for s in sorted(self.inflight)]
        self.sent_at.clear()
        self.env.mailbox.post((CRASHED, self.handle, reason, None, [d for d in lost if d]))

    def _post(self, frames: list[bytes], large_ref: Any) -> None:
        post = self.env.mailbox.post
        handle, rid, inflight, env = self.handle, self.routine_id, self.inflight, self.env
        for frame in frames:
            message = loads(frame)
            kind = message[0]
            if kind == "emit":
                _, seq, n, event, data = message
                delivery = inflight.get(seq)
                if delivery is None:
                    continue
                targets = env.targets.get((rid, event), ())
                data = _unspill(data, large_ref, targets, env)
                gate = env.gate
                if (gate.full or len(env.mailbox) > gate.limit) and gate.must_wait(targets, rid):
                    post((SUSPEND, handle, delivery, targets))
                    gate.wait(targets, rid)
                    post((UNSUSPEND, handle, delivery))
                post((EMIT, delivery, n, rid, event, data))
            elif kind == "done":
                _, seq, error, started, ended, stats, state = message
                delivery = inflight.pop(seq, None)
                self.sent_at.pop(seq, None)
                self.last_done = time.monotonic()
                if state is not None or stats is not None:
                    post((REPORT, handle, stats, state))
                if delivery is not None:
                    post((DONE, handle, delivery, error_info(error), started, ended))
            elif kind in ("output", "defer"):
                _, seq, name, data = message
                delivery = inflight.get(seq)
                if delivery is not None:
                    post((OUTPUT if kind == "output" else DEFER, delivery, rid, name, data))


def _unspill(data: dict, large_ref: Any, targets: tuple, env: Any) -> dict:
    """Spilled values become RayValues; fetched here unless every target is a ray
    routine (those fetch them from the store themselves)."""
    if large_ref is None or not any(isinstance(v, Spilled) for v in data.values()):
        return data
    local = any(env.kinds.get(t) != "ray" for t in targets)
    values = ray.get(large_ref) if local else None
    return {
        k: (
            (values[v.index] if local else RayValue(large_ref, v.index))
            if isinstance(v, Spilled)
            else v
        )
        for k, v in data.items()
    }


def _done_frame(seq: int, exc: BaseException) -> bytes:
    summary = " ".join(str(exc).split())[:500]
    error = (type(exc).__name__, summary, summary, None)
    now = time.perf_counter()
    return dumps(("done", seq, error, now, now, None, None))
