"""Running the helper programs of the checkpoint tests in subprocesses.

A :class:`Program` starts ``python <script> <args>``; its stdout is read line by line
on a thread, and ``expect(word)`` waits (with a timeout) for the next line starting
with ``word``. The ``spawn`` fixture (conftest.py) makes Programs and kills, by pid,
any that are still running when the test ends.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).parent


class Program:
    def __init__(self, args: list[str], stderr_path: Path, env: dict | None = None) -> None:
        self.args = args
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "wb")  # closed in close()
        self.popen = subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE, stderr=self._stderr,
            stdin=subprocess.DEVNULL, text=True, cwd=HERE, env=env,
        )
        self.pid = self.popen.pid
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.popen.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, word: str, timeout: float = 30.0) -> str:
        """The rest of the next line that starts with ``word`` (other lines are kept)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(remaining, 0))
            except queue.Empty:
                raise AssertionError(
                    f"no {word!r} line within {timeout} s; {self.describe()}"
                ) from None
            if line is None:
                self.lines.put(None)
                raise AssertionError(f"program ended without a {word!r} line; {self.describe()}")
            self.seen.append(line)
            head, _, rest = line.partition(" ")
            if head == word:
                return rest
            if head in ("error", "timeout"):
                raise AssertionError(f"program reported {line!r}; {self.describe()}")

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> list[psutil.Process]:
        """SIGKILL the program; returns the processes it had started."""
        children = self.children()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(10)
        return children

    def wait(self, timeout: float = 30.0) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(timeout)
        return code

    def describe(self) -> str:
        self._stderr.flush()
        err = self.stderr_path.read_text(errors="replace")[-3000:]
        return f"stdout so far: {self.seen[-10:]!r}; stderr tail:\n{err}"

    def close(self) -> None:
        if self.popen.poll() is None:
            self.kill()
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._stderr.close()


def wait_gone(processes: list[psutil.Process], timeout: float = 10.0) -> list[psutil.Process]:
    """Wait until every process has exited (a zombie counts: it runs no more).

    Returns those still running after ``timeout``. Orphans are reaped by init, which
    may take a while here, so ``psutil.wait_procs`` would wait for the reaping.
    """
    deadline = time.monotonic() + timeout
    alive = list(processes)
    while alive:
        still = []
        for proc in alive:
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    still.append(proc)
            except psutil.NoSuchProcess:
                pass
        alive = still
        if not alive or time.monotonic() > deadline:
            break
        psutil.wait_procs(alive, timeout=0.02)
    return alive
