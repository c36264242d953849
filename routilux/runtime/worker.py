"""The loop inside a routine's OS process.

Started as ``python -m routilux.runtime.worker CHANNEL_FD LIFELINE_FD PARENT_PID`` by a
process routine actor. It receives the routine (cloudpickle), then runs steps one at a
time. Steps arrive in batches; emits, outputs and step ends go back in batches too
(:class:`BatchingStep`): a batch leaves when the child has nothing more to run, when
it holds ``PIPELINE_STEPS`` step ends (the parent routes them while the child runs
the next steps), when it is large, or when its oldest message has waited ``LINGER``
seconds (a courier thread sends what a long step emitted). It exits when told to, when its channel
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
from collections import deque
from typing import Any

from routilux._context import host_routine, set_current_step
from routilux.runtime.snapshot import restore_state

# The step logic lives in ``step``; its names are importable from here too (the Ray
# backend's hosts run the same steps).
from routilux.runtime.step import (  # noqa: F401
    LINGER,
    BatchingStep,
    JobRef,
    ProcessStep,
    _error_tuple,
    state_bytes_of,
)
from routilux.runtime.wire import Channel, loads, pack_one, unpack

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
EXIT_ORPHANED = 70
COURIER_POLL = 0.01  # seconds between the courier's looks at a running step's emits
COURIER_PARK = 1.0  # idle this long, the courier sleeps until the next step
# A new process reports its first steps one by one: a crash takes back every step
# ended but not yet reported, so a replica that keeps crashing (a flaky native
# library, memory pressure) would otherwise progress only by a crash-free run of a
# whole batch. Reported at once, each life keeps what it did.
FIRST_STEPS_UNBATCHED = 64


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
        """Run the courier on a daemon thread of its own."""
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
    unbatched = FIRST_STEPS_UNBATCHED
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
            # crash of a later step never makes it run again. So are a new process's
            # first steps (see FIRST_STEPS_UNBATCHED).
            urgent = error is not None or ended - started >= LINGER or unbatched > 0
            unbatched -= 1
            step.step_ended(seq, error, started, ended, sent_stats, state, urgent)
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
