"""Crash workload: SIGKILL a busy process routine, time until its redelivered
message's result arrives; against a raw worker respawned by hand."""

from __future__ import annotations

import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import psutil
from workload import Measure, Workload, settle

from routilux import Flow, RestartPolicy, Routine

RAW_WORKER = Path(__file__).resolve().parent / "raw_worker.py"


class Spinner(Routine):
    """With ``spin``, the first delivery writes its pid to ``marker`` and spins
    (we kill it there); a redelivery finds the marker and answers at once."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.work)
        self.define_event("done", ["x"])

    def work(self, x, spin, marker):
        if spin and not os.path.exists(marker):
            with open(marker + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(marker + ".tmp", marker)  # readers never see a half-written pid
            while True:  # busy: a pure Python CPU loop
                pass
        self.emit("done", x=x)


class Arrival(Routine):
    """Records when each result arrives (read after the job has settled)."""

    def __init__(self):
        super().__init__()
        self.times: dict[int, float] = {}
        self.define_slot("done", handler=self.take)

    def take(self, x):
        self.times[x] = time.perf_counter()


class CrashClock(logging.Handler):
    """Notes when the supervisor logs a crash (None if its wording changes)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.times: list[float] = []

    def emit(self, record):
        if "crashed" in record.getMessage():
            self.times.append(time.perf_counter())


def wait_for_file(path: Path, deadline: float) -> str:
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        time.sleep(0.0005)  # a benchmark polling a file, not a test waiting
    raise RuntimeError(f"kill workload: the routine never started spinning ({path})")


def kill_and_redeliver(directory: str, spare: bool = True) -> tuple[float, float | None]:
    """One kill of a warmed-up process routine in a fresh flow (so it is the
    routine's first crash; the default restart policy, with a warm spare unless
    ``spare`` is False). Returns seconds from the kill to the redelivered result,
    and to the supervisor's crash log."""
    clock = CrashClock()
    log = logging.getLogger("routilux.supervisor")
    log.addHandler(clock)
    marker = Path(directory, "spinner.pid")
    flow = Flow(execution_strategy="concurrent")
    try:
        arrival = Arrival()
        policy = RestartPolicy(warm_spare=spare)
        flow.add_routine(Spinner(), "spinner", execution="process", restart=policy)
        flow.add_routine(arrival, "arrival")
        flow.connect("spinner", "done", "arrival", "done")
        warm = flow.execute("spinner", {"x": 0, "spin": False, "marker": str(marker)}, wait=False)
        settle([warm], "kill workload warm-up")
        if spare:  # the spare is up (it starts right after the replica)
            wait_for_spare(flow, time.monotonic() + 60)
        job = flow.execute("spinner", {"x": 1, "spin": True, "marker": str(marker)}, wait=False)
        pid = int(wait_for_file(marker, time.monotonic() + 60))
        killed = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        settle([job], "kill workload")  # the result arrived before the job settled
        detect = clock.times[0] - killed if clock.times else None
        return arrival.times[1] - killed, detect
    finally:
        log.removeHandler(clock)
        flow.shutdown()
        marker.unlink(missing_ok=True)


def wait_for_spare(flow: Flow, deadline: float) -> None:
    replicas = set(flow.metrics()["spinner"]["pids"])
    me = psutil.Process()
    while time.monotonic() < deadline:
        for proc in me.children(recursive=True):
            try:
                if proc.pid not in replicas and "routilux.runtime.template_main" in proc.cmdline():
                    if proc.ppid() != me.pid:  # forked by the template: a spare
                        return
                elif proc.pid not in replicas and "routilux.runtime.worker" in proc.cmdline():
                    return
            except psutil.Error:
                continue
        time.sleep(0.001)  # a benchmark polling, not a test waiting
    raise RuntimeError("kill workload: the warm spare never started")


class RawWorker:
    """``raw_worker.py`` in a fresh interpreter, talking over a socket."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.popen = subprocess.Popen(
            [sys.executable, str(RAW_WORKER), str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.conn = Connection(ours.detach())
        if self.conn.recv() != ("ready",):
            raise RuntimeError("raw worker: unexpected greeting")

    def close(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.conn.close()
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def raw_respawn() -> float:
    """Seconds from SIGKILL of a busy raw worker to the result of the job resent
    to a freshly started one (death seen as end-of-file on its socket)."""
    worker = RawWorker()
    try:
        worker.conn.send(("job", 0, False))
        worker.conn.recv()
        worker.conn.send(("job", 1, True))
        if worker.conn.recv() != ("busy",):
            raise RuntimeError("raw worker: expected busy")
        killed = time.perf_counter()
        os.kill(worker.popen.pid, signal.SIGKILL)
        try:
            worker.conn.recv()
            raise RuntimeError("raw worker: answered after SIGKILL")
        except EOFError:
            pass
        worker.popen.wait()
        worker.close()
        worker = RawWorker()
        worker.conn.send(("job", 1, False))
        if worker.conn.recv() != ("done", 1):
            raise RuntimeError("raw worker: wrong answer after respawn")
        elapsed = time.perf_counter() - killed
    finally:
        worker.close()
    return elapsed


def run_kill(smoke: bool) -> Measure:
    kills = 1 if smoke else 5
    baseline = statistics.median(raw_respawn() for _ in range(kills)) * 1e3
    with tempfile.TemporaryDirectory(prefix="routilux-bench-kill-") as directory:
        runs = [kill_and_redeliver(directory) for _ in range(kills)]
        cold = [kill_and_redeliver(directory, spare=False)[0] for _ in range(kills)]
    detect = [d for _, d in runs if d is not None]
    return Measure(
        statistics.median(r for r, _ in runs) * 1e3,
        baseline,
        {
            "kill_to_crash_logged_ms": statistics.median(detect) * 1e3 if detect else None,
            "without_spare_ms": statistics.median(cold) * 1e3,
        },
    )


WORKLOADS = [
    Workload(
        name="kill_redelivered",
        title="SIGKILL of a worker -> result redelivered (warm spare)",
        baseline="raw respawn of a worker",
        unit="ms",
        target_op="<=",
        target=0.7,
        run=run_kill,
    ),
]
