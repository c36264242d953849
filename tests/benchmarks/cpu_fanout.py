"""CPU-bound fan-out: 8 pure-Python tasks of about 0.25 s each sent to one routine.

Compares, in the same run: the routine on a thread; the routine with
``execution="process", workers=2``; and ``concurrent.futures.ProcessPoolExecutor(2)``.

    python tests/benchmarks/cpu_fanout.py [--tasks 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from routilux import Flow, Routine


def burn(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def calibrate(seconds: float = 0.25) -> int:
    iterations = 200_000
    while True:
        started = time.perf_counter()
        burn(iterations)
        elapsed = time.perf_counter() - started
        if elapsed > 0.05:
            return int(iterations * seconds / elapsed)
        iterations *= 2


class Fan(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.fan)
        self.define_event("task", ["iterations"])

    def fan(self, tasks, iterations):
        for _ in range(tasks):
            self.emit("task", iterations=iterations)


class Burner(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("task", handler=self.work)
        self.define_event("done", ["result"])

    def work(self, iterations):
        self.emit("done", result=burn(iterations))


class Collect(Routine):
    def __init__(self):
        super().__init__()
        self.results = []
        self.define_slot("result", handler=lambda result: self.results.append(result))


def build(execution: str, workers: int) -> tuple[Flow, Collect]:
    flow = Flow(execution_strategy="concurrent", max_workers=8)
    collect = Collect()
    flow.add_routine(Fan(), "fan")
    flow.add_routine(Burner(), "burn", execution=execution, workers=workers)
    flow.add_routine(collect, "collect")
    flow.connect("fan", "task", "burn", "task")
    flow.connect("burn", "done", "collect", "result")
    return flow, collect


def run_flow(execution: str, workers: int, tasks: int, iterations: int) -> float:
    flow, collect = build(execution, workers)
    flow.execute("fan", {"tasks": workers, "iterations": 1000})  # start-up excluded
    collect.results.clear()
    started = time.perf_counter()
    job = flow.execute("fan", {"tasks": tasks, "iterations": iterations})
    elapsed = time.perf_counter() - started
    assert job.status == "completed" and len(collect.results) == tasks, job
    flow.shutdown()
    return elapsed


def run_pool(tasks: int, iterations: int) -> float:
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(burn, [1000, 1000]))  # start-up excluded
        started = time.perf_counter()
        results = list(pool.map(burn, [iterations] * tasks))
        elapsed = time.perf_counter() - started
    assert len(results) == tasks
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    iterations = calibrate()
    times: dict[str, list[float]] = {"thread": [], "process x2": [], "ProcessPoolExecutor(2)": []}
    for _ in range(args.rounds):
        times["thread"].append(run_flow("thread", 1, args.tasks, iterations))
        times["process x2"].append(run_flow("process", 2, args.tasks, iterations))
        times["ProcessPoolExecutor(2)"].append(run_pool(args.tasks, iterations))
    base = statistics.median(times["thread"])
    print(f"{args.tasks} CPU tasks of ~0.25 s, median of {args.rounds} rounds")
    for name, values in times.items():
        value = statistics.median(values)
        print(f"  {name:24s} {value:6.2f} s   speed-up over thread {base / value:4.2f}x")


if __name__ == "__main__":
    main()
