"""Durability workloads: the same jobs with an SQLiteStore and without one."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

from chain_routines import HOPS, wire_chain
from workload import Measure, Workload, settle

from routilux import Flow
from routilux.checkpoint import SQLiteStore
from routilux.runtime import checkpointer as checkpointer_module
from routilux.runtime.job_pickle import HistoryChunks

KEY = b"routilux-benchmark-key-012345678"


class CountingStore(SQLiteStore):
    """An SQLiteStore that counts and times its checkpoint and intent writes.

    The wrappers pass any arguments through, so a change of the store's method
    signatures leaves the figures valid (and a renamed method reads as 0 writes).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saves = self.intents_added = 0
        self.save_seconds = self.intent_seconds = 0.0
        self.last_size = 0

    def save(self, *args, **kwargs):
        started = time.perf_counter()
        result = super().save(*args, **kwargs)
        self.save_seconds += time.perf_counter() - started
        self.saves += 1
        self.last_size = max((len(a) for a in args if isinstance(a, bytes)), default=0)
        return result

    def add_intent(self, *args, **kwargs):
        started = time.perf_counter()
        result = super().add_intent(*args, **kwargs)
        self.intent_seconds += time.perf_counter() - started
        self.intents_added += 1
        return result


class MethodProbe:
    """Times every call of ``cls.<name>`` made inside a ``with`` block (the method is
    wrapped on entry and put back on exit). If the method was renamed, nothing is
    timed: ``mean_ms`` reads None and ``timed`` False, and throughputs stay valid."""

    def __init__(self, cls: type, name: str) -> None:
        self.cls, self.name = cls, name
        self.original = None
        self.calls = 0
        self.seconds = 0.0

    @property
    def timed(self) -> bool:
        """Whether the method existed and was timed."""
        return self.original is not None

    def __enter__(self) -> MethodProbe:
        self.original = original = getattr(self.cls, self.name, None)
        probe = self
        if original is not None:

            def timed(instance, *args, **kwargs):
                started = time.perf_counter()
                try:
                    return original(instance, *args, **kwargs)
                finally:
                    probe.seconds += time.perf_counter() - started
                    probe.calls += 1

            setattr(self.cls, self.name, timed)
        return self

    def __exit__(self, *exc) -> None:
        if self.original is not None:
            setattr(self.cls, self.name, self.original)

    def mean_ms(self) -> float | None:
        """Mean time per call, in ms (None: no call timed)."""
        return 1e3 * self.seconds / self.calls if self.calls else None


def stall_probe() -> MethodProbe:
    """How long each checkpoint stops the supervisor (it routes nothing while it
    takes a cut): ``Checkpointer.write``."""
    return MethodProbe(checkpointer_module.Checkpointer, "write")


def history_probe() -> MethodProbe:
    """The pickling of job histories as checkpoints do it (``HistoryChunks.update``),
    in place, with the caches as the run leaves them."""
    return MethodProbe(HistoryChunks, "update")


def _store_extra(store: CountingStore, probe: MethodProbe, jobs: int) -> dict[str, float | None]:
    return {
        "checkpoints_per_job": store.saves / jobs,
        "intents_per_job": store.intents_added / jobs,
        "store_write_ms": 1e3 * store.save_seconds / store.saves if store.saves else None,
        "intent_write_ms": (
            1e3 * store.intent_seconds / store.intents_added if store.intents_added else None
        ),
        "supervisor_stall_ms": probe.mean_ms(),
        "last_checkpoint_kib": store.last_size / 1024,
    }


def run_jobs(
    directory: str | None,
    *,
    hops: int,
    jobs: int,
    n: int,
    strategy: str,
    together: bool,
    synchronous: str = "full",
) -> tuple[float, dict[str, float | None]]:
    """Run ``jobs`` jobs of ``n`` messages each through a ``hops``-routine chain,
    one after another or all at once (``together``). Returns (units/s, extra) where
    units are messages (``n`` > 1) or jobs (``n`` == 1)."""
    store = (
        CountingStore(Path(directory) / "bench.db", key=KEY, synchronous=synchronous)
        if directory
        else None
    )
    flow = Flow(
        execution_strategy=strategy,
        max_workers=HOPS,
        **({"checkpoint_store": store} if store is not None else {}),
    )
    try:
        sink = wire_chain(flow, hops)
        what = f"{jobs} {'concurrent' if together else 'serial'} jobs, store {store is not None}"
        # warm up: actors started, store opened
        settle([flow.execute("r0", {"n": min(n, 10)}, wait=False)], what + " warm-up")
        sink.arm(jobs * n)
        last = None  # the last serial job (for the history floor)
        with stall_probe() as probe, history_probe() as pickling:
            if store is not None:
                store.saves = store.intents_added = 0
                store.save_seconds = store.intent_seconds = 0.0
            started = time.perf_counter()
            if together:
                settle([flow.execute("r0", {"n": n}, wait=False) for _ in range(jobs)], what)
            else:
                for _ in range(jobs):
                    last = flow.execute("r0", {"n": n}, wait=False)
                    settle([last], what)
            elapsed = time.perf_counter() - started
        if sink.count != jobs * n:
            raise RuntimeError(f"{what}: {sink.count} of {jobs * n} messages arrived")
        extra = _store_extra(store, probe, jobs) if store is not None else {}
        if store is not None and last is not None and n > 1 and pickling.timed:
            per_job = pickling.seconds / jobs
            commits = floor_commits_seconds(last, directory)
            extra["history_pickling_ms"] = 1e3 * per_job
            extra["floor_commits_ms"] = 1e3 * commits
            extra["history_floor_ms"] = 1e3 * (per_job + commits)
    finally:
        flow.shutdown()
        if store is not None:
            store.close()
    units = jobs * n if n > 1 else jobs
    return units / elapsed, extra


