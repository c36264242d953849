"""The loop inside a routine's OS process.

Started as ``python -m routilux.runtime.worker CHANNEL_FD LIFELINE_FD PARENT_PID`` by a
process routine actor. It receives the routine (cloudpickle), then runs steps one at a
time, streaming emits back as they happen. It exits when told to, when its channel
closes, or as soon as its parent dies, even mid-step: on Linux the kernel kills it
(parent-death signal), so not even a step that holds the GIL can keep it alive;
elsewhere a thread watches the lifeline pipe reach end-of-file.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any

# Keep this module's imports light: it is what every routine process starts with
# (the imports inside functions below are for start-up time, not for cycles).
from routilux._context import ExecutionContext, host_routine, set_current_step

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
EXIT_ORPHANED = 70


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


def _watch_parent(lifeline_fd: int) -> None:
    """Exit the moment the parent's end of the lifeline closes (parent death)."""
    try:
        while os.read(lifeline_fd, 1):
            pass
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
        from routilux.runtime.wire import dumps_or_explain

        payload = dumps_or_explain(message, what)
        with self.lock:  # frames from helper threads must not interleave
            self.channel.send(payload)

    def emit(self, routine: Any, event_name: str, data: dict) -> None:
        """Send one emit of the current step to the parent (numbered, in order)."""
        from routilux.runtime.wire import dumps_or_explain

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
            from routilux.exceptions import FlowStateError

            raise FlowStateError(
                f"routine {self.routine_id!r} runs in its own process and can only emit "
                "its own events"
            )


def _error_tuple(exc: BaseException) -> tuple:
    from routilux.runtime.wire import dumps

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
    from routilux.runtime.snapshot import capture_state
    from routilux.runtime.wire import dumps

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


def serve(channel: Any) -> None:
    """Receive the routine, then run steps until told to stop or the channel closes."""
    from routilux.runtime.wire import dumps, loads

    init = loads(channel.recv())
    _, parent_path, routine_bytes, state_bytes, routine_id = init
    for entry in reversed(parent_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    routine = loads(routine_bytes)
    if state_bytes is not None:  # a restart: continue from the last state seen
        from routilux.runtime.snapshot import restore_state

        restore_state(routine, loads(state_bytes))
    step = ProcessStep(channel, routine, routine_id)
    set_current_step(step)
    host_routine(routine, step)  # emits from threads a handler starts
    slot_named = routine.get_slot
    channel.send(dumps(("ready", os.getpid())))
    last_stats: dict = dict(routine._stats)
    last_state = b""
    clock = time.perf_counter
    while True:
        try:
            message = loads(channel.recv())
        except (EOFError, OSError):  # the parent went away
            return
        kind = message[0]
        if kind == "step":
            _, seq, slot_name, data, step.job_id = message
            step.seq = seq
            step.n = 0
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
            try:
                payload = dumps(("done", seq, error, started, ended, sent_stats, state))
            except Exception:
                payload = dumps(("done", seq, error, started, ended, None, state))
            with step.lock:
                channel.send(payload)
        elif kind == "stop":
            return


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m routilux.runtime.worker CHANNEL_FD LIFELINE_FD [PARENT_PID]``."""
    argv = sys.argv[1:] if argv is None else argv
    channel_fd, lifeline_fd = int(argv[0]), int(argv[1])
    _die_with_parent(int(argv[2]) if len(argv) > 2 else 0)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(lifeline_fd,), daemon=True).start()
    from routilux.runtime.wire import Channel

    channel = Channel(socket.socket(fileno=channel_fd))
    try:
        serve(channel)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent died while we were answering: nothing left to tell
    finally:
        channel.close()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
