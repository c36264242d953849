"""Thread-routine workloads: the 10-routine chain against raw pykka and routilux 0.10."""

from __future__ import annotations

import threading
import time

import pykka
import rx010_venv
from chain_routines import HOPS, wire_chain
from workload import Measure, Workload, settle

from routilux import Flow


def chain_throughput(n: int, strategy: str) -> float:
    """msg/s of one job of ``n`` messages through today's 10-routine chain."""
    flow = Flow(execution_strategy=strategy, max_workers=HOPS)
    try:
        sink = wire_chain(flow)
        settle([flow.execute("r0", {"n": 10}, wait=False)], "chain warm-up")
        sink.arm(n)
        started = time.perf_counter()
        settle([flow.execute("r0", {"n": n}, wait=False)], "chain")
        elapsed = time.perf_counter() - started
        if sink.count != n:
            raise RuntimeError(f"chain: {sink.count} of {n} messages arrived")
    finally:
        flow.shutdown()
    return n / elapsed


class RawActor(pykka.ThreadingActor):
    """One link of a raw pykka chain: forward, or count at the end."""

    use_daemon_thread = True

    def __init__(self, nxt: pykka.ActorRef | None, done: threading.Event, expect: int):
        super().__init__()
        self.nxt, self.done, self.expect, self.count = nxt, done, expect, 0

    def on_receive(self, message):
        if self.nxt is not None:
            self.nxt.tell(message)
        else:
            self.count += 1
            if self.count == self.expect:
                self.done.set()


def raw_pykka_throughput(n: int) -> float:
    """msg/s of ``n`` messages told to the head of a raw 10-actor pykka chain."""
    done = threading.Event()
    refs: list[pykka.ActorRef] = []
    head = None
    for k in range(HOPS):  # built from the tail: the first actor started counts
        head = RawActor.start(head, done, n if k == 0 else -1)
        refs.append(head)
    try:
        started = time.perf_counter()
        for i in range(n):
            head.tell({"i": i})
        if not done.wait(600):
            raise RuntimeError("raw pykka chain: not every message arrived")
        elapsed = time.perf_counter() - started
    finally:
        for ref in refs:
            ref.stop()
    return n / elapsed


def run_concurrent(smoke: bool) -> Measure:
    n = 200 if smoke else 2000
    baseline = raw_pykka_throughput(n)
    return Measure(chain_throughput(n, "concurrent"), baseline)


def run_sequential(smoke: bool) -> Measure:
    n = 200 if smoke else 2000
    ours = chain_throughput(n, "sequential")
    if smoke:
        return Measure(ours, None, note="baseline skipped in smoke mode")
    try:
        return Measure(ours, rx010_venv.run_chain(n))
    except rx010_venv.BaselineUnavailable as error:
        return Measure(ours, None, note=f"baseline unavailable: {error}")


WORKLOADS = [
    Workload(
        name="chain_concurrent",
        title="10-routine chain, thread routines, concurrent",
        baseline="raw pykka 10-actor chain",
        unit="msg/s",
        target_op=">=",
        target=0.5,
        run=run_concurrent,
    ),
    Workload(
        name="chain_sequential",
        title="same chain, sequential (default strategy)",
        baseline="routilux 0.10 sequential",
        unit="msg/s",
        target_op=">=",
        target=2.5,
        run=run_sequential,
    ),
]
