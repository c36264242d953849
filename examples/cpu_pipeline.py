"""A CPU-heavy pipeline whose middle stage runs in two OS processes.

    python examples/cpu_pipeline.py
    routilux run examples/cpu_pipeline.py:flow --params '{"limit": 200000}'

The flow splits a range of numbers into chunks, counts the primes in each chunk
(pure Python, CPU-bound) and adds the counts up. The counting stage runs with
``execution="process", workers=2``; the script runs the same flow on a thread to
show the speed-up (close to the number of cores on a multi-core machine).
"""

from __future__ import annotations

import time

from routilux import Flow, Routine


def count_primes(start: int, stop: int) -> int:
    count = 0
    for n in range(max(start, 2), stop):
        if n % 2 == 0:
            count += n == 2
            continue
        f = 3
        while f * f <= n:
            if n % f == 0:
                break
            f += 2
        else:
            count += 1
    return count


class Chunker(Routine):
    """Splits ``[0, limit)`` into ``chunks`` ranges."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.split)
        self.define_event("chunk", ["start", "stop"])

    def split(self, **params):
        limit, chunks = params.get("limit", 400_000), params.get("chunks", 8)
        size = -(-limit // chunks)
        for start in range(0, limit, size):
            self.emit("chunk", start=start, stop=min(start + size, limit))


class PrimeCounter(Routine):
    """Counts the primes of one chunk (the CPU-heavy stage)."""

    def __init__(self):
        super().__init__()
        self.define_slot("chunk", handler=self.count)
        self.define_event("counted", ["start", "primes"])

    def count(self, start, stop):
        primes = count_primes(start, stop)
        self._stats["chunks"] = self._stats.get("chunks", 0) + 1
        self.emit("counted", start=start, primes=primes)


class Total(Routine):
    """Adds up the counts."""

    def __init__(self):
        super().__init__()
        self.total = 0
        self.chunks = 0
        self.define_slot("counted", handler=self.add)

    def add(self, start, primes):
        self.total += primes
        self.chunks += 1
        self.send_output("total", primes=self.total, chunks=self.chunks)


def build_flow(execution: str = "process", workers: int = 2) -> Flow:
    flow = Flow(flow_id=f"primes-{execution}", execution_strategy="concurrent", max_workers=4)
    flow.add_routine(Chunker(), "chunker")
    flow.add_routine(PrimeCounter(), "counter", execution=execution, workers=workers)
    flow.add_routine(Total(), "total")
    flow.connect("chunker", "chunk", "counter", "chunk")
    flow.connect("counter", "counted", "total", "counted")
    return flow


# `routilux run examples/cpu_pipeline.py:flow` runs this one.
flow = build_flow()


def timed_run(execution: str, workers: int, limit: int) -> tuple[float, int]:
    pipeline = build_flow(execution, workers)
    pipeline.execute("chunker", {"limit": 2000, "chunks": 2})  # start-up not timed
    total = pipeline.routines["total"]
    total.total = total.chunks = 0
    started = time.perf_counter()
    job = pipeline.execute("chunker", {"limit": limit, "chunks": 8}, timeout=300)
    elapsed = time.perf_counter() - started
    assert job.status == "completed", job.error
    result = total.total
    print(f"  {execution:7s} x{workers}: {result} primes below {limit:,} in {elapsed:.2f} s; "
          f"counter stats {pipeline.routines['counter'].stats()}")
    pipeline.shutdown()
    return elapsed, result


def main() -> None:
    limit = 1_000_000
    print("counting primes with the middle stage on a thread, then in 2 processes")
    thread_time, thread_result = timed_run("thread", 1, limit)
    process_time, process_result = timed_run("process", 2, limit)
    assert thread_result == process_result
    print(f"speed-up of processes over a thread: {thread_time / process_time:.2f}x")


if __name__ == "__main__":
    main()
