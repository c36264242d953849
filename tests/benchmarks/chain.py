"""Chain benchmark: a 10-routine chain vs a raw pykka 10-actor chain, same run.

The entry routine emits N messages in one step; each passes 9 more routines. We
report end-to-end messages/s (messages that reached the last routine per second),
the unloaded per-hop latency (one message at a time), and the ratio to raw pykka.

    python tests/benchmarks/chain.py [--messages 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import pykka

from routilux import Flow, Routine

HOPS = 10


class Source(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("out", ["i"])

    def start(self, n):
        for i in range(n):
            self.emit("out", i=i)


class Relay(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("inp", handler=self.relay)
        self.define_event("out", ["i"])

    def relay(self, i):
        self.emit("out", i=i)


class Sink(Routine):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.define_slot("inp", handler=self.take)

    def take(self, i):
        self.count += 1


def build_chain(strategy: str, history: bool) -> tuple[Flow, Sink]:
    flow = Flow(execution_strategy=strategy, max_workers=HOPS, record_history=history)
    flow.add_routine(Source(), "r0")
    for k in range(1, HOPS - 1):
        flow.add_routine(Relay(), f"r{k}")
    sink = Sink()
    flow.add_routine(sink, f"r{HOPS - 1}")
    for k in range(HOPS - 1):
        flow.connect(f"r{k}", "out", f"r{k + 1}", "inp")
    return flow, sink


def routilux_throughput(n: int, strategy: str, history: bool) -> float:
    flow, sink = build_chain(strategy, history)
    flow.execute("r0", {"n": 10})  # warm up: actors started, plans cached
    sink.count = 0
    started = time.perf_counter()
    job = flow.execute("r0", {"n": n})
    elapsed = time.perf_counter() - started
    assert job.status == "completed" and sink.count == n, (job.status, sink.count)
    flow.shutdown()
    return n / elapsed


def routilux_hop_latency(samples: int) -> float:
    flow, _ = build_chain("sequential", True)
    flow.execute("r0", {"n": 1})
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        flow.execute("r0", {"n": 1})
        times.append(time.perf_counter() - started)
    flow.shutdown()
    return statistics.median(times) / HOPS


class RawActor(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, nxt, done, expect):
        super().__init__()
        self.nxt, self.done, self.expect, self.count = nxt, done, expect, 0

    def on_receive(self, message):
        if self.nxt is not None:
            self.nxt.tell(message)
        else:
            self.count += 1
            if self.count == self.expect:
                self.done.set()


def raw_chain(expect: int) -> tuple[pykka.ActorRef, threading.Event, list]:
    done = threading.Event()
    nxt = None
    refs = []
    for k in range(HOPS):
        nxt = RawActor.start(nxt, done, expect if k == 0 else None)
        refs.append(nxt)
    return nxt, done, refs


def raw_throughput(n: int) -> float:
    head, done, refs = raw_chain(n)
    started = time.perf_counter()
    for i in range(n):
        head.tell({"i": i})
    done.wait()
    elapsed = time.perf_counter() - started
    for ref in refs:
        ref.stop()
    return n / elapsed


def raw_hop_latency(samples: int) -> float:
    times = []
    for _ in range(samples):
        head, done, refs = raw_chain(1)
        started = time.perf_counter()
        head.tell({"i": 0})
        done.wait()
        times.append(time.perf_counter() - started)
        for ref in refs:
            ref.stop()
    return statistics.median(times) / HOPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    for _ in range(args.rounds):  # interleaved so drift hits every variant alike
        rows.setdefault("raw pykka chain", []).append(raw_throughput(args.messages))
        rows.setdefault("routilux concurrent", []).append(
            routilux_throughput(args.messages, "concurrent", True))
        rows.setdefault("routilux concurrent, no history", []).append(
            routilux_throughput(args.messages, "concurrent", False))
        rows.setdefault("routilux sequential", []).append(
            routilux_throughput(args.messages, "sequential", True))
    raw = statistics.median(rows["raw pykka chain"])
    print(f"{HOPS}-routine chain, {args.messages} messages, median of {args.rounds} rounds")
    for name, values in rows.items():
        value = statistics.median(values)
        print(f"  {name:34s} {value:10,.0f} msg/s   ratio to raw pykka {value / raw:5.2f}")
    hop = routilux_hop_latency(200)
    raw_hop = raw_hop_latency(50)
    print(f"  unloaded per-hop latency: routilux {hop * 1e6:.1f} us, raw pykka "
          f"{raw_hop * 1e6:.1f} us (ratio {hop / raw_hop:.2f})")


if __name__ == "__main__":
    main()
