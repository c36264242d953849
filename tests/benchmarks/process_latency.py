"""Latency and throughput of a process routine vs a raw multiprocessing.Pipe.

Latency: a ping-pong cycle inside one job: a thread routine emits one small message
to an echo routine running in its own process, whose emit comes back to the thread
routine, which sends the next. Time per cycle vs a raw ``multiprocessing.Pipe``
round trip to an echoing child process, measured in the same run.

Throughput: small messages/s through one process routine (concurrent strategy).

    python tests/benchmarks/process_latency.py [--cycles 2000] [--messages 20000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

from routilux import Flow, Routine


class Pinger(Routine):
    def __init__(self):
        super().__init__()
        self.remaining = 0
        self.define_slot("trigger", handler=self.start)
        self.define_slot("pong", handler=self.pong)
        self.define_event("ping", ["i"])

    def start(self, cycles):
        self.remaining = cycles
        self.emit("ping", i=0)

    def pong(self, i):
        self.remaining -= 1
        if self.remaining > 0:
            self.emit("ping", i=i + 1)


class Echo(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("ping", handler=lambda i: self.emit("pong", i=i))
        self.define_event("pong", ["i"])


class Source(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["i"])

    def go(self, n):
        for i in range(n):
            self.emit("out", i=i)


class Count(Routine):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.define_slot("inp", handler=self.take)

    def take(self, i):
        self.n += 1


def flow_cycle(cycles: int, execution: str) -> float:
    flow = Flow()
    flow.add_routine(Pinger(), "pinger")
    flow.add_routine(Echo(), "echo", execution=execution)
    flow.connect("pinger", "ping", "echo", "ping")
    flow.connect("echo", "pong", "pinger", "pong")
    flow.execute("pinger", {"cycles": 50})
    started = time.perf_counter()
    job = flow.execute("pinger", {"cycles": cycles})
    elapsed = time.perf_counter() - started
    assert job.status == "completed", job.error
    flow.shutdown()
    return elapsed / cycles


def _echo_child(conn) -> None:
    while True:
        message = conn.recv()
        if message is None:
            return
        conn.send(message)


def raw_pipe_cycle(cycles: int) -> float:
    parent, child = mp.Pipe()
    process = mp.get_context("spawn").Process(target=_echo_child, args=(child,))
    process.start()
    for _ in range(50):
        parent.send({"i": 0})
        parent.recv()
    started = time.perf_counter()
    for i in range(cycles):
        parent.send({"i": i})
        parent.recv()
    elapsed = time.perf_counter() - started
    parent.send(None)
    process.join()
    return elapsed / cycles


def process_throughput(messages: int) -> float:
    flow = Flow(execution_strategy="concurrent", record_history=False)
    count = Count()
    flow.add_routine(Source(), "source")
    flow.add_routine(Echo(), "echo", execution="process")
    flow.add_routine(count, "count")
    flow.connect("source", "out", "echo", "ping")
    flow.connect("echo", "pong", "count", "inp")
    flow.execute("source", {"n": 100})
    count.n = 0
    started = time.perf_counter()
    job = flow.execute("source", {"n": messages})
    elapsed = time.perf_counter() - started
    assert job.status == "completed" and count.n == messages
    flow.shutdown()
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {"raw Pipe": [], "process": [], "thread": []}
    for _ in range(args.rounds):
        rows["raw Pipe"].append(raw_pipe_cycle(args.cycles))
        rows["process"].append(flow_cycle(args.cycles, "process"))
        rows["thread"].append(flow_cycle(args.cycles, "thread"))
    raw = statistics.median(rows["raw Pipe"])
    process = statistics.median(rows["process"])
    thread = statistics.median(rows["thread"])
    print(f"round trip, median of {args.rounds} rounds of {args.cycles} cycles")
    print(f"  raw multiprocessing.Pipe round trip      {raw * 1e6:7.1f} us")
    print(f"  ping-pong through a process routine      {process * 1e6:7.1f} us  "
          f"ratio {process / raw:4.2f}x")
    print(f"  same ping-pong, echo on a thread         {thread * 1e6:7.1f} us")
    print(f"  process step alone (process - thread)    {(process - thread) * 1e6:7.1f} us  "
          f"ratio {(process - thread) / raw:4.2f}x")
    rate = statistics.median(process_throughput(args.messages) for _ in range(args.rounds))
    print(f"  one process routine: {rate:,.0f} small messages/s")


if __name__ == "__main__":
    main()
