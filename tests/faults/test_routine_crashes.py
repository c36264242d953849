"""Routine processes that die in every way, with exact results and no process left.

``tests/runtime/test_supervision.py`` checks each kind of crash on its own; here one
job meets all of them in a row — SIGKILL, segfault, ``os._exit``, a step past its
timeout, an allocation past an ``RLIMIT_AS`` limit and a step holding the GIL in a
catastrophic regex past its timeout — while a second job shares the routine, over
both strategies, one and two replicas, with and without a store. Every message is
delivered again and handled once: outputs, per-routine counts, the routine's
counters and ``stats()`` are exact (also after ``recover()`` in a fresh flow when a
store is used), and after ``flow.shutdown()`` no process of the flow is left
(alive or unreaped).
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from helpers import wait_gone, wait_until

from faults.fault_helpers import (
    CRASH_KINDS,
    GIL_PATTERN,
    GIL_SUBJECT,
    KEY,
    STEP_TIMEOUT,
    Crasher,
    describe_processes,
    live_children,
)
from routilux import Flow, RestartPolicy, Routine
from routilux.checkpoint import SQLiteStore

pytestmark = pytest.mark.slow

N = 12
PLAN = {1: "sigkill", 3: "segfault", 5: "exit", 7: "timeout", 9: "oom", 11: "gil_hang"}
OTHER_START = 100  # the second job's messages: 100..111, none of them crashes
POLICY = RestartPolicy(max_restarts=12, within=60.0, backoff=0.01, backoff_max=0.05)
REASONS = {
    "sigkill": "signal SIGKILL",
    "segfault": "signal SIGSEGV",
    "exit": "exit code 7",
    "timeout": f"step exceeded its timeout of {STEP_TIMEOUT:g} s",
    "gil_hang": f"step exceeded its timeout of {STEP_TIMEOUT:g} s",
}
FIGURES = {"crashes": 0, "orphans": 0}  # summed over the tests of this module


@pytest.fixture(scope="module", autouse=True)
def print_figures():
    """The module's figures, for the record (shown with ``-s``)."""
    yield
    print(f"\nroutine failures survived (process deaths and OOMs): {FIGURES['crashes']}; "
          f"orphan processes: {FIGURES['orphans']}")


class Numbers(Routine):
    """Emits ``x = start .. start+n-1``."""

    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["x"])

    def go(self, start, n):
        for i in range(n):
            self.emit("out", x=start + i)


class Collect(Routine):
    """Keeps every ``(x, y)`` and sends it to the job's output log."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[int, int]] = []
        self.define_slot("inp", handler=self.take)

    def take(self, x, y):
        self.got.append((x, y))
        self.send_output("pair", x=x, y=y)


def build(marker_dir: Path, strategy: str, workers: int, store=None) -> Flow:
    flow = Flow("crash-matrix", strategy, max_workers=4, checkpoint_store=store,
                checkpoint_interval=0.02, restart=POLICY)
    flow.add_routine(Numbers(), "src")
    flow.add_routine(Crasher(PLAN, str(marker_dir)), "crash", execution="process",
                     workers=workers, timeout=STEP_TIMEOUT)
    flow.add_routine(Collect(), "sink")
    flow.connect("src", "out", "crash", "inp")
    flow.connect("crash", "out", "sink", "inp")
    return flow


def pairs(job) -> list[tuple[int, int]]:
    return [(e["data"]["x"], e["data"]["y"]) for e in job.output_log]


def expected(start: int) -> list[tuple[int, int]]:
    return [(x, x * x) for x in range(start, start + N)]


def orphans_after(before: set[int]) -> tuple[list, list]:
    """Processes started during the test that still run, and those left unreaped."""
    new = [p for p in live_children() if p.pid not in before]
    alive = wait_gone(new, timeout=10)
    zombies = [p for p in live_children() if p.pid not in before and p not in alive]
    return alive, zombies


def unretried(got: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``got`` without the OOM message: its MemoryError is an error, and an error is
    retried without holding up the messages behind it (so it may come last)."""
    oom = next(x for x, how in PLAN.items() if how == "oom")
    return [pair for pair in got if pair[0] != oom]


def check_job(job, start: int, ordered: bool) -> list[str]:
    """What is wrong with the result of the job of messages ``start..start+N-1``."""
    wrong = []
    got = pairs(job)
    if job.status != "completed":
        wrong.append(f"status {job.status}: {job.error}")
    if sorted(got) != expected(start):
        wrong.append(f"outputs {got}")
    elif ordered and unretried(got) != unretried(expected(start)):
        wrong.append(f"outputs out of order {got}")
    processed = {rid: st["processed"] for rid, st in job.routine_states.items()}
    if processed != {"src": 1, "crash": N, "sink": N}:
        wrong.append(f"processed counts {processed}")
    return wrong


