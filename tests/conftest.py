"""Shared fixtures: every flow a test makes is shut down, and no thread leaks."""

from __future__ import annotations

import threading

import pytest

from routilux import Flow


@pytest.fixture
def make_flow():
    """Factory for flows that are shut down at the end of the test."""
    flows: list[Flow] = []

    def factory(*args, **kwargs) -> Flow:
        flow = Flow(*args, **kwargs)
        flows.append(flow)
        return flow

    yield factory
    for flow in flows:
        flow.shutdown()


@pytest.fixture
def no_thread_leak():
    """Fail the test if it leaves threads running after its flows shut down."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
