"""routilux scaling curves: how throughput and memory grow with the size of a flow.

    python tests/benchmarks/scaling.py [--smoke] [--json] [--only CURVE ...]

Three curves, each point measured against its own baseline in the same run:

``chain_length``
    One job of ``n`` messages through a chain of L thread routines (concurrent
    strategy), L = 10 ... 200, against a raw pykka chain of the same length.
    Also: hop-messages per second (messages x hops / s) and the flow's start-up.
``concurrent_jobs``
    The same 20,000 messages split over J concurrent jobs of a 5-routine chain,
    J = 1 ... 100, with an SQLiteStore and without one.
``memory``
    Resident memory per routine: thread routines (this process's RSS growth per
    started routine) and process routines (each child's unique memory, plus the
    parent's growth), against an idle Python child as the baseline.

Prints one table per curve, then one JSON line per point. ``--smoke`` uses tiny
sizes so that the script cannot rot (CI runs it); no figure is judged.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from chain_routines import Relay, Source, wire_chain
from workload import settle
from workloads_chain import RawActor

from routilux import Flow
from routilux.checkpoint import SQLiteStore

KEY = b"routilux-benchmark-key-012345678"
MiB = 1024 * 1024


# -- chain length --------------------------------------------------------------------
def ours_chain(hops: int, n: int) -> dict[str, float]:
    """msg/s of one job of ``n`` messages through a ``hops``-routine chain."""
    started = time.perf_counter()
    flow = Flow(execution_strategy="concurrent", max_workers=hops)
    try:
        sink = wire_chain(flow, hops)
        settle([flow.execute("r0", {"n": 1}, wait=False)], "chain warm-up")
        startup = time.perf_counter() - started
        sink.arm(n)
        started = time.perf_counter()
        settle([flow.execute("r0", {"n": n}, wait=False)], f"chain of {hops}")
        elapsed = time.perf_counter() - started
        if sink.count != n:
            raise RuntimeError(f"chain of {hops}: {sink.count} of {n} messages arrived")
    finally:
        flow.shutdown()
    return {"msg_s": n / elapsed, "startup_s": startup}


def raw_chain(hops: int, n: int) -> float:
    """msg/s of ``n`` messages through a raw pykka chain of ``hops`` actors."""
    done = threading.Event()
    refs, head = [], None
    for k in range(hops):
        head = RawActor.start(head, done, n if k == 0 else -1)
        refs.append(head)
    try:
        started = time.perf_counter()
        for i in range(n):
            head.tell({"i": i})
        if not done.wait(600):
            raise RuntimeError(f"raw chain of {hops}: not every message arrived")
        return n / (time.perf_counter() - started)
    finally:
        for ref in refs:
            ref.stop()


def curve_chain_length(smoke: bool) -> list[dict]:
    lengths, n = ([3, 6], 50) if smoke else ([10, 25, 50, 100, 200], 2000)
    points = []
    for hops in lengths:
        baseline = raw_chain(hops, n)
        ours = ours_chain(hops, n)
        points.append(
            {
                "curve": "chain_length",
                "x": hops,
                "ours_msg_s": round(ours["msg_s"], 1),
                "baseline_msg_s": round(baseline, 1),
                "ratio": round(ours["msg_s"] / baseline, 3),
                "hop_msg_s": round(ours["msg_s"] * (hops - 1), 1),
                "startup_ms": round(1e3 * ours["startup_s"], 1),
            }
        )
    return points


# -- concurrent jobs -----------------------------------------------------------------
def jobs_throughput(jobs: int, total: int, store: SQLiteStore | None) -> float:
    """msg/s of ``total`` messages split over ``jobs`` concurrent jobs."""
    flow = Flow(flow_id=f"scaling-{jobs}", execution_strategy="concurrent", max_workers=5)
    if store is not None:
        flow.checkpoint_store = store
    try:
        wire_chain(flow, 5)
        per_job = total // jobs
        started = time.perf_counter()
        running = [flow.execute("r0", {"n": per_job}, wait=False) for _ in range(jobs)]
        settle(running, f"{jobs} concurrent jobs")
        elapsed = time.perf_counter() - started
    finally:
        flow.shutdown()
    return per_job * jobs / elapsed


def curve_concurrent_jobs(smoke: bool) -> list[dict]:
    counts, total = ([1, 3], 300) if smoke else ([1, 10, 30, 100], 20_000)
    points = []
    with tempfile.TemporaryDirectory(prefix="routilux-scaling-") as folder:
        for jobs in counts:
            bare = jobs_throughput(jobs, total, None)
            store = SQLiteStore(Path(folder) / f"jobs-{jobs}.db", key=KEY)
            durable = jobs_throughput(jobs, total, store)
            points.append(
                {
                    "curve": "concurrent_jobs",
                    "x": jobs,
                    "ours_msg_s": round(durable, 1),
                    "baseline_msg_s": round(bare, 1),
                    "ratio": round(durable / bare, 3),
                }
            )
    return points


# -- memory --------------------------------------------------------------------------
def _rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def _children_uss(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_full_info().uss
        except psutil.Error:
            pass
    return total


def _idle_python_uss() -> int:
    """Unique memory of an idle Python child that imported routilux (the baseline)."""
    code = "import routilux, sys; print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("the idle Python child did not start")
        return psutil.Process(child.pid).memory_full_info().uss
    finally:
        child.stdin.close()
        child.wait(10)


def memory_per_routine(count: int, execution: str) -> dict[str, float]:
    before_children = {p.pid for p in psutil.Process().children(recursive=True)}
    rss_before = _rss()
    flow = Flow(execution_strategy="concurrent", max_workers=count + 1)
    try:
        flow.add_routine(Source(), "src")
        for k in range(count):
            flow.add_routine(Relay(), f"m{k}", execution=execution)
            flow.connect("src", "out", f"m{k}", "inp")
        settle([flow.execute("src", {"n": 1}, wait=False)], "memory warm-up")
        parent = (_rss() - rss_before) / count
        children = {p.pid for p in psutil.Process().children(recursive=True)} - before_children
        child = _children_uss(children) / count if execution == "process" else 0.0
    finally:
        flow.shutdown()
    return {"parent": parent, "child": child}


def curve_memory(smoke: bool) -> list[dict]:
    threads, processes = (5, 2) if smoke else (200, 8)
    idle = _idle_python_uss()
    thread = memory_per_routine(threads, "thread")
    process = memory_per_routine(processes, "process")
    return [
        {
            "curve": "memory",
            "x": f"thread x{threads}",
            "parent_mib_per_routine": round(thread["parent"] / MiB, 3),
            "child_mib_per_routine": 0.0,
            "idle_python_child_mib": round(idle / MiB, 2),
        },
        {
            "curve": "memory",
            "x": f"process x{processes}",
            "parent_mib_per_routine": round(process["parent"] / MiB, 3),
            "child_mib_per_routine": round(process["child"] / MiB, 2),
            "idle_python_child_mib": round(idle / MiB, 2),
        },
    ]


CURVES = {
    "memory": curve_memory,  # first: the other curves would leave memory behind
    "chain_length": curve_chain_length,
    "concurrent_jobs": curve_concurrent_jobs,
}


def print_table(points: list[dict]) -> None:
    columns = [key for key in points[0] if key not in ("curve", "smoke", "loadavg_before")]
    print(f"\n{points[0]['curve']}")
    print("  ".join(f"{c:>22}" for c in columns))
    for point in points:
        print("  ".join(f"{point[c]!s:>22}" for c in columns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, nothing judged")
    parser.add_argument("--json", action="store_true", help="print only the JSON lines")
    parser.add_argument("--only", nargs="+", choices=list(CURVES), metavar="CURVE")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    results = []
    for name in args.only or list(CURVES):
        points = CURVES[name](args.smoke)
        for point in points:
            point["smoke"] = args.smoke
            point["loadavg_before"] = load
        results.append(points)
        if not args.json:
            print_table(points)
    if not args.json:
        print(f"\nload average before: {load}, after: {os.getloadavg()}\n")
    for points in results:
        for point in points:
            print(json.dumps(point))
    return 0


if __name__ == "__main__":
    sys.exit(main())
