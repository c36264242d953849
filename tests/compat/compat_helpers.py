"""0.10-style routines for the core compatibility tests (errors, states, history,
tracker, wiring, serialization, small items).

Written the way a routilux 0.10 user writes them: a ``trigger`` entry slot,
``*_slot``/``*_event`` attributes, results kept in attributes. They are made inside
a function so that cloudpickle copies them by value into process routines.
"""

from __future__ import annotations

from typing import Any

from routilux import ErrorHandler, Flow, JobState, Routine

EXECUTIONS = ["thread", "process"]


def _make_routines() -> dict[str, type]:
    class Producer(Routine):
        """``trigger(values=[...])`` emits ``output(value=v)`` for each value."""

        def __init__(self) -> None:
            super().__init__()
            self.trigger_slot = self.define_slot("trigger", handler=self._handle_trigger)
            self.output_event = self.define_event("output", ["value"])

        def _handle_trigger(self, values: list | None = None, **kwargs: Any) -> None:
            for value in values if values is not None else [kwargs.get("value", 1)]:
                self.emit("output", value=value)

    class Worker(Routine):
        """Doubles ``value``; fails the first ``fail_first`` calls of each value with
        ``error_type`` (``fail_first=-1``: always). Counts calls in ``calls``."""

        def __init__(self, fail_first: int = 0, error_type: type = ValueError) -> None:
            super().__init__()
            self.fail_first = fail_first
            self.error_type = error_type
            self.calls: list[Any] = []
            self.input_slot = self.define_slot("input", handler=self._handle_input)
            self.trigger_slot = self.define_slot("trigger", handler=self._handle_input)
            self.output_event = self.define_event("output", ["value"])

        def _handle_input(self, value: Any = None, **kwargs: Any) -> None:
            self.calls.append(value)
            seen = self.calls.count(value)
            if self.fail_first < 0 or seen <= self.fail_first:
                raise self.error_type(f"bad value {value}")
            self.emit("output", value=value * 2)

    class Collector(Routine):
        """Keeps what its ``input`` slot receives in ``results``."""

        def __init__(self) -> None:
            super().__init__()
            self.results: list[Any] = []
            self.input_slot = self.define_slot("input", handler=self._handle_input)

        def _handle_input(self, **kwargs: Any) -> None:
            self.results.append(kwargs)

    return {"Producer": Producer, "Worker": Worker, "Collector": Collector}


_ROUTINES = _make_routines()
Producer = _ROUTINES["Producer"]
Worker = _ROUTINES["Worker"]
Collector = _ROUTINES["Collector"]


def pipeline(
    make_flow: Any,
    execution: str = "thread",
    worker: Routine | None = None,
    handler: ErrorHandler | None = None,
    **flow_kwargs: Any,
) -> tuple[Flow, Routine, Routine]:
    """producer -> worker (thread or process) -> collector; returns (flow, worker, collector)."""
    flow: Flow = make_flow(**flow_kwargs)
    worker = worker if worker is not None else Worker()
    if handler is not None:
        worker.set_error_handler(handler)
    collector = Collector()
    flow.add_routine(Producer(), "producer")
    flow.add_routine(worker, "worker", execution=execution)
    flow.add_routine(collector, "collector")
    flow.connect("producer", "output", "worker", "input")
    flow.connect("worker", "output", "collector", "input")
    return flow, worker, collector


def run(flow: Flow, entry: str = "producer", params: dict | None = None) -> JobState:
    """``execute`` then ``JobState.wait_for_completion``, as a 0.10 program does."""
    job = flow.execute(entry, params if params is not None else {"values": [1]})
    assert JobState.wait_for_completion(flow, job, timeout=30)
    return job


def history(job: JobState) -> list[tuple[str, str, dict]]:
    """``(routine_id, event_name, data)`` of every history record."""
    return [(r.routine_id, r.event_name, r.data) for r in job.execution_history]


# Module-level (importable by class path) routines for the serialization tests:
# Flow.deserialize rebuilds routines from their class path.
def double(value: Any) -> Any:
    """A module-level function (serialized as a function reference)."""
    return value * 2


class Starter(Routine):
    """Emits ``output(value=v)`` for each value; with ``pause=True`` it defers one
    more emit and pauses its job from the handler (the 0.10 way)."""

    def __init__(self) -> None:
        super().__init__()
        self.trigger_slot = self.define_slot("trigger", handler=self.start)
        self.output_event = self.define_event("output", ["value"])

    def start(self, values: list | None = None, pause: bool = False, **kwargs: Any) -> None:
        for value in values or []:
            self.emit("output", value=value)
        if pause:
            self.emit_deferred_event("output", value=100)
            flow, job_state, _ = self.get_execution_context()
            flow.pause(job_state, reason="handover", checkpoint={"at": "start"})


class Doubler(Routine):
    """``output(value=fn(value))`` with ``fn`` from config (default: double)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_config(fn=double)
        self.input_slot = self.define_slot("input", handler=self.work, merge_strategy="append")
        self.output_event = self.define_event("output", ["value"])

    def work(self, value: Any) -> None:
        latest = value[-1] if isinstance(value, list) else value
        self.emit("output", value=self.get_config("fn")(latest))


class Keeper(Routine):
    """Keeps every received value in ``values``."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[Any] = []
        self.input_slot = self.define_slot("input", handler=self.keep)

    def keep(self, value: Any = None, **kwargs: Any) -> None:
        self.values.append(value)