def synced_commit_seconds(directory: str, *sizes: int, commits: int = 200) -> float:
    """Mean time of synced SQLite commits (WAL, synchronous=FULL) each inserting one
    row, in ``directory``: the disk's part of durable writes. With several sizes,
    the commits take them in turn and the time is per turn (a small commit right
    after a large one costs more than alone)."""
    db = sqlite3.connect(Path(directory) / "floor.db", isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, data BLOB)")
        blobs = [os.urandom(size) for size in sizes]
        started = time.perf_counter()
        for _ in range(commits):
            for blob in blobs:
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO t (data) VALUES (?)", (blob,))
                db.execute("COMMIT")
        return (time.perf_counter() - started) / commits
    finally:
        db.close()


def floor_commits_seconds(state, directory: str) -> float:
    """The synced commits that the rules that a job's submission and its end are
    durable, history and all, cost at least: one of as many bytes as the job's
    history pickles to and one of the intent's size (0.6 KiB), in turn as the
    jobs make them. With the history's pickling (measured in the run), the
    serial row's floor (``history_floor_ms``)."""
    _, chunks = HistoryChunks().update(state)
    size = sum(len(chunk[2]) for chunk in chunks)
    return synced_commit_seconds(directory, size, 620, commits=20)


def _with_and_without(
    also_normal: bool = False, floor: bool = False, pairs: int = 1, **kwargs
) -> Measure:
    """Ours (with a store) against the baseline (without). With ``pairs`` = 2 they
    run in the order baseline, ours, ours, baseline and each figure is the mean of
    its two runs: a drift of the machine's speed during the repeat hits both alike,
    and the ratio's spread from repeat to repeat shrinks."""
    baselines, ours_runs = [], []
    extra: dict[str, float | None] = {}
    order = ("baseline", "ours", "ours", "baseline")[: 2 * pairs]
    for which in order:
        if which == "baseline":
            baselines.append(run_jobs(None, **kwargs)[0])
            continue
        with tempfile.TemporaryDirectory(prefix="routilux-bench-store-") as directory:
            result, extra = run_jobs(directory, **kwargs)
        ours_runs.append(result)
    baseline = sum(baselines) / len(baselines)
    ours = sum(ours_runs) / len(ours_runs)
    per_job = (kwargs["n"] if kwargs["n"] > 1 else 1) / baseline  # seconds, no store

    def allowed(floor_s: float) -> float:
        """The ratio a per-job cost of ``floor_s`` alone would allow."""
        return per_job / (per_job + floor_s)

    history_ms = extra.get("history_floor_ms")
    if history_ms is not None:
        extra["ratio_the_floor_allows"] = allowed(1e-3 * history_ms)
    if floor:
        # Durable submission and the job-end checkpoint: two synced commits per job
        # that no CPU saving removes.
        with tempfile.TemporaryDirectory(prefix="routilux-bench-store-") as directory:
            two = 2 * synced_commit_seconds(directory, 620)
        extra["two_synced_commits_ms"] = 1e3 * two
        extra["ratio_the_two_commits_allow"] = allowed(two)
    if also_normal:  # the same with SQLiteStore(synchronous="normal"): the power-loss trade
        with tempfile.TemporaryDirectory(prefix="routilux-bench-store-") as directory:
            normal, _ = run_jobs(directory, synchronous="normal", **kwargs)
        extra["synchronous_normal_ratio"] = normal / baseline
    return Measure(ours, baseline, extra)


def run_long_jobs(smoke: bool) -> Measure:
    jobs, n = (3, 100) if smoke else (30, 1000)
    return _with_and_without(
        pairs=1 if smoke else 2, hops=HOPS, jobs=jobs, n=n, strategy="concurrent", together=False
    )


def run_tiny_jobs(smoke: bool) -> Measure:
    jobs = 20 if smoke else 1000
    return _with_and_without(
        also_normal=True,
        floor=True,
        hops=2,
        jobs=jobs,
        n=1,
        strategy="sequential",
        together=False,
    )


def run_concurrent_jobs(smoke: bool) -> Measure:
    jobs, total = (3, 600) if smoke else (30, 20_000)
    n = total // jobs
    return _with_and_without(
        pairs=1 if smoke else 2, hops=HOPS, jobs=jobs, n=n, strategy="concurrent", together=True
    )


WORKLOADS = [
    Workload(
        name="store_serial_jobs",
        title="30 serial jobs x 1,000 messages, SQLiteStore",
        baseline="same without a store",
        unit="msg/s",
        target_op=">=",
        target=0.95,
        run=run_long_jobs,
    ),
    Workload(
        name="store_tiny_jobs",
        title="1,000 tiny serial jobs, SQLiteStore",
        baseline="same without a store",
        unit="jobs/s",
        target_op=">=",
        target=0.5,
        run=run_tiny_jobs,
    ),
    Workload(
        name="store_concurrent_jobs",
        title="30 concurrent jobs, 20k messages, SQLiteStore",
        baseline="same without a store",
        unit="msg/s",
        target_op=">=",
        target=0.9,
        run=run_concurrent_jobs,
    ),
]
