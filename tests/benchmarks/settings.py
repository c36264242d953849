"""What each flow setting costs: the same workload with one setting changed, against
the defaults, in the same run.

    python tests/benchmarks/settings.py [--smoke] [--json] [--repeat 3]

The workload is a 10-routine thread chain (concurrent strategy) taking one job of
``n`` messages, then ``jobs`` tiny jobs of 10 messages one after the other. Each
repeat measures every variant right after the defaults, so the ratio (variant /
defaults, per repeat; median shown) is not skewed by the load of a shared machine.
A ratio below 1 is the setting's cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from chain_routines import Relay, Sink, Source
from workload import settle

from routilux import Flow
from routilux.checkpoint import DirectoryStore, SQLiteStore

KEY = b"routilux-benchmark-key-012345678"
# A variant changes the flow before it is wired, and may return add_routine options
# per routine id.
Variant = Callable[[Flow, Path], "dict[str, dict] | None"]


def _sqlite(interval: float) -> Variant:
    def apply(flow: Flow, folder: Path) -> None:
        flow.checkpoint_store = SQLiteStore(folder / "store.db", key=KEY)
        flow.checkpoint_interval = interval

    return apply


def _directory(flow: Flow, folder: Path) -> None:
    flow.checkpoint_store = DirectoryStore(folder / "store", key=KEY)


def _subscriber(flow: Flow, folder: Path) -> None:
    flow.subscribe(lambda event: None)  # every event kind, read on its own thread


def _no_history(flow: Flow, folder: Path) -> None:
    flow.record_history = False


def _small_queues(flow: Flow, folder: Path) -> None:
    flow.max_queued_per_routine = 64


def _sequential(flow: Flow, folder: Path) -> None:
    flow.execution_strategy = "sequential"


def _process_relay(flow: Flow, folder: Path) -> dict[str, dict]:
    return {"r5": {"execution": "process"}}


def _two_workers(flow: Flow, folder: Path) -> dict[str, dict]:
    return {f"r{k}": {"workers": 2} for k in range(1, 9)}


VARIANTS: dict[str, tuple[str, Variant]] = {
    "record_history=False": ("no execution history kept", _no_history),
    "max_queued_per_routine=64": ("tighter backpressure (default 10,000)", _small_queues),
    "execution_strategy=sequential": ("one step in flight per job", _sequential),
    "SQLiteStore, interval 1 s": ("durable jobs, the default interval", _sqlite(1.0)),
    "SQLiteStore, interval 0.1 s": ("durable jobs, checkpoints 10x as often", _sqlite(0.1)),
    "DirectoryStore, interval 1 s": ("durable jobs, one file per checkpoint", _directory),
    "a bus subscriber": ("flow.subscribe() taking every event", _subscriber),
    "one relay as a process": ("execution='process' for r5", _process_relay),
    "relays with workers=2": ("two replicas per relay", _two_workers),
}


def wire(flow: Flow, options: dict[str, dict]) -> Sink:
    """The 10-routine chain r0 -> ... -> r9, with ``options`` for add_routine."""
    sink = Sink()
    for k in range(10):
        routine = Source() if k == 0 else sink if k == 9 else Relay()
        flow.add_routine(routine, f"r{k}", **options.get(f"r{k}", {}))
    for k in range(9):
        flow.connect(f"r{k}", "out", f"r{k + 1}", "inp")
    return sink


def measure(variant: Variant | None, n: int, jobs: int) -> tuple[float, float]:
    """(msg/s of one big job, jobs/s of tiny serial jobs) with ``variant`` applied."""
    with tempfile.TemporaryDirectory(prefix="routilux-settings-") as folder:
        flow = Flow(flow_id="settings", execution_strategy="concurrent", max_workers=10)
        try:
            options = (variant(flow, Path(folder)) if variant is not None else None) or {}
            sink = wire(flow, options)
            settle([flow.execute("r0", {"n": 10}, wait=False)], "warm-up")
            sink.arm(n)
            started = time.perf_counter()
            settle([flow.execute("r0", {"n": n}, wait=False)], "big job")
            big = n / (time.perf_counter() - started)
            started = time.perf_counter()
            for _ in range(jobs):
                settle([flow.execute("r0", {"n": 10}, wait=False)], "tiny job")
            tiny = jobs / (time.perf_counter() - started)
        finally:
            flow.shutdown()
    return big, tiny


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--json", action="store_true", help="print only the JSON lines")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    n, jobs, repeat = (100, 5, 1) if args.smoke else (2000, 100, args.repeat)
    load = os.getloadavg()
    ratios: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    defaults: list[tuple[float, float]] = []
    for _ in range(repeat):
        for name, (_, variant) in VARIANTS.items():
            base = measure(None, n, jobs)
            ours = measure(variant, n, jobs)
            defaults.append(base)
            ratios[name].append((ours[0] / base[0], ours[1] / base[1]))
    rows = []
    for name, (what, _) in VARIANTS.items():
        rows.append(
            {
                "setting": name,
                "what": what,
                "big_job_ratio": round(statistics.median(r[0] for r in ratios[name]), 3),
                "tiny_jobs_ratio": round(statistics.median(r[1] for r in ratios[name]), 3),
                "smoke": args.smoke,
                "loadavg_before": load,
            }
        )
    if not args.json:
        big = statistics.median(d[0] for d in defaults)
        tiny = statistics.median(d[1] for d in defaults)
        print(f"defaults: {big:,.0f} msg/s (one job of {n}), {tiny:,.0f} tiny jobs/s")
        print(f"{'setting':32} {'big job':>8} {'tiny jobs':>10}  what")
        for row in rows:
            print(
                f"{row['setting']:32} {row['big_job_ratio']:>8} {row['tiny_jobs_ratio']:>10}"
                f"  {row['what']}"
            )
        print(f"load average before: {load}, after: {os.getloadavg()}")
    for row in rows:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
