"""Flows, routines and checks shared by the fault-injection tests and their host programs.

This module is imported by the tests (as ``faults.fault_helpers``), by the host
programs of this directory (as ``fault_helpers``) and by routine processes, so it
keeps to routilux and the standard library (psutil for process checks).

The kill-loop flow (``build_kill_flow``) runs named jobs whose results are known in
advance: job ``job-007`` fans out ``job_size(7)`` messages, a PROCESS routine turns
each into ``value(7, i)``, a thread sink sends each value to the job's output log.
Both workers keep counters across jobs, so the final routine state is known too.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from routilux import ErrorHandler, ErrorStrategy, Flow, RestartPolicy, Routine
from routilux.checkpoint import DirectoryStore, SQLiteStore

KEY = "fault-suite-checkpoint-key-0123456789"  # also passed to the CLI by environment
KILL_FLOW = "fault-kill-loop"


# ------------------------------------------------------------------ stores
def store_path(tmp: Path, kind: str) -> str:
    """Where a test keeps its store of ``kind`` ("sqlite" or "dir")."""
    return str(tmp / ("store.db" if kind == "sqlite" else "store"))


def make_store(kind: str, path: str):
    """An SQLiteStore or DirectoryStore at ``path`` with the suite's key."""
    if kind == "sqlite":
        return SQLiteStore(path, key=KEY)
    if kind == "dir":
        return DirectoryStore(path, key=KEY)
    raise ValueError(f"unknown store kind {kind!r}")


# ------------------------------------------------------------------ the kill-loop flow
def job_id(index: int) -> str:
    return f"job-{index:03d}"


def job_size(index: int) -> int:
    """How many messages job ``index`` fans out."""
    return 3 + index % 5


def value(index: int, i: int) -> int:
    """What the process routine makes of message ``i`` of job ``index``."""
    acc = index * 7919 + i * 104_729
    for k in range(200):  # a little CPU work per message
        acc = (acc * 31 + k) % 1_000_003
    return acc


def expected_job(index: int) -> dict[str, Any]:
    """The exact result of job ``index`` (see ``job_result``)."""
    n = job_size(index)
    return {
        "status": "completed",
        "outputs": [[i, value(index, i)] for i in range(n)],
        "processed": {"fan": 1, "work": n, "sink": n},
        "failed": 0,
    }


def expected_totals(indexes: list[int]) -> dict[str, int]:
    """The routines' counters after exactly the jobs ``indexes`` ran, each once."""
    count = sum(job_size(k) for k in indexes)
    total = sum(value(k, i) for k in indexes for i in range(job_size(k)))
    return {"fan_jobs": len(indexes), "work_count": count, "work_total": total,
            "sink_count": count, "sink_total": total}


class Fan(Routine):
    """Entry: fans job ``job`` out into ``n`` messages."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs = 0
        self.define_slot("trigger", handler=self.start)
        self.define_event("out", ["job", "i"])

    def start(self, job, n):
        self.jobs += 1
        for i in range(n):
            self.emit("out", job=job, i=i)


STEP_IO = 0.02  # seconds a Work step waits, as if on I/O: jobs last long enough to be killed


class Work(Routine):
    """Runs in its own process; exact counters across jobs."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.total = 0
        self.define_slot("inp", handler=self.take)
        self.define_event("out", ["job", "i", "v"])

    def take(self, job, i):
        v = value(job, i)
        time.sleep(STEP_IO)  # the step's "I/O" (workload, not a wait for the test)
        self.count += 1
        self.total += v
        self._stats["count"] = self.count
        self.emit("out", job=job, i=i, v=v)


