"""Fixtures for supervisor tests.

``gates`` makes :class:`threading.Event` objects that handlers block on; every gate is
opened when the test ends (before its flows shut down), so a failing test never leaves
a handler blocked. ``sync`` is a barrier with the supervisor: everything routine
actors posted before the call has been processed when it returns (it does not wait for
steps that have not reported yet: use ``helpers.wait_until`` for that).
"""

from __future__ import annotations

import threading

import pytest


@pytest.fixture
def gates(make_flow):
    created: list[threading.Event] = []

    def factory() -> threading.Event:
        event = threading.Event()
        created.append(event)
        return event

    yield factory
    for event in created:
        event.set()


@pytest.fixture
def sync():
    """``sync(flow)``: round trip through the flow's supervisor (returns metrics)."""

    def barrier(flow):
        return flow.metrics()

    return barrier
