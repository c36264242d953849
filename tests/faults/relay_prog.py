"""One backpressure scenario in a clean process, measured (run by ``test_relay_memory``).

    python relay_prog.py TOPOLOGY --count N --limit L [--strategy S]

TOPOLOGY (every routine is a thread routine; messages carry 1 KiB of fresh bytes):

``direct``   producer -> consumer (the control: no routine in between)
``relay``    producer -> relay -> consumer
``fan_in``   start -> 3 producers -> relay -> consumer
``fan_out``  producer -> relay -> 3 consumers (each gets every message)
``cycle``    producer -> a -> b -> a ... (``LAPS`` times round) -> consumer

Consumers do a little work per message, more than the relay: the relay outruns them
and has to wait. ``max_queued_per_routine`` is L. A warm-up job of the same shape
starts the actors first; then the RSS is the baseline and the measured job runs
while a thread samples ``flow.metrics()`` (each routine's ``queued``) and the RSS.

Prints ``result <json>``: status, messages each consumer got (and a checksum), the
highest ``queued`` seen per routine, baseline and peak RSS, seconds, sample count.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import resource
import threading
import time

import psutil

from routilux import Flow, Routine

PAYLOAD = 1024  # bytes per message
LAPS = 3  # times a message goes round the cycle
PRODUCERS = 3  # fan-in
CONSUMERS = 3  # fan-out


def payload(i: int) -> bytes:
    return (b"%08d" % i) * (PAYLOAD // 8)  # a new 1 KiB object per message


class Start(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("go", ["n"])

    def go(self, n):
        self.emit("go", n=n)


class Producer(Routine):
    def __init__(self, offset: int = 0) -> None:
        super().__init__()
        self.offset = offset
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["i", "data"])

    def go(self, n):
        for i in range(self.offset, self.offset + n):
            self.emit("out", i=i, data=payload(i))


class Relay(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.define_slot("inp", handler=self.take)
        self.define_event("out", ["i", "data"])

    def take(self, i, data):
        self.emit("out", i=i, data=data)


class Lap(Routine):
    """One routine of the cycle: ``a`` sends a message on to ``b`` until it has gone
    round ``LAPS`` times, then out; ``b`` sends it back to ``a``."""

    def __init__(self, counts_laps: bool) -> None:
        super().__init__()
        self.counts_laps = counts_laps
        self.define_slot("inp", handler=self.take)
        self.define_event("round", ["i", "data", "lap"])
        self.define_event("out", ["i", "data"])

    def take(self, i, data, lap=0):
        if not self.counts_laps:
            self.emit("round", i=i, data=data, lap=lap)
        elif lap < LAPS:
            self.emit("round", i=i, data=data, lap=lap + 1)
        else:
            self.emit("out", i=i, data=data)


class Consumer(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.checksum = 0
        self.define_slot("inp", handler=self.take)

    def take(self, i, data, **_):
        digest = data
        for _ in range(4):  # slower than the relay
            digest = hashlib.sha256(digest).digest()
        self.count += 1
        self.checksum = (self.checksum + i) % (1 << 61)


def build(topology: str, limit: int, strategy: str) -> tuple[Flow, str, list[str]]:
    """The flow, its entry routine and the ids of its consumers."""
    flow = Flow(f"relay-{topology}", strategy, max_workers=8, max_queued_per_routine=limit)
    consumers = ["consumer"]
    if topology == "fan_out":
        consumers = [f"consumer{k}" for k in range(CONSUMERS)]
    for rid in consumers:
        flow.add_routine(Consumer(), rid)
    entry = "producer"
    if topology == "fan_in":
        entry = "start"
        flow.add_routine(Start(), "start")
        for k in range(PRODUCERS):
            flow.add_routine(Producer(offset=k * 10**7), f"producer{k}")
            flow.connect("start", "go", f"producer{k}", "trigger")
    else:
        flow.add_routine(Producer(), "producer")
    if topology == "direct":
        flow.connect("producer", "out", "consumer", "inp")
    elif topology in ("relay", "fan_in", "fan_out"):
        flow.add_routine(Relay(), "relay")
        sources = [f"producer{k}" for k in range(PRODUCERS)] if topology == "fan_in" else [
            "producer"
        ]
        for src in sources:
            flow.connect(src, "out", "relay", "inp")
        for rid in consumers:
            flow.connect("relay", "out", rid, "inp")
    elif topology == "cycle":
        flow.add_routine(Lap(counts_laps=True), "a")
        flow.add_routine(Lap(counts_laps=False), "b")
        flow.connect("producer", "out", "a", "inp")
        flow.connect("a", "round", "b", "inp")
        flow.connect("b", "round", "a", "inp")
        flow.connect("a", "out", "consumer", "inp")
    else:
        raise SystemExit(f"unknown topology {topology!r}")
    return flow, entry, consumers


def rss() -> int:
    return psutil.Process().memory_info().rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("topology")
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--strategy", default="concurrent")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    flow, entry, consumers = build(args.topology, args.limit, args.strategy)
    per_producer = args.count // PRODUCERS if args.topology == "fan_in" else args.count

    warm = flow.execute(entry, {"n": min(per_producer, 2000)}, timeout=args.timeout)
    assert warm.status == "completed", warm.error
    for rid in consumers:
        flow.routines[rid].count = flow.routines[rid].checksum = 0
    gc.collect()
    baseline = rss()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    peaks: dict[str, int] = {rid: 0 for rid in flow.routines}
    sampled = {"rss": baseline, "samples": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for rid, figures in flow.metrics().items():
                peaks[rid] = max(peaks[rid], figures["queued"])
            sampled["rss"] = max(sampled["rss"], rss())
            sampled["samples"] += 1
            stop.wait(0.002)  # sampling period

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    sampler.start()
    job = flow.execute(entry, {"n": per_producer}, wait=False, timeout=args.timeout)
    settled = job.wait(args.timeout + 5)
    seconds = time.monotonic() - started
    stop.set()
    sampler.join(5)
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # ru_maxrss is exact but counts the warm-up too: use it only if the run raised it.
    peak = max(sampled["rss"], maxrss_after if maxrss_after > maxrss_before else 0)
    result = {
        "status": job.status if settled else f"not settled ({job.status})",
        "error": job.error,
        "received": {rid: flow.routines[rid].count for rid in consumers},
        "checksums": {rid: flow.routines[rid].checksum for rid in consumers},
        "max_queued": peaks,
        "baseline_rss": baseline,
        "peak_rss": peak,
        "seconds": round(seconds, 2),
        "samples": sampled["samples"],
    }
    print("result", json.dumps(result, sort_keys=True), flush=True)
    if settled:
        flow.shutdown()


if __name__ == "__main__":
    main()
