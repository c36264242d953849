"""Helpers shared by every test package.

- ``wait_until``: the one way a test waits for a condition (bounded, never a settle).
- ``Node``, ``Source``, ``Sink``: the shared test routines; ``Faulty`` crashes its
  process once, and ``process_chain`` runs a routine as a process between them.
- ``Program`` and ``wait_gone``: a helper program in a subprocess, read line by line.
- ``run_example``, ``run_readme_command``, ``start_example``: the one example runner.

Importable as ``helpers`` from every test package (``tests/conftest.py`` puts this
directory on ``sys.path``), and by routine processes too (they get the parent's
``sys.path``), so the routines defined here can run with ``execution="process"``.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from routilux import Routine

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


# ------------------------------------------------------------------ waiting
def wait_until(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.005
) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; whether it held.

    For conditions no event announces: another process, a file, or the supervisor's
    figures. A predicate that calls ``flow.metrics()`` is a round trip through the
    supervisor, so ``interval=0`` (back-to-back polls) is no busy spin there.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# ------------------------------------------------------------------ routines
class Node(Routine):
    """A routine whose behaviour is ``fn(node, data)``; ``calls`` holds each message's data.

    Slots ``slots`` (``merge_strategy`` applies to the one named ``in``), events
    ``events``. Subclasses may override ``record`` to keep something else per call.
    """

    def __init__(
        self,
        fn: Callable[[Node, dict], Any] | None = None,
        slots: tuple[str, ...] = ("trigger", "in"),
        events: tuple[str, ...] = ("out",),
        merge_strategy: Any = "override",
    ) -> None:
        super().__init__()
        self.fn = fn
        self.calls: list = []
        for name in slots:
            self.define_slot(
                name,
                handler=self._handle,
                merge_strategy=merge_strategy if name == "in" else "override",
            )
        for name in events:
            self.define_event(name)

    def _handle(self, **data: Any) -> None:
        self.record(data)
        if self.fn is not None:
            self.fn(self, data)

    def record(self, data: dict) -> None:
        self.calls.append(data)


class Sink(Node):
    """Keeps every message its one slot (``slot``, default ``in``) receives in ``calls``."""

    def __init__(self, slot: str = "in") -> None:
        super().__init__(slots=(slot,), events=())

    def values(self, key: str) -> list:
        """The ``key`` of every message received, in order."""
        return [call[key] for call in self.calls]


class Source(Routine):
    """Entry routine (slot ``trigger``) emitting on ``event`` (default ``out``).

    ``trigger(n=1, **extra)`` emits ``x=0..n-1`` with the extra keys;
    ``trigger(messages=[...])`` emits each message as it is. With ``done_event``, it
    then emits ``count`` (how many it emitted) on that event.
    """

    def __init__(self, event: str = "out", done_event: str | None = None) -> None:
        super().__init__()
        self.event = event
        self.done_event = done_event
        self.define_slot("trigger", handler=self.go)
        self.define_event(event, ["x"])
        if done_event is not None:
            self.define_event(done_event, ["count"])

    def go(self, n: int = 1, messages: list[dict] | None = None, **extra: Any) -> None:
        if messages is None:
            messages = [{"x": i, **extra} for i in range(n)]
        for message in messages:
            self.emit(self.event, **message)
        if self.done_event is not None:
            self.emit(self.done_event, count=len(messages))


class Faulty(Routine):
    """Fails in a chosen way the first time it sees message ``crash_on``.

    A marker file (outside the process) remembers that it already crashed, so the
    redelivered message succeeds.
    """

    def __init__(self, how: str, crash_on: int, marker: str, emits_before: int = 0):
        super().__init__()
        self.how = how
        self.crash_on = crash_on
        self.marker = marker
        self.emits_before = emits_before
        self.handled = 0
        self.define_slot("inp", handler=self.work)
        self.define_event("out", ["x"])

    def work(self, x):
        if x == self.crash_on and not os.path.exists(self.marker):
            for k in range(self.emits_before):
                self.emit("out", x=x * 100 + k)
            Path(self.marker).write_text(str(os.getpid()))
            if self.how == "exit":
                os._exit(3)
            elif self.how == "segfault":
                ctypes.string_at(0)
            elif self.how == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.how == "hang":
                threading.Event().wait()
        for k in range(self.emits_before if x == self.crash_on else 0):
            self.emit("out", x=x * 100 + k)
        self.handled += 1
        self._stats["handled"] = self.handled
        self.emit("out", x=x)


def src_w_sink(
    make_flow: Callable[..., Any], count: int, fn: Callable | None = None, **flow_kwargs: Any
) -> tuple[Any, Node, Node]:
    """``src -> w -> sink`` of Nodes: src emits ``count`` messages ``v=i`` in one step,
    ``w`` runs ``fn`` (default: relay ``v``) and ``sink`` records what arrives."""
    flow = make_flow(**flow_kwargs)
    w, sink = Node(fn or (lambda n, d: n.emit("out", v=d["v"]))), Node()
    flow.add_routine(Node(lambda n, d: [n.emit("out", v=i) for i in range(count)]), "src")
    flow.add_routine(w, "w")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "w", "in")
    flow.connect("w", "out", "sink", "in")
    return flow, w, sink


def process_chain(
    make_flow: Callable[..., Any],
    worker: Routine,
    *,
    restart: Any,
    strategy: str = "sequential",
    workers: int = 1,
    **options: Any,
) -> tuple[Any, Sink]:
    """``src -> work -> sink`` with ``worker`` as a process routine ``work``."""
    flow = make_flow(execution_strategy=strategy, max_workers=8)
    sink = Sink("inp")
    flow.add_routine(Source(), "src")
    flow.add_routine(
        worker, "work", execution="process", workers=workers, restart=restart, **options
    )
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "work", "inp")
    flow.connect("work", "out", "sink", "inp")
    return flow, sink


# ------------------------------------------------------------------ programs
class Program:
    """``python <args>`` in a subprocess; stdout is read line by line on a thread.

    ``expect(word)`` waits for the next line whose first word is ``word``;
    ``until_line(match)`` for the next line that contains ``match`` (or satisfies it,
    when it is a function). Lines read so far are in ``seen``. stderr goes to
    ``stderr_path``, or with the stdout lines when it is None. The program runs in
    ``cwd`` (default: the script's directory).
    """

    def __init__(
        self,
        args: list[str],
        stderr_path: Path | None,
        env: dict | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.args = args
        self.stderr_path = stderr_path
        # closed in close()
        self._stderr = open(stderr_path, "wb") if stderr_path is not None else None
        self.popen = subprocess.Popen(
            [sys.executable, *args], stdout=subprocess.PIPE,
            stderr=self._stderr if self._stderr is not None else subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, env=env,
            cwd=cwd if cwd is not None else Path(args[0]).parent,
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

    def _next_line(self, deadline: float, what: str, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            raise AssertionError(f"no {what} within {timeout} s; {self.describe()}") from None
        if line is None:
            self.lines.put(None)
            raise AssertionError(f"program ended without {what}; {self.describe()}")
        self.seen.append(line)
        return line

    def expect(self, word: str, timeout: float = 30.0) -> str:
        """The rest of the next line that starts with ``word`` (other lines are kept);
        a line starting with ``error`` or ``timeout`` fails the test."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line(deadline, f"{word!r} line", timeout)
            head, _, rest = line.partition(" ")
            if head == word:
                return rest
            if head in ("error", "timeout"):
                raise AssertionError(f"program reported {line!r}; {self.describe()}")

    def until_line(self, match: str | Callable[[str], bool], timeout: float = 30.0) -> str:
        """The next line containing ``match`` (or for which ``match(line)`` holds)."""
        deadline = time.monotonic() + timeout
        test = match if callable(match) else (lambda line: match in line)
        while True:
            line = self._next_line(deadline, f"line matching {match!r}", timeout)
            if test(line):
                return line

    def output(self, timeout: float = 30.0) -> str:
        """Everything printed, once the program has ended (waits for it)."""
        self.wait(timeout)
        while (line := self.lines.get()) is not None:
            self.seen.append(line)
        self.lines.put(None)
        return "\n".join(self.seen)

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
        if self._stderr is None:
            return f"output so far: {self.seen[-10:]!r}"
        self._stderr.flush()
        err = self.stderr_path.read_text(errors="replace")[-3000:]
        return f"stdout so far: {self.seen[-10:]!r}; stderr tail:\n{err}"

    def close(self) -> None:
        if self.popen.poll() is None:
            self.kill()
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        if self._stderr is not None:
            self._stderr.close()


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(processes: list[psutil.Process], timeout: float = 10.0) -> list[psutil.Process]:
    """Wait until every process has exited (a zombie counts: it runs no more).

    Returns those still running after ``timeout``. Orphans are reaped by init, which
    may take a while here, so ``psutil.wait_procs`` would wait for the reaping.
    """
    wait_until(lambda: all(_gone(proc) for proc in processes), timeout, interval=0.02)
    return [proc for proc in processes if not _gone(proc)]


# ------------------------------------------------------------------ examples
def _example_argv(target: str, args: tuple[str, ...], cli: bool) -> list[str]:
    path = str(EXAMPLES / target)
    return ["-m", "routilux", "run", path, *args] if cli else [path, *args]


def run_example(
    target: str, *args: str, cwd: Path, cli: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run ``examples/<target>`` with this interpreter in ``cwd``: as a script, or with
    ``cli=True`` through ``routilux run`` (``target`` is then ``file.py:attr`` or a
    flow file). Output is captured as text."""
    return subprocess.run(
        [sys.executable, *_example_argv(target, args, cli)],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )


def run_readme_command(
    command: str, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run a README line ``routilux ...`` through bash (it may use ``$(...)`` or globs),
    with this interpreter and the checkout's ``examples/``, in ``cwd``."""
    shell = f"{sys.executable} -m routilux" + command.removeprefix("routilux")
    shell = shell.replace("examples/", f"{EXAMPLES}/")
    return subprocess.run(
        ["bash", "-c", shell], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def start_example(target: str, *args: str, cwd: Path, cli: bool = False) -> Program:
    """Start ``examples/<target>`` (see ``run_example``) in ``cwd`` as a
    :class:`Program` whose lines hold stdout and stderr; the caller closes it."""
    return Program(_example_argv(target, args, cli), None, cwd=cwd)


def interrupt_run(
    args: list[str], cwd: Path, after: str = "progress 5", env: dict | None = None
) -> tuple[str, str, int]:
    """Run ``routilux run ARGS``, press Ctrl-C once stderr shows a line starting
    with ``after``; returns ``(first stdout line, rest of stdout, exit code)``."""
    run = subprocess.Popen(
        [sys.executable, "-m", "routilux", "run", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        first = run.stdout.readline()
        for line in run.stderr:
            if line.startswith(after):
                break
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=30)
    finally:
        run.kill()
        run.wait()
    return first, out, run.returncode
