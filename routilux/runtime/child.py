"""One routine process as its parent sees it: start, channel, lifeline, kill, reap.

The process is forked from the worker template when there is one (see
:mod:`routilux.runtime.template`), else a fresh interpreter
(``python -m routilux.runtime.worker``). Either way it is safe in a process that
already runs threads, and it never re-imports the user's ``__main__``.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
from typing import Any

from routilux.exceptions import RoutineCrashedError
from routilux.runtime.template import fork_worker, start_module
from routilux.runtime.wire import Channel, pack_one, unpack

START_TIMEOUT = 30.0
SOCKET_BUFFER = 256 * 1024  # bytes asked for each way (the kernel may cap it)


def exit_description(returncode: int | None) -> str:
    """'signal SIGKILL' / 'exit code 3' from a Popen return code."""
    if returncode is None:
        return "unknown exit status"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


class ChildProcess:
    """One routine process: spawn, channel, lifeline, kill and reap."""

    def __init__(
        self,
        routine_id: str,
        routine_bytes: bytes,
        state_bytes: bytes | None,
        spare: bool = False,
    ) -> None:
        parent_sock, child_sock = socket.socketpair()
        for sock in (parent_sock, child_sock):
            for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
                except OSError:
                    pass
        lifeline_read, lifeline_write = os.pipe()
        try:
            # Forked from the pre-imported template when there is one (milliseconds),
            # else a fresh interpreter (see routilux.runtime.template).
            self.popen: Any = fork_worker([child_sock.fileno(), lifeline_read])
            if self.popen is None:
                self.popen = start_module(
                    "routilux.runtime.worker", child_sock.fileno(), lifeline_read
                )
        finally:
            child_sock.close()
            os.close(lifeline_read)
        self.lifeline = lifeline_write  # never written; closes when we die
        self.channel = Channel(parent_sock)
        self.pid = self.popen.pid
        init = ("init", list(sys.path), routine_bytes, state_bytes, routine_id, spare)
        self.channel.send(pack_one(init))
        ready, _, _ = select.select([parent_sock], [], [], START_TIMEOUT)
        if not ready:
            self.kill()
            raise RoutineCrashedError(
                f"routine {routine_id!r}: its process did not start within {START_TIMEOUT} s"
            )
        try:
            (message,) = unpack(self.channel.recv())
        except EOFError:
            code = self.popen.wait()
            raise RoutineCrashedError(
                f"routine {routine_id!r}: its process died while starting "
                f"({exit_description(code)}); see its stderr above"
            ) from None
        assert message[0] == "ready"

    def activate(self, state_bytes: bytes | None) -> bool:
        """Put a warm spare to work from ``state_bytes``; False if it died waiting."""
        try:
            ready, _, _ = select.select([self.channel.sock], [], [], 0)
            if ready:  # a spare says nothing until activated: this is its end
                return False
            self.channel.send(pack_one(("activate", state_bytes)))
        except (OSError, ValueError):
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the child (no-op if it is gone)."""
        try:
            self.popen.kill()
        except OSError:
            pass

    def reap(self, timeout: float = 5.0) -> int | None:
        """Wait for the child's exit status (killing it after ``timeout``)."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:  # a template that stopped answering
                return None

    def close(self) -> None:
        """Close our ends of the channel and the lifeline."""
        self.channel.close()
        lifeline, self.lifeline = self.lifeline, -1
        if lifeline >= 0:  # once: the number may belong to someone else afterwards
            try:
                os.close(lifeline)
            except OSError:
                pass
