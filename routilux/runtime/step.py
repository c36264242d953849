"""The step context inside a routine process: what ``Routine.emit`` talks to there.

:class:`ProcessStep` sends each message as its own frame (the Ray backend's hosts
use it); :class:`BatchingStep`, the one a routine process uses, sends them in
batches (see :mod:`routilux.runtime.worker`). Both pickle a message when it is made,
so an emit is a snapshot of its data.
"""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

from routilux._context import ExecutionContext
from routilux.exceptions import FlowStateError
from routilux.runtime.messages import ErrorInfo
from routilux.runtime.snapshot import capture_state
from routilux.runtime.wire import (
    Label,
    Packer,
    dumps,
    dumps_or_explain,
    loads,
    pack_done,
    pack_one,
)

LINGER = 0.002  # seconds a message may wait in the child for others to share its frame
FLUSH_BYTES = 64 * 1024  # a batch this large leaves at once
FLUSH_COUNT = 256  # ... and so does one with this many messages
# ... and one with this many step ends while more steps wait: the parent routes
# what they emitted (and sends more steps) while this process runs the rest.
PIPELINE_STEPS = 32


class JobRef:
    """What a handler in a routine process knows of its job: the id."""

    __slots__ = ("job_id",)

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id

    def __repr__(self) -> str:
        return f"JobRef({self.job_id!r})"


class ProcessStep:
    """The step context inside a routine process (see ``thread_actor.StepContext``)."""

    __slots__ = (
        "channel",
        "routine",
        "routine_id",
        "seq",
        "n",
        "slot",
        "job_id",
        "active",
        "lock",
    )

    def __init__(self, channel: Any, routine: Any, routine_id: str) -> None:
        self.channel = channel
        self.routine = routine
        self.routine_id = routine_id
        self.seq = 0
        self.n = 0
        self.slot = ""
        self.job_id = ""
        self.active = False
        self.lock = threading.Lock()

    def _send(self, message: tuple, what: str) -> None:
        payload = dumps_or_explain(message, what)
        with self.lock:  # frames from helper threads must not interleave
            self.channel.send(payload)

    def emit(self, routine: Any, event_name: str, data: dict) -> None:
        """Send one emit of the current step to the parent (numbered, in order)."""
        self._check(routine)
        with self.lock:  # number and send in one go, in order
            n = self.n
            payload = dumps_or_explain(
                ("emit", self.seq, n, event_name, data),
                lambda: f"data emitted by routine {self.routine_id!r} on event {event_name!r}:",
                data,
            )
            self.n = n + 1
            self.channel.send(payload)

    def defer(self, routine: Any, event_name: str, data: dict) -> None:
        """Record an event to emit when the job is next resumed."""
        self._check(routine)
        self._send(
            ("defer", self.seq, event_name, data),
            f"deferred event {event_name!r} of routine {self.routine_id!r}:",
        )

    def send_output(self, routine: Any, output_type: str, data: dict) -> None:
        """Send output to the job's output handler in the parent."""
        self._check(routine)
        self._send(
            ("output", self.seq, output_type, data),
            f"output {output_type!r} of routine {self.routine_id!r}:",
        )

    def context(self, routine: Any) -> Any:
        """``(None, JobRef(job_id), routine_id)``: the job's state lives in the parent."""

        # The flow and the JobState live in the parent process; a handler here sees
        # which job it works for, not the job's state.
        return ExecutionContext(None, JobRef(self.job_id), self.routine_id)

    def _check(self, routine: Any) -> None:
        if routine is not self.routine:
            raise FlowStateError(
                f"routine {self.routine_id!r} runs in its own process and can only emit "
                "its own events"
            )


def _error_tuple(exc: BaseException) -> tuple:
    """A handler's exception as it travels to the parent (see :func:`error_info`)."""
    try:
        exc_bytes = dumps(exc)
    except Exception:
        exc_bytes = None
    return (
        type(exc).__name__,
        str(exc),
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        exc_bytes,
    )


def error_info(error: tuple | None) -> ErrorInfo | None:
    """The supervisor's record of a handler error that came as an ``_error_tuple``
    (the exception itself only if it can be unpickled here)."""
    if error is None:
        return None
    exception = None
    if error[3] is not None:
        try:
            exception = loads(error[3])
        except Exception:
            exception = None
    return ErrorInfo(error[0], error[1], error[2], exception)