@pytest.mark.parametrize(
    ("strategy", "workers", "durable"),
    [("sequential", 1, False), ("concurrent", 1, True), ("sequential", 2, True),
     ("concurrent", 2, False)],
)
def test_every_kind_of_crash_in_one_job_is_redelivered_exactly(
    strategy, workers, durable, tmp_path
):
    before = {p.pid for p in live_children()}
    store_file = tmp_path / "ck.db"
    store = SQLiteStore(store_file, key=KEY) if durable else None
    flow = build(tmp_path, strategy, workers, store)
    try:
        other = flow.execute("src", {"start": OTHER_START, "n": N}, wait=False, timeout=60)
        job = flow.execute("src", {"start": 0, "n": N}, timeout=60)
        assert other.wait(60)
        crasher = flow.routines["crash"]
        # How each planned failure surfaced: the markers name the kind and the pid.
        happened = sorted(p.read_text().split()[0] for p in tmp_path.glob("crashed-*"))
        crashes = {(c["pid"], c["reason"]) for j in (job, other) for c in j.crashes}
        reasons = sorted(reason for _, reason in crashes)
        memory_errors = [f for f in job.failures if f["exception_type"] == "MemoryError"]
        FIGURES["crashes"] += len(crashes) + len(memory_errors)
        print(f"{strategy}, {workers} replica(s), store={durable}: {len(crashes)} crashes "
              f"survived ({reasons}); MemoryError handled as an error: {len(memory_errors)}")

        wrong = check_job(job, 0, ordered=workers == 1)
        wrong += [f"second job: {w}" for w in check_job(other, OTHER_START, ordered=workers == 1)]
        assert not wrong, f"{wrong}\ncrashes: {job.crashes}\nfailures: {job.failures}"
        assert happened == sorted(CRASH_KINDS), happened
        # The OOM case surfaces as a MemoryError in the step (an error, retried) or,
        # should the allocation kill the process, as one more crash.
        extra = Counter(reasons) - Counter(REASONS.values())
        assert not Counter(REASONS.values()) - Counter(reasons), reasons
        assert (len(memory_errors), sum(extra.values())) in ((1, 0), (0, 1)), (
            reasons, job.failures
        )
        assert crasher.stats() == {"handled": 2 * N}, crasher.stats()
        if workers == 1:
            assert crasher.handled == 2 * N
            assert crasher.total == sum(x * x for x in range(N)) + sum(
                x * x for x in range(OTHER_START, OTHER_START + N)
            )
        assert sorted(flow.routines["sink"].got) == sorted(expected(0) + expected(OTHER_START))
    finally:
        flow.shutdown()
        if store is not None:
            store.close()
    alive, zombies = orphans_after(before)
    FIGURES["orphans"] += len(alive) + len(zombies)
    assert not alive and not zombies, (
        f"left running: {describe_processes(alive)}; unreaped: {describe_processes(zombies)}"
    )
    if durable:  # the same exact results come back from the store
        reopened = SQLiteStore(store_file, key=KEY)
        fresh = build(tmp_path, strategy, workers, reopened)
        try:
            back = {j.job_id: j for j in fresh.recover()}
            assert set(back) == {job.job_id, other.job_id}
            wrong = check_job(back[job.job_id], 0, ordered=workers == 1)
            wrong += check_job(back[other.job_id], OTHER_START, ordered=workers == 1)
            assert not wrong, f"recovered from the store: {wrong}"
            assert fresh.routines["crash"].stats() == {"handled": 2 * N}
            blocked = [jid for jid, j in back.items() if not j.wait(0)]
            assert not blocked, f"wait() blocks on recovered finished jobs {blocked}"
        finally:
            fresh.shutdown()
            reopened.close()


class Stuck(Routine):
    """Its step never ends: ``how`` is "gil" (a regex holding the GIL) or "wait"."""

    def __init__(self, how: str, marker: str) -> None:
        super().__init__()
        self.how = how
        self.marker = marker
        self.define_slot("trigger", handler=self.work)

    def work(self, **_):
        Path(self.marker).touch()
        if self.how == "gil":
            while True:
                GIL_PATTERN.match(GIL_SUBJECT)
        threading.Event().wait()


@pytest.mark.parametrize("how", ["gil", "wait"])
def test_shutdown_with_process_steps_that_never_end_leaves_no_process(how, tmp_path):
    """No timeout configured: shutdown itself must stop the stuck replicas."""
    before = {p.pid for p in live_children()}
    flow = Flow("stuck", "concurrent", max_workers=4)
    flow.add_routine(Stuck(how, str(tmp_path / "a")), "a", execution="process", workers=2)
    flow.add_routine(Stuck(how, str(tmp_path / "b")), "b", execution="process")
    jobs = []
    try:
        jobs = [flow.execute(rid, {}, wait=False) for rid in ("a", "a", "b")]
        assert wait_until(lambda: (tmp_path / "a").exists() and (tmp_path / "b").exists())
        pids = [pid for m in flow.metrics().values() for pid in m["pids"]]
        assert len(pids) == 3
    finally:
        flow.shutdown(timeout=5)
    assert all(job.status == "cancelled" for job in jobs), [j.status for j in jobs]
    alive, zombies = orphans_after(before)
    FIGURES["orphans"] += len(alive) + len(zombies)
    assert not alive and not zombies, (
        f"left running: {describe_processes(alive)}; unreaped: {describe_processes(zombies)}"
    )
