"""Whole flows: chains, fan-out, fan-in, cycles, many concurrent jobs, 0.10-style code."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from routilux import ErrorHandler, ErrorStrategy, Flow, JobState, Routine

# ---------------------------------------------------------------- routines


class Numbers(Routine):
    """Entry: emits each number; ``count`` tells fan-in how many parts to expect
    (config ``branches`` multiplies it when the numbers go down several branches)."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.start)
        self.define_event("number", ["key", "value", "count"])

    def start(self, key, numbers):
        count = len(numbers) * self.get_config("branches", 1)
        for value in numbers:
            self.emit("number", key=key, value=value, count=count)


class Apply(Routine):
    """Applies ``op`` to ``value``."""

    def __init__(self, op):
        super().__init__()
        self.op = op
        self.define_slot("input", handler=self.apply)
        self.define_event("output", ["key", "value", "count"])

    def apply(self, **data):
        self._stats["seen"] = self._stats.get("seen", 0) + 1
        self.emit("output", **{**data, "value": self.op(data["value"])})


class Collect(Routine):
    """Keeps every value per key, and the jobs each key came from."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.values: dict = {}
        self.jobs: dict = {}
        self.define_slot("input", handler=self.collect)

    def collect(self, key, value, **rest):
        job_id = self.get_execution_context().job_state.job_id
        with self.lock:
            self.values.setdefault(key, []).append(value)
            self.jobs.setdefault(key, set()).add(job_id)


class SumWhenComplete(Routine):
    """Fan-in: accumulates with ``append``; emits the sum once ``count`` parts arrived."""

    def __init__(self):
        super().__init__()
        self.define_slot("input", handler=self.add, merge_strategy="append")
        self.define_event("total", ["key", "value"])

    def add(self, key, value, count):
        if len(value) == count[-1]:
            self.emit("total", key=key[-1], value=sum(value))


def fan_in_flow(make_flow, strategy):
    """numbers -> (left: v, right: 100 v) -> sum (append) -> collect."""
    flow = make_flow(execution_strategy=strategy)
    numbers = Numbers()
    numbers.set_config(branches=2)
    flow.add_routine(numbers, "numbers")
    flow.add_routine(Apply(lambda v: v), "left")
    flow.add_routine(Apply(lambda v: 100 * v), "right")
    flow.add_routine(SumWhenComplete(), "sum")
    collect = Collect()
    flow.add_routine(collect, "collect")
    flow.connect("numbers", "number", "left", "input")
    flow.connect("numbers", "number", "right", "input")
    flow.connect("left", "output", "sum", "input")
    flow.connect("right", "output", "sum", "input")
    flow.connect("sum", "total", "collect", "input")
    return flow, collect


# ---------------------------------------------------------------- chains and fan-out
def test_chain_of_five(make_flow):
    flow = make_flow()
    flow.add_routine(Numbers(), "numbers")
    ops = [lambda v: v + 1, lambda v: v * 10, lambda v: v - 3, lambda v: v * v]
    for i, op in enumerate(ops):
        flow.add_routine(Apply(op), f"op{i}")
    collect = Collect()
    flow.add_routine(collect, "collect")
    flow.connect("numbers", "number", "op0", "input")
    for i in range(3):
        flow.connect(f"op{i}", "output", f"op{i + 1}", "input")
    flow.connect("op3", "output", "collect", "input")
    job = flow.execute("numbers", {"key": "k", "numbers": [1, 2, 3]})
    assert job.status == "completed"
    assert collect.values == {"k": [((v + 1) * 10 - 3) ** 2 for v in (1, 2, 3)]}
    assert all(flow.get_routine(f"op{i}").stats() == {"seen": 3} for i in range(4))
    assert set(job.routine_states) == {"numbers", "op0", "op1", "op2", "op3", "collect"}


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_fan_out_to_three_branches(make_flow, strategy):
    flow = make_flow(execution_strategy=strategy)
    flow.add_routine(Numbers(), "numbers")
    ops = {"double": lambda v: 2 * v, "square": lambda v: v * v, "neg": lambda v: -v}
    collectors = {}
    for name, op in ops.items():
        flow.add_routine(Apply(op), name)
        collectors[name] = Collect()
        flow.add_routine(collectors[name], f"collect_{name}")
        flow.connect("numbers", "number", name, "input")
        flow.connect(name, "output", f"collect_{name}", "input")
    job = flow.execute("numbers", {"key": "k", "numbers": list(range(20))})
    assert job.status == "completed"
    for name, op in ops.items():
        # Each routine handles its messages in order, in both modes.
        assert collectors[name].values["k"] == [op(v) for v in range(20)]


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_fan_in_with_append(make_flow, strategy):
    flow, collect = fan_in_flow(make_flow, strategy)
    job = flow.execute("numbers", {"key": "a", "numbers": [1, 2, 3]})
    assert job.status == "completed"
    assert collect.values == {"a": [606]}  # emitted exactly once, with every part
    # A second job starts with empty slot data: its sum is not polluted by the first.
    job2 = flow.execute("numbers", {"key": "b", "numbers": [5]})
    assert job2.status == "completed"
    assert collect.values == {"a": [606], "b": [505]}


# ---------------------------------------------------------------- cycles
class Step(Routine):
    """One half of a cycle: adds ``inc`` and passes ``n`` on until it reaches ``stop``."""

    def __init__(self, inc, stop=None):
        super().__init__()
        self.inc, self.stop = inc, stop
        self.seen: list[int] = []
        self.define_slot("trigger", handler=self.step)
        self.define_slot("input", handler=self.step)
        self.define_event("next", ["n"])
        self.define_event("done", ["n"])

    def step(self, n):
        self.seen.append(n)
        n += self.inc
        if self.stop is not None and n >= self.stop:
            self.emit("done", n=n)
        else:
            self.emit("next", n=n)


@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_cycle_with_a_stop_condition(make_flow, strategy):
    flow = make_flow(execution_strategy=strategy)
    ping, pong = Step(1, stop=100), Step(10)
    end = Collect()
    flow.add_routine(ping, "ping")
    flow.add_routine(pong, "pong")
    flow.add_routine(end, "end")
    flow.connect("ping", "next", "pong", "input")
    flow.connect("pong", "next", "ping", "input")
    flow.connect("ping", "done", "end", "input", {"n": "value"})
    end_values = []
    end.get_slot("input").handler = lambda n, value, **rest: end_values.append((n, value))
    job = flow.execute("ping", {"n": 0})
    assert job.status == "completed"
    assert ping.seen == list(range(0, 100, 11))
    assert pong.seen == list(range(1, 100, 11))
    assert end_values == [(100, 100)]
    history = [(r.routine_id, r.event_name, r.data["n"]) for r in job.execution_history]
    assert history[0] == ("ping", "start", 0)  # 0.10's first record: the entry params
    # pong's last message made ping stop; plus the start record
    assert len(history) == 2 * len(ping.seen) - 1 + 1
    assert history[-1] == ("ping", "done", 100)


def test_self_loop_countdown(make_flow):
    class Countdown(Routine):
        def __init__(self):
            super().__init__()
            self.seen = []
            self.define_slot("trigger", handler=self.tick)
            self.define_event("again", ["n"])

        def tick(self, n):
            self.seen.append(n)
            if n > 0:
                self.emit("again", n=n - 1)

    flow = make_flow()
    c = Countdown()
    flow.add_routine(c, "c")
    flow.connect("c", "again", "c", "trigger")
    assert flow.execute("c", {"n": 500}).status == "completed"
    assert c.seen == list(range(500, -1, -1))


# ---------------------------------------------------------------- many jobs
@pytest.mark.parametrize("strategy", ["sequential", "concurrent"])
def test_sixty_concurrent_jobs_have_exact_results(make_flow, strategy):
    flow, collect = fan_in_flow(make_flow, strategy)
    flow.max_workers = 4

    def submit(i):
        return i, flow.execute("numbers", {"key": i, "numbers": list(range(i % 7 + 1))},
                               wait=False)

    with ThreadPoolExecutor(4) as pool:
        jobs = dict(pool.map(submit, range(60)))
    assert all(job.wait(30) for job in jobs.values())
    assert {job.status for job in jobs.values()} == {"completed"}
    assert len({job.job_id for job in jobs.values()}) == 60
    for i, job in jobs.items():
        expected = 101 * sum(range(i % 7 + 1))
        assert collect.values[i] == [expected], i
        assert collect.jobs[i] == {job.job_id}  # each result came from its own job
        assert job.routine_states["sum"]["processed"] == 2 * (i % 7 + 1)


def test_many_jobs_with_retries_and_skips(make_flow):
    """Errors in one job's messages never leak into another's results."""
    attempts: dict = {}
    lock = threading.Lock()

    def flaky(v):
        with lock:
            attempts[v] = attempts.get(v, 0) + 1
            first = attempts[v] == 1
        if v % 5 == 0 and first:
            raise ConnectionError("transient")
        return v

    flow = make_flow(execution_strategy="concurrent", max_workers=4)
    flow.add_routine(Numbers(), "numbers")
    flaky_routine = Apply(flaky)
    flaky_routine.set_error_handler(
        ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.005)
    )
    picky = Apply(lambda v: 1 / 0 if v % 7 == 3 else v)
    picky.set_error_handler(ErrorHandler(ErrorStrategy.SKIP))
    collect = Collect()
    flow.add_routine(flaky_routine, "flaky")
    flow.add_routine(picky, "picky")
    flow.add_routine(collect, "collect")
    flow.connect("numbers", "number", "flaky", "input")
    flow.connect("flaky", "output", "picky", "input")
    flow.connect("picky", "output", "collect", "input")
    jobs = {
        k: flow.execute("numbers", {"key": k, "numbers": list(range(k * 10, k * 10 + 10))},
                        wait=False)
        for k in range(50)
    }
    assert all(job.wait(30) for job in jobs.values())
    for k, job in jobs.items():
        assert job.status == "completed"
        numbers = range(k * 10, k * 10 + 10)
        assert sorted(collect.values[k]) == [v for v in numbers if v % 7 != 3]
        assert collect.jobs[k] == {job.job_id}
        retried = [v for v in numbers if v % 5 == 0]
        assert len([f for f in job.failures if f["routine_id"] == "flaky"]) == len(retried)


# ---------------------------------------------------------------- 0.10-style programs
class DataSource(Routine):
    def __init__(self):
        super().__init__()
        self.trigger_slot = self.define_slot("trigger", handler=self._handle_trigger)
        self.output_event = self.define_event("output", ["data"])

    def _handle_trigger(self, data=None, **kwargs):
        data = data or kwargs.get("data", "default")
        self._stats["triggered"] = self._stats.get("triggered", 0) + 1
        self.emit("output", data=data)


class DataProcessor(Routine):
    def __init__(self):
        super().__init__()
        self.input_slot = self.define_slot("input", handler=self.process)
        self.output_event = self.define_event("output", ["result"])
        self.processed_data = None

    def process(self, data=None, **kwargs):
        self.processed_data = str(data).upper()
        flow = self.get_execution_context().flow
        self.emit("output", flow=flow, result=self.processed_data)


class DataSink(Routine):
    def __init__(self):
        super().__init__()
        self.input_slot = self.define_slot("input", handler=self.receive)
        self.final_result = None

    def receive(self, result=None, **kwargs):
        self.final_result = result


def test_a_010_style_program_runs_unchanged(no_thread_leak):
    flow = Flow(flow_id="legacy")
    source, processor, sink = DataSource(), DataProcessor(), DataSink()
    source_id = flow.add_routine(source, "source")
    processor_id = flow.add_routine(processor, "processor")
    sink_id = flow.add_routine(sink, "sink")
    flow.connect(source_id, "output", processor_id, "input")
    flow.connect(processor_id, "output", sink_id, "input")

    job_state = flow.execute(source_id, entry_params={"data": "hello world"})
    assert JobState.wait_for_completion(flow, job_state, timeout=10)
    assert job_state.status == "completed"
    assert processor.processed_data == "HELLO WORLD"
    assert sink.final_result == "HELLO WORLD"
    assert source.stats() == {"triggered": 1}

    job_state = flow.execute(source_id, entry_params={"data": "again"}, wait=False)
    assert JobState.wait_for_completion(flow, job_state, timeout=10)
    assert job_state.status == "completed"
    assert sink.final_result == "AGAIN"
    assert flow.job_state is job_state
    flow.shutdown()


def test_a_010_style_program_with_error_handling_and_concurrency(no_thread_leak):
    class Unreliable(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("input", handler=self.work)
            self.define_event("output", ["result"])
            self.calls = 0

        def work(self, data=None, **kwargs):
            self.calls += 1
            if self.calls < 3:
                raise RuntimeError("not yet")
            self.emit("output", result=f"ok:{data}")

    flow = Flow(flow_id="legacy2", execution_strategy="concurrent", max_workers=3)
    source, unreliable, sink = DataSource(), Unreliable(), DataSink()
    unreliable.set_as_critical(max_retries=3, retry_delay=0.01, retry_backoff=1.0)
    flow.add_routine(source, "source")
    flow.add_routine(unreliable, "unreliable")
    flow.add_routine(sink, "sink")
    flow.connect("source", "output", "unreliable", "input")
    flow.connect("unreliable", "output", "sink", "input")
    job_state = flow.execute("source", entry_params={"data": "x"})
    JobState.wait_for_completion(flow, job_state, timeout=10)
    assert job_state.status == "completed"
    assert sink.final_result == "ok:x"
    assert unreliable.calls == 3
    flow.shutdown()
