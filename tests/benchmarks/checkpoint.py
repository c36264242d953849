"""Checkpoint benchmark: what durable checkpoints cost the 10-routine chain.

1. Throughput of the chain of ``chain.py`` (entry routine emits N messages, each
   passes 9 more routines) without a checkpoint store vs with ``SQLiteStore`` at the
   default ``checkpoint_interval`` (1.0 s), same run, interleaved rounds. N is large
   enough for a run to span several intervals. Two shapes of the same chain:
   - "one step": the entry routine emits all N messages in one step (chain.py);
   - "batched": the entry routine emits 100 messages per step and re-triggers itself,
     so steps are short and periodic checkpoints find a consistent cut.
   Per run we report the checkpoints written and skipped (no consistent cut: every
   in-flight step waited on backpressure), how long the supervisor stopped for each
   written one (state sync + pickling + store write; it routes nothing meanwhile),
   the store's share of that, and the size of the last checkpoint.
2. The cost of one checkpoint holding 1,000 queued messages: a sequential job is
   paused with 1,000 messages waiting for the next routine, and ``flow.checkpoint()``
   is timed (median of several), next to the same with 0 and 10,000 queued.

    python tests/benchmarks/checkpoint.py [--messages 60000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from chain import HOPS, Relay, Sink, Source

from routilux import Flow, Routine
from routilux.checkpoint import SQLiteStore
from routilux.runtime import supervisor as supervisor_module

KEY = b"checkpoint-benchmark-key-0123456"
BATCH = 100


class CountingStore(SQLiteStore):
    """SQLiteStore that counts checkpoints and the time spent writing them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saves = 0
        self.save_seconds = 0.0
        self.last_size = 0

    def save(self, flow_id, blob, jobs):
        started = time.perf_counter()
        super().save(flow_id, blob, jobs)
        self.save_seconds += time.perf_counter() - started
        self.saves += 1
        self.last_size = len(blob)


class Probe:
    """Times the supervisor's checkpoint writes and counts skipped checkpoints.

    Wraps two private supervisor methods (this is a benchmark, not a test); if they
    are renamed, the figures read "n/a" and the throughput figures stay valid.
    """

    def __init__(self) -> None:
        self.written = 0
        self.skipped = 0
        self.stall_seconds = 0.0
        cls = supervisor_module.FlowSupervisor
        self.available = hasattr(cls, "_write_checkpoint") and hasattr(cls, "_release_tickets")
        if not self.available:
            return
        probe = self
        write, release = cls._write_checkpoint, cls._release_tickets

        def timed_write(supervisor):
            started = time.perf_counter()
            try:
                return write(supervisor)
            finally:
                probe.stall_seconds += time.perf_counter() - started
                probe.written += 1

        def counted_release(supervisor, error):
            if error is not None and type(error).__name__ == "CheckpointSkipped":
                probe.skipped += 1
            return release(supervisor, error)

        cls._write_checkpoint = timed_write
        cls._release_tickets = counted_release
        self._restore = (write, release)

    def reset(self) -> None:
        self.written = self.skipped = 0
        self.stall_seconds = 0.0

    def close(self) -> None:
        if self.available:
            cls = supervisor_module.FlowSupervisor
            cls._write_checkpoint, cls._release_tickets = self._restore


PROBE: Probe | None = None


