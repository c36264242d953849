"""Fixtures for the built-in routine tests.

``EXECUTIONS`` lists the execution modes the flow tests run in. The helper routines
below are made inside a function so that cloudpickle copies them by value: a flow
test keeps working when the routine under test (or a helper) runs in another
process. Flow tests read results from a Collector's attributes after the job ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from routilux import JobState, Routine

EXECUTIONS = ["thread", "process"]


def _make_helpers() -> tuple[type, type]:
    class Collector(Routine):
        """Keeps every message its ``input`` slot receives."""

        def __init__(self) -> None:
            super().__init__()
            self.received: list[dict[str, Any]] = []
            self.define_slot("input", handler=self.collect)

        def collect(self, **message: Any) -> None:
            self.received.append(message)

    class Feeder(Routine):
        """``trigger(messages=[...])`` emits each message on ``output``, then ``done``."""

        def __init__(self) -> None:
            super().__init__()
            self.define_slot("trigger", handler=self.feed)
            self.define_event("output")
            self.define_event("done", ["count"])

        def feed(self, messages: list[dict[str, Any]]) -> None:
            for message in messages:
                self.emit("output", **message)
            self.emit("done", count=len(messages))

    return Collector, Feeder


Collector, Feeder = _make_helpers()


def listen(routine: Routine, *events: str) -> dict[str, list[dict[str, Any]]]:
    """Connect a Collector to each event (all events by default); standalone use."""
    received: dict[str, list[dict[str, Any]]] = {}
    for name in events or tuple(routine._events):
        collector = Collector()
        routine.get_event(name).connect(collector.get_slot("input"))
        received[name] = collector.received
    return received


@pytest.fixture
def collect():
    """``collect(routine, *events)`` -> dict event name -> list of messages."""
    return listen


@pytest.fixture
def collector_class() -> type:
    """The Collector routine class (``.received`` holds the messages)."""
    return Collector


@dataclass
class FlowRun:
    job: JobState
    routine: Routine
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class FlowRunner:
    """Runs one routine (in the execution mode under test) inside a Flow."""

    def __init__(self, make_flow: Any, execution: str) -> None:
        self.make_flow = make_flow
        self.execution = execution

    def run(
        self,
        routine: Routine,
        message: dict[str, Any] | list[dict[str, Any]],
        *,
        slot: str = "input",
        events: tuple[str, ...] = ("output",),
        done_to: str | None = None,
        expect: str = "completed",
    ) -> FlowRun:
        """Deliver ``message`` to ``slot`` (a list: one message each, through a
        Feeder whose ``done`` goes to ``done_to``); collect ``events``."""
        flow = self.make_flow()
        flow.add_routine(routine, "under_test", execution=self.execution)
        collectors = {}
        for name in events:
            collectors[name] = Collector()
            flow.add_routine(collectors[name], f"collect_{name}")
            flow.connect("under_test", name, f"collect_{name}", "input")
        if isinstance(message, list):
            flow.add_routine(Feeder(), "feeder")
            flow.connect("feeder", "output", "under_test", slot)
            if done_to is not None:
                flow.connect("feeder", "done", "under_test", done_to)
            job = flow.execute("feeder", {"messages": message}, entry_slot="trigger", timeout=30)
        else:
            job = flow.execute("under_test", message, entry_slot=slot, timeout=30)
        assert job.wait(30)
        assert job.status == expect, f"job {job.status}: {job.error} {job.failures}"
        return FlowRun(
            job,
            flow.routines["under_test"],
            {name: c.received for name, c in collectors.items()},
        )


@pytest.fixture(params=EXECUTIONS)
def execution(request) -> str:
    return request.param


@pytest.fixture
def flow_runner(make_flow, execution) -> FlowRunner:
    return FlowRunner(make_flow, execution)