def state_bytes_of(routine: Any) -> bytes:
    """The pickled attributes a handler may have changed (the graph stays put).

    Attributes that cannot be pickled stay in this process; their names and types
    travel under the key ``"__unpicklable__"`` so a checkpoint can refuse them.
    """
    state = capture_state(routine)
    try:
        return dumps(state)
    except Exception:  # find and drop what cannot travel
        picklable: dict[str, Any] = {}
        dropped = []
        for key, value in state.items():
            try:
                dumps(value)
            except Exception:
                dropped.append((key, f"{type(value).__module__}.{type(value).__qualname__}"))
                continue
            picklable[key] = value
        picklable["__unpicklable__"] = dropped
        return dumps(picklable)


class BatchingStep(ProcessStep):
    """The step context of a routine process: messages to the parent leave in
    batches (see the module docstring), in the order they were made.

    Everything is pickled when it is made (an emit is a snapshot of its data, as on
    a pipe), under ``lock`` (helper threads of a handler emit too). ``report`` is the
    routine's ``_stats`` and state after the last step that ended; it travels at
    the front of the batch that carries that step's end, so the parent records the
    state before it learns the step is done.
    """

    __slots__ = ("packer", "first_at", "report", "started_count", "ends")

    def __init__(self, channel: Any, routine: Any, routine_id: str) -> None:
        super().__init__(channel, routine, routine_id)
        self.packer = Packer()
        self.first_at = 0.0  # when the oldest message of the batch was made
        self.report: tuple[Any, Any] | None = None
        self.started_count = 0  # steps started (the courier's clock)
        self.ends = 0  # step ends in the batch

    def queue(self, message: tuple, what: Label, culprit: Any = None) -> None:
        """Add a message to the batch (caller holds ``lock``); send the batch if it
        is full or old."""
        now = self._opened()
        self.packer.add(message, what, culprit)
        self._sent_if_due(now)

    def _opened(self) -> float:
        """Now; the batch's start if it is empty (caller holds ``lock``)."""
        now = time.monotonic()
        if not self.packer.count:
            self.first_at = now
        return now

    def _sent_if_due(self, now: float) -> None:
        """Send the batch if it is full or old (caller holds ``lock``)."""
        packer = self.packer
        if (
            packer.size >= FLUSH_BYTES
            or packer.count >= FLUSH_COUNT
            or now - self.first_at >= LINGER
        ):
            self.flush_locked()

    def flush_locked(self) -> None:
        """Send the batch (caller holds ``lock``)."""
        report = self.report
        if not self.packer.count and report is None:
            return
        batch = self.packer.take()
        self.ends = 0
        if report is not None:
            self.report = None
            try:
                head = pack_one(("report", *report))
            except Exception:  # _stats holding something unpicklable: the state goes
                head = pack_one(("report", None, report[1]))
            batch = head + batch
        self.channel.send(batch)

    def _send(self, message: tuple, what: str) -> None:
        with self.lock:
            self.queue(message, what)

    def emit(self, routine: Any, event_name: str, data: dict) -> None:
        """Queue one emit of the current step for the parent (numbered, in order)."""
        if routine is not self.routine:
            self._check(routine)
        with self.lock:  # number and queue in one go, in order
            n = self.n
            self.queue(
                ("emit", self.seq, n, event_name, data),
                lambda: f"data emitted by routine {self.routine_id!r} on event {event_name!r}:",
                data,
            )
            self.n = n + 1

    def step_ended(
        self,
        seq: int,
        error: tuple | None,
        started: float,
        ended: float,
        stats: Any,
        state: Any,
        urgent: bool = False,
    ) -> None:
        """Queue the end of step ``seq`` (``error``: its ``_error_tuple``), with the
        stats and state it left (None: unchanged); ``urgent`` sends the batch now."""
        with self.lock:
            if stats is not None or state is not None:
                old = self.report
                if old is not None:  # not sent yet: newer replaces older, part by part
                    stats = old[0] if stats is None else stats
                    state = old[1] if state is None else state
                self.report = (stats, state)
            # Counted first: a batch sent while queueing it includes this end.
            self.ends += 1
            if error is None:
                now = self._opened()
                self.packer.add_bytes(pack_done(seq, started, ended))
                self._sent_if_due(now)
            else:  # plain data: always picklable
                self.queue(("done", seq, error, started, ended), "the end of a step:")
            if urgent or self.ends >= PIPELINE_STEPS:
                self.flush_locked()
