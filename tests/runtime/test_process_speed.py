"""Process routines, the fast paths: restart without backoff on a first crash,
batched frames, warm spares and the pre-imported template (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
from helpers import Faulty, Sink, Source, process_chain, wait_until

from routilux import RestartPolicy, Routine
from routilux.runtime import template
from routilux.runtime.process_actor import MAX_CREDIT, MIN_CREDIT, ProcessRoutineActor

# A backoff far longer than any test may take: only a restart without it completes.
SLOW_BACKOFF = RestartPolicy(max_restarts=3, within=600.0, backoff=3600.0, backoff_max=3600.0)


def build(make_flow, worker, *, restart=SLOW_BACKOFF, **kw):
    return process_chain(make_flow, worker, restart=restart, **kw)


def test_restart_delay_is_zero_for_a_first_crash_then_backs_off():
    policy = RestartPolicy(backoff=0.05, backoff_max=0.3)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [0.0, 0.05, 0.1, 0.2, 0.3]


def test_a_first_crash_is_restarted_without_waiting_for_the_backoff(make_flow, tmp_path):
    worker = Faulty("sigkill", crash_on=1, marker=str(tmp_path / "crashed"))
    flow, sink = build(make_flow, worker)
    job = flow.execute("src", {"n": 3}, wait=False)
    # With an hour of backoff, only an immediate restart lets the job finish.
    assert job.wait(60) and job.status == "completed", job.error
    assert sink.values("x") == [0, 1, 2]
    assert flow.metrics()["work"]["restarts"] == 1
    assert worker.stats() == {"handled": 3}


def test_a_second_crash_in_the_window_waits_for_the_backoff(make_flow, tmp_path):
    """Two crashes within ``within``: the second restart waits (an hour here), so
    the routine's messages wait too while other routines go on."""
    first, second = tmp_path / "first", tmp_path / "second"

    class DiesTwice(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)
            self.define_event("out", ["x"])

        def work(self, x):
            for marker in (first, second):
                if not marker.exists():
                    marker.write_text(str(os.getpid()))
                    os.kill(os.getpid(), signal.SIGKILL)
            self.emit("out", x=x)

    flow, sink = build(make_flow, DiesTwice())
    job = flow.execute("src", {"n": 1}, wait=False)
    assert wait_until(lambda: flow.metrics()["work"]["restarts"] == 2, timeout=60)
    metrics = flow.metrics()["work"]
    assert metrics["queued"] == 1 and metrics["pids"] == []  # waiting for the backoff
    assert job.status == "running" and sink.values("x") == []
    flow.cancel(job)
    assert job.wait(30) and job.status == "cancelled"


# ------------------------------------------------------------------ batched frames
class Counter(Routine):
    """Counts in its own state and passes ``x`` on (tiny steps: they travel in batches)."""

    def __init__(self, marker: str = "", crash_on: int = -1):
        super().__init__()
        self.marker = marker
        self.crash_on = crash_on
        self.count = 0
        self.define_slot("inp", handler=self.work)
        self.define_event("out", ["x"])

    def work(self, x):
        if x == self.crash_on and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        self.count += 1
        self._stats["count"] = self.count
        self.emit("out", x=x)


def test_many_tiny_steps_keep_their_order_and_exact_state(make_flow):
    flow, sink = build(make_flow, Counter(), strategy="concurrent")
    worker = flow.routines["work"]
    job = flow.execute("src", {"n": 3000}, timeout=120)
    assert job.status == "completed", job.error
    assert sink.values("x") == list(range(3000))  # rule ordering, one replica
    assert worker.count == 3000 and worker.stats() == {"count": 3000}
    assert job.routine_states["work"]["processed"] == 3000


def test_a_crash_amid_batched_steps_counts_each_message_once(make_flow, tmp_path):
    """Steps that ended but were not yet reported when the process died run again
    from the last reported state: flow state and downstream see each message once."""
    worker = Counter(str(tmp_path / "crashed"), crash_on=1500)
    flow, sink = build(make_flow, worker, strategy="concurrent")
    job = flow.execute("src", {"n": 3000}, wait=False)
    assert job.wait(120) and job.status == "completed", job.error
    assert sink.values("x") == list(range(3000))
    assert worker.count == 3000 and worker.stats() == {"count": 3000}
    assert flow.metrics()["work"]["restarts"] == 1


_STEPS_IN_THIS_PROCESS = [0]  # module state of the routine's process, not pickled


