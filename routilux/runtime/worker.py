"""The loop inside a routine's OS process.

Started as ``python -m routilux.runtime.worker CHANNEL_FD LIFELINE_FD PARENT_PID`` by a
process routine actor. It receives the routine (cloudpickle), then runs steps one at a
time. Steps arrive in batches; emits, outputs and step ends go back in batches too
(:class:`BatchingStep`): a batch leaves when the child has nothing more to run, when
it is large, or when its oldest message has waited ``LINGER`` seconds (a courier
thread sends what a long step emitted). It exits when told to, when its channel
closes, or as soon as its parent dies, even mid-step: on Linux the kernel kills it
(parent-death signal), so not even a step that holds the GIL can keep it alive;
elsewhere the courier thread sees the lifeline pipe reach end-of-file.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any

from routilux._context import ExecutionContext, host_routine, set_current_step
from routilux.exceptions import FlowStateError
from routilux.runtime.snapshot import capture_state, restore_state
from routilux.runtime.wire import (
    Channel,
    Packer,
    dumps,
    dumps_or_explain,
    loads,
    pack_one,
    unpack,
)

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
EXIT_ORPHANED = 70
LINGER = 0.002  # seconds a message may wait in the child for others to share its frame
FLUSH_BYTES = 64 * 1024  # a batch this large leaves at once
FLUSH_COUNT = 256  # ... and so does one with this many messages
COURIER_POLL = 0.01  # seconds between the courier's looks at a running step's emits
COURIER_PARK = 1.0  # idle this long, the courier sleeps until the next step


def _die_with_parent(parent_pid: int) -> bool:
    """Have the kernel SIGKILL this process when its parent dies (Linux only).

    The signal is tied to the parent thread that started us; a process routine's
    child is started by its actor thread, which outlives it. If the parent died
    before the request was made, no signal will come: exit now. Returns whether the
    kernel took the request (else the lifeline thread is the only watch).
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if parent_pid and os.getppid() != parent_pid:
        os._exit(EXIT_ORPHANED)  # reparented already: the parent is gone
    return armed


class Courier:
    """The child's second thread: it watches the lifeline (exit when the parent
    dies) and sends what a long step emitted once it has waited ``LINGER``.

    While steps run it looks every ``COURIER_POLL`` seconds; after ``COURIER_PARK``
    seconds without a step it blocks until the main thread wakes it (one byte on a
    pipe, written only when a step starts while it is parked).
    """

    def __init__(self, lifeline_fd: int, step: BatchingStep) -> None:
        self.lifeline = lifeline_fd
        self.step = step
        self.parked = False
        self.wake_read, self.wake_write = os.pipe()

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True, name="routilux-courier").start()

    def wake(self) -> None:
        """Called by the main thread when a step starts while the courier is parked."""
        self.parked = False
        try:
            os.write(self.wake_write, b"x")
        except OSError:
            pass

    def _run(self) -> None:
        step = self.step
        watched = [self.lifeline, self.wake_read]
        seen = -1
        idle_since = time.monotonic()
        try:
            while True:
                timeout = None if self.parked else COURIER_POLL
                ready, _, _ = select.select(watched, [], [], timeout)
                if self.lifeline in ready and not os.read(self.lifeline, 1):
                    break  # the parent died
                if self.wake_read in ready:
                    os.read(self.wake_read, 64)
                now = time.monotonic()
                if step.started_count != seen or step.active:
                    seen = step.started_count
                    idle_since = now
                elif now - idle_since >= COURIER_PARK:
                    self.parked = True
                    if step.started_count != seen:  # a step started as we parked
                        self.parked = False
                if step.packer.count and now - step.first_at >= LINGER:
                    if step.lock.acquire(blocking=False):
                        try:
                            step.flush_locked()
                        except OSError:
                            break  # the parent went away
                        finally:
                            step.lock.release()
        except OSError:
            pass
        os._exit(EXIT_ORPHANED)


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
        what = f"data emitted by routine {self.routine_id!r} on event {event_name!r}:"
        with self.lock:  # number and send in one go, in order
            n = self.n
            payload = dumps_or_explain(("emit", self.seq, n, event_name, data), what, data)
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

    __slots__ = ("packer", "first_at", "report", "started_count")

    def __init__(self, channel: Any, routine: Any, routine_id: str) -> None:
        super().__init__(channel, routine, routine_id)
        self.packer = Packer()
        self.first_at = 0.0  # when the oldest message of the batch was made
        self.report: tuple[Any, Any] | None = None
        self.started_count = 0  # steps started (the courier's clock)

    def queue(self, message: tuple, what: str, culprit: Any = None) -> None:
        """Add a message to the batch (caller holds ``lock``); send the batch if it
        is full or old."""
        packer = self.packer
        now = time.monotonic()
        if not packer.count:
            self.first_at = now
        packer.add(message, what, culprit)
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
        self._check(routine)
        what = f"data emitted by routine {self.routine_id!r} on event {event_name!r}:"
        with self.lock:  # number and queue in one go, in order
            n = self.n
            self.queue(("emit", self.seq, n, event_name, data), what, data)
            self.n = n + 1

    def step_ended(self, done: tuple, stats: Any, state: Any, urgent: bool = False) -> None:
        """Queue a step's end, with the stats and state it left (None: unchanged);
        ``urgent`` sends the batch now."""
        with self.lock:
            if stats is not None or state is not None:
                old = self.report
                if old is not None:  # not sent yet: newer replaces older, part by part
                    stats = old[0] if stats is None else stats
                    state = old[1] if state is None else state
                self.report = (stats, state)
            self.queue(done, "the end of a step:")  # plain data: always picklable
            if urgent:
                self.flush_locked()


