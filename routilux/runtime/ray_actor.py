"""The Ray actor that hosts one replica of a ray routine (runs inside a Ray worker).

It is the step loop of a process child (``worker.py``) with Ray as the transport: the
same cloudpickled routine bytes, the same :class:`~routilux.runtime.step.ProcessStep`
context for emits, the same error tuples and state reports. A step's frames (emits,
outputs, deferred events, then ``done``) come back as the call's first result.

Large emits: a value whose pickle is big stays in Ray's object store. The step's
second result holds such values; its owner is the caller (the supervisor's
process), so a value outlives the actor that made it, and the frame carries a
:class:`Spilled` index in its place. Values come in as :class:`SpilledRef` and are
fetched here, straight from the node that holds them.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import ray

from routilux._context import host_routine, set_current_step
from routilux.runtime.snapshot import restore_state
from routilux.runtime.step import ProcessStep, _error_tuple, state_bytes_of
from routilux.runtime.wire import dumps, dumps_or_explain, loads

LARGE_EMIT = 256 * 1024  # bytes: an emit this big moves its large values to the store
LARGE_VALUE = 16 * 1024  # bytes: ... those values whose own pickle is at least this


class Spilled:
    """In an emit frame: "value number ``index`` of the step's large results"."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class SpilledRef:
    """In a step's data: a large value held in Ray's object store (fetched here)."""

    __slots__ = ("ref", "index")

    def __init__(self, ref: Any, index: int) -> None:
        self.ref = ref
        self.index = index

    def __reduce__(self) -> tuple:
        return (SpilledRef, (self.ref, self.index))


def fetch(value: Any) -> Any:
    """``value`` with any :class:`SpilledRef` in it (top level or in a list, as an
    ``append`` merge makes) replaced by what it refers to."""
    if isinstance(value, SpilledRef):
        return ray.get(value.ref)[value.index]
    if isinstance(value, list) and any(isinstance(v, SpilledRef) for v in value):
        return [fetch(v) for v in value]
    return value


class FrameList:
    """What ProcessStep writes its frames to: a list, returned with the step."""

    __slots__ = ("frames",)

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, payload: bytes) -> None:
        """Keep one frame (the channel's ``send``)."""
        self.frames.append(payload)


class RayStep(ProcessStep):
    """ProcessStep whose large emits leave their big values in the object store."""

    __slots__ = ("large",)

    def __init__(self, channel: FrameList, routine: Any, routine_id: str) -> None:
        super().__init__(channel, routine, routine_id)
        self.large: list[Any] = []

    def emit(self, routine: Any, event_name: str, data: dict) -> None:
        """Record one emit of the current step (numbered, in order)."""
        self._check(routine)
        what = f"data emitted by routine {self.routine_id!r} on event {event_name!r}:"
        with self.lock:
            n = self.n
            payload = dumps_or_explain(("emit", self.seq, n, event_name, data), what, data)
            if len(payload) >= LARGE_EMIT:
                payload = dumps(("emit", self.seq, n, event_name, self._spill(data)))
            self.n = n + 1
            self.channel.send(payload)

    def _spill(self, data: dict) -> dict:
        kept = {}
        for key, value in data.items():
            if len(dumps(value)) >= LARGE_VALUE:
                kept[key] = Spilled(len(self.large))
                self.large.append(value)
            else:
                kept[key] = value
        return kept


class RoutineHost:
    """One replica: the routine object and its step loop (a Ray actor class)."""

    def __init__(
        self, routine_id: str, routine_bytes: bytes, state_bytes: bytes | None, path: list[str]
    ) -> None:
        for entry in reversed(path):  # the driver's modules, where they exist here
            if entry not in sys.path:
                sys.path.insert(0, entry)
        self.routine = loads(routine_bytes)
        if state_bytes is not None:  # a restart: continue from the last state seen
            restore_state(self.routine, loads(state_bytes))
        self.frames = FrameList()
        self.step_context = RayStep(self.frames, self.routine, routine_id)
        host_routine(self.routine, self.step_context)
        self.last_stats: dict = dict(self.routine._stats)
        self.last_state = b""

    def ready(self) -> int:
        """The worker's pid, once the routine is loaded."""
        return os.getpid()

    def adopt(self, state_bytes: bytes | None) -> int:
        """Become a restarted replica (a warm spare does): take its last state."""
        if state_bytes is not None:
            restore_state(self.routine, loads(state_bytes))
        self.last_stats = dict(self.routine._stats)
        self.last_state = b""
        return os.getpid()

    @ray.method(num_returns=2)
    def step(self, seq: int, slot_name: str, data: dict, job_id: str) -> tuple[list, Any]:
        """Run one step; returns its frames and its large emitted values (or None)."""
        step = self.step_context
        step.seq, step.n, step.job_id = seq, 0, job_id
        step.large = []
        self.frames.frames = frames = []
        routine = self.routine
        set_current_step(step)
        started = time.perf_counter()
        step.active = True
        try:
            data = {key: fetch(value) for key, value in data.items()}
            routine.get_slot(slot_name)._call(data)
            error = None
        except BaseException as exc:
            error = _error_tuple(exc)
        step.active = False
        ended = time.perf_counter()
        state = state_bytes_of(routine)
        if state == self.last_state:
            state = None
        else:
            self.last_state = state
        stats = None
        if routine._stats != self.last_stats:
            self.last_stats = stats = dict(routine._stats)
        try:
            done = dumps(("done", seq, error, started, ended, stats, state))
        except Exception:
            done = dumps(("done", seq, error, started, ended, None, state))
        with step.lock:  # a helper thread of the handler may still be emitting
            frames.append(done)
            self.frames.frames = []
        return frames, (step.large or None)