class DiesEveryThirdStep(Routine):
    """Kills its own process at the third step of each life (a replica that keeps
    crashing): only the two steps before count."""

    def __init__(self):
        super().__init__()
        self.define_slot("inp", handler=self.work)
        self.define_event("out", ["x"])

    def work(self, x):
        _STEPS_IN_THIS_PROCESS[0] += 1
        if _STEPS_IN_THIS_PROCESS[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        self.emit("out", x=x)


def test_a_replica_that_keeps_crashing_keeps_what_each_life_did(make_flow):
    """Regression: with batched reports, the two steps a life ended before its crash
    were not yet reported and ran again in the next life, which crashed at the same
    point: no progress until the restart policy gave up. A new process reports its
    first steps at once, so 12 messages take six lives."""
    policy = RestartPolicy(max_restarts=20, within=600.0, backoff=0.0, backoff_max=0.0)
    flow, sink = build(make_flow, DiesEveryThirdStep(), strategy="concurrent", restart=policy)
    job = flow.execute("src", {"n": 12}, wait=False)
    assert job.wait(120) and job.status == "completed", job.error
    assert sink.values("x") == list(range(12))
    assert flow.metrics()["work"]["restarts"] == 5  # six lives


def test_an_emit_leaves_while_its_step_still_runs(make_flow, tmp_path):
    """The courier sends what a long step emitted: here the step waits until the
    sink has received its first emit, which only a sent batch can make true."""
    arrived = tmp_path / "arrived"

    class Slow(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)
            self.define_event("out", ["x"])

        def work(self, x):
            self.emit("out", x=x)
            assert wait_until(arrived.exists, timeout=60), "the first emit never arrived"
            self.emit("out", x=x + 1)

    class Marking(Sink):
        def record(self, data):
            super().record(data)
            arrived.touch()

    flow = make_flow(execution_strategy="concurrent")  # the sink runs beside the step
    sink = Marking("inp")
    flow.add_routine(Source(), "src")
    flow.add_routine(Slow(), "slow", execution="process")
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "slow", "inp")
    flow.connect("slow", "out", "sink", "inp")
    job = flow.execute("src", {"n": 1}, timeout=90)
    assert job.status == "completed", job.error
    assert sink.values("x") == [0, 1]


def test_credit_follows_the_step_time():
    actor = ProcessRoutineActor.__new__(ProcessRoutineActor)  # only credit() is used
    for step_time, credit in ((0.0, MIN_CREDIT), (1e-6, MAX_CREDIT), (0.001, 5), (2.0, 2)):
        actor.step_time = step_time
        assert actor.credit() == credit


# ------------------------------------------------------------------ the worker template
class WhereAmI(Routine):
    """Emits its pid, its parent's pid, its directory and one environment variable."""

    def __init__(self):
        super().__init__()
        self.define_slot("inp", handler=self.work)
        self.define_event("out", ["x"])

    def work(self, x):
        self.emit(
            "out",
            x=x,
            pid=os.getpid(),
            ppid=os.getppid(),
            cwd=os.getcwd(),
            env=os.environ.get("ROUTILUX_TEST_MARK"),
        )


def test_replicas_fork_from_the_template_with_the_hosts_directory_and_environment(
    make_flow, tmp_path, monkeypatch
):
    monkeypatch.setenv("ROUTILUX_TEST_MARK", "from-the-host")
    monkeypatch.chdir(tmp_path)
    flow, sink = build(make_flow, WhereAmI(), workers=2)
    job = flow.execute("src", {"n": 1}, timeout=60)
    assert job.status == "completed", job.error
    (got,) = sink.calls
    host_template = template._template
    assert host_template is not None and host_template.alive
    assert got["ppid"] == host_template.pid != os.getpid()
    assert got["pid"] in flow.metrics()["work"]["pids"]
    assert got["cwd"] == str(tmp_path) and got["env"] == "from-the-host"
    assert psutil.Process(host_template.pid).num_threads() == 1  # never ran a thread


