"""The worker template: routine processes forked from a clean, pre-imported process.

Starting a fresh interpreter and importing routilux costs tens to hundreds of
milliseconds; forking costs a few. So a host that runs process routines starts one
*template* process (``python -m routilux.runtime.template_main``): a fresh interpreter
that imports the worker code and then only waits for requests. Each routine process
is forked from it, not from the host.

Why forking the template is safe where forking the host is not: the host runs
threads (the supervisor, actors, readers, timers, the user's own), and a fork copies
every lock in whatever state another thread left it, while only the forking thread
goes on in the child. The template never runs user code and never starts a thread
(it checks that it has exactly one before it serves), so no lock is held by anyone
when it forks. It holds no user state either: the routine arrives over the new
process's own channel, as with a fresh interpreter.

The template is the parent of the processes it forks. It reaps them and reports each
exit status to the host, which turns it into the crash reason. Each forked process
asks the kernel for the parent-death signal (on the template), and the template asks
it on the host, so a host's death still takes every routine process with it; the
lifeline pipe comes straight from the host as well. The forked process gets the
host's current directory, environment, standard output and standard error with each
request.

If the template cannot be started or stops answering, routine processes start as
fresh interpreters (``python -m routilux.runtime.worker``), as they do when
``ROUTILUX_WORKER_TEMPLATE=0`` or off Linux.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading

from routilux.runtime.wire import dumps, loads

logger = logging.getLogger("routilux.process")

START_TIMEOUT = 30.0
MESSAGE_SIZE = 1 << 20  # bytes: the largest control message (a request carries the environment)


class TemplateError(Exception):
    """The template could not fork a process (the caller starts a fresh one)."""


def wanted() -> bool:
    """Whether routine processes are forked from a template here."""
    if os.environ.get("ROUTILUX_WORKER_TEMPLATE", "1").strip().lower() in ("0", "false", "no"):
        return False
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds")


# --------------------------------------------------------------- host side
class Template:
    """The host's handle on its template process (one per host process)."""

    def __init__(self) -> None:
        self.control, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lifeline = -1  # our end of the template's lifeline; closes when the host dies
        self.popen: subprocess.Popen | None = None
        self.pid: int | None = None
        self.alive = True
        self.condition = threading.Condition()
        self.forked: dict[int, int | str] = {}  # request id -> pid (or why not)
        self.exited: dict[int, int] = {}  # pid -> return code (Popen's convention)
        self.requests = 0
        self.send_lock = threading.Lock()
        self.started = threading.Event()
        self.error: str | None = None
        # The parent-death signal is tied to the thread that starts a process: the
        # template is started by the thread that then reads its reports for good.
        threading.Thread(target=self._run, daemon=True, name="routilux-template").start()
        if not self.started.wait(START_TIMEOUT) or self.error is not None:
            self.close()
            raise TemplateError(f"the worker template did not start ({self.error or 'timeout'})")

    def _run(self) -> None:
        try:
            self._start()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.started.set()
        if self.error is None:
            self._read()

    def _start(self) -> None:
        lifeline_read, self.lifeline = os.pipe()
        theirs = self._theirs
        try:
            self.popen = start_module(
                "routilux.runtime.template_main", theirs.fileno(), lifeline_read
            )
        finally:
            theirs.close()
            os.close(lifeline_read)
        self.pid = self.popen.pid
        ready, _, _ = select.select([self.control], [], [], START_TIMEOUT)
        reply = loads(self.control.recv(MESSAGE_SIZE)) if ready else None
        if not reply or reply[0] != "ready":
            raise TemplateError(f"it answered {reply!r}")

    def fork(self, fds: list[int], timeout: float = START_TIMEOUT) -> int:
        """Fork a routine process that serves on ``fds`` (channel, lifeline); its pid.
        It also gets our current standard output and error."""
        with self.condition:
            self.requests += 1
            request = self.requests
        message = dumps(("fork", request, os.getcwd(), dict(os.environ)))
        try:
            with self.send_lock:
                socket.send_fds(self.control, [message], [*fds, 1, 2])
        except OSError as exc:
            raise TemplateError(f"the worker template is gone ({exc})") from None
        with self.condition:
            if not self.condition.wait_for(
                lambda: request in self.forked or not self.alive, timeout
            ):
                raise TemplateError(f"the worker template did not fork within {timeout} s")
            pid = self.forked.pop(request, None)
        if not isinstance(pid, int):
            raise TemplateError(f"the worker template could not fork: {pid or 'it stopped'}")
        return pid

    def wait_exit(self, pid: int, timeout: float | None) -> int | None:
        """The exit status of forked process ``pid`` once the template reaped it
        (None if the template stopped first). Raises TimeoutExpired."""
        with self.condition:
            if not self.condition.wait_for(lambda: pid in self.exited or not self.alive, timeout):
                raise subprocess.TimeoutExpired(f"routine process {pid}", timeout or 0)
            return self.exited.pop(pid, None)

    def _read(self) -> None:
        while True:
            try:
                data = self.control.recv(MESSAGE_SIZE)
            except OSError:
                data = b""
            if not data:
                break
            message = loads(data)
            with self.condition:
                if message[0] == "forked":
                    self.forked[message[1]] = message[2]
                elif message[0] == "exited":
                    self.exited[message[1]] = message[2]
                self.condition.notify_all()
        with self.condition:
            self.alive = False
            self.condition.notify_all()
        logger.debug("the worker template (pid %s) stopped", self.pid)

    def close(self) -> None:
        """Stop the template (the processes it forked die with it)."""
        self.alive = False
        self.control.close()
        lifeline, self.lifeline = self.lifeline, -1
        if lifeline >= 0:
            os.close(lifeline)
        if self.popen is not None:
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class ForkedProcess:
    """A routine process forked by the template: the part of ``Popen`` we use.

    Thread-safe: the reader thread and the actor's stop both reap, any thread may
    kill. The pidfd is closed once, under the lock ``kill`` takes, so a kill never
    reaches a descriptor number that was reused meanwhile.
    """

    def __init__(self, template: Template, pid: int) -> None:
        self.template = template
        self.pid = pid
        self.returncode: int | None = None
        self.reaped = False
        self._fd_lock = threading.Lock()
        self._wait_lock = threading.Lock()
        try:  # a pidfd names this process even after its pid is reused
            self.pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None

    def kill(self) -> None:
        """SIGKILL the process (no-op once it is reaped)."""
        with self._fd_lock:
            if self.reaped:
                return
            try:
                if self.pidfd is not None:
                    signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                else:
                    os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status (Popen's convention; None if the template stopped first);
        TimeoutExpired after ``timeout``."""
        if not self._wait_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise subprocess.TimeoutExpired(f"routine process {self.pid}", timeout or 0)
        try:
            if not self.reaped:
                code = self.template.wait_exit(self.pid, timeout)
                with self._fd_lock:
                    self.returncode = code
                    self.reaped = True
                    if self.pidfd is not None:
                        os.close(self.pidfd)
                        self.pidfd = None
            return self.returncode
        finally:
            self._wait_lock.release()

    def poll(self) -> int | None:
        """The exit status if the process was reaped, else None (no waiting)."""
        return self.returncode


_lock = threading.Lock()
_template: Template | None = None
_failed = False


def start_module(module: str, channel_fd: int, lifeline_fd: int) -> subprocess.Popen:
    """A fresh interpreter running ``python -m module CHANNEL LIFELINE PARENT_PID``
    with those two descriptors (a worker, or the template itself). The parent's pid
    lets it tell whether we died before it armed its parent-death signal."""
    return subprocess.Popen(
        [sys.executable, "-m", module, str(channel_fd), str(lifeline_fd), str(os.getpid())],
        pass_fds=(channel_fd, lifeline_fd),
        stdin=subprocess.DEVNULL,
        close_fds=True,
    )


def fork_worker(fds: list[int]) -> ForkedProcess | None:
    """A routine process forked from this host's template, started on first use;
    None when there is no template (the caller starts a fresh interpreter)."""
    global _template, _failed
    if _failed or not wanted():
        return None
    with _lock:
        template = _template
        if template is None or not template.alive:
            try:
                template = _template = Template()
            except (OSError, TemplateError) as exc:
                _failed = True
                logger.warning("routine processes start as fresh interpreters: %s", exc)
                return None
    try:
        return ForkedProcess(template, template.fork(fds))
    except TemplateError as exc:
        logger.warning("%s; starting a fresh interpreter instead", exc)
        return None


def shutdown() -> None:
    """Stop this host's template, if it runs (a new one starts on next use)."""
    global _template
    with _lock:
        template, _template = _template, None
    if template is not None:
        template.close()
