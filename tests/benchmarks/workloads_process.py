"""Process-routine workloads: messages, ping-pong, cold start and CPU fan-out,
each against raw ``multiprocessing`` doing the same."""

from __future__ import annotations

import multiprocessing as mp
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from actor_floor import floor_cycle
from chain_routines import Sink, Source
from light_routines import Echo, Pinger, Tiny
from raw_worker import echo_loop
from workload import Measure, Workload, settle

from routilux import Flow, Routine

SPAWN = mp.get_context("spawn")


class EchoChild:
    """A raw child process echoing over two one-way ``multiprocessing.Pipe`` s."""

    def __init__(self) -> None:
        child_in, self.outbox = mp.Pipe(duplex=False)
        self.inbox, child_out = mp.Pipe(duplex=False)
        self.process = SPAWN.Process(target=echo_loop, args=(child_in, child_out), daemon=True)
        self.process.start()
        child_in.close()
        child_out.close()

    def close(self) -> None:
        self.outbox.send(None)
        self.process.join(10)
        self.outbox.close()
        self.inbox.close()


def raw_pipelined(n: int) -> float:
    """msg/s of ``n`` small dicts sent without waiting while another thread reads
    the echoes: a pipelined raw Pipe."""
    child = EchoChild()
    try:
        for _ in range(50):  # warm up
            child.outbox.send({"i": 0})
            child.inbox.recv()
        sender = threading.Thread(target=lambda: [child.outbox.send({"i": i}) for i in range(n)])
        started = time.perf_counter()
        sender.start()
        for _ in range(n):
            child.inbox.recv()
        elapsed = time.perf_counter() - started
        sender.join()
    finally:
        child.close()
    return n / elapsed


def process_messages(n: int) -> float:
    """msg/s of ``n`` small messages through one process routine (thread source
    and sink, concurrent strategy, history off)."""
    flow = Flow(execution_strategy="concurrent", record_history=False)
    try:
        sink = Sink()
        flow.add_routine(Source(), "source")
        flow.add_routine(Echo(), "echo", execution="process")
        flow.add_routine(sink, "sink")
        flow.connect("source", "out", "echo", "ping")
        flow.connect("echo", "pong", "sink", "inp")
        # warm up: the process is started
        settle([flow.execute("source", {"n": 100}, wait=False)], "process messages warm-up")
        sink.arm(n)
        started = time.perf_counter()
        settle([flow.execute("source", {"n": n}, wait=False)], "process messages")
        elapsed = time.perf_counter() - started
        if sink.count != n:
            raise RuntimeError(f"process messages: {sink.count} of {n} arrived")
    finally:
        flow.shutdown()
    return n / elapsed


def raw_round_trip(cycles: int) -> float:
    """Seconds per send + receive of a small dict to an echoing raw child."""
    child = EchoChild()
    try:
        for _ in range(50):
            child.outbox.send({"i": 0})
            child.inbox.recv()
        started = time.perf_counter()
        for i in range(cycles):
            child.outbox.send({"i": i})
            child.inbox.recv()
        elapsed = time.perf_counter() - started
    finally:
        child.close()
    return elapsed / cycles


def ping_pong(cycles: int, execution: str) -> float:
    """Seconds per ping-pong cycle: a thread routine and an echo routine on
    ``execution``, default (sequential) strategy."""
    flow = Flow()
    try:
        flow.add_routine(Pinger(), "pinger")
        flow.add_routine(Echo(), "echo", execution=execution)
        flow.connect("pinger", "ping", "echo", "ping")
        flow.connect("echo", "pong", "pinger", "pong")
        settle([flow.execute("pinger", {"cycles": 50}, wait=False)], "ping-pong warm-up")
        started = time.perf_counter()
        settle([flow.execute("pinger", {"cycles": cycles}, wait=False)], "ping-pong")
        elapsed = time.perf_counter() - started
    finally:
        flow.shutdown()
    return elapsed / cycles


def cold_start() -> float:
    """Seconds from building a flow with a 2-replica process routine to its first
    (tiny) job completed."""
    started = time.perf_counter()
    flow = Flow()
    try:
        flow.add_routine(Tiny(), "tiny", execution="process", workers=2)
        settle([flow.execute("tiny", {"x": 1}, wait=False)], "cold start")
        elapsed = time.perf_counter() - started
    finally:
        flow.shutdown()
    return elapsed


def square(x: int) -> int:
    return x * x


