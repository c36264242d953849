"""Helpers for the 0.10 compatibility tests: 0.10-style routines and a program runner.

The routines are written as a routilux 0.10 user writes them (a ``trigger`` entry
slot, results kept in attributes) and are made inside a function so that cloudpickle
copies them by value: a built-in under test may run in another process.
"""

from __future__ import annotations

from typing import Any

import pytest

from routilux import Flow, JobState, Routine

EXECUTIONS = ["thread", "process"]


def _make_routines() -> tuple[type, type]:
    class Source(Routine):
        """Entry routine: ``trigger(messages=[...])`` emits each message on ``output``."""

        def __init__(self) -> None:
            super().__init__()
            self.trigger_slot = self.define_slot("trigger", handler=self._handle_trigger)
            self.output_event = self.define_event("output")

        def _handle_trigger(self, messages: list[dict[str, Any]] | None = None, **kwargs: Any):
            for message in messages if messages is not None else [kwargs]:
                self.emit("output", **message)

    class Sink(Routine):
        """Keeps what its ``input`` slot receives in ``self.results``."""

        def __init__(self) -> None:
            super().__init__()
            self.results: list[dict[str, Any]] = []
            self.input_slot = self.define_slot("input", handler=self._handle_input)

        def _handle_input(self, **kwargs: Any) -> None:
            self.results.append(kwargs)

    return Source, Sink


Source, Sink = _make_routines()


class Program:
    """One 0.10-style program: Source -> built-in -> one Sink per event."""

    def __init__(self, make_flow: Any, execution: str) -> None:
        self.make_flow = make_flow
        self.execution = execution

    def run(
        self,
        builtin: Routine,
        messages: list[dict[str, Any]],
        events: tuple[str, ...] = ("output",),
        slot: str = "input",
    ) -> tuple[dict[str, list[dict[str, Any]]], Routine, JobState]:
        """Run ``messages`` through ``builtin``; ``(results per event, the flow's copy
        of the built-in, the job)``."""
        flow: Flow = self.make_flow()
        flow.add_routine(Source(), "source")
        flow.add_routine(builtin, "builtin", execution=self.execution)
        flow.connect("source", "output", "builtin", slot)
        sinks = {}
        for name in events:
            sinks[name] = Sink()
            flow.add_routine(sinks[name], f"sink_{name}")
            flow.connect("builtin", name, f"sink_{name}", "input")
        job = flow.execute("source", {"messages": messages})
        assert JobState.wait_for_completion(flow, job, timeout=30)
        assert job.status == "completed", f"{job.status}: {job.error}"
        return {name: sink.results for name, sink in sinks.items()}, flow.routines["builtin"], job


@pytest.fixture(params=EXECUTIONS)
def execution(request) -> str:
    return request.param


@pytest.fixture
def program(make_flow, execution) -> Program:
    """Runs a 0.10-style program with the built-in in a thread or a process routine."""
    return Program(make_flow, execution)
