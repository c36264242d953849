"""Fixtures for the built-in routine tests.

``EXECUTIONS`` lists the execution modes the flow tests run in. The helper routines
are the shared ``helpers.Sink`` (slot ``input``) and ``helpers.Source`` (event
``output``); flow tests read results from a Sink's ``calls`` after the job ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import Sink, Source

from routilux import JobState, Routine

EXECUTIONS = ["thread", "process"]


def listen(routine: Routine, *events: str) -> dict[str, list[dict[str, Any]]]:
    """Connect a Sink to each event (all events by default); standalone use."""
    received: dict[str, list[dict[str, Any]]] = {}
    for name in events or tuple(routine._events):
        sink = Sink("input")
        routine.get_event(name).connect(sink.get_slot("input"))
        received[name] = sink.calls
    return received


@pytest.fixture
def collect():
    """``collect(routine, *events)`` -> dict event name -> list of messages."""
    return listen


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
        Source whose ``done`` goes to ``done_to``); collect ``events``."""
        flow = self.make_flow()
        flow.add_routine(routine, "under_test", execution=self.execution)
        collectors = {}
        for name in events:
            collectors[name] = Sink("input")
            flow.add_routine(collectors[name], f"collect_{name}")
            flow.connect("under_test", name, f"collect_{name}", "input")
        if isinstance(message, list):
            flow.add_routine(Source(event="output", done_event="done"), "feeder")
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
            {name: c.calls for name, c in collectors.items()},
        )


@pytest.fixture(params=EXECUTIONS)
def execution(request) -> str:
    return request.param


@pytest.fixture
def flow_runner(make_flow, execution) -> FlowRunner:
    return FlowRunner(make_flow, execution)
