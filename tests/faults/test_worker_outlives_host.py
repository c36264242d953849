"""A process routine's worker dies with its host, even in a step that holds the GIL.

The worker's Python watch thread cannot run while a step holds the GIL (a regex
backtracking in C never lets go of it), so only the kernel's parent-death signal can
end such a worker when its host is SIGKILLed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest
from helpers import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")

HOST = """
import os, re, sys
from routilux import Flow, Routine


class Backtrack(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)

    def go(self, pid_file):
        with open(pid_file + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(pid_file + ".tmp", pid_file)
        re.match(r"(a+)+$", "a" * 64 + "b")  # exponential backtracking, GIL held


flow = Flow(flow_id="gil-hog")
flow.add_routine(Backtrack(), "backtrack", execution="process")
flow.execute("backtrack", {"pid_file": sys.argv[1]}, wait=False).wait()
"""


def gone(pid: int) -> bool:
    """The process is dead (a zombie nobody reaped counts as dead)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def test_worker_in_a_gil_holding_step_dies_with_its_sigkilled_host(tmp_path):
    script = tmp_path / "host.py"
    script.write_text(HOST)
    pid_file = tmp_path / "worker.pid"
    host = subprocess.Popen([sys.executable, str(script), str(pid_file)], cwd=tmp_path)
    worker = None
    try:
        assert wait_until(pid_file.exists, 30), "the routine's step never started"
        worker = int(pid_file.read_text())
        started = cpu_seconds(worker)
        # Deep in the regex: its CPU time grows while it holds the GIL.
        assert wait_until(lambda: cpu_seconds(worker) - started > 0.3, 30)
        host.send_signal(signal.SIGKILL)
        host.wait(10)
        assert wait_until(lambda: gone(worker), 10), f"worker {worker} outlived its host"
    finally:
        host.kill()
        host.wait()
        if worker is not None and not gone(worker):
            os.kill(worker, signal.SIGKILL)


PR_GET_PDEATHSIG = 2


def test_the_worker_asks_the_kernel_for_sigkill_on_parent_death():
    code = (
        "import ctypes, os\n"
        "from routilux.runtime.worker import _die_with_parent\n"
        "print(_die_with_parent(os.getppid()))\n"
        "sig = ctypes.c_int()\n"
        f"ctypes.CDLL(None).prctl({PR_GET_PDEATHSIG}, ctypes.byref(sig), 0, 0, 0)\n"
        "print(sig.value)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", str(int(signal.SIGKILL))]


def test_a_worker_whose_parent_died_before_it_armed_exits_at_once():
    # A parent pid that is not ours: as if the parent died and we were reparented.
    code = "from routilux.runtime.worker import _die_with_parent\n_die_with_parent(1)\nprint(1)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 70 and result.stdout == "", result.stderr