class Sink(Routine):
    """Thread routine: exact counters, and each value into the job's output log."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.total = 0
        self.define_slot("inp", handler=self.take)

    def take(self, job, i, v):
        self.count += 1
        self.total += v
        self.send_output("value", job=job, i=i, v=v)


def build_kill_flow(store: Any = None, interval: float = 0.05) -> Flow:
    """The kill-loop flow; ``store=None`` for a flow a Runtime hosts (its store)."""
    flow = Flow(
        KILL_FLOW, "concurrent", max_workers=4, checkpoint_store=store,
        checkpoint_interval=interval, keep_finished_jobs=1000,
        restart=RestartPolicy(max_restarts=5, within=60.0, backoff=0.01, backoff_max=0.05),
    )
    flow.add_routine(Fan(), "fan")
    flow.add_routine(Work(), "work", execution="process")
    flow.add_routine(Sink(), "sink")
    flow.connect("fan", "out", "work", "inp")
    flow.connect("work", "out", "sink", "inp")
    return flow


def job_result(job: Any) -> dict[str, Any]:
    """What of a job must come back exactly (comparable with ``expected_job``)."""
    outputs = sorted(
        [e["data"]["i"], e["data"]["v"]] for e in job.output_log if e["output_type"] == "value"
    )
    return {
        "status": job.status,
        "outputs": outputs,
        "processed": {rid: st["processed"] for rid, st in sorted(job.routine_states.items())},
        "failed": sum(st["failed"] for st in job.routine_states.values()),
    }


def totals(flow: Flow) -> dict[str, int]:
    """The kill-loop flow's counters (comparable with ``expected_totals``)."""
    r = flow.routines
    return {"fan_jobs": r["fan"].jobs, "work_count": r["work"].count,
            "work_total": r["work"].total, "sink_count": r["sink"].count,
            "sink_total": r["sink"].total}


# ------------------------------------------------------------------ crashing routines
CRASH_KINDS = ("sigkill", "segfault", "exit", "timeout", "oom", "gil_hang")
STEP_TIMEOUT = 0.5  # seconds; the routine's ``timeout=`` in the crash tests
# Catastrophic backtracking: about 2**28 steps (~15 s) inside one C call that holds the GIL.
GIL_PATTERN = re.compile(r"^(a+)+$")
GIL_SUBJECT = "a" * 28 + "!"


def crash(how: str) -> None:
    """Fail the calling process in the way ``how`` names (see ``CRASH_KINDS``)."""
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "segfault":
        ctypes.string_at(0)
    elif how == "exit":
        os._exit(7)
    elif how == "timeout":
        threading.Event().wait()  # the parent kills the step at its timeout
    elif how == "oom":
        # A memory limit a little above what the process uses, then an allocation
        # well past it: the allocation fails inside the step.
        used = psutil.Process().memory_info().vms
        limit = used + 64 * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        hog = [bytearray(16 * 1024 * 1024) for _ in range(64)]
        del hog
    elif how == "gil_hang":
        GIL_PATTERN.match(GIL_SUBJECT)  # never returns within the step timeout
    else:
        raise ValueError(f"unknown crash kind {how!r}")


class Crasher(Routine):
    """Process routine: message ``x`` in ``plan`` fails the process as ``plan[x]``
    names, once (a marker file outside the process remembers it); every message
    then yields ``x * x`` with exact counters."""

    def __init__(self, plan: dict[int, str], marker_dir: str) -> None:
        super().__init__()
        self.plan = plan
        self.marker_dir = marker_dir
        self.handled = 0
        self.total = 0
        self.define_slot("inp", handler=self.work)
        self.define_event("out", ["x", "y"])
        # MemoryError is an error, not a process death: deliver it again as well.
        self.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=3,
                                            retry_delay=0.01, retry_backoff=1.0))

    def work(self, x):
        how = self.plan.get(x)
        marker = Path(self.marker_dir) / f"crashed-{x}"
        if how is not None and not marker.exists():
            marker.write_text(f"{how} {os.getpid()}")
            crash(how)
        self.handled += 1
        self.total += x * x
        self._stats["handled"] = self.handled
        self.emit("out", x=x, y=x * x)


# ------------------------------------------------------------------ processes
def live_children(root: psutil.Process | None = None) -> list[psutil.Process]:
    """Every descendant of ``root`` (default: this process) that has not exited,
    but the worker template; zombies are listed too (nobody reaped them)."""
    root = root or psutil.Process()
    try:
        return [p for p in root.children(recursive=True) if not is_worker_template(p)]
    except psutil.NoSuchProcess:
        return []


def is_worker_template(proc: psutil.Process) -> bool:
    """True for the host's worker template (routilux.runtime.template): it serves
    every flow of the host and outlives them by design; the routine processes it
    forks are its children, and count as the flow's."""
    try:
        if "routilux.runtime.template_main" not in proc.cmdline():
            return False
        parent = proc.parent()  # a forked routine process shares its command line
        return parent is None or "routilux.runtime.template_main" not in parent.cmdline()
    except psutil.Error:
        return False


def describe_processes(processes: list[psutil.Process]) -> list[str]:
    out = []
    for proc in processes:
        try:
            out.append(f"{proc.pid} {proc.status()} {' '.join(proc.cmdline())[:120]}")
        except psutil.Error:
            out.append(f"{proc.pid} gone")
    return out