class BatchedSource(Routine):
    """Emits ``n`` messages, ``BATCH`` per step, re-triggering itself."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_slot("more", handler=self.more)
        self.define_event("out", ["i"])
        self.define_event("next", ["start", "n"])

    def start(self, n):
        self.more(0, n)

    def more(self, start, n):
        end = min(start + BATCH, n)
        for i in range(start, end):
            self.emit("out", i=i)
        if end < n:
            self.emit("next", start=end, n=n)


def build(shape: str, store, strategy: str = "concurrent") -> tuple[Flow, Sink]:
    kwargs = {"checkpoint_store": store} if store is not None else {}
    flow = Flow(execution_strategy=strategy, max_workers=HOPS, **kwargs)
    flow.add_routine(BatchedSource() if shape == "batched" else Source(), "r0")
    for k in range(1, HOPS - 1):
        flow.add_routine(Relay(), f"r{k}")
    sink = Sink()
    flow.add_routine(sink, f"r{HOPS - 1}")
    for k in range(HOPS - 1):
        flow.connect(f"r{k}", "out", f"r{k + 1}", "inp")
    if shape == "batched":
        flow.connect("r0", "next", "r0", "more")
    return flow, sink


def throughput(shape: str, n: int, directory: str | None) -> tuple[float, tuple | None]:
    """msg/s of one job of ``n`` messages, and what the checkpoints written while it
    ran (the job-end one included) cost: (saves, store seconds, last size, skipped,
    supervisor stall seconds, writes timed)."""
    store = CountingStore(Path(directory) / "bench.db", key=KEY) if directory else None
    flow, sink = build(shape, store)
    flow.execute("r0", {"n": 10})  # warm up: actors started, plans cached
    sink.count = 0
    if store is not None:
        store.saves, store.save_seconds = 0, 0.0
    PROBE.reset()
    started = time.perf_counter()
    job = flow.execute("r0", {"n": n})
    elapsed = time.perf_counter() - started
    assert job.status == "completed" and sink.count == n, (job.status, sink.count)
    written = None
    if store is not None:
        written = (store.saves, store.save_seconds, store.last_size, PROBE.skipped,
                   PROBE.stall_seconds, PROBE.written)
    flow.shutdown()
    if store is not None:
        store.close()
    return n / elapsed, written


class HeldSource(Routine):
    """Emits ``n`` messages, then waits until released (the job is paused meanwhile)."""

    def __init__(self, emitted: threading.Event, release: threading.Event):
        super().__init__()
        self.emitted, self.release = emitted, release
        self.define_slot("trigger", handler=self.start)
        self.define_event("out", ["i", "text"])

    def start(self, n):
        for i in range(n):
            self.emit("out", i=i, text=f"message {i}")
        self.emitted.set()
        self.release.wait()

    def __getstate__(self):  # the events stay out of the checkpoint
        return {k: v for k, v in vars(self).items() if k not in ("emitted", "release")}


def checkpoint_cost(queued: int, repeats: int, directory: str) -> tuple[float, float, int]:
    """Median and best seconds of flow.checkpoint() with ``queued`` messages queued."""
    store = CountingStore(Path(directory) / f"queued-{queued}.db", key=KEY)
    emitted, release = threading.Event(), threading.Event()
    flow = Flow(execution_strategy="sequential", checkpoint_store=store,
                checkpoint_interval=3600.0, max_queued_per_routine=max(2 * queued, 10))
    flow.add_routine(HeldSource(emitted, release), "source")
    flow.add_routine(Sink(), "sink")
    flow.connect("source", "out", "sink", "inp")
    job = flow.execute("source", {"n": queued}, wait=False)
    emitted.wait()
    flow.pause(job, "benchmark", wait=False)
    release.set()
    job.wait()
    assert job.status == "paused" and len(job.pending_tasks) == queued, (
        job.status, len(job.pending_tasks))
    flow.checkpoint()  # first one pays for imports and the table warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        flow.checkpoint()
        times.append(time.perf_counter() - started)
    size = store.last_size
    flow.cancel(job)
    flow.shutdown()
    store.close()
    return statistics.median(times), min(times), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    global PROBE
    PROBE = Probe()
    with tempfile.TemporaryDirectory() as directory:
        rows: dict[str, list[float]] = {}
        saves: dict[str, list[tuple[int, float, int]]] = {}
        for r in range(args.rounds):  # interleaved so drift hits every variant alike
            for shape in ("one step", "batched"):
                off, _ = throughput(shape, args.messages, None)
                on, written = throughput(shape, args.messages, str(Path(directory) / f"{shape}{r}"))
                rows.setdefault(f"{shape}: off", []).append(off)
                rows.setdefault(f"{shape}: on", []).append(on)
                saves.setdefault(shape, []).append(written)
        print(f"{HOPS}-routine chain, {args.messages} messages, median of {args.rounds} rounds, "
              "checkpoints at the default interval (1.0 s), SQLiteStore")
        for shape in ("one step", "batched"):
            off = statistics.median(rows[f"{shape}: off"])
            on = statistics.median(rows[f"{shape}: on"])
            counts = saves[shape]
            runs = len(counts)
            written = sum(c[0] for c in counts)
            store_ms = 1e3 * sum(c[1] for c in counts) / max(written, 1)
            skipped = sum(c[3] for c in counts)
            timed = sum(c[5] for c in counts)
            stall = (f"{1e3 * sum(c[4] for c in counts) / timed:.1f} ms" if PROBE.available
                     and timed else "n/a")
            print(f"  {shape + ', checkpoints off':34s} {off:10,.0f} msg/s")
            print(f"  {shape + ', checkpoints on':34s} {on:10,.0f} msg/s   ratio on/off "
                  f"{on / off:5.2f}")
            print(f"  {'':34s} per run: {written / runs:.1f} checkpoints written, "
                  f"{skipped / runs:.1f} skipped; each stopped the supervisor {stall} "
                  f"(store write {store_ms:.1f} ms); last {counts[-1][2] / 1024:.0f} KiB")
        print(f"cost of one flow.checkpoint() of a paused job, median of {args.repeats}")
        for queued in (0, 1_000, 10_000):
            median, best, size = checkpoint_cost(queued, args.repeats, directory)
            print(f"  {queued:6,d} queued messages: {median * 1e3:7.2f} ms "
                  f"(best {best * 1e3:.2f} ms), checkpoint {size / 1024:,.0f} KiB")
    PROBE.close()


if __name__ == "__main__":
    main()