def fork_pool_start() -> float:
    """Seconds from creating a 2-worker fork pool to the result of its first job."""
    started = time.perf_counter()
    pool = mp.get_context("fork").Pool(2)
    try:
        if pool.apply(square, (3,)) != 9:
            raise RuntimeError("fork pool: wrong result")
        elapsed = time.perf_counter() - started
    finally:
        pool.terminate()
        pool.join()
    return elapsed


def run_messages(smoke: bool) -> Measure:
    n = 500 if smoke else 20_000
    baseline = raw_pipelined(n)
    return Measure(process_messages(n), baseline)


def run_ping_pong(smoke: bool) -> Measure:
    cycles = 100 if smoke else 2000
    baseline = raw_round_trip(cycles) * 1e6
    ours = ping_pong(cycles, "process") * 1e6
    thread = ping_pong(cycles, "thread") * 1e6
    floor = floor_cycle(cycles) * 1e6  # the design's own floor (actor_floor.py)
    return Measure(
        ours,
        baseline,
        {
            "echo_on_thread_us": thread,
            "process_step_us": ours - thread,
            "design_floor_us": floor,
            "design_floor_ratio": floor / baseline,
        },
    )


def run_cold_start(smoke: bool) -> Measure:
    starts = 1 if smoke else 5
    baseline = statistics.median(fork_pool_start() for _ in range(starts)) * 1e3
    ours = statistics.median(cold_start() for _ in range(starts)) * 1e3
    return Measure(ours, baseline)


def burn(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def calibrate(seconds: float) -> int:
    """Iterations of ``burn`` that take about ``seconds`` here, now."""
    iterations = 50_000
    while True:
        started = time.perf_counter()
        burn(iterations)
        elapsed = time.perf_counter() - started
        if elapsed > 0.05:
            return max(1, int(iterations * seconds / elapsed))
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
        self.define_event("done", ["i"])

    def work(self, iterations):
        self.emit("done", i=burn(iterations))


def fan_out(execution: str, workers: int, tasks: int, iterations: int) -> float:
    """Tasks/s of ``tasks`` CPU tasks sent to one routine on ``execution``."""
    flow = Flow(execution_strategy="concurrent", max_workers=8)
    try:
        sink = Sink()
        flow.add_routine(Fan(), "fan")
        flow.add_routine(Burner(), "burn", execution=execution, workers=workers)
        flow.add_routine(sink, "sink")
        flow.connect("fan", "task", "burn", "task")
        flow.connect("burn", "done", "sink", "inp")
        warm = flow.execute("fan", {"tasks": workers, "iterations": 1000}, wait=False)
        settle([warm], "cpu fan-out warm-up")  # start-up excluded
        sink.arm(tasks)
        started = time.perf_counter()
        settle(
            [flow.execute("fan", {"tasks": tasks, "iterations": iterations}, wait=False)],
            "cpu fan-out",
        )
        elapsed = time.perf_counter() - started
    finally:
        flow.shutdown()
    return tasks / elapsed


def pool_fan_out(tasks: int, iterations: int) -> float:
    with ProcessPoolExecutor(2, mp_context=SPAWN) as pool:
        list(pool.map(burn, [1000, 1000]))  # start-up excluded
        started = time.perf_counter()
        list(pool.map(burn, [iterations] * tasks))
        elapsed = time.perf_counter() - started
    return tasks / elapsed


def run_cpu_fanout(smoke: bool) -> Measure:
    tasks, seconds = (2, 0.02) if smoke else (8, 0.25)
    iterations = calibrate(seconds)
    baseline = fan_out("thread", 1, tasks, iterations)
    ours = fan_out("process", 2, tasks, iterations)
    return Measure(ours, baseline, {"process_pool_2_tasks_per_s": pool_fan_out(tasks, iterations)})


WORKLOADS = [
    Workload(
        name="process_messages",
        title="process routine, small messages",
        baseline="pipelined raw multiprocessing.Pipe",
        unit="msg/s",
        target_op=">=",
        target=0.35,
        run=run_messages,
    ),
    Workload(
        name="process_ping_pong",
        title="process routine ping-pong cycle",
        baseline="raw Pipe round trip",
        unit="us",
        target_op="<=",
        target=1.5,
        run=run_ping_pong,
    ),
    Workload(
        name="process_cold_start",
        title="process routine cold start (2 replicas + first job)",
        baseline="fork pool (2 workers + first job)",
        unit="ms",
        target_op="<=",
        target=3.0,
        run=run_cold_start,
    ),
    Workload(
        name="cpu_fanout",
        title="CPU fan-out, process routine x2 (DESIGN 3.4)",
        baseline="the same routine on a thread",
        unit="tasks/s",
        target_op=">=",
        target=1.9,
        run=run_cpu_fanout,
    ),
]