def test_a_forked_replica_prints_where_the_host_prints_now(make_flow, capfd):
    """The template started before this test redirected standard output; what a
    replica prints still lands where the host prints now."""

    class Printer(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("inp", handler=self.work)

        def work(self, x):
            print(f"printed by replica {os.getpid()}: {x}", flush=True)

    flow = make_flow()
    flow.add_routine(Source(), "src")
    flow.add_routine(Printer(), "p", execution="process")
    flow.connect("src", "out", "p", "inp")
    assert flow.execute("src", {"n": 2}, timeout=60).status == "completed"
    (pid,) = flow.metrics()["p"]["pids"]
    out = capfd.readouterr().out
    assert f"printed by replica {pid}: 0" in out and f"printed by replica {pid}: 1" in out


def test_without_the_template_replicas_start_as_fresh_interpreters(make_flow, monkeypatch):
    monkeypatch.setenv("ROUTILUX_WORKER_TEMPLATE", "0")
    flow, sink = build(make_flow, WhereAmI())
    job = flow.execute("src", {"n": 1}, timeout=60)
    assert job.status == "completed", job.error
    assert sink.calls[0]["ppid"] == os.getpid()


def test_a_killed_template_takes_its_replicas_which_restart_from_a_new_one(make_flow):
    flow, sink = build(make_flow, WhereAmI(), restart=RestartPolicy(backoff=0.01))
    assert flow.execute("src", {"n": 1}, timeout=60).status == "completed"
    old = template._template
    os.kill(old.pid, signal.SIGKILL)
    # the replica dies with its template (parent-death signal): a crash, restarted
    assert wait_until(lambda: flow.metrics()["work"]["restarts"] == 1, timeout=30)
    job = flow.execute("src", {"n": 1}, timeout=60)
    assert job.status == "completed", job.error
    new = template._template
    assert new is not old and new.alive and sink.calls[-1]["ppid"] == new.pid


HOST = """
import os, sys, threading
from routilux import Flow, Routine

class Pids(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["pid", "ppid"])

    def go(self):
        self.emit("out", pid=os.getpid(), ppid=os.getppid())

class Keep(Routine):
    def __init__(self):
        super().__init__()
        self.got = []
        self.define_slot("inp", handler=self.take)

    def take(self, pid, ppid):
        self.got.append({"pid": pid, "ppid": ppid})

flow = Flow()
keep = Keep()
flow.add_routine(Pids(), "pids", execution="process")
flow.add_routine(keep, "keep")
flow.connect("pids", "out", "keep", "inp")
flow.execute("pids", {})
print(keep.got[0]["pid"], keep.got[0]["ppid"], flush=True)
threading.Event().wait()
"""


def test_the_template_and_its_replicas_die_with_a_killed_host(tmp_path):
    script = tmp_path / "host.py"
    script.write_text(HOST)
    host = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        replica, parent = (int(v) for v in host.stdout.readline().split())
        assert parent != host.pid  # forked by the template, the host's child
        processes = [psutil.Process(replica), psutil.Process(parent)]
        assert psutil.Process(parent).ppid() == host.pid
    finally:
        host.kill()
        host.wait(30)
    _, alive = psutil.wait_procs(processes, timeout=20)
    assert not alive


# ------------------------------------------------------------------ warm spares
def test_a_warm_spare_takes_over_after_a_crash_from_the_last_state(make_flow, tmp_path):
    spare_policy = RestartPolicy(max_restarts=3, within=600.0, backoff=3600.0, warm_spare=True)
    worker = Faulty("sigkill", crash_on=2, marker=str(tmp_path / "crashed"))
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    flow, sink = build(make_flow, worker, restart=spare_policy)
    assert flow.execute("src", {"n": 1}, timeout=60).status == "completed"
    # The spare is the replica's second process: started, routine loaded, waiting.
    assert wait_until(lambda: len(spare_pids(flow, before)) == 1, timeout=30)
    (spare,) = spare_pids(flow, before)
    job = flow.execute("src", {"n": 4}, timeout=60)
    assert job.status == "completed", job.error
    assert sink.values("x") == [0, 0, 1, 2, 3]
    assert flow.metrics()["work"]["pids"] == [spare]  # the spare took over
    assert worker.stats() == {"handled": 5}  # from the state before the crash
    assert wait_until(lambda: len(spare_pids(flow, before)) == 1, timeout=30)  # a new one
    assert spare not in spare_pids(flow, before)


def spare_pids(flow, before: set[int]) -> list[int]:
    """Pids of the flow's processes that are not its replicas (nor the template):
    the warm spares of routine ``work``."""
    replicas = set(flow.metrics()["work"]["pids"])
    spares = []
    for proc in psutil.Process().children(recursive=True):
        if proc.pid in before or proc.pid in replicas:
            continue
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.pid != template._template.pid:
                spares.append(proc.pid)
        except psutil.Error:
            continue
    return spares