def _readable(sock: socket.socket) -> bool:
    """True when a frame from the parent is already waiting (no blocking)."""
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True  # let recv() report it
    return bool(ready)


def serve(channel: Any, lifeline_fd: int | None = None) -> None:
    """Receive the routine, then run steps until told to stop or the channel closes."""
    (init,) = unpack(channel.recv())
    _, parent_path, routine_bytes, state_bytes, routine_id, spare = init
    for entry in reversed(parent_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    routine = loads(routine_bytes)  # imports the modules the routine needs
    if spare:  # a warm spare: ready now, serving once a replica it replaces died
        channel.send(pack_one(("ready", os.getpid())))
        try:
            (activate,) = unpack(channel.recv())
        except (EOFError, OSError):
            return  # never needed
        state_bytes = activate[1]
        routine = loads(routine_bytes)  # the state applies to the routine as shipped
    if state_bytes is not None:  # a restart: continue from the last state seen
        restore_state(routine, loads(state_bytes))
    step = BatchingStep(channel, routine, routine_id)
    courier = None
    if lifeline_fd is not None:
        courier = Courier(lifeline_fd, step)
        courier.start()
    set_current_step(step)
    host_routine(routine, step)  # emits from threads a handler starts
    slot_named = routine.get_slot
    if not spare:
        channel.send(pack_one(("ready", os.getpid())))
    last_stats: dict = dict(routine._stats)
    last_state = b""
    clock = time.perf_counter
    pending: deque = deque()
    sock = channel.sock
    while True:
        if not pending:
            if not _readable(sock):  # nothing more to run now: send what we have
                with step.lock:
                    step.flush_locked()
            try:
                pending.extend(unpack(channel.recv()))
            except (EOFError, OSError):  # the parent went away
                return
            step.started_count += 1  # before looking at ``parked`` (see Courier)
            if courier is not None and courier.parked:
                courier.wake()
        message = pending.popleft()
        kind = message[0]
        if kind == "step":
            _, seq, slot_name, data, step.job_id = message
            step.seq = seq
            step.n = 0
            step.started_count += 1
            started = clock()
            step.active = True
            try:
                slot_named(slot_name)._call(data)
                error = None
            except BaseException as exc:
                error = _error_tuple(exc)
            step.active = False
            ended = clock()
            # The state after every step travels back: it is what a restart resumes
            # from and what the caller's routine object shows when a job ends.
            state = state_bytes_of(routine)
            if state == last_state:
                state = None
            else:
                last_state = state
            stats = routine._stats
            if stats != last_stats:
                last_stats = dict(stats)
                sent_stats = last_stats
            else:
                sent_stats = None
            # A failed or long step is reported at once: its error applies now, and a
            # crash of a later step never makes it run again.
            urgent = error is not None or ended - started >= LINGER
            step.step_ended(("done", seq, error, started, ended), sent_stats, state, urgent)
        elif kind == "stop":
            with step.lock:
                step.flush_locked()
            return


def run(channel_fd: int, lifeline_fd: int, parent_pid: int) -> None:
    """Serve one routine over ``channel_fd`` until done, then exit the process
    (the body of a fresh worker and of one forked from the template)."""
    _die_with_parent(parent_pid)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = Channel(socket.socket(fileno=channel_fd))
    try:
        serve(channel, lifeline_fd)  # its courier thread watches the lifeline
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent died while we were answering: nothing left to tell
    finally:
        channel.close()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m routilux.runtime.worker CHANNEL_FD LIFELINE_FD [PARENT_PID]``."""
    argv = sys.argv[1:] if argv is None else argv
    run(int(argv[0]), int(argv[1]), int(argv[2]) if len(argv) > 2 else 0)


if __name__ == "__main__":
    main()
