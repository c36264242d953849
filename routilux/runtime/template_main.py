"""The worker template's own loop (see :mod:`routilux.runtime.template`).

Run as ``python -m routilux.runtime.template_main CONTROL_FD LIFELINE_FD HOST_PID``;
nothing in the package imports this module, so the template is a clean interpreter
that has imported the worker code and nothing of the host's.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import sys
import threading

from routilux.runtime import worker
from routilux.runtime.template import MESSAGE_SIZE
from routilux.runtime.wire import dumps, loads


def _serve(control: socket.socket, lifeline: int) -> None:
    """The template's loop: fork on request, reap and report exits."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the select below

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            control.send(dumps(("exited", pid, os.waitstatus_to_exitcode(status))))

    while True:
        try:
            ready, _, _ = select.select([control, wake_read, lifeline], [], [])
        except InterruptedError:
            ready = []
        if lifeline in ready and not os.read(lifeline, 1):
            return  # the host died
        if wake_read in ready:
            try:
                os.read(wake_read, 4096)
            except BlockingIOError:
                pass
        if control in ready:
            data, fds, _, _ = socket.recv_fds(control, MESSAGE_SIZE, 4)
            if not data:
                return  # the host closed us
            request = loads(data)
            try:
                pid = os.fork()
            except OSError as exc:
                pid = -1
                control.send(dumps(("forked", request[1], f"fork failed: {exc}")))
            if pid == 0:
                _become_worker(request, fds, [control.fileno(), lifeline, wake_read, wake_write])
            for fd in fds:
                os.close(fd)
            if pid > 0:
                control.send(dumps(("forked", request[1], pid)))
        reap()


def _become_worker(request: tuple, fds: list[int], inherited: list[int]) -> None:
    """In the forked process: drop the template's ends, take the host's directory and
    environment, and serve the routine (never returns)."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in inherited:
            os.close(fd)
        _, _, cwd, environ = request
        try:
            os.chdir(cwd)
        except OSError:
            pass
        os.environ.clear()
        os.environ.update(environ)
        channel_fd, lifeline_fd, stdout_fd, stderr_fd = fds
        # Print where the host prints now (it may have redirected since we started).
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        os.close(stdout_fd)
        os.close(stderr_fd)
        worker.run(channel_fd, lifeline_fd, os.getppid())
    finally:
        os._exit(71)  # only if serving raised


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``python -m routilux.runtime.template_main CONTROL_FD LIFELINE_FD HOST_PID``."""
    argv = sys.argv[1:] if argv is None else argv
    control_fd, lifeline, host_pid = int(argv[0]), int(argv[1]), int(argv[2])
    worker._die_with_parent(host_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the host decides
    control = socket.socket(fileno=control_fd)
    if threading.active_count() != 1:  # the safety argument above needs one thread
        control.send(dumps(("refused", f"{threading.active_count()} threads at start")))
        os._exit(1)
    # What we imported stays put in every fork: keep the collector off those pages
    # so that forked processes share them instead of copying them on first collection.
    gc.collect()
    gc.freeze()
    control.send(dumps(("ready", os.getpid())))
    try:
        _serve(control, lifeline)
    except (BrokenPipeError, ConnectionResetError):
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
