"""What a checkpoint costs a flow with a backlog: queued messages pickled once
(``routilux.runtime.queue_pickle``) against pickled again at every cut, in the same run.

    python tests/benchmarks/backlog_cuts.py [--smoke] [--json] [--repeat 3]

A source emits ``n`` messages in one step into a slow routine (0.5 ms per message,
sleeping, so the GIL is free); the backlog drains over seconds while periodic
checkpoints (every 0.2 s, SQLiteStore) cut it. The figure is the mean time a cut
stops the supervisor (it routes nothing meanwhile). The baseline is the same run
with every queued message pickled afresh at every cut, as before the chunks.
Each repeat runs baseline, ours, ours, baseline; the ratio is baseline / ours
(above 1: ours stops the supervisor for less).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from workload import print_rows, script_arguments, settle
from workloads_store import KEY, stall_probe

from routilux import Flow, Routine
from routilux.checkpoint import SQLiteStore
from routilux.runtime.queue_pickle import QueueChunks


class Burst(Routine):
    """Emits ``n`` messages in one step."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("out", ["i", "item"])

    def start(self, n):
        for i in range(n):
            self.emit("out", i=i, item={"key": i, "name": f"item-{i}"})


class Slow(Routine):
    """Takes 0.5 ms per message, off the GIL."""

    def __init__(self):
        super().__init__()
        self.define_slot("inp", handler=self.take)

    def take(self, i, item):
        time.sleep(0.0005)


def _always_fresh(self, items, previous, out, flow_id):
    """The baseline: every queued message pickled again at every cut."""
    return [self._new_chunk(items, out, flow_id)]


def run(n: int, reuse: bool) -> dict[str, float]:
    """Mean supervisor stop per cut (ms) and cuts taken, for one backlog of ``n``."""
    baseline = mock.patch.object(QueueChunks, "_queue", _always_fresh)
    with contextlib.nullcontext() if reuse else baseline:
        with tempfile.TemporaryDirectory(prefix="routilux-bench-backlog-") as folder:
            store = SQLiteStore(Path(folder) / "b.db", key=KEY)
            flow = Flow(
                execution_strategy="concurrent", checkpoint_store=store, checkpoint_interval=0.2
            )
            flow.add_routine(Burst(), "burst")
            flow.add_routine(Slow(), "slow")
            flow.connect("burst", "out", "slow", "inp")
            try:
                with stall_probe() as probe:
                    settle([flow.execute("burst", {"n": n}, wait=False)], "backlog", 600)
            finally:
                flow.shutdown()
                store.close()
    return {"stall_ms": probe.mean_ms() or 0.0, "cuts": probe.calls}


def main() -> None:
    args = script_arguments(__doc__, 3, "a tiny backlog, 1 repeat").parse_args()
    n, repeat = (300, 1) if args.smoke else (6000, args.repeat)
    ratios, ours_ms, base_ms, cuts = [], [], [], []
    for _ in range(repeat):
        base_a = run(n, reuse=False)
        ours_a, ours_b = run(n, reuse=True), run(n, reuse=True)
        base_b = run(n, reuse=False)
        ours = (ours_a["stall_ms"] + ours_b["stall_ms"]) / 2
        base = (base_a["stall_ms"] + base_b["stall_ms"]) / 2
        ours_ms.append(ours)
        base_ms.append(base)
        cuts.append(ours_a["cuts"])
        ratios.append(base / ours if ours else 0.0)
    row = {
        "workload": "backlog_cuts",
        "backlog": n,
        "ours_stall_ms": statistics.median(ours_ms),
        "baseline_stall_ms": statistics.median(base_ms),
        "ratio": statistics.median(ratios),
        "cuts_per_run": statistics.median(cuts),
        "repeat": repeat,
    }
    print_rows(
        [row],
        args.json,
        lambda row: (
            f"backlog of {n}: a cut stops the supervisor {row['ours_stall_ms']:.2f} ms "
            f"(every message pickled at every cut: {row['baseline_stall_ms']:.2f} ms), "
            f"{row['ratio']:.2f}x less, median of {repeat}"
        ),
    )


if __name__ == "__main__":
    main()
